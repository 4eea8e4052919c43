/* Tree benchmark: synthesise a 1M-call trace with a realistic shape
 * (requests with loops of repeated calls, short recursion, some depth, args
 * and return values on part of the calls) as one wire batch, then time
 * feed+finish, fold, stats and diff separately.
 *
 * Usage: bench_tree [calls]   (default 1000000). Prints figures; never fails
 * on timing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tp_err.h"
#include "tree.h"

enum {
    F_MAIN,
    F_HANDLE,
    F_LOAD,
    F_QUERY,
    F_VALIDATE,
    F_CHECK,
    F_COMPUTE,
    F_HELPER,
    F_FACT,
    F_RENDER,
    F_FORMAT,
    NFUNCS
};

static const char *const fnames[NFUNCS][2] = {
    {"app", "main"},         {"app.web", "handle_request"}, {"app.db", "load_user"},
    {"app.db", "query"},     {"app.model", "validate"},     {"app.model", "check"},
    {"app.calc", "compute"}, {"app.calc", "helper"},        {"app.calc", "fact"},
    {"app.view", "render"},  {"app.view", "format_row"},
};

typedef struct gen {
    tp_event *ev;
    size_t n, cap;
    char *text;
    size_t text_len, text_cap;
    uint64_t ts;
    uint64_t calls, max_calls;
} gen;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    p = realloc(p, c * elem);
    if (!p) {
        fprintf(stderr, "bench_tree: out of memory\n");
        exit(1);
    }
    *cap = c;
    return p;
}

static void emit(gen *g, uint8_t kind, uint32_t arg, const char *txt)
{
    g->ev = grow(g->ev, &g->cap, g->n + 1, sizeof(tp_event));
    g->ts += 37 + (g->n * 7919) % 211; /* uneven but deterministic durations */
    g->ev[g->n++] =
        (tp_event){.kind = kind, .flags = txt ? TP_EVF_TEXT : 0, .arg = arg, .t_ns = g->ts};
    if (txt) {
        uint32_t len = (uint32_t)strlen(txt);
        g->text = grow(g->text, &g->text_cap, g->text_len + 4 + len, 1);
        memcpy(g->text + g->text_len, &len, 4); /* little-endian host */
        memcpy(g->text + g->text_len + 4, txt, len);
        g->text_len += 4 + len;
    }
}

static void call(gen *g, uint32_t f, const char *args)
{
    emit(g, TP_EV_CALL, f, args);
    g->calls++;
}

static void ret(gen *g, const char *r)
{
    emit(g, TP_EV_RETURN, 0, r);
}

static void leaf(gen *g, uint32_t f, const char *args, const char *r)
{
    call(g, f, args);
    ret(g, r);
}

/* One request: about a thousand calls. */
static void request(gen *g, int id)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "req_id=%d, path='/users/%d'", id, id % 97);
    call(g, F_HANDLE, buf);
    call(g, F_LOAD, "uid=42");
    leaf(g, F_QUERY, "sql='SELECT * FROM users WHERE id=?'", "[{'id': 42}]");
    ret(g, "<User 42>");
    for (int i = 0; i < 100; i++) {
        snprintf(buf, sizeof(buf), "item=%d", i);
        call(g, F_VALIDATE, buf);
        leaf(g, F_CHECK, NULL, NULL);
        ret(g, "True");
    }
    for (int i = 0; i < 50; i++) {
        call(g, F_COMPUTE, NULL);
        for (int k = 0; k < 3; k++)
            leaf(g, F_HELPER, "x=1.5", "3.0");
        ret(g, NULL);
    }
    for (int d = 0; d < 10; d++)
        call(g, F_FACT, "n=10");
    for (int d = 0; d < 10; d++)
        ret(g, "3628800");
    call(g, F_RENDER, "template='users.html'");
    for (int i = 0; i < 580; i++) {
        snprintf(buf, sizeof(buf), "row=%d", i);
        leaf(g, F_FORMAT, buf, "'<tr>...</tr>'");
    }
    ret(g, NULL);
    ret(g, "<Response 200>");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static tp_tree *build(const gen *g, double *secs)
{
    tp_tree *t = NULL;
    double t0 = now();
    int r = tp_tree_new(&t);
    for (uint32_t f = 0; !r && f < NFUNCS; f++)
        r = tp_tree_def_func(t, f, fnames[f][0], fnames[f][1], "app/x.py", (int32_t)f * 10);
    if (!r)
        r = tp_tree_feed(t, g->ev, g->n, g->text, g->text_len);
    if (!r)
        r = tp_tree_finish(t, g->ts + 1);
    *secs = now() - t0;
    if (r) {
        fprintf(stderr, "bench_tree: build failed: %s\n", tp_strerror(r));
        exit(1);
    }
    return t;
}

/* One call with n children, in the pattern pat (cycled) of funcs; the
 * fold time of such a flat list is the sibling scan's cost. */
static double fold_siblings(size_t n, const uint32_t *pat, size_t plen, size_t *ret_nodes)
{
    tp_tree *t = NULL, *f = NULL;
    int r = tp_tree_new(&t);
    for (uint32_t k = 0; !r && k < NFUNCS; k++)
        r = tp_tree_def_func(t, k, fnames[k][0], fnames[k][1], "app/x.py", (int32_t)k * 10);
    uint64_t ts = 0;
    if (!r)
        r = tp_tree_call(t, F_MAIN, ts++, false, NULL, 0);
    for (size_t i = 0; !r && i < n; i++) {
        r = tp_tree_call(t, pat[i % plen], ts++, false, NULL, 0);
        if (!r)
            r = tp_tree_return(t, ts++, NULL, 0);
    }
    if (!r)
        r = tp_tree_return(t, ts++, NULL, 0);
    if (!r)
        r = tp_tree_finish(t, ts);
    double t0 = now();
    if (!r)
        r = tp_tree_fold(t, NULL, &f);
    double secs = now() - t0;
    if (r) {
        fprintf(stderr, "bench_tree: siblings: %s\n", tp_strerror(r));
        exit(1);
    }
    *ret_nodes = f->nnodes;
    tp_tree_free(f);
    tp_tree_free(t);
    return secs;
}

int main(int argc, char **argv)
{
    gen g = {.max_calls = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000};
    call(&g, F_MAIN, "argv=['serve']");
    for (int id = 0; g.calls < g.max_calls; id++)
        request(&g, id);
    ret(&g, "0");
    printf("trace: %llu calls, %zu events, %zu bytes of text\n", (unsigned long long)g.calls, g.n,
           g.text_len);

    double t_build, t_fold, t_stats, t_diff;
    tp_tree *t = build(&g, &t_build);
    double t0 = now();
    tp_tree *f = NULL;
    int r = tp_tree_fold(t, NULL, &f);
    t_fold = now() - t0;
    t0 = now();
    tp_stats *s = NULL;
    if (!r)
        r = tp_tree_stats(t, &s);
    t_stats = now() - t0;
    double t_build2;
    tp_tree *t2 = r ? NULL : build(&g, &t_build2);
    t0 = now();
    tp_diff *d = NULL;
    if (!r)
        r = tp_tree_diff(t, t2, NULL, &d);
    t_diff = now() - t0;
    if (r) {
        fprintf(stderr, "bench_tree: %s\n", tp_strerror(r));
        return 1;
    }
    double calls = (double)t->nnodes;
    printf("build+finish: %.3f s  (%.2f M calls/s)\n", t_build, calls / t_build / 1e6);
    printf("fold:         %.3f s  (%.2f M calls/s)  -> %zu nodes\n", t_fold, calls / t_fold / 1e6,
           f->nnodes);
    printf("build+fold:   %.3f s  (target <= 0.5 s)\n", t_build + t_fold);
    printf("stats:        %.3f s  (%.2f M calls/s)  %u funcs, max depth %u\n", t_stats,
           calls / t_stats / 1e6, s->unique_functions, s->max_depth);
    printf("diff (self):  %.3f s  (%.2f M calls/s)  %zu entries\n", t_diff, calls / t_diff / 1e6,
           d->n);
    printf("memory: %zu bytes per node (%.1f MiB of nodes)\n", sizeof(tp_node),
           calls * sizeof(tp_node) / 1048576.0);
    /* 1M siblings: a repeated sequence of 3 (folds to 4 nodes), and a
     * pattern of period 9, longer than any sequence that folds (nothing
     * folds: every start tries every period). */
    static const uint32_t seq3[] = {F_LOAD, F_QUERY, F_CHECK};
    static const uint32_t seq9[] = {F_LOAD,   F_QUERY,  F_CHECK,  F_COMPUTE, F_HELPER,
                                    F_RENDER, F_FORMAT, F_HANDLE, F_FACT};
    size_t nodes;
    double ts3 = fold_siblings(1000000, seq3, 3, &nodes);
    printf("fold 1M siblings, [3]xN:     %.3f s  -> %zu nodes\n", ts3, nodes);
    double ts9 = fold_siblings(1000000, seq9, 9, &nodes);
    printf("fold 1M siblings, period 9:  %.3f s  -> %zu nodes\n", ts9, nodes);
    tp_tree_diff_free(d);
    tp_tree_stats_free(s);
    tp_tree_free(f);
    tp_tree_free(t);
    tp_tree_free(t2);
    free(g.ev);
    free(g.text);
    return 0;
}
