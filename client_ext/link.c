/* A client connection to tphd with deadlines; see link.h. */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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
    return l->abandon && *l->abandon;
}

int tp_link_probe(const char *path, int *ret_fd)
{
    struct sockaddr_un sa;
    size_t n = strlen(path);
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
    /* A Unix stream connect never blocks: it succeeds, or fails at once
     * (ENOENT, ECONNREFUSED, or EAGAIN when the backlog is full). */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno == EINPROGRESS ? EAGAIN : errno;
        close(fd);
        return -e;
    }
    *ret_fd = fd;
    return 0;
}

int tp_link_open(tp_link *l, const char *path, int fd, const volatile bool *abandon)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->abandon = abandon;
    if (fd < 0) {
        int r = tp_link_probe(path, &fd);
        if (r)
            return r;
    }
    l->rbuf = malloc(TP_LINK_MAX_REPLY + TP_WIRE_HEADER_SIZE);
    if (!l->rbuf) {
        close(fd);
        return -ENOMEM;
    }
    l->fd = fd;
    return 0;
}

void tp_link_close(tp_link *l)
{
    if (l->fd >= 0)
        close(l->fd);
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
        int r = wait_fd(l, POLLOUT, left / 1000000 + 1);
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
    for (;;) {
        int r = take_frame(l, ret);
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
