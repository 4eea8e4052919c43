/* Wire throughput: encode and decode of a realistic EVENTS batch, in events
 * per second on one core. Built, never run by the test suite:
 *
 *     ninja -C build tests/bench/bench_wire && ./build/tests/bench/bench_wire [events] [seconds]
 *
 * The batch mimics a traced web handler: calls with captured arguments,
 * returns with their repr, a few handled and propagated exceptions, a
 * generator suspending and resuming, and a thread switch now and then. The
 * decode target is 20M events/s (tphd must never be the bottleneck for a
 * client recording at full speed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tp_err.h"
#include "wire.h"

typedef struct batch {
    tp_event *ev;
    size_t n;
    tp_buf tx;
} batch;

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void text(batch *b, const char *s)
{
    uint32_t l = (uint32_t)strlen(s);
    tp_buf_append(&b->tx, &l, 4); /* little-endian host */
    tp_buf_append(&b->tx, s, l);
}

static void push(batch *b, uint8_t kind, uint8_t flags, uint32_t arg, uint64_t t)
{
    tp_event *e = &b->ev[b->n++];
    e->kind = kind;
    e->flags = flags;
    e->rsv = 0;
    e->arg = arg;
    e->t_ns = t;
}

/* About n events: call/return pairs with text, 1 in 20 raising, 1 in 50 a
 * generator round trip, 1 in 500 a thread switch; with_text=false records
 * the same shape without any captured text. */
static void make_batch(batch *b, size_t n, bool with_text)
{
    static const char *const args[] = {
        "uid=42", "self=<User 42>, name='alice', admin=False", "request=<Request GET /users/42>",
        "",       "key='session:9f2c', default=None",          "x=3.14, y=-2"};
    static const char *const rets[] = {
        "None", "{'id': 42, 'name': 'alice'}", "True", "3", "<Response 200>", "[1, 2, 3]"};
    char buf[64];
    uint64_t t = 0;
    uint32_t calls = 0;
    b->ev = malloc((n + 8) * sizeof(tp_event));
    b->n = 0;
    b->tx = (tp_buf)TP_BUF_INIT;
    uint8_t tf = with_text ? TP_EVF_TEXT : 0;
    while (b->n + 6 <= n) {
        uint32_t r = rng();
        t += 150 + r % 2000;
        if (r % 500 == 0) {
            snprintf(buf, sizeof(buf), "worker-%u", r % 8);
            push(b, TP_EV_THREAD, tf, r % 8, t);
            if (with_text)
                text(b, buf);
            continue;
        }
        push(b, TP_EV_CALL, tf, r % 300, t);
        if (with_text)
            text(b, args[r % 6]);
        uint32_t me = calls++;
        if (r % 50 == 1) {
            b->ev[b->n - 1].flags |= TP_EVF_GEN;
            push(b, TP_EV_YIELD, 0, me, t + 10);
            push(b, TP_EV_RESUME, 0, me, t + 20);
        }
        if (r % 20 == 2) {
            push(b, TP_EV_CAUGHT, tf, 0, t + 30);
            if (with_text) {
                text(b, "KeyError");
                text(b, "'session:9f2c'");
            }
        }
        if (r % 20 == 3) {
            push(b, TP_EV_UNWIND, tf, 0, t + 40);
            if (with_text) {
                text(b, "ValueError");
                text(b, "invalid literal for int() with base 10: 'abc'");
            }
        } else {
            push(b, TP_EV_RETURN, tf, 0, t + 50);
            if (with_text)
                text(b, rets[r % 6]);
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char TRACE[] = "0123456789abcdef0123456789abcdef";

static int run(const char *name, size_t nev, bool with_text, double secs)
{
    batch b;
    make_batch(&b, nev, with_text);
    tp_msg m = {.type = TP_MSG_EVENTS,
                .trace = TRACE,
                .seq = 7,
                .records = b.ev,
                .nrecords = b.n,
                .text = b.tx.data,
                .text_len = b.tx.len};
    tp_buf out = TP_BUF_INIT;
    char err[256];
    long iters;
    double t0, dt;
    int r = 0;

    /* Encode: reset and re-encode the frame into the same buffer. */
    iters = 0;
    t0 = now();
    do {
        for (int k = 0; k < 16; k++, iters++) {
            tp_buf_reset(&out);
            if ((r = tp_wire_encode(&m, &out)))
                goto fail;
        }
        dt = now() - t0;
    } while (dt < secs);
    double enc = (double)b.n * (double)iters / dt;
    size_t frame = out.len;

    const uint8_t *p = (const uint8_t *)out.data + TP_WIRE_HEADER_SIZE;
    size_t plen = out.len - TP_WIRE_HEADER_SIZE;

    /* Decode: check, msgpack-c, validate events, copy into the arena, free. */
    iters = 0;
    t0 = now();
    do {
        for (int k = 0; k < 16; k++, iters++) {
            tp_msg d;
            if ((r = tp_wire_decode(p, plen, &d, err, sizeof(err))))
                goto fail;
            tp_wire_msg_free(&d);
        }
        dt = now() - t0;
    } while (dt < secs);
    double dec = (double)b.n * (double)iters / dt;

    /* The events check alone (what decode adds per record). */
    iters = 0;
    t0 = now();
    do {
        for (int k = 0; k < 16; k++, iters++)
            if ((r = tp_wire_check_events(b.ev, b.n, b.tx.data, b.tx.len, err, sizeof(err))))
                goto fail;
        dt = now() - t0;
    } while (dt < secs);
    double chk = (double)b.n * (double)iters / dt;

    printf("%-10s %7zu events, %8zu-byte frame (%5.1f B/event): encode %7.1fM ev/s (%6.0f MB/s), "
           "decode %7.1fM ev/s (%6.0f MB/s), events check %7.1fM ev/s\n",
           name, b.n, frame, (double)frame / (double)b.n, enc / 1e6,
           enc * (double)frame / (double)b.n / 1e6, dec / 1e6,
           dec * (double)frame / (double)b.n / 1e6, chk / 1e6);
    if (dec < 20e6)
        printf("           decode is below the 20M events/s target\n");
fail:
    if (r)
        fprintf(stderr, "%s: %s (%s)\n", name, tp_strerror(r), err);
    tp_buf_free(&out);
    tp_buf_free(&b.tx);
    free(b.ev);
    return r;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 10000;
    double secs = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    if (n < 16)
        n = 16;
    if (run("text", n, true, secs) || run("no-text", n, false, secs) ||
        run("text-64k", 65536, true, secs))
        return 1;
    return 0;
}
