/* A client connection to tphd with deadlines; see client.h. */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"
#include "tp_err.h"
#include "vec.h"

/* Longest single poll(): how soon an abandoned connection notices. */
#define SLICE_MS 20
/* Bytes asked of recv() at a time, and the buffer a connection starts with. */
#define RECV_CHUNK (64u * 1024)

int64_t tp_client_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool abandoned(const tp_client *c)
{
    return c->abandon && atomic_load(c->abandon);
}

static int still_ours(const tp_client *c)
{
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st) < 0 || (uint64_t)st.st_dev != c->dev ||
        (uint64_t)st.st_ino != c->ino)
        return -EBADF;
    return 0;
}

/* A new socket connected to path. On a failed connect the socket is still
 * returned in *ret (the caller disposes of it); ret->fd is -1 only when no
 * socket could be made. A peer that is not ours fails with TP_ERR_PERM and
 * the reason in why[whysz] (which may be NULL). */
static int dial(const char *path, tp_client_fd *ret, char *why, size_t whysz)
{
    struct sockaddr_un sa;
    struct stat st;
    size_t n = strlen(path);
    ret->fd = -1;
    if (n == 0)
        return -ENOENT;
    if (n >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ret->fd = fd;
    if (fstat(fd, &st) < 0)
        return -errno;
    ret->dev = (uint64_t)st.st_dev;
    ret->ino = (uint64_t)st.st_ino;
    /* A Unix stream connect never blocks: it succeeds, or fails at once
     * (ENOENT, ECONNREFUSED, or EAGAIN when the backlog is full). */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return errno == EINPROGRESS ? -EAGAIN : -errno;
    /* Before the first byte: the HELLO already names this program. */
    return tp_peer_check(fd, path, why, whysz);
}

int tp_client_dial(const char *path, tp_client_fd *ret, char *why, size_t whysz)
{
    tp_client_fd f;
    int r = dial(path, &f, why, whysz);
    if (r) {
        if (f.fd >= 0)
            close(f.fd);
        return r;
    }
    *ret = f;
    return 0;
}

bool tp_client_fd_valid(const tp_client_fd *f)
{
    struct stat st;
    return f->fd >= 0 && fstat(f->fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
           (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino;
}

void tp_client_fd_close(tp_client_fd *f)
{
    if (tp_client_fd_valid(f))
        close(f->fd);
    f->fd = -1;
}

int tp_client_open(tp_client *c, const char *path, const tp_client_fd *adopt, uint32_t max_frame,
                   const atomic_bool *abandon)
{
    memset(c, 0, offsetof(tp_client, store));
    c->why[0] = '\0';
    c->fd = -1;
    c->abandon = abandon;
    c->max_frame = max_frame ? max_frame : TP_WIRE_MAX_FRAME;
    tp_client_fd f = {-1, 0, 0};
    int r = 0;
    if (adopt && tp_client_fd_valid(adopt))
        f = *adopt;
    else
        r = dial(path, &f, c->why, sizeof(c->why));
    c->fd = f.fd;
    c->dev = f.dev;
    c->ino = f.ino;
    if (r)
        return r;
    /* Small replies (WELCOME, ACK, ERROR) then never allocate again. */
    size_t first =
        (size_t)TP_WIRE_HEADER_SIZE + (c->max_frame < RECV_CHUNK ? c->max_frame : RECV_CHUNK);
    return tp_vec_reserve_array((void **)&c->rbuf, 1, &c->rcap, first);
}

void tp_client_release(tp_client *c, tp_client_fd *ret)
{
    ret->fd = c->fd;
    ret->dev = c->dev;
    ret->ino = c->ino;
    c->fd = -1;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->roff = c->rcap = 0;
}

void tp_client_close(tp_client *c)
{
    tp_client_fd f;
    tp_client_release(c, &f);
    tp_client_fd_close(&f);
}

/* The time left before the earlier of deadline and last + stall (either may
 * be TP_CLIENT_NEVER), in ns. */
static int64_t time_left(int64_t deadline, int64_t last, int64_t stall_ns)
{
    int64_t now = tp_client_now();
    int64_t left = deadline == TP_CLIENT_NEVER ? TP_CLIENT_NEVER : deadline - now;
    if (stall_ns != TP_CLIENT_NEVER && last + stall_ns - now < left)
        left = last + stall_ns - now;
    return left;
}

/* Wait for events on the socket for at most left ns, in slices. Returns >0
 * when ready, 0 on timeout, or a negated errno. */
static int wait_fd(const tp_client *c, short events, int64_t left)
{
    int64_t ms = left / 1000000 + 1;
    struct pollfd p = {.fd = c->fd, .events = events};
    int r = poll(&p, 1, (int)(ms < SLICE_MS ? ms : SLICE_MS));
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    return r;
}

int tp_client_write(tp_client *c, const void *p, size_t n, int64_t stall_ns)
{
    const uint8_t *b = p;
    int64_t last = tp_client_now();
    int r = still_ours(c);
    if (r)
        return r;
    while (n) {
        if (abandoned(c))
            return -ECANCELED;
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            last = tp_client_now();
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        int64_t left = time_left(TP_CLIENT_NEVER, last, stall_ns);
        if (left <= 0)
            return -ETIMEDOUT;
        r = wait_fd(c, POLLOUT, left);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Make room in rbuf for the frame being received: drop the consumed
 * prefix, then grow to the whole frame once its header is in, so one recv
 * can take the rest. */
static int make_room(tp_client *c)
{
    if (c->roff) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    size_t want = c->rlen + RECV_CHUNK;
    if (c->rlen >= TP_WIRE_HEADER_SIZE) {
        uint32_t plen = (uint32_t)c->rbuf[0] << 24 | (uint32_t)c->rbuf[1] << 16 |
                        (uint32_t)c->rbuf[2] << 8 | c->rbuf[3];
        want = (size_t)TP_WIRE_HEADER_SIZE + plen; /* at most max_frame: checked first */
    }
    if (want <= c->rcap)
        return 0;
    return tp_vec_reserve_array((void **)&c->rbuf, 1, &c->rcap, want);
}

int tp_client_read_frame(tp_client *c, int64_t deadline, int64_t stall_ns,
                         const uint8_t **ret_payload, uint32_t *ret_len)
{
    int r = still_ours(c);
    if (r)
        return r;
    int64_t last = tp_client_now();
    for (;;) {
        uint32_t plen;
        r = tp_wire_frame(c->rbuf + c->roff, c->rlen - c->roff, c->max_frame, &plen);
        if (r == 0) {
            *ret_payload = c->rbuf + c->roff + TP_WIRE_HEADER_SIZE;
            *ret_len = plen;
            c->roff += TP_WIRE_HEADER_SIZE + (size_t)plen;
            return 0;
        }
        if (r != -EAGAIN)
            return r;
        if (abandoned(c))
            return -ECANCELED;
        r = make_room(c);
        if (r)
            return r;
        ssize_t got = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (got > 0) {
            c->rlen += (size_t)got;
            last = tp_client_now();
            continue;
        }
        if (got == 0)
            return -ECONNRESET;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        int64_t left = time_left(deadline, last, stall_ns);
        if (left <= 0)
            return -ETIMEDOUT;
        r = wait_fd(c, POLLIN, left);
        if (r < 0)
            return r;
    }
}

int tp_client_read_reply(tp_client *c, int64_t deadline, tp_msg *ret)
{
    const uint8_t *p;
    uint32_t n;
    int r = tp_client_read_frame(c, deadline, TP_CLIENT_NEVER, &p, &n);
    if (r)
        return r;
    if (n == 0)
        return TP_ERR_MALFORMED;
    tp_msg m;
    r = tp_wire_decode_reply(p, n, &m, c->store, sizeof(c->store));
    if (r)
        return r;
    *ret = m;
    return 0;
}

int tp_client_handshake(tp_client *c, const void *hello, size_t hello_len, int64_t timeout_ns,
                        tp_msg *ret, bool *ret_sent)
{
    *ret_sent = false;
    int r = tp_client_write(c, hello, hello_len, timeout_ns);
    if (r)
        return r;
    *ret_sent = true;
    int64_t deadline = tp_client_now() + timeout_ns;
    for (;;) {
        tp_msg m;
        r = tp_client_read_reply(c, deadline, &m);
        if (r)
            return r;
        if (m.type == TP_MSG_WELCOME || m.type == TP_MSG_ERROR) {
            *ret = m;
            return 0;
        }
        /* Another message: ignored (PROTOCOL.md 5.5). */
    }
}
