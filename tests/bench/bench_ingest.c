/* bench_ingest: tphd's throughput and latencies, measured against a real
 * tphd started on a temporary socket and database.
 *
 *   1. ingest: N clients upload traces of EVENTS batches (65,536 records,
 *      the extension's batch size; every CALL carries a short argument text)
 *      and wait for each trace's ACK, which tphd sends once the trace is
 *      committed. Reported: committed events per second.
 *   2. end -> list: a client ENDs a small trace while another polls "list"
 *      until it shows; p50/p99 of that latency.
 *   3. list: "list" (the default 50, and 1,000) with 10,000+ traces stored.
 *   4. idle: tphd's RSS growth for 1,000 connected, idle clients.
 *
 * Usage: bench_ingest [--tphd PATH] [--clients N] [--events-per-client N]
 *                     [--keep DIR]
 * Built by meson, never run by the test suite. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tp_err.h"
#include "wire.h"

#ifndef TPHD_PATH
#define TPHD_PATH "tphd"
#endif

#define BATCH 65536

static char sock_path[100], db_path[256], dir_path[80];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_ingest: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- A minimal blocking client ------------------------------------------------------ */

typedef struct client {
    int fd;
    uint8_t *buf;
    size_t len, cap;
} client;

static void send_all(client *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("send");
        }
        s += w;
        n -= (size_t)w;
    }
}

static void send_msg(client *c, const tp_msg *m)
{
    tp_buf b = TP_BUF_INIT;
    if (tp_wire_encode(m, &b) < 0) {
        fprintf(stderr, "bench_ingest: encode failed\n");
        exit(1);
    }
    send_all(c, b.data, b.len);
    tp_buf_free(&b);
}

/* Reads one message into *m (free with tp_wire_msg_free). */
static void recv_msg(client *c, tp_msg *m)
{
    for (;;) {
        uint32_t plen;
        if (c->len >= 4 && tp_wire_frame(c->buf, c->len, 0, &plen) == 0) {
            char err[256];
            if (tp_wire_decode(c->buf + 4, plen, m, err, sizeof(err)) < 0) {
                fprintf(stderr, "bench_ingest: bad reply: %s\n", err);
                exit(1);
            }
            memmove(c->buf, c->buf + 4 + plen, c->len - 4 - plen);
            c->len -= 4 + plen;
            return;
        }
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? c->cap * 2 : 1 << 20;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf)
                die("realloc");
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n <= 0) {
            fprintf(stderr, "bench_ingest: tphd closed the connection\n");
            exit(1);
        }
        c->len += (size_t)n;
    }
}

static int connect_raw(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect");
    return fd;
}

static void hello(client *c, uint32_t caps)
{
    tp_msg m = {.type = TP_MSG_HELLO,
                .version = TP_WIRE_VERSION,
                .caps = caps,
                .pid = getpid(),
                .client = "bench_ingest/1"};
    send_msg(c, &m);
    tp_msg w;
    recv_msg(c, &w);
    if (w.type != TP_MSG_WELCOME) {
        fprintf(stderr, "bench_ingest: no WELCOME\n");
        exit(1);
    }
    tp_wire_msg_free(&w);
}

static void client_open(client *c, uint32_t caps)
{
    memset(c, 0, sizeof(*c));
    c->fd = connect_raw();
    hello(c, caps);
}

static void client_close(client *c)
{
    close(c->fd);
    free(c->buf);
}

static void describe(client *c)
{
    static const char *names[] = {"handle", "load",  "check", "save",
                                  "render", "parse", "emit",  "step"};
    tp_wire_func f[8];
    for (int i = 0; i < 8; i++)
        f[i] = (tp_wire_func){(uint32_t)i, "app.core", names[i], "/srv/app/core.py", 10 * i};
    tp_msg m = {.type = TP_MSG_FUNCS, .funcs = f, .nfuncs = 8};
    send_msg(c, &m);
}

static void trace_id(char out[33], unsigned a, unsigned b)
{
    snprintf(out, 33, "%08x%08x%016x", a, b, (unsigned)rand());
}

/* One batch: CALL (text "i=NNNNN") / RETURN pairs. */
typedef struct batch {
    tp_event *rec;
    char *text;
    size_t nrec, text_len;
} batch;

static void make_batch(batch *b)
{
    b->rec = malloc(BATCH * sizeof(tp_event));
    b->text = malloc(BATCH / 2 * 12);
    if (!b->rec || !b->text)
        die("malloc");
    b->nrec = BATCH;
    b->text_len = 0;
    for (size_t i = 0; i < BATCH; i += 2) {
        b->rec[i] = (tp_event){TP_EV_CALL, TP_EVF_TEXT, 0, (uint32_t)(i / 2 % 8), i * 100};
        b->rec[i + 1] = (tp_event){TP_EV_RETURN, 0, 0, 0, i * 100 + 50};
        uint32_t len = 7;
        memcpy(b->text + b->text_len, &len, 4);
        snprintf(b->text + b->text_len + 4, 8, "i=%05zu", i / 2 % 100000);
        b->text_len += 4 + len;
    }
}

/* ---- tphd ------------------------------------------------------------------------------ */

static pid_t start_tphd(const char *tphd)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        execl(tphd, tphd, "--socket", sock_path, "--db", db_path, "--no-http", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
        int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (r == 0)
            return pid;
        usleep(10000);
    }
    fprintf(stderr, "bench_ingest: tphd did not start\n");
    exit(1);
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* ---- 1. ingest ---------------------------------------------------------------------------- */

typedef struct ingest_arg {
    unsigned id;
    uint64_t events; /* to send */
    uint64_t sent;
    const batch *b;
} ingest_arg;

static void *ingest_main(void *p)
{
    ingest_arg *a = p;
    client c;
    client_open(&c, TP_CAP_ACK);
    describe(&c);
    unsigned traces = 0;
    /* Traces of 32 batches (2M events) each, the last one shorter. */
    while (a->sent < a->events) {
        char id[33];
        trace_id(id, a->id, traces++);
        tp_msg bm = {.type = TP_MSG_BEGIN, .trace = id, .label = "bench", .wall_start_ns = 1};
        send_msg(&c, &bm);
        uint32_t seq = 0;
        uint64_t calls = 0;
        for (; seq < 32 && a->sent < a->events; seq++) {
            tp_msg em = {.type = TP_MSG_EVENTS,
                         .trace = id,
                         .seq = seq,
                         .records = a->b->rec,
                         .nrecords = a->b->nrec,
                         .text = a->b->text,
                         .text_len = a->b->text_len};
            send_msg(&c, &em);
            a->sent += a->b->nrec;
            calls += a->b->nrec / 2;
        }
        tp_msg end = {.type = TP_MSG_END,
                      .trace = id,
                      .end_ns = (uint64_t)BATCH * 100 * seq,
                      .call_count = calls};
        send_msg(&c, &end);
    }
    /* Every trace is acknowledged once committed; they come in order. */
    for (unsigned i = 0; i < traces; i++) {
        tp_msg ack;
        recv_msg(&c, &ack);
        if (ack.type != TP_MSG_ACK) {
            fprintf(stderr, "bench_ingest: expected ACK, got %d (%s)\n", ack.type,
                    ack.message ? ack.message : "");
            exit(1);
        }
        tp_wire_msg_free(&ack);
    }
    client_close(&c);
    return NULL;
}

static void bench_visible(int samples, const char *what);

/* With during_visible, the end -> list latency is measured while the
 * clients upload. */
static void bench_ingest(int nclients, uint64_t per_client, bool during_visible)
{
    batch b;
    make_batch(&b);
    pthread_t th[64];
    ingest_arg args[64];
    double t0 = now_s();
    for (int i = 0; i < nclients; i++) {
        args[i] = (ingest_arg){.id = (unsigned)i + 1, .events = per_client, .b = &b};
        pthread_create(&th[i], NULL, ingest_main, &args[i]);
    }
    if (during_visible)
        bench_visible(100, "end -> visible in list, during ingest");
    uint64_t total = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(th[i], NULL);
        total += args[i].sent;
    }
    double dt = now_s() - t0;
    printf("ingest: %d clients, %llu events (%.1f MiB of records + text) committed in %.2f s: "
           "%.2f M events/s\n",
           nclients, (unsigned long long)total,
           (double)total * (16 + (double)b.text_len / BATCH) / (1 << 20), dt, total / dt / 1e6);
    free(b.rec);
    free(b.text);
}

/* ---- 2. end -> visible in list ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
    if (getenv("BENCH_VERBOSE"))
        for (int i = 0; i < n; i++)
            if (v[i] > 0.05)
                printf("  sample %d: %.1f ms\n", i, v[i] * 1e3);
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)\n", what, v[n / 2] * 1e3,
           v[(n * 99) / 100] * 1e3, v[n - 1] * 1e3, n);
}

static bool list_has(client *q, const char *id, const char *args)
{
    tp_msg m = {.type = TP_MSG_QUERY, .id = 1, .op = "list", .args_json = args};
    send_msg(q, &m);
    tp_msg r;
    recv_msg(q, &r);
    bool found = r.ok && r.body && memmem(r.body, r.body_len, id, 32) != NULL;
    tp_wire_msg_free(&r);
    return found;
}

static void bench_visible(int samples, const char *what)
{
    client up, q;
    double *lat = malloc(sizeof(double) * (size_t)samples);
    client_open(&up, TP_CAP_ACK);
    client_open(&q, TP_CAP_QUERY);
    describe(&up);
    tp_event ev[20];
    for (int i = 0; i < 20; i += 2) {
        ev[i] = (tp_event){TP_EV_CALL, 0, 0, 1, (uint64_t)i * 10};
        ev[i + 1] = (tp_event){TP_EV_RETURN, 0, 0, 0, (uint64_t)i * 10 + 5};
    }
    static int64_t newest = 2000000000000000000LL; /* each one newer than all before */
    for (int s = 0; s < samples; s++) {
        char id[33];
        trace_id(id, 0xee, (unsigned)rand());
        tp_msg bm = {.type = TP_MSG_BEGIN, .trace = id, .wall_start_ns = ++newest};
        tp_msg em = {.type = TP_MSG_EVENTS, .trace = id, .records = ev, .nrecords = 20};
        tp_msg end = {.type = TP_MSG_END, .trace = id, .end_ns = 200, .call_count = 10};
        send_msg(&up, &bm);
        send_msg(&up, &em);
        double t0 = now_s();
        send_msg(&up, &end);
        while (!list_has(&q, id, "{\"limit\": 1}"))
            ;
        lat[s] = now_s() - t0;
        tp_msg ack;
        recv_msg(&up, &ack);
        tp_wire_msg_free(&ack);
    }
    report(what, lat, samples);
    free(lat);
    client_close(&up);
    client_close(&q);
}

/* ---- 3. list over many traces --------------------------------------------------------------- */

static void bench_list(int ntraces)
{
    client up, q;
    client_open(&up, TP_CAP_ACK);
    client_open(&q, TP_CAP_QUERY);
    describe(&up);
    tp_event ev[2] = {{TP_EV_CALL, 0, 0, 0, 1}, {TP_EV_RETURN, 0, 0, 0, 2}};
    double t0 = now_s();
    for (int s = 0; s < ntraces; s++) {
        char id[33];
        trace_id(id, 0xdd, (unsigned)s);
        tp_msg bm = {.type = TP_MSG_BEGIN,
                     .trace = id,
                     .label = s % 2 ? "api" : "job",
                     .wall_start_ns = 1000000000000000000LL + s};
        tp_msg em = {.type = TP_MSG_EVENTS, .trace = id, .records = ev, .nrecords = 2};
        tp_msg end = {.type = TP_MSG_END, .trace = id, .end_ns = 3, .call_count = 1};
        send_msg(&up, &bm);
        send_msg(&up, &em);
        send_msg(&up, &end);
        if (s % 256 == 255 || s == ntraces - 1) {
            /* Keep the pipeline bounded: read the ACKs so far. */
            int n = s % 256 + 1;
            for (int i = 0; i < n; i++) {
                tp_msg ack;
                recv_msg(&up, &ack);
                tp_wire_msg_free(&ack);
            }
        }
    }
    printf("stored %d small traces in %.2f s (%.0f traces/s)\n", ntraces, now_s() - t0,
           ntraces / (now_s() - t0));
    static const char *const args[] = {"{}", "{\"limit\": 1000}", "{\"label\": \"api\"}"};
    static const char *const names[] = {"list (50 of 10k+)", "list (1000 of 10k+)",
                                        "list label=api (50 of 5k+ matching)"};
    for (int k = 0; k < 3; k++) {
        double v[50];
        for (int i = 0; i < 50; i++) {
            double t = now_s();
            tp_msg m = {.type = TP_MSG_QUERY, .id = 1, .op = "list", .args_json = args[k]};
            send_msg(&q, &m);
            tp_msg r;
            do {
                recv_msg(&q, &r);
                bool more = r.more;
                if (!r.ok) {
                    fprintf(stderr, "bench_ingest: list failed: %s\n", r.message);
                    exit(1);
                }
                tp_wire_msg_free(&r);
                if (!more)
                    break;
            } while (1);
            v[i] = now_s() - t;
        }
        report(names[k], v, 50);
    }
    client_close(&up);
    client_close(&q);
}

/* ---- 4. idle connections ----------------------------------------------------------------------
 */

static void bench_idle(pid_t pid, int n)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long before = rss_kib(pid);
    client *cs = calloc((size_t)n, sizeof(*cs));
    for (int i = 0; i < n; i++)
        client_open(&cs[i], TP_CAP_ACK);
    usleep(300000);
    long after = rss_kib(pid);
    printf("idle: %d connections: tphd RSS %ld KiB -> %ld KiB (+%.1f MiB, %.1f KiB each)\n", n,
           before, after, (after - before) / 1024.0, (double)(after - before) / n);
    for (int i = 0; i < n; i++)
        client_close(&cs[i]);
    free(cs);
}

int main(int argc, char **argv)
{
    const char *tphd = TPHD_PATH, *keep = NULL;
    int nclients = 4;
    uint64_t per_client = 16ull * BATCH * 16; /* 16.8M events each */
    static const struct option opts[] = {
        {"tphd", required_argument, NULL, 't'},
        {"clients", required_argument, NULL, 'c'},
        {"events-per-client", required_argument, NULL, 'e'},
        {"keep", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            tphd = optarg;
            break;
        case 'c':
            nclients = atoi(optarg);
            break;
        case 'e':
            per_client = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            keep = optarg;
            break;
        default:
            fprintf(stderr, "usage: bench_ingest [--tphd PATH] [--clients N] "
                            "[--events-per-client N] [--keep DIR]\n");
            return 2;
        }
    }
    if (nclients < 1 || nclients > 64)
        nclients = 4;
    /* 1,000 idle clients need the descriptors, here and in tphd. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (keep) {
        snprintf(dir_path, sizeof(dir_path), "%s", keep);
        mkdir(dir_path, 0700);
    } else {
        snprintf(dir_path, sizeof(dir_path), "/tmp/bench_ingest.XXXXXX");
        if (!mkdtemp(dir_path))
            die("mkdtemp");
    }
    snprintf(sock_path, sizeof(sock_path), "%s/tphd.sock", dir_path);
    snprintf(db_path, sizeof(db_path), "%s/traces.db", dir_path);
    srand((unsigned)getpid());
    pid_t pid = start_tphd(tphd);
    printf("tphd %s, pid %d, database %s\n", tphd, (int)pid, db_path);
    long rss0 = rss_kib(pid);
    bench_idle(pid, 1000);
    bench_ingest(nclients, per_client, false);
    bench_visible(200, "end -> visible in list, idle");
    bench_ingest(nclients, per_client / 2, true);
    bench_list(10000);
    printf("tphd RSS: %ld KiB at start, %ld KiB now\n", rss0, rss_kib(pid));
    struct stat st;
    if (stat(db_path, &st) == 0)
        printf("database: %.1f MiB\n", st.st_size / 1048576.0);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    printf("tphd exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (!keep) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_path);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_ingest: could not remove %s\n", dir_path);
    }
    return 0;
}
