/* Trees from event chunks and back: an event stream rebuilt into a tree,
 * turned back into events and rebuilt again gives the same nodes. */
#include <criterion/criterion.h>
#include <string.h>

#include "rebuild.h"
#include "tp_err.h"

static void text_entry(tp_buf *tx, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    tp_buf_append(tx, &n, 4);
    tp_buf_append(tx, s, n);
}

static void rec(tp_buf *r, uint8_t kind, uint8_t flags, uint32_t arg, uint64_t t)
{
    tp_event e = {kind, flags, 0, arg, t};
    tp_buf_append(r, &e, sizeof(e));
}

/* main(a=1) -> [f() -> 1, g() raises ValueError caught in main], then thread
 * 1: h() left open at the end. */
static tp_tree *sample(void)
{
    tp_tree *t;
    tp_buf r = TP_BUF_INIT, tx = TP_BUF_INIT;
    cr_assert_eq(tp_tree_new(&t), 0);
    tp_tree_def_func(t, 0, "app", "main", "app.py", 1);
    tp_tree_def_func(t, 1, "app", "f", "app.py", 5);
    tp_tree_def_func(t, 2, "app", "g", "app.py", 9);
    tp_tree_def_func(t, 3, "app", "h", "app.py", 12);
    rec(&r, TP_EV_CALL, TP_EVF_TEXT, 0, 100);
    text_entry(&tx, "a=1");
    rec(&r, TP_EV_CALL, 0, 1, 200);
    rec(&r, TP_EV_RETURN, TP_EVF_TEXT, 0, 300);
    text_entry(&tx, "1");
    rec(&r, TP_EV_CALL, 0, 2, 400);
    rec(&r, TP_EV_UNWIND, TP_EVF_TEXT, 0, 500);
    text_entry(&tx, "ValueError");
    text_entry(&tx, "bad");
    rec(&r, TP_EV_CAUGHT, TP_EVF_TEXT, 0, 550);
    text_entry(&tx, "ValueError");
    text_entry(&tx, "bad");
    rec(&r, TP_EV_RETURN, 0, 0, 600);
    rec(&r, TP_EV_THREAD, TP_EVF_TEXT, 1, 650);
    text_entry(&tx, "worker");
    rec(&r, TP_EV_CALL, 0, 3, 700);
    cr_assert_eq(tp_rebuild_feed(t, r.data, r.len / 16, tx.data, tx.len), 0);
    cr_assert_eq(tp_tree_finish(t, 1000), 0);
    tp_buf_free(&r);
    tp_buf_free(&tx);
    return t;
}

static void assert_same_node(const tp_node *a, const tp_node *b)
{
    cr_assert_eq(a->func, b->func);
    cr_assert_eq(a->parent, b->parent);
    cr_assert_eq(a->depth, b->depth);
    cr_assert_eq(a->thread, b->thread);
    cr_assert_eq(a->start_ns, b->start_ns);
    cr_assert_eq(a->end_ns, b->end_ns);
    cr_assert_eq(a->flags, b->flags, "flags %x vs %x", a->flags, b->flags);
    cr_assert_eq(!a->args, !b->args);
    if (a->args)
        cr_assert_str_eq(a->args, b->args);
    cr_assert_eq(!a->ret, !b->ret);
    if (a->ret)
        cr_assert_str_eq(a->ret, b->ret);
    cr_assert_eq(!a->exc_type, !b->exc_type);
    if (a->exc_type)
        cr_assert_str_eq(a->exc_type, b->exc_type);
}

Test(rebuild, events_of_a_tree_rebuild_the_same_tree)
{
    tp_tree *a = sample(), *b;
    tp_buf r = TP_BUF_INIT, tx = TP_BUF_INIT;
    cr_assert_eq(a->nnodes, 4);
    cr_assert(a->nodes[0].flags & TP_NODE_CAUGHT);
    cr_assert(a->nodes[2].flags & TP_NODE_EXC);
    cr_assert(a->nodes[3].flags & TP_NODE_OPEN);
    cr_assert_eq(a->nodes[3].thread, 1);
    cr_assert_eq(tp_rebuild_events(a, TP_NONE, &r, &tx), 0);
    cr_assert_eq(tp_tree_new(&b), 0);
    for (size_t i = 0; i < a->nfuncs; i++)
        tp_tree_def_func(b, (uint32_t)i, a->funcs[i].module, a->funcs[i].qualname, a->funcs[i].file,
                         a->funcs[i].lineno);
    cr_assert_eq(tp_rebuild_feed(b, r.data, r.len / 16, tx.data, tx.len), 0);
    cr_assert_eq(tp_tree_finish(b, 1000), 0);
    cr_assert_eq(b->nnodes, a->nnodes);
    for (size_t i = 0; i < a->nnodes; i++)
        assert_same_node(&a->nodes[i], &b->nodes[i]);
    tp_buf_free(&r);
    tp_buf_free(&tx);
    tp_tree_free(a);
    tp_tree_free(b);
}

Test(rebuild, a_subtree_becomes_its_own_tree)
{
    tp_tree *a = sample(), *s = NULL;
    tp_tree_set_label(a, "L");
    cr_assert_eq(tp_rebuild_subtree(a, 2, &s), 0);
    cr_assert_eq(s->nnodes, 1);
    cr_assert_eq(s->nodes[0].func, 2);
    cr_assert_eq(s->nodes[0].depth, 0);
    cr_assert_eq(s->nodes[0].total_ns, 100);
    cr_assert(s->nodes[0].flags & TP_NODE_EXC);
    cr_assert_str_eq(s->meta.label, "L");
    cr_assert_eq(s->meta.call_count, 1);
    cr_assert_eq(tp_rebuild_subtree(a, 9, &s), TP_ERR_NOT_FOUND);
    tp_tree_free(s);
    tp_tree_free(a);
}

Test(rebuild, feed_skips_events_out_of_sequence_and_stops_at_cut_text)
{
    tp_tree *t;
    tp_buf r = TP_BUF_INIT, tx = TP_BUF_INIT;
    cr_assert_eq(tp_tree_new(&t), 0);
    tp_tree_def_func(t, 0, "m", "f", "", 0);
    rec(&r, TP_EV_RESUME, 0, 99, 1); /* resumes nothing: skipped */
    rec(&r, TP_EV_CALL, 0, 0, 2);
    rec(&r, TP_EV_CALL, 0, 5, 3); /* an unknown function: skipped */
    rec(&r, TP_EV_RETURN, 0, 0, 4);
    cr_assert_eq(tp_rebuild_feed(t, r.data, 4, NULL, 0), 0);
    cr_assert_eq(t->nnodes, 1);
    rec(&r, TP_EV_CALL, TP_EVF_TEXT, 0, 5);
    cr_assert_eq(tp_rebuild_feed(t, r.data + 64, 1, "\x09\0\0\0ab", 6), TP_ERR_MALFORMED);
    tp_buf_free(&r);
    tp_buf_free(&tx);
    tp_tree_free(t);
}
