/* Renderer benchmark: a synthetic trace of N calls (requests with loops,
 * nesting up to depth 7, args and return values of 20-70 bytes) rendered as
 * the text tree (unfolded: one line per call; folded with the header; with
 * a filter), JSON (pretty, compact), CSV, Chrome and folded stacks, and the
 * JSON loaded back.
 *
 * Usage: bench_render [calls]   (default 100000). Prints the best of 5 runs
 * per renderer in thread CPU time; never fails on timing. The target is
 * 100k text lines in 0.2 s or less in a release build. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"
#include "render.h"
#include "tree.h"

#define RUNS 5

static const char *const names[][2] = {
    {"app.web", "handle_request"}, {"app.db", "load_user"}, {"app.db", "query"},
    {"app.model", "validate"},     {"app.model", "check"},  {"app.calc", "compute"},
    {"app.calc", "helper"},        {"app.view", "render"},  {"app.view", "format_row"},
    {"app.util", "Cache.get"},
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* CPU time of this thread: the machine may be shared, and a renderer is
 * single-threaded and does no I/O, so CPU time is what it costs. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_render: %s failed (%d)\n", what, r);
    exit(1);
}

typedef struct gen {
    tp_tree *t;
    uint64_t ts, calls, max;
    unsigned seed;
} gen;

static unsigned rnd(gen *g)
{
    g->seed = g->seed * 1103515245u + 12345u;
    return (g->seed >> 16) & 0x7fff;
}

/* One call with up to `fan` children, each recursing one level deeper. */
static void call(gen *g, int depth)
{
    char args[96], ret[96];
    unsigned f = rnd(g) % NNAMES;
    int n = snprintf(args, sizeof(args), "uid=%u, name='user-%u', flags={'a': %u}", rnd(g), rnd(g),
                     rnd(g) % 7);
    int r = tp_tree_call(g->t, f, g->ts += 150, false, args, (size_t)n);
    if (r)
        die("call", r);
    g->calls++;
    unsigned fan = depth < 7 ? rnd(g) % 5 : 0;
    for (unsigned i = 0; i < fan && g->calls < g->max; i++)
        call(g, depth + 1);
    /* A loop of repeated calls now and then: folding material. */
    if (depth == 2 && rnd(g) % 4 == 0)
        for (unsigned i = 0; i < 20 && g->calls < g->max; i++)
            call(g, 7);
    n = snprintf(ret, sizeof(ret), "{'id': %u, 'ok': True, 'rows': %u}", rnd(g), rnd(g) % 100);
    r = tp_tree_return(g->t, g->ts += 2000, ret, (size_t)n);
    if (r)
        die("return", r);
}

static tp_tree *make_tree(uint64_t calls)
{
    gen g = {.max = calls, .seed = 42};
    int r = tp_tree_new(&g.t);
    for (uint32_t i = 0; !r && i < NNAMES; i++)
        r = tp_tree_def_func(g.t, i, names[i][0], names[i][1], "/srv/app/module.py", 10 + i);
    if (r)
        die("tree", r);
    while (g.calls < calls)
        call(&g, 0);
    r = tp_tree_finish(g.t, g.ts + 1000);
    if (r)
        die("finish", r);
    tp_tree_set_label(g.t, "bench");
    g.t->meta.wall_start_ns = 1770906622123456000LL;
    return g.t;
}

typedef int (*render_fn)(const tp_tree *t, const void *arg, tp_buf *out);

static int text_fn(const tp_tree *t, const void *arg, tp_buf *out)
{
    return tp_render_text(t, arg, out);
}
static int json_pretty_fn(const tp_tree *t, const void *arg, tp_buf *out)
{
    return tp_render_json(t, true, out);
}
static int json_compact_fn(const tp_tree *t, const void *arg, tp_buf *out)
{
    return tp_render_json(t, false, out);
}
static int csv_fn(const tp_tree *t, const void *arg, tp_buf *out)
{
    return tp_render_csv(t, out);
}
static int chrome_fn(const tp_tree *t, const void *arg, tp_buf *out)
{
    return tp_render_chrome(t, out);
}
static int folded_fn(const tp_tree *t, const void *arg, tp_buf *out)
{
    return tp_render_folded(t, out);
}

static void bench(const char *label, const tp_tree *t, render_fn fn, const void *arg)
{
    double best = 1e9;
    size_t bytes = 0, lines = 0;
    for (int run = 0; run < RUNS; run++) {
        tp_buf b = TP_BUF_INIT;
        double t0 = now();
        int r = fn(t, arg, &b);
        double dt = now() - t0;
        if (r)
            die(label, r);
        if (dt < best)
            best = dt;
        bytes = b.len;
        lines = 0;
        for (size_t i = 0; i < b.len; i++)
            lines += b.data[i] == '\n';
        tp_buf_free(&b);
    }
    printf("%-28s %9.1f ms  %9zu lines  %7.1f MB  %6.2f Mlines/s  %6.0f MB/s\n", label, best * 1e3,
           lines, (double)bytes / 1e6, (double)lines / best / 1e6, (double)bytes / best / 1e6);
}

int main(int argc, char **argv)
{
    uint64_t calls = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    double t0 = now();
    tp_tree *t = make_tree(calls);
    printf("tree: %zu calls built in %.1f ms\n", t->nnodes, (now() - t0) * 1e3);

    tp_render_opts raw;
    tp_render_opts_init(&raw);
    raw.fold = false;
    raw.header = false;
    bench("text, unfolded, no header", t, text_fn, &raw);
    tp_render_opts ascii = raw;
    ascii.style = TP_STYLE_ASCII;
    ascii.self_time = true;
    ascii.source = true;
    bench("text, ascii+self+source", t, text_fn, &ascii);
    tp_render_opts colour = raw;
    colour.color = true;
    bench("text, colour", t, text_fn, &colour);
    tp_render_opts def;
    tp_render_opts_init(&def);
    bench("text, defaults (fold+hdr)", t, text_fn, &def);
    tp_render_opts filt = raw;
    const char *filters[] = {"!app.db", "!*.helper", NULL};
    filt.filters = filters;
    bench("text, 2 filters", t, text_fn, &filt);
    bench("json, pretty", t, json_pretty_fn, NULL);
    bench("json, compact", t, json_compact_fn, NULL);
    bench("csv", t, csv_fn, NULL);
    bench("chrome", t, chrome_fn, NULL);
    bench("folded stacks", t, folded_fn, NULL);

    tp_buf j = TP_BUF_INIT;
    if (tp_render_json(t, false, &j))
        die("json", -1);
    double best = 1e9;
    for (int run = 0; run < RUNS; run++) {
        tp_tree *u;
        char err[256];
        double t1 = now();
        int r = tp_load_json(j.data, j.len, &u, err, sizeof(err));
        double dt = now() - t1;
        if (r) {
            fprintf(stderr, "bench_render: load failed: %s\n", err);
            return 1;
        }
        best = dt < best ? dt : best;
        tp_tree_free(u);
    }
    printf("%-28s %9.1f ms  %9zu calls  %7.1f MB  %6.2f Mcalls/s\n", "json load (jansson)",
           best * 1e3, t->nnodes, (double)j.len / 1e6, (double)t->nnodes / best / 1e6);
    tp_buf_free(&j);
    tp_tree_free(t);
    return 0;
}
