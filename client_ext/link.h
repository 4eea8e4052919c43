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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define TP_LINK_MAX_REPLY (64u * 1024) /* largest reply frame we accept (WELCOME, ACK, ERROR) */
#define TP_LINK_STORE     4096u        /* bytes for a decoded reply's strings */

/** One connection. Embedded by its user; fields are private except fd. */
typedef struct tp_link {
    int fd;                       /* -1 when closed */
    const volatile bool *abandon; /* may be NULL */
    uint8_t *rbuf;                /* received bytes not yet consumed */
    size_t rlen;
    char store[TP_LINK_STORE]; /* strings of the last decoded reply */
} tp_link;

/** CLOCK_MONOTONIC in ns (deadlines are absolute times on this clock). */
int64_t tp_link_now(void);

/** Connect without blocking to the Unix socket at path (or adopt fd, an
 *  already connected non-blocking socket, when fd >= 0: ownership passes to
 *  the link either way). Returns 0, or a negated errno: -ENOENT or
 *  -ECONNREFUSED (nobody listens), -EAGAIN (the listen backlog is full),
 *  -ENAMETOOLONG, -ENOMEM. On failure the link is closed. */
int tp_link_open(tp_link *l, const char *path, int fd, const volatile bool *abandon);

/** Write all n bytes. Waits while the socket is full, but fails with
 *  -ETIMEDOUT when no byte could be written for stall_ns, -ECANCELED when
 *  abandoned, -EPIPE/-ECONNRESET when the daemon closed. */
int tp_link_write(tp_link *l, const void *p, size_t n, int64_t stall_ns);

/** Read the next frame and decode it with tp_wire_decode_reply() into *ret
 *  (strings point into the link's store until the next read). Returns 0,
 *  -ETIMEDOUT at the absolute deadline, -ECANCELED when abandoned,
 *  -ECONNRESET when the daemon closed, -ENOMEM, TP_ERR_FRAME_TOO_LARGE (a
 *  frame over TP_LINK_MAX_REPLY) or a decoding error. */
int tp_link_read(tp_link *l, int64_t deadline, tp_msg *ret);

/** Close the socket and free the buffer. Accepts a closed link. */
void tp_link_close(tp_link *l);

/** Connect to path without blocking, to find out whether a daemon listens
 *  there. Returns 0 and the connected non-blocking socket in *ret_fd, or a
 *  negated errno as tp_link_open() (*ret_fd untouched). -EAGAIN means a
 *  daemon listens but its backlog is full: a caller treats it as reachable
 *  and connects again later. */
int tp_link_probe(const char *path, int *ret_fd);

#endif
