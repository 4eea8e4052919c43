/* The tree builder: balanced, cut, stray, exceptions, generators, threads,
 * wire batches and very deep traces. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tp_err.h"
#include "tree.h"
#include "tree_priv.h"

static tp_tree *new_tree(void)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "f", "app.py", 10), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "lib", "g", "lib.py", 20), 0);
    return t;
}

#define CALL(t, f, ts) cr_assert_eq(tp_tree_call((t), (f), (ts), false, NULL, 0), 0)
#define RET(t, ts)     cr_assert_eq(tp_tree_return((t), (ts), NULL, 0), 0)

Test(tree, balanced_builds_links_and_times)
{
    tp_tree *t = new_tree();
    CALL(t, 0, 100);
    cr_assert_eq(tp_tree_call(t, 1, 110, false, "x=1", 3), 0);
    CALL(t, 2, 120);
    RET(t, 150);
    cr_assert_eq(tp_tree_return(t, 200, "42", 2), 0);
    CALL(t, 2, 210);
    RET(t, 260);
    RET(t, 300);
    cr_assert_eq(tp_tree_finish(t, 400), 0);

    cr_assert_eq(t->nnodes, 4);
    cr_assert_eq(t->first_root, 0);
    cr_assert_eq(t->last_root, 0);
    const tp_node *n = t->nodes;
    cr_assert_eq(n[0].first_child, 1);
    cr_assert_eq(n[0].last_child, 3);
    cr_assert_eq(n[1].next, 3);
    cr_assert_eq(n[3].next, TP_NONE);
    cr_assert_eq(n[1].first_child, 2);
    cr_assert_eq(n[2].parent, 1);
    cr_assert_eq(n[2].depth, 2);
    cr_assert_eq(n[0].total_ns, 200);
    cr_assert_eq(n[0].self_ns, 200 - 90 - 50);
    cr_assert_eq(n[1].total_ns, 90);
    cr_assert_eq(n[1].self_ns, 60);
    cr_assert_eq(n[1].min_ns, 90);
    cr_assert_eq(n[1].max_ns, 90);
    cr_assert_str_eq(n[1].args, "x=1");
    cr_assert_str_eq(n[1].ret, "42");
    cr_assert_null(n[0].args);
    cr_assert_null(n[0].ret);
    cr_assert_eq(n[0].flags, 0);
    cr_assert_eq(n[2].count, 1);
    cr_assert_eq(t->meta.duration_ns, 400);
    cr_assert_eq(t->meta.call_count, 4);
    char buf[64];
    cr_assert_str_eq(tp_tree_func_name(t, 2, buf, sizeof(buf)), "lib.g");
    tp_tree_free(t);
}

Test(tree, cut_trace_closes_open_calls_at_trace_end)
{
    tp_tree *t = new_tree();
    CALL(t, 0, 0);
    CALL(t, 1, 10);
    RET(t, 30);
    CALL(t, 1, 40);
    CALL(t, 2, 50);
    cr_assert_eq(tp_tree_finish(t, 1000), 0);
    const tp_node *n = t->nodes;
    cr_assert_eq(n[0].flags, TP_NODE_OPEN);
    cr_assert_eq(n[0].end_ns, 1000);
    cr_assert_eq(n[0].total_ns, 1000);
    cr_assert_eq(n[1].flags, 0);
    cr_assert_eq(n[1].total_ns, 20);
    cr_assert_eq(n[2].flags, TP_NODE_OPEN);
    cr_assert_eq(n[2].total_ns, 960);
    cr_assert_eq(n[3].flags, TP_NODE_OPEN);
    cr_assert_eq(n[3].total_ns, 950);
    cr_assert_eq(n[3].self_ns, 950);
    cr_assert_eq(n[2].self_ns, 10);
    cr_assert_eq(n[0].self_ns, 1000 - 20 - 960);
    tp_tree_free(t);
}

Test(tree, stray_return_is_ignored_and_counted)
{
    tp_tree *t = new_tree();
    RET(t, 5);
    CALL(t, 0, 10);
    RET(t, 20);
    RET(t, 30);
    cr_assert_eq(tp_tree_unwind(t, 31, "E", 1, "m", 1), 0);
    cr_assert_eq(tp_tree_caught(t, 32, "E", 1, "m", 1), 0);
    cr_assert_eq(tp_tree_finish(t, 40), 0);
    cr_assert_eq(tp__tree_stray(t), 4);
    cr_assert_eq(t->nnodes, 1);
    cr_assert_eq(t->nodes[0].total_ns, 10);
    cr_assert_eq(t->nodes[0].flags, 0);
    tp_tree_free(t);
}

Test(tree, unknown_function_is_rejected)
{
    tp_tree *t = new_tree();
    cr_assert_eq(tp_tree_call(t, 7, 0, false, NULL, 0), TP_ERR_UNKNOWN_FUNC);
    cr_assert_eq(tp_tree_def_func(t, 9, "m", "q", NULL, 0), 0);
    cr_assert_eq(tp_tree_call(t, 8, 0, false, NULL, 0), TP_ERR_UNKNOWN_FUNC);
    cr_assert_eq(tp_tree_call(t, 9, 0, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1u << 24, "m", "q", NULL, 0), TP_ERR_LIMIT);
    cr_assert_eq(t->nfuncs, 10);
    cr_assert_str_eq(t->funcs[9].file, "");
    cr_assert_str_eq(t->funcs[8].module, "");
    cr_assert(!t->funcs[8].defined);
    cr_assert_eq(tp_tree_finish(t, 5), 0);
    cr_assert_eq(tp_tree_call(t, 9, 6, false, NULL, 0), TP_ERR_SEQUENCE);
    tp_tree_free(t);
}

Test(tree, exceptions_propagated_and_caught)
{
    tp_tree *t = new_tree();
    cr_assert_eq(tp_tree_def_func(t, 3, "app", "h", "app.py", 30), 0);
    CALL(t, 0, 0);
    CALL(t, 1, 10);
    CALL(t, 2, 20);
    cr_assert_eq(tp_tree_unwind(t, 30, "ValueError", 10, "bad", 3), 0);
    cr_assert_eq(tp_tree_unwind(t, 40, "ValueError", 10, "bad", 3), 0);
    cr_assert_eq(tp_tree_caught(t, 45, "ValueError", 10, "bad", 3), 0);
    CALL(t, 3, 50);
    cr_assert_eq(tp_tree_caught(t, 55, "KeyError", 8, "'x'", 3), 0);
    cr_assert_eq(tp_tree_caught(t, 56, "IndexError", 10, "i", 1), 0);
    cr_assert_eq(tp_tree_return(t, 60, "None", 4), 0);
    cr_assert_eq(tp_tree_return(t, 70, "0", 1), 0);
    cr_assert_eq(tp_tree_finish(t, 70), 0);
    const tp_node *n = t->nodes;
    cr_assert_eq(n[2].flags, TP_NODE_EXC);
    cr_assert_str_eq(n[2].exc_type, "ValueError");
    cr_assert_str_eq(n[2].exc_msg, "bad");
    cr_assert_null(n[2].ret);
    cr_assert_eq(n[2].total_ns, 10);
    cr_assert_eq(n[1].flags, TP_NODE_EXC);
    cr_assert_eq(n[1].total_ns, 30);
    cr_assert_eq(n[0].flags, TP_NODE_CAUGHT);
    cr_assert_str_eq(n[0].exc_type, "ValueError");
    cr_assert_str_eq(n[0].ret, "0");
    cr_assert_eq(n[3].flags, TP_NODE_CAUGHT);
    cr_assert_str_eq(n[3].exc_type, "IndexError");
    cr_assert_str_eq(n[3].exc_msg, "i");
    cr_assert_str_eq(n[3].ret, "None");
    cr_assert_eq(n[3].parent, 0);
    cr_assert_eq(tp__tree_stray(t), 0);
    tp_tree_free(t);
}

Test(tree, generator_resumed_several_times_is_one_node)
{
    tp_tree *t = new_tree();
    CALL(t, 0, 0);
    cr_assert_eq(tp_tree_call(t, 1, 10, true, NULL, 0), 0);
    cr_assert_eq(tp_tree_yield(t, 1, 15), 0);
    cr_assert_eq(tp_tree_resume(t, 2, 16), TP_ERR_SEQUENCE); /* not a call yet */
    CALL(t, 2, 20);
    cr_assert_eq(tp_tree_yield(t, 1, 22), TP_ERR_SEQUENCE); /* 2 is current */
    RET(t, 25);
    cr_assert_eq(tp_tree_resume(t, 1, 30), 0);
    cr_assert_eq(tp_tree_resume(t, 1, 30), TP_ERR_SEQUENCE); /* already running */
    CALL(t, 2, 31);
    RET(t, 33);
    cr_assert_eq(tp_tree_yield(t, 1, 35), 0);
    cr_assert_eq(tp_tree_resume(t, 1, 40), 0);
    cr_assert_eq(tp_tree_yield(t, 1, 45), 0);
    cr_assert_eq(tp_tree_resume(t, 1, 50), 0);
    cr_assert_eq(tp_tree_return(t, 55, NULL, 0), 0);
    RET(t, 60);
    cr_assert_eq(tp_tree_finish(t, 60), 0);

    cr_assert_eq(t->nnodes, 4);
    const tp_node *g = &t->nodes[1];
    cr_assert_eq(g->flags, TP_NODE_GEN);
    cr_assert_eq(g->suspends, 3);
    cr_assert_eq(g->parent, 0);
    cr_assert_eq(g->start_ns, 10);
    cr_assert_eq(g->end_ns, 55);
    /* Active 10-15, 30-35, 40-45, 50-55; its child ran 31-33. */
    cr_assert_eq(g->total_ns, 20);
    cr_assert_eq(g->self_ns, 18);
    cr_assert_eq(g->first_child, 3);
    cr_assert_eq(g->last_child, 3);
    cr_assert_eq(t->nodes[3].depth, 2);
    cr_assert_eq(t->nodes[0].first_child, 1);
    cr_assert_eq(t->nodes[1].next, 2);
    cr_assert_eq(t->nodes[2].parent, 0);
    /* Innermost while the generator waited: 0-10, 15-20, 25-30, 35-40, 45-50, 55-60. */
    cr_assert_eq(t->nodes[0].self_ns, 35);
    int64_t self_sum = 0;
    for (size_t i = 0; i < t->nnodes; i++)
        self_sum += t->nodes[i].self_ns;
    cr_assert_eq(self_sum, 60); /* one thread, busy throughout */
    tp_tree_free(t);
}

Test(tree, suspended_generator_at_cut_is_open)
{
    tp_tree *t = new_tree();
    cr_assert_eq(tp_tree_call(t, 1, 10, true, NULL, 0), 0);
    cr_assert_eq(tp_tree_yield(t, 0, 15), 0);
    cr_assert_eq(tp_tree_finish(t, 100), 0);
    cr_assert_eq(t->nodes[0].flags, TP_NODE_GEN | TP_NODE_OPEN);
    cr_assert_eq(t->nodes[0].end_ns, 100);
    cr_assert_eq(t->nodes[0].total_ns, 5); /* it ran 10-15, then waited */
    cr_assert_eq(t->nodes[0].self_ns, 5);
    cr_assert_eq(t->nodes[0].suspends, 1);
    tp_tree_free(t);
}

Test(tree, threads_have_their_own_stacks_and_roots)
{
    tp_tree *t = new_tree();
    CALL(t, 0, 0); /* 0: thread 0 root */
    cr_assert_eq(tp_tree_thread(t, 7), 0);
    CALL(t, 1, 5); /* 1: thread 7 root */
    CALL(t, 2, 6); /* 2: child of 1 */
    cr_assert_eq(tp_tree_thread(t, 0), 0);
    CALL(t, 2, 7); /* 3: child of 0 */
    RET(t, 8);
    cr_assert_eq(tp_tree_thread(t, 3), 0);
    CALL(t, 1, 2); /* 4: thread 3 root, starts before 1 */
    RET(t, 4);
    cr_assert_eq(tp_tree_thread(t, 7), 0);
    RET(t, 9);
    RET(t, 10);
    cr_assert_eq(tp_tree_thread(t, 0), 0);
    RET(t, 20);
    cr_assert_eq(tp_tree_finish(t, 20), 0);

    const tp_node *n = t->nodes;
    cr_assert_eq(n[1].thread, 7);
    cr_assert_eq(n[2].thread, 7);
    cr_assert_eq(n[2].parent, 1);
    cr_assert_eq(n[3].thread, 0);
    cr_assert_eq(n[3].parent, 0);
    cr_assert_eq(n[4].thread, 3);
    cr_assert_eq(n[4].parent, TP_NONE);
    cr_assert_eq(n[0].first_child, 3);
    cr_assert_eq(n[0].last_child, 3);
    cr_assert_eq(n[1].total_ns, 5);
    cr_assert_eq(n[0].self_ns, 19);
    /* Roots by start: 0 (t=0), 4 (t=2), 1 (t=5). */
    cr_assert_eq(t->first_root, 0);
    cr_assert_eq(n[0].next, 4);
    cr_assert_eq(n[4].next, 1);
    cr_assert_eq(n[1].next, TP_NONE);
    cr_assert_eq(t->last_root, 1);
    tp_tree_free(t);
}

Test(tree, times_going_backwards_are_clamped)
{
    tp_tree *t = new_tree();
    CALL(t, 0, 100);
    CALL(t, 1, 50);
    RET(t, 40);
    RET(t, 200);
    cr_assert_eq(tp_tree_finish(t, 200), 0);
    cr_assert_eq(t->nodes[1].start_ns, 100);
    cr_assert_eq(t->nodes[1].end_ns, 100);
    cr_assert_eq(t->nodes[1].total_ns, 0);
    cr_assert_eq(t->nodes[0].total_ns, 100);
    cr_assert_eq(t->nodes[0].self_ns, 100);
    tp_tree_free(t);
}

Test(tree, deep_nesting_builds_and_finishes)
{
    tp_tree *t = new_tree();
    const uint32_t depth = 100000;
    for (uint32_t i = 0; i < depth; i++)
        CALL(t, 1, i);
    for (uint32_t i = 0; i < depth / 2; i++)
        RET(t, depth + i);
    cr_assert_eq(tp_tree_finish(t, 3 * depth), 0);
    cr_assert_eq(t->nnodes, depth);
    const tp_node *last = &t->nodes[depth - 1];
    cr_assert_eq(last->depth, depth - 1);
    cr_assert_eq(last->flags, 0);
    cr_assert_eq(last->total_ns, 1); /* started at depth-1, first return at depth */
    const tp_node *outer_closed = &t->nodes[depth / 2];
    cr_assert_eq(outer_closed->flags, 0);
    cr_assert_eq(outer_closed->total_ns, depth - 1);
    cr_assert_eq(t->nodes[depth / 2 - 1].flags, TP_NODE_OPEN);
    cr_assert_eq(t->nodes[depth / 2 - 1].end_ns, 3 * depth);
    cr_assert_eq(t->nodes[0].flags, TP_NODE_OPEN);
    cr_assert_eq(t->nodes[0].total_ns, 3 * depth);
    cr_assert_eq(t->nodes[0].self_ns, 1);
    tp_tree_free(t);
}

/* ---- feed() ------------------------------------------------------------- */

typedef struct batch {
    uint8_t rec[64 * 16 + 1];
    size_t n;
    uint8_t text[1024];
    size_t text_len;
} batch;

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Records start at rec + 1 so the feed reads unaligned records. */
static void ev(batch *b, uint8_t kind, uint8_t flags, uint32_t arg, uint64_t ts)
{
    uint8_t *r = b->rec + 1 + 16 * b->n++;
    memset(r, 0, 16);
    r[0] = kind;
    r[1] = flags;
    put32(r + 4, arg);
    put32(r + 8, (uint32_t)ts);
    put32(r + 12, (uint32_t)(ts >> 32));
}

static void text(batch *b, const char *s)
{
    put32(b->text + b->text_len, (uint32_t)strlen(s));
    memcpy(b->text + b->text_len + 4, s, strlen(s));
    b->text_len += 4 + strlen(s);
}

static int feed(tp_tree *t, const batch *b)
{
    return tp_tree_feed(t, b->rec + 1, b->n, b->text, b->text_len);
}

Test(tree, feed_applies_a_wire_batch)
{
    tp_tree *t = new_tree();
    batch b = {0};
    ev(&b, TP_EV_CALL, TP_EVF_TEXT, 0, 10);
    text(&b, "argv=[]");
    ev(&b, TP_EV_CALL, TP_EVF_GEN, 1, 20);
    ev(&b, TP_EV_YIELD, 0, 1, 25);
    ev(&b, TP_EV_THREAD, TP_EVF_TEXT, 4, 26);
    text(&b, "worker");
    ev(&b, TP_EV_CALL, 0, 2, 27);
    ev(&b, TP_EV_UNWIND, TP_EVF_TEXT, 0, 5000000000ULL);
    text(&b, "OSError");
    text(&b, "disk");
    ev(&b, TP_EV_THREAD, 0, 0, 0);
    ev(&b, TP_EV_RESUME, 0, 1, 30);
    ev(&b, TP_EV_RETURN, 0, 0, 35);
    ev(&b, TP_EV_CAUGHT, TP_EVF_TEXT, 0, 36);
    text(&b, "OSError");
    text(&b, "disk");
    ev(&b, TP_EV_RETURN, TP_EVF_TEXT, 0, 40);
    text(&b, "0");
    cr_assert_eq(feed(t, &b), 0);
    cr_assert_eq(tp_tree_finish(t, 50), 0);

    cr_assert_eq(t->nnodes, 3);
    const tp_node *n = t->nodes;
    cr_assert_str_eq(n[0].args, "argv=[]");
    cr_assert_str_eq(n[0].ret, "0");
    cr_assert_eq(n[0].flags, TP_NODE_CAUGHT);
    cr_assert_eq(n[1].flags, TP_NODE_GEN);
    cr_assert_eq(n[1].suspends, 1);
    cr_assert_eq(n[1].end_ns - n[1].start_ns, 15); /* span */
    cr_assert_eq(n[1].total_ns, 10);               /* active: 20-25 and 30-35 */
    cr_assert_eq(n[2].thread, 4);
    cr_assert_eq(n[2].flags, TP_NODE_EXC);
    cr_assert_str_eq(n[2].exc_type, "OSError");
    cr_assert_str_eq(n[2].exc_msg, "disk");
    cr_assert_eq(n[2].end_ns, 5000000000LL);
    tp_tree_free(t);
}

Test(tree, feed_rejects_malformed_records)
{
    static const struct {
        uint8_t kind, flags;
    } bad[] = {{0, 0}, {TP_EV_MAX + 1, 0}, {TP_EV_RETURN, 0x04}, {TP_EV_CALL, 0x80}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tp_tree *t = new_tree();
        batch b = {0};
        ev(&b, TP_EV_CALL, 0, 0, 1);
        ev(&b, bad[i].kind, bad[i].flags, 0, 2);
        ev(&b, TP_EV_CALL, 0, 1, 3);
        cr_assert_eq(feed(t, &b), TP_ERR_MALFORMED, "case %zu", i);
        cr_assert_eq(t->nnodes, 1, "events before the bad one stay applied");
        tp_tree_free(t);
    }
}

Test(tree, feed_rejects_text_overrun)
{
    tp_tree *t = new_tree();
    batch b = {0};
    ev(&b, TP_EV_CALL, TP_EVF_TEXT, 0, 1);
    text(&b, "ok");
    ev(&b, TP_EV_CALL, TP_EVF_TEXT, 1, 2);
    put32(b.text + b.text_len, 10); /* claims 10 bytes, has 3 */
    memcpy(b.text + b.text_len + 4, "abc", 3);
    b.text_len += 7;
    cr_assert_eq(feed(t, &b), TP_ERR_MALFORMED);
    cr_assert_eq(t->nnodes, 1);
    tp_tree_free(t);

    /* An UNWIND owns two entries: a stream with one is short. */
    t = new_tree();
    memset(&b, 0, sizeof(b));
    ev(&b, TP_EV_CALL, 0, 0, 1);
    ev(&b, TP_EV_UNWIND, TP_EVF_TEXT, 0, 2);
    text(&b, "E");
    cr_assert_eq(feed(t, &b), TP_ERR_MALFORMED);
    /* A length prefix cut short. */
    memset(&b, 0, sizeof(b));
    ev(&b, TP_EV_RETURN, TP_EVF_TEXT, 0, 3);
    b.text_len = 3;
    cr_assert_eq(feed(t, &b), TP_ERR_MALFORMED);
    tp_tree_free(t);
}

Test(tree, feed_reports_builder_errors)
{
    tp_tree *t = new_tree();
    batch b = {0};
    ev(&b, TP_EV_CALL, 0, 99, 1);
    cr_assert_eq(feed(t, &b), TP_ERR_UNKNOWN_FUNC);
    memset(&b, 0, sizeof(b));
    ev(&b, TP_EV_RESUME, 0, 0, 1);
    cr_assert_eq(feed(t, &b), TP_ERR_SEQUENCE);
    tp_tree_free(t);
}

Test(tree, strings_and_meta_are_copied)
{
    tp_tree *t = new_tree();
    char big[300000];
    memset(big, 'x', sizeof(big));
    const char *s = tp_tree_strdup(t, big, sizeof(big));
    cr_assert_not_null(s);
    cr_assert_eq(strlen(s), sizeof(big));
    const char *small = tp_tree_strdup(t, "abc", 2);
    cr_assert_str_eq(small, "ab");
    cr_assert_str_eq(tp_tree_strdup(t, NULL, 0), "");
    char label[] = "nightly";
    cr_assert_eq(tp_tree_set_label(t, label), 0);
    label[0] = 'N';
    cr_assert_str_eq(t->meta.label, "nightly");
    cr_assert_eq(tp_tree_set_limit_reason(t, "max_calls"), 0);
    cr_assert_eq(tp_tree_set_config_json(t, "{\"max_calls\":3}"), 0);
    cr_assert_str_eq(t->meta.limit_reason, "max_calls");
    cr_assert_eq(tp_tree_set_label(t, NULL), 0);
    cr_assert_null(t->meta.label);
    t->meta.call_count = 3;
    cr_assert_eq(tp_tree_finish(t, 1), 0);
    cr_assert_eq(t->meta.call_count, 3);
    char buf[8];
    cr_assert_str_eq(tp_tree_func_name(t, 0, buf, sizeof(buf)), "app.mai");
    cr_assert_str_eq(tp_tree_func_name(t, 42, buf, sizeof(buf)), "?");
    tp_tree_free(t);
    tp_tree_free(NULL);
}

/* Random programs of calls, generators that suspend and resume, exceptions
 * and threads: self time is never negative, never more than the call's
 * active time, and per thread the self times add up to at most the thread's
 * busy time; a call's active time never exceeds its span. */
Test(tree, random_generators_keep_self_time_within_thread_time)
{
    for (unsigned seed = 1; seed <= 200; seed++) {
        srand(seed);
        tp_tree *t = new_tree();
        uint64_t now = 0;
        uint32_t suspended[3][64]; /* a generator resumes on its own thread */
        size_t nsusp[3] = {0, 0, 0};
        size_t depth[3] = {0, 0, 0};
        uint32_t stack[3][128];
        uint32_t th = 0;
        for (int step = 0; step < 400; step++) {
            now += (uint64_t)(rand() % 50);
            int op = rand() % 10;
            if (op == 0) {
                th = (uint32_t)(rand() % 3);
                cr_assert_eq(tp_tree_thread(t, th), 0);
            } else if (op <= 3 && depth[th] < 128) {
                bool gen = rand() % 3 == 0;
                uint32_t seq = (uint32_t)t->nnodes;
                cr_assert_eq(tp_tree_call(t, (uint32_t)(rand() % 3), now, gen, NULL, 0), 0);
                stack[th][depth[th]++] = seq;
            } else if (op <= 5 && depth[th]) {
                uint32_t top = stack[th][depth[th] - 1];
                if ((t->nodes[top].flags & TP_NODE_GEN) && t->nodes[top].thread == th &&
                    nsusp[th] < 64 && rand() % 2) {
                    cr_assert_eq(tp_tree_yield(t, top, now), 0);
                    suspended[th][nsusp[th]++] = top;
                } else if (rand() % 4 == 0) {
                    cr_assert_eq(tp_tree_unwind(t, now, "E", 1, "m", 1), 0);
                } else {
                    cr_assert_eq(tp_tree_return(t, now, NULL, 0), 0);
                }
                depth[th]--;
            } else if (op <= 7 && nsusp[th] && depth[th] < 128) {
                size_t k = (size_t)rand() % nsusp[th];
                uint32_t g = suspended[th][k];
                suspended[th][k] = suspended[th][--nsusp[th]];
                cr_assert_eq(tp_tree_resume(t, g, now), 0);
                stack[th][depth[th]++] = g;
            }
        }
        cr_assert_eq(tp_tree_finish(t, now + 10), 0);
        int64_t self_sum[3] = {0, 0, 0};
        for (size_t i = 0; i < t->nnodes; i++) {
            const tp_node *n = &t->nodes[i];
            cr_assert_geq(n->self_ns, 0, "seed %u node %zu", seed, i);
            cr_assert_leq(n->self_ns, n->total_ns, "seed %u node %zu", seed, i);
            cr_assert_leq(n->total_ns, n->end_ns - n->start_ns, "seed %u node %zu", seed, i);
            self_sum[n->thread] += n->self_ns;
        }
        for (int k = 0; k < 3; k++)
            cr_assert_leq(self_sum[k], t->meta.duration_ns, "seed %u thread %d", seed, k);
        tp_tree_free(t);
    }
}

/* A SPAWN may carry the task's name (flag TEXT): the builder links the task
 * as without it and the text stream stays in step for the records after. */
Test(tree, feed_spawn_with_task_name_links_the_task_and_keeps_text_in_step)
{
    tp_tree *t = new_tree();
    batch b = {0};
    ev(&b, TP_EV_CALL, TP_EVF_GEN, 0, 0); /* 0: main */
    ev(&b, TP_EV_YIELD, 0, 0, 5);
    ev(&b, TP_EV_CALL, 0, 1, 10); /* 1: the loop's Handle._run */
    ev(&b, TP_EV_SPAWN, TP_EVF_TEXT, 0, 11);
    text(&b, "kid");
    ev(&b, TP_EV_CALL, TP_EVF_GEN | TP_EVF_TEXT, 2, 11); /* 2: the task */
    text(&b, "n=1");
    ev(&b, TP_EV_RETURN, TP_EVF_TEXT, 0, 12);
    text(&b, "11");
    ev(&b, TP_EV_RETURN, 0, 0, 13);
    ev(&b, TP_EV_RESUME, 0, 0, 14);
    ev(&b, TP_EV_RETURN, 0, 0, 15);
    cr_assert_eq(feed(t, &b), 0);
    cr_assert_eq(tp_tree_finish(t, 15), 0);
    cr_assert_eq(t->nnodes, 3);
    cr_assert_eq(t->nodes[2].parent, 0);
    cr_assert_eq(t->nodes[2].flags, TP_NODE_GEN | TP_NODE_SPAWNED);
    cr_assert_str_eq(t->nodes[2].args, "n=1");
    cr_assert_str_eq(t->nodes[2].ret, "11");
    tp_tree_free(t);
}

/* asyncio: main creates two tasks (SPAWN before each coroutine's first CALL,
 * naming main), and the loop's machinery, which resumes them, is not their
 * parent: they hang under main, marked spawned, with their own active time. */
Test(tree, spawned_task_hangs_under_its_creator)
{
    tp_tree *t = new_tree();
    cr_assert_eq(tp_tree_call(t, 0, 0, true, NULL, 0), 0); /* 0: main (a coroutine) */
    cr_assert_eq(tp_tree_yield(t, 0, 10), 0);              /* main awaits the tasks */
    CALL(t, 1, 20);                                        /* 1: the loop's Handle._run */
    cr_assert_eq(tp_tree_spawn(t, 0), 0);
    cr_assert_eq(tp_tree_call(t, 2, 21, true, NULL, 0), 0); /* 2: task A */
    cr_assert_eq(tp_tree_yield(t, 2, 25), 0);
    RET(t, 26);
    CALL(t, 1, 30); /* 3: Handle._run */
    cr_assert_eq(tp_tree_spawn(t, 0), 0);
    cr_assert_eq(tp_tree_call(t, 2, 31, true, NULL, 0), 0); /* 4: task B */
    RET(t, 33);
    RET(t, 34);
    CALL(t, 1, 40); /* 5: Handle._run */
    cr_assert_eq(tp_tree_resume(t, 2, 41), 0);
    RET(t, 44);
    RET(t, 45);
    cr_assert_eq(tp_tree_resume(t, 0, 50), 0);
    RET(t, 60);
    cr_assert_eq(tp_tree_spawn(t, 99), 0); /* names no call: ignored */
    CALL(t, 1, 61);
    RET(t, 62);
    cr_assert_eq(tp_tree_finish(t, 62), 0);

    const tp_node *n = t->nodes;
    cr_assert_eq(n[2].parent, 0);
    cr_assert_eq(n[4].parent, 0);
    cr_assert_eq(n[2].flags, TP_NODE_GEN | TP_NODE_SPAWNED);
    cr_assert_eq(n[4].flags, TP_NODE_GEN | TP_NODE_SPAWNED);
    cr_assert_eq(n[2].depth, 1);
    cr_assert_eq(n[0].first_child, 2);
    cr_assert_eq(n[2].next, 4);
    cr_assert_eq(n[4].next, TP_NONE);
    cr_assert_eq(n[1].first_child, TP_NONE); /* the loop's calls keep no task */
    cr_assert_eq(n[6].parent, TP_NONE);
    cr_assert_eq(n[6].flags, 0);
    /* Task A ran 21-25 and 41-44; main 0-10 and 50-60. */
    cr_assert_eq(n[2].total_ns, 7);
    cr_assert_eq(n[2].self_ns, 7);
    cr_assert_eq(n[0].total_ns, 20);
    cr_assert_eq(n[0].self_ns, 20);
    tp_tree_free(t);
}

/* ---- track_memory ---------------------------------------------------------- */

static void ev_mem(batch *b, int64_t delta, uint64_t ts)
{
    uint16_t rsv;
    uint32_t arg;
    tp_event_memory_split(delta, &rsv, &arg);
    ev(b, TP_EV_MEMORY, 0, arg, ts);
    uint8_t *r = b->rec + 1 + 16 * (b->n - 1);
    r[2] = (uint8_t)rsv;
    r[3] = (uint8_t)(rsv >> 8);
}

Test(tree, memory_delta_splits_into_48_bits_and_back)
{
    static const int64_t cases[] = {0,
                                    1,
                                    -1,
                                    1000000,
                                    -4096,
                                    (int64_t)1 << 31,
                                    -((int64_t)1 << 31) - 1,
                                    ((int64_t)1 << 33) + 5,
                                    TP_EVENT_MEMORY_MAX,
                                    TP_EVENT_MEMORY_MIN};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t rsv;
        uint32_t arg;
        tp_event_memory_split(cases[i], &rsv, &arg);
        cr_assert_eq(tp_event_memory_delta(rsv, arg), cases[i], "case %zu", i);
    }
    uint16_t rsv;
    uint32_t arg;
    tp_event_memory_split(TP_EVENT_MEMORY_MAX + 1, &rsv, &arg);
    cr_assert_eq(tp_event_memory_delta(rsv, arg), TP_EVENT_MEMORY_MAX);
    tp_event_memory_split(INT64_MIN, &rsv, &arg);
    cr_assert_eq(tp_event_memory_delta(rsv, arg), TP_EVENT_MEMORY_MIN);
    tp_event_memory_split(-1, &rsv, &arg);
    cr_assert_eq(rsv, 0xffff);
    cr_assert_eq(arg, 0xffffffffu);
}

/* A MEMORY record goes to the call that ended last on its thread; one
 * before any end is stray; calls without one stay unmeasured. */
Test(tree, feed_memory_marks_the_call_that_ended_last_on_its_thread)
{
    tp_tree *t = new_tree();
    batch b = {0};
    ev_mem(&b, 7, 1); /* nothing ended yet: ignored */
    ev(&b, TP_EV_CALL, 0, 0, 10);
    ev(&b, TP_EV_CALL, 0, 1, 20);
    ev(&b, TP_EV_RETURN, 0, 0, 30);
    ev_mem(&b, 1000000, 30);
    ev(&b, TP_EV_THREAD, 0, 3, 31);
    ev(&b, TP_EV_CALL, 0, 2, 32);
    ev(&b, TP_EV_UNWIND, TP_EVF_TEXT, 0, 33);
    text(&b, "E");
    text(&b, "");
    ev_mem(&b, -((int64_t)5 << 32) - 3, 33); /* beyond the 32 bits of arg */
    ev(&b, TP_EV_THREAD, 0, 0, 34);
    ev(&b, TP_EV_CALL, 0, 2, 35); /* ends without a MEMORY record */
    ev(&b, TP_EV_RETURN, 0, 0, 36);
    ev(&b, TP_EV_RETURN, 0, 0, 40);
    ev_mem(&b, 0, 40);
    cr_assert_eq(feed(t, &b), 0);
    cr_assert_eq(tp_tree_finish(t, 50), 0);
    cr_assert_eq(t->nnodes, 4);
    const tp_node *n = t->nodes;
    cr_assert_eq(n[0].flags, TP_NODE_MEM);
    cr_assert_eq(n[0].mem_delta, 0);
    cr_assert_eq(n[1].flags, TP_NODE_MEM);
    cr_assert_eq(n[1].mem_delta, 1000000);
    cr_assert_eq(n[2].flags, TP_NODE_EXC | TP_NODE_MEM);
    cr_assert_eq(n[2].mem_delta, -((int64_t)5 << 32) - 3);
    cr_assert_eq(n[3].flags, 0);
    cr_assert_eq(n[3].mem_delta, 0);
    cr_assert_eq(tp__tree_stray(t), 1);
    cr_assert_eq(n[0].end_ns, 40, "MEMORY's time moves nothing");
    tp_tree_free(t);
}
