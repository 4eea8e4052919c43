/* A client connection to tphd with deadlines; see link.h. */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
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

/* Longest single poll(): how soon an abandoned link notices. */
#define SLICE_MS 20

int64_t tp_link_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool abandoned(const tp_link *l)
{
    return l->abandon && atomic_load(l->abandon);
}

/* Whether fd is still the socket we connected: a program may close every
 * descriptor (daemonising) and open others under the same numbers, and a
 * frame must never be written into someone else's file. */
static int still_ours(const tp_link *l)
{
    struct stat st;
    if (fstat(l->fd, &st) < 0 || (uint64_t)st.st_dev != l->dev || (uint64_t)st.st_ino != l->ino)
        return -EBADF;
    return 0;
}

/* A new socket connected to path. On a failed connect the socket is still
 * returned in *ret (the caller disposes of it); ret->fd is -1 only when no
 * socket could be made. A peer that is not ours fails with TP_ERR_PERM and
 * the reason in why[whysz] (which may be NULL). */
static int dial(const char *path, tp_link_fd *ret, char *why, size_t whysz)
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

int tp_link_probe(const char *path, tp_link_fd *ret, char *why, size_t whysz)
{
    tp_link_fd f;
    int r = dial(path, &f, why, whysz);
    if (r) {
        if (f.fd >= 0)
            close(f.fd);
        return r;
    }
    *ret = f;
    return 0;
}

bool tp_link_fd_valid(const tp_link_fd *f)
{
    struct stat st;
    return f->fd >= 0 && fstat(f->fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
           (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino;
}

void tp_link_fd_close(tp_link_fd *f)
{
    if (tp_link_fd_valid(f))
        close(f->fd);
    f->fd = -1;
}

int tp_link_open(tp_link *l, const char *path, const tp_link_fd *adopt, const atomic_bool *abandon)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->abandon = abandon;
    tp_link_fd f = {-1, 0, 0};
    int r = 0;
    if (adopt && tp_link_fd_valid(adopt))
        f = *adopt;
    else
        r = dial(path, &f, l->why, sizeof(l->why));
    l->fd = f.fd;
    l->dev = f.dev;
    l->ino = f.ino;
    if (r)
        return r;
    l->rbuf = malloc(TP_LINK_MAX_REPLY + TP_WIRE_HEADER_SIZE);
    return l->rbuf ? 0 : -ENOMEM;
}

void tp_link_release(tp_link *l, tp_link_fd *ret)
{
    ret->fd = l->fd;
    ret->dev = l->dev;
    ret->ino = l->ino;
    l->fd = -1;
    free(l->rbuf);
    l->rbuf = NULL;
    l->rlen = 0;
}

/* Wait for events on the socket for at most ms. Returns >0 when ready, 0 on
 * timeout, or a negated errno. */
static int wait_fd(tp_link *l, short events, int64_t ms)
{
    struct pollfd p = {.fd = l->fd, .events = events};
    int r = poll(&p, 1, (int)(ms < SLICE_MS ? ms : SLICE_MS));
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    return r;
}

int tp_link_write(tp_link *l, const void *p, size_t n, int64_t stall_ns)
{
    const uint8_t *b = p;
    int64_t last = tp_link_now();
    int r = still_ours(l);
    if (r)
        return r;
    while (n) {
        if (abandoned(l))
            return -ECANCELED;
        ssize_t w = send(l->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            last = tp_link_now();
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        int64_t left = last + stall_ns - tp_link_now();
        if (left <= 0)
            return -ETIMEDOUT;
        r = wait_fd(l, POLLOUT, left / 1000000 + 1);
        if (r < 0)
            return r;
    }
    return 0;
}

/* A whole frame at the start of rbuf: decode it and consume it. Returns 1
 * when a frame was decoded, 0 when more bytes are needed, or an error. */
static int take_frame(tp_link *l, tp_msg *ret)
{
    uint32_t plen;
    int r = tp_wire_frame(l->rbuf, l->rlen, TP_LINK_MAX_REPLY, &plen);
    if (r == -EAGAIN)
        return 0;
    if (r)
        return r;
    if (plen == 0)
        return TP_ERR_MALFORMED;
    tp_msg m;
    r = tp_wire_decode_reply(l->rbuf + TP_WIRE_HEADER_SIZE, plen, &m, l->store, sizeof(l->store));
    size_t used = TP_WIRE_HEADER_SIZE + plen;
    memmove(l->rbuf, l->rbuf + used, l->rlen - used);
    l->rlen -= used;
    if (r)
        return r;
    *ret = m;
    return 1;
}

int tp_link_read(tp_link *l, int64_t deadline, tp_msg *ret)
{
    int r = still_ours(l);
    if (r)
        return r;
    for (;;) {
        r = take_frame(l, ret);
        if (r)
            return r > 0 ? 0 : r;
        if (abandoned(l))
            return -ECANCELED;
        size_t room = TP_LINK_MAX_REPLY + TP_WIRE_HEADER_SIZE - l->rlen;
        ssize_t got = recv(l->fd, l->rbuf + l->rlen, room, MSG_DONTWAIT);
        if (got > 0) {
            l->rlen += (size_t)got;
            continue;
        }
        if (got == 0)
            return -ECONNRESET;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        int64_t left = deadline - tp_link_now();
        if (left <= 0)
            return -ETIMEDOUT;
        r = wait_fd(l, POLLIN, left / 1000000 + 1);
        if (r < 0)
            return r;
    }
}
