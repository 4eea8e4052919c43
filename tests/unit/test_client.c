/* The socket client with deadlines (proto/client.c), against a listening
 * socket the test plays the daemon on. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "tp_err.h"
#include "wire.h"

static char dir[64];
static char path[128];
static int lfd = -1;

static void setup(void)
{
    strcpy(dir, "/tmp/tp-client-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.sock", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(lfd, 4), 0);
}

static void teardown(void)
{
    close(lfd);
    unlink(path);
    rmdir(dir);
}

TestSuite(client, .init = setup, .fini = teardown);

/* Opens c on the test socket and returns the daemon's end. */
static int connect_pair(tp_client *c, uint32_t max_frame, const atomic_bool *abandon)
{
    cr_assert_eq(tp_client_open(c, path, NULL, max_frame, abandon), 0);
    int s = accept(lfd, NULL, NULL);
    cr_assert_geq(s, 0);
    return s;
}

static void send_msg(int s, const tp_msg *m)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_wire_encode(m, &b), 0);
    cr_assert_eq(write(s, b.data, b.len), (ssize_t)b.len);
    tp_buf_free(&b);
}

Test(client, dial_where_nobody_listens_is_enoent)
{
    tp_client_fd f = {-1, 0, 0};
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.sock", dir);
    cr_assert_eq(tp_client_dial(missing, &f, NULL, 0), -ENOENT);
    cr_assert_eq(f.fd, -1);
}

Test(client, read_frame_joins_a_frame_split_over_writes)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    const uint8_t head[] = {0, 0, 0, 5, 'h', 'e'};
    cr_assert_eq(write(s, head, sizeof head), (ssize_t)sizeof head);
    cr_assert_eq(write(s, "llo", 3), 3);
    const uint8_t *p;
    uint32_t n;
    cr_assert_eq(tp_client_read_frame(&c, tp_client_now() + 2000000000LL, TP_CLIENT_NEVER, &p, &n),
                 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(p, "hello", 5), 0);
    close(s);
    tp_client_close(&c);
    cr_assert_eq(c.fd, -1);
}

Test(client, read_frame_larger_than_the_first_buffer_grows_it)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    size_t n = 300 * 1024;
    uint8_t *frame = malloc(4 + n);
    frame[0] = 0, frame[1] = (uint8_t)(n >> 16), frame[2] = (uint8_t)(n >> 8),
    frame[3] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        frame[4 + i] = (uint8_t)(i * 7);
    pid_t pid = fork();
    if (pid == 0) { /* the daemon writes while the client reads */
        ssize_t w = write(s, frame, 4 + n);
        _exit(w == (ssize_t)(4 + n) ? 0 : 1);
    }
    const uint8_t *p;
    uint32_t got;
    cr_assert_eq(tp_client_read_frame(&c, TP_CLIENT_NEVER, 2000000000LL, &p, &got), 0);
    cr_assert_eq(got, n);
    cr_assert_eq(memcmp(p, frame + 4, n), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert_eq(status, 0);
    free(frame);
    close(s);
    tp_client_close(&c);
}

Test(client, read_frame_over_max_frame_is_refused)
{
    tp_client c;
    int s = connect_pair(&c, 16, NULL);
    const uint8_t head[] = {0, 0, 0, 17};
    cr_assert_eq(write(s, head, sizeof head), 4);
    const uint8_t *p;
    uint32_t n;
    cr_assert_eq(tp_client_read_frame(&c, TP_CLIENT_NEVER, 2000000000LL, &p, &n),
                 TP_ERR_FRAME_TOO_LARGE);
    close(s);
    tp_client_close(&c);
}

Test(client, read_frame_times_out_after_the_stall_limit)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    const uint8_t *p;
    uint32_t n;
    int64_t t0 = tp_client_now();
    cr_assert_eq(tp_client_read_frame(&c, TP_CLIENT_NEVER, 50000000LL, &p, &n), -ETIMEDOUT);
    int64_t took = tp_client_now() - t0;
    cr_assert_geq(took, 50000000LL);
    cr_assert_lt(took, 1000000000LL);
    close(s);
    tp_client_close(&c);
}

Test(client, read_frame_after_the_daemon_closed_is_econnreset)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    close(s);
    const uint8_t *p;
    uint32_t n;
    cr_assert_eq(tp_client_read_frame(&c, tp_client_now() + 1000000000LL, TP_CLIENT_NEVER, &p, &n),
                 -ECONNRESET);
    tp_client_close(&c);
}

Test(client, abandoned_read_is_canceled)
{
    atomic_bool abandon = true;
    tp_client c;
    int s = connect_pair(&c, 0, &abandon);
    const uint8_t *p;
    uint32_t n;
    cr_assert_eq(tp_client_read_frame(&c, TP_CLIENT_NEVER, TP_CLIENT_NEVER, &p, &n), -ECANCELED);
    close(s);
    tp_client_close(&c);
}

Test(client, handshake_skips_other_messages_until_welcome)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    tp_msg ack = {.type = TP_MSG_ACK, .trace = "0123456789abcdef0123456789abcdef"};
    tp_msg welcome = {.type = TP_MSG_WELCOME, .caps = TP_CAP_ACK, .client = "tphd/test"};
    send_msg(s, &ack);
    send_msg(s, &welcome);
    const char hello[] = "\0\0\0\1x";
    tp_msg m;
    bool sent = false;
    cr_assert_eq(tp_client_handshake(&c, hello, 5, 1000000000LL, &m, &sent), 0);
    cr_assert(sent);
    cr_assert_eq(m.type, TP_MSG_WELCOME);
    cr_assert_eq(m.version, TP_WIRE_VERSION);
    cr_assert_eq(m.caps, TP_CAP_ACK);
    char got[5];
    cr_assert_eq(read(s, got, 5), 5);
    cr_assert_eq(memcmp(got, hello, 5), 0);
    close(s);
    tp_client_close(&c);
}

Test(client, handshake_returns_the_daemons_error)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    tp_msg e = {.type = TP_MSG_ERROR, .code = TP_ERR_VERSION, .message = "too old"};
    send_msg(s, &e);
    tp_msg m;
    bool sent = false;
    cr_assert_eq(tp_client_handshake(&c, "\0\0\0\0", 4, 1000000000LL, &m, &sent), 0);
    cr_assert_eq(m.type, TP_MSG_ERROR);
    cr_assert_eq(m.code, TP_ERR_VERSION);
    cr_assert_str_eq(m.message, "too old");
    close(s);
    tp_client_close(&c);
}

Test(client, write_after_the_daemon_closed_is_epipe_not_sigpipe)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    close(s);
    static char big[1 << 20];
    int r = tp_client_write(&c, big, sizeof big, 1000000000LL);
    cr_assert(r == -EPIPE || r == -ECONNRESET, "r = %d", r);
    tp_client_close(&c);
}

Test(client, reused_descriptor_is_never_written)
{
    tp_client c;
    int s = connect_pair(&c, 0, NULL);
    int fd = c.fd;
    /* The program closes our socket and opens a file under its number. */
    close(fd);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    if (pipefd[0] != fd && pipefd[1] != fd)
        cr_assert_eq(dup2(pipefd[1], fd), fd);
    cr_assert_eq(tp_client_write(&c, "x", 1, 1000000000LL), -EBADF);
    close(pipefd[0]);
    close(pipefd[1]);
    tp_client_fd f;
    tp_client_release(&c, &f);
    tp_client_fd_close(&f); /* not ours any more: left open */
    close(fd);
    close(s);
}
