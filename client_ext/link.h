/* A client connection to tphd with deadlines: what the sender thread uses to
 * deliver one trace. Plain C, no Python: it runs without the GIL.
 *
 * The socket is non-blocking; every write and read waits with poll() in
 * short slices up to a deadline, and gives up early when *abandon becomes
 * true (the interpreter is exiting and stopped waiting for us). Writes use
 * MSG_NOSIGNAL, so a daemon that went away is an -EPIPE, never a SIGPIPE in
 * the traced program. */
#ifndef TP_LINK_H
#define TP_LINK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define TP_LINK_MAX_REPLY (64u * 1024) /* largest reply frame we accept (WELCOME, ACK, ERROR) */
#define TP_LINK_STORE     4096u        /* bytes for a decoded reply's strings */

/** A socket descriptor and the identity (st_dev, st_ino) it had when we
 *  made it, so that a descriptor the program closed and reused (a program
 *  may close every descriptor, daemonising) is never closed or used by us. */
typedef struct tp_link_fd {
    int fd; /* -1: none */
    uint64_t dev, ino;
} tp_link_fd;

/** One connection. Embedded by its user; fields are private except fd. */
typedef struct tp_link {
    int fd;                     /* -1 when it has none */
    const atomic_bool *abandon; /* may be NULL */
    uint8_t *rbuf;              /* received bytes not yet consumed */
    size_t rlen;
    char store[TP_LINK_STORE]; /* strings of the last decoded reply */
    uint64_t dev, ino;         /* the socket's identity, checked before each use */
    char why[192];             /* why tp_link_open() failed, when the code says too little */
} tp_link;

/** CLOCK_MONOTONIC in ns (deadlines are absolute times on this clock). */
int64_t tp_link_now(void);

/** Connect to path without blocking, to find out whether a daemon listens
 *  there. Returns 0 and the connected non-blocking socket in *ret, or a
 *  negated errno: -ENOENT or -ECONNREFUSED (nobody listens), -EAGAIN (a
 *  daemon listens but its backlog is full: callers treat it as reachable and
 *  connect again later), -ENAMETOOLONG..., or TP_ERR_PERM when the
 *  listener is not ours (tp_peer_check(); its reason in why[whysz], which
 *  may be NULL) (*ret untouched; nothing left open). */
int tp_link_probe(const char *path, tp_link_fd *ret, char *why, size_t whysz);

/** True when f->fd is still the socket f describes. */
bool tp_link_fd_valid(const tp_link_fd *f);
/** Close f->fd if it is still the socket f describes; f->fd becomes -1.
 *  Call it from a thread that cannot race with the program's own closing
 *  of descriptors (with the GIL held, in practice). */
void tp_link_fd_close(tp_link_fd *f);

/** Start a link: adopt *adopt (a connected non-blocking socket from
 *  tp_link_probe()) when given and valid, else connect to path without
 *  blocking. Returns 0, or a negated errno (as tp_link_probe(), or -ENOMEM);
 *  on TP_ERR_PERM, l->why says who listens.
 *  Whatever happens the link owns the socket (if one was made) until
 *  tp_link_release(): this module never closes a descriptor itself. */
int tp_link_open(tp_link *l, const char *path, const tp_link_fd *adopt, const atomic_bool *abandon);

/** Write all n bytes. Waits while the socket is full, but fails with
 *  -ETIMEDOUT when no byte could be written for stall_ns, -ECANCELED when
 *  abandoned, -EPIPE/-ECONNRESET when the daemon closed, -EBADF when the
 *  descriptor is no longer our socket. */
int tp_link_write(tp_link *l, const void *p, size_t n, int64_t stall_ns);

/** Read the next frame and decode it with tp_wire_decode_reply() into *ret
 *  (strings point into the link's store until the next read). Returns 0,
 *  -ETIMEDOUT at the absolute deadline, -ECANCELED when abandoned,
 *  -ECONNRESET when the daemon closed, -EBADF (no longer our socket),
 *  -ENOMEM, TP_ERR_FRAME_TOO_LARGE (a frame over TP_LINK_MAX_REPLY) or a
 *  decoding error. */
int tp_link_read(tp_link *l, int64_t deadline, tp_msg *ret);

/** End the link: free its buffer and hand its socket (fd -1 when none) to
 *  the caller in *ret, for tp_link_fd_close() from a safe thread. */
void tp_link_release(tp_link *l, tp_link_fd *ret);

#endif
