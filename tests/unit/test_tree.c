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
#define RET(t, ts) cr_assert_eq(tp_tree_return((t), (ts), NULL, 0), 0)

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
    cr_assert_str_eq(tp_func_name(t, 2, buf, sizeof(buf)), "lib.g");
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
    cr_assert_eq(tp_tree_priv_stray(t), 4);
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
