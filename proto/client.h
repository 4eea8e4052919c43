/* A client connection to tphd's Unix socket with deadlines: the mechanism
 * the extension's sender thread and tph share. Plain C, no Python, no
 * msgpack-c runtime (replies are read with tp_wire_decode_reply(), or handed
 * over as raw payloads for the caller's own decoder).
 *
 * The socket is non-blocking; every write and read waits with poll() in
 * short slices up to a deadline, and gives up early when *abandon becomes
 * true (the extension sets it when the interpreter exits and stopped waiting
 * for us). Writes use MSG_NOSIGNAL, so a daemon that went away is an -EPIPE,
 * never a SIGPIPE in the traced program. Before each use the descriptor is
 * checked to be still the socket we made: a program may close every
 * descriptor (daemonising) and open others under the same numbers, and a
 * frame must never be written into someone else's file.
 *
 * Deadlines are absolute CLOCK_MONOTONIC times in ns (tp_client_now()); a
 * stall limit is a duration without progress. One connection is used by one
 * thread at a time. */
#ifndef TP_CLIENT_H
#define TP_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define TP_CLIENT_STORE 4096u /* bytes for a decoded reply's strings */

/** No deadline, or no stall limit. */
#define TP_CLIENT_NEVER INT64_MAX

/** A socket descriptor and the identity (st_dev, st_ino) it had when we
 *  made it, so that a descriptor the program closed and reused is never
 *  closed or used by us. */
typedef struct tp_client_fd {
    int fd; /* -1: none */
    uint64_t dev, ino;
} tp_client_fd;

/** One connection. Embedded by its user (zero it, or {.fd = -1}, before
 *  tp_client_open()); fields are private except fd (read-only). */
typedef struct tp_client {
    int fd;                     /* -1 when it has none */
    uint64_t dev, ino;          /* the socket's identity, checked before each use */
    const atomic_bool *abandon; /* may be NULL */
    uint32_t max_frame;         /* largest payload accepted */
    uint8_t *rbuf;              /* received bytes; [roff, rlen) not yet consumed */
    size_t rlen, roff, rcap;
    char store[TP_CLIENT_STORE]; /* strings of the last tp_client_read_reply() */
    char why[192];               /* why tp_client_open() failed, when the code says too little */
} tp_client;

/** CLOCK_MONOTONIC in ns. */
int64_t tp_client_now(void);

/** Connect to path without blocking, to find out whether a daemon listens
 *  there, and check the listener before anything is sent (tp_peer_check()).
 *  Returns 0 and the connected non-blocking socket in *ret, or a negated
 *  errno: -ENOENT or -ECONNREFUSED (nobody listens), -EAGAIN (a daemon
 *  listens but its backlog is full: callers treat it as reachable and
 *  connect again later), -ENAMETOOLONG..., or TP_ERR_PERM when the listener
 *  is not ours (the reason in why[whysz], which may be NULL; a failure to
 *  read the peer's credentials is explained there too). *ret untouched and
 *  nothing left open on failure. */
int tp_client_dial(const char *path, tp_client_fd *ret, char *why, size_t whysz);

/** True when f->fd is still the socket f describes. */
bool tp_client_fd_valid(const tp_client_fd *f);
/** Close f->fd if it is still the socket f describes; f->fd becomes -1.
 *  In the extension, call it from a thread that cannot race with the
 *  program's own closing of descriptors (with the GIL held, in practice). */
void tp_client_fd_close(tp_client_fd *f);

/** Start a connection: adopt *adopt (a socket from tp_client_dial()) when
 *  given and valid, else connect to path without blocking. Frames longer
 *  than max_frame (0: TP_WIRE_MAX_FRAME) are refused when read. Returns 0,
 *  or a negated errno (as tp_client_dial(), or -ENOMEM); c->why then says
 *  more when tp_client_dial() would have (else it is ""). Whatever happens
 *  the connection owns the socket (if one was made) until
 *  tp_client_release() or tp_client_close(). */
int tp_client_open(tp_client *c, const char *path, const tp_client_fd *adopt, uint32_t max_frame,
                   const atomic_bool *abandon);

/** Write all n bytes. Waits while the socket is full, but fails with
 *  -ETIMEDOUT when no byte could be written for stall_ns, -ECANCELED when
 *  abandoned, -EPIPE/-ECONNRESET when the daemon closed, -EBADF when the
 *  descriptor is no longer our socket. */
int tp_client_write(tp_client *c, const void *p, size_t n, int64_t stall_ns);

/** Read the next whole frame: *ret_payload (valid until the next read on c)
 *  and its length. Fails with -ETIMEDOUT at the absolute deadline or when
 *  no byte arrived for stall_ns (either may be TP_CLIENT_NEVER),
 *  -ECANCELED when abandoned, -ECONNRESET when the daemon closed, -EBADF,
 *  -ENOMEM, or TP_ERR_FRAME_TOO_LARGE. */
int tp_client_read_frame(tp_client *c, int64_t deadline, int64_t stall_ns,
                         const uint8_t **ret_payload, uint32_t *ret_len);

/** tp_client_read_frame(), then tp_wire_decode_reply() into *ret (strings
 *  point into c's store until the next read). An empty payload is
 *  TP_ERR_MALFORMED; decoding errors are returned as they are. */
int tp_client_read_reply(tp_client *c, int64_t deadline, tp_msg *ret);

/** Send a HELLO frame (encoded by the caller, who knows who it is; the
 *  write may stall for timeout_ns), then wait timeout_ns more for the
 *  daemon's answer, skipping messages of types this side does not know
 *  (PROTOCOL.md 5.5). Returns 0 with a WELCOME or an ERROR in *ret (strings
 *  in c's store; the caller judges version and capabilities), or an error
 *  of tp_client_write() / tp_client_read_reply(); *ret_sent (always
 *  written) tells whether the whole HELLO went out. */
int tp_client_handshake(tp_client *c, const void *hello, size_t hello_len, int64_t timeout_ns,
                        tp_msg *ret, bool *ret_sent);

/** End the connection: free its buffer and hand its socket (fd -1 when
 *  none) to the caller in *ret, to close from a safe thread. */
void tp_client_release(tp_client *c, tp_client_fd *ret);
/** End the connection and close its socket (if it is still ours). */
void tp_client_close(tp_client *c);

#endif
