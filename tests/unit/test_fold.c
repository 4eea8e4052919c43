/* Folding consecutive sibling calls. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tp_err.h"
#include "tree.h"
#include "tree_priv.h"

enum { F_MAIN, F_F, F_G, F_H };

static tp_tree *new_tree(void)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, F_MAIN, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, F_F, "app", "f", "app.py", 10), 0);
    cr_assert_eq(tp_tree_def_func(t, F_G, "lib", "g", "lib.py", 20), 0);
    cr_assert_eq(tp_tree_def_func(t, F_H, "lib", "h", "lib.py", 30), 0);
    return t;
}

static void call(tp_tree *t, uint32_t f, uint64_t ts, const char *args)
{
    cr_assert_eq(tp_tree_call(t, f, ts, false, args, args ? strlen(args) : 0), 0);
}

static void ret(tp_tree *t, uint64_t ts, const char *r)
{
    cr_assert_eq(tp_tree_return(t, ts, r, r ? strlen(r) : 0), 0);
}

static tp_tree *fold(const tp_tree *t, uint32_t threshold)
{
    tp_fold_opts o = {.threshold = threshold};
    tp_tree *f = NULL;
    cr_assert_eq(tp_tree_fold(t, threshold ? &o : NULL, &f), 0);
    cr_assert(f->folded);
    return f;
}

/* main calls f 500 times (f(i) -> g once each), then h once. */
Test(fold, loop_with_nested_children_folds_at_every_level)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    for (int i = 0; i < 500; i++) {
        char a[16];
        snprintf(a, sizeof(a), "i=%d", i);
        call(t, F_F, ts += 10, a);
        call(t, F_G, ts += 1, "x=1");
        ret(t, ts += 2 + (i % 5), "None");   /* g total: 2..6 */
        ret(t, ts += 1, i == 7 ? "1" : "0"); /* f total: g + 2 */
    }
    call(t, F_H, ts += 10, NULL);
    ret(t, ts += 4, NULL);
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts + 5), 0);
    cr_assert_eq(t->nnodes, 1002);

    tp_tree *f = fold(t, 0);
    cr_assert_eq(f->nnodes, 4);
    cr_assert_eq(f->meta.call_count, 1002);
    const tp_node *root = &f->nodes[f->first_root];
    cr_assert_eq(root->func, F_MAIN);
    cr_assert_eq(root->count, 1);
    cr_assert_eq(root->flags, 0);
    cr_assert_eq(root->total_ns, t->nodes[0].total_ns);

    const tp_node *nf = &f->nodes[root->first_child];
    cr_assert_eq(nf->func, F_F);
    cr_assert_eq(nf->count, 500);
    cr_assert_eq(nf->flags, TP_NODE_FOLDED | TP_NODE_ARGS_MIXED | TP_NODE_RET_MIXED);
    cr_assert_str_eq(nf->args, "i=0");
    cr_assert_str_eq(nf->ret, "0");
    cr_assert_eq(nf->min_ns, 4);
    cr_assert_eq(nf->max_ns, 8);
    /* g totals 2,3,4,5,6 repeated 100 times: 2000; f adds 2 each: 3000. */
    cr_assert_eq(nf->total_ns, 3000);
    cr_assert_eq(nf->self_ns, 1000);
    cr_assert_eq(nf->start_ns, t->nodes[1].start_ns);
    cr_assert_eq(nf->end_ns, t->nodes[999].end_ns);
    cr_assert_eq(nf->depth, 1);

    const tp_node *ng = &f->nodes[nf->first_child];
    cr_assert_eq(ng->func, F_G);
    cr_assert_eq(ng->count, 500);
    cr_assert_eq(ng->flags, TP_NODE_FOLDED);
    cr_assert_str_eq(ng->args, "x=1");
    cr_assert_eq(ng->total_ns, 2000);
    cr_assert_eq(ng->min_ns, 2);
    cr_assert_eq(ng->max_ns, 6);
    cr_assert_eq(ng->depth, 2);
    cr_assert_eq(ng->next, TP_NONE);
    cr_assert_eq(ng->first_child, TP_NONE);

    const tp_node *nh = &f->nodes[nf->next];
    cr_assert_eq(nh->func, F_H);
    cr_assert_eq(nh->count, 1);
    cr_assert_eq(nh->flags, 0);
    cr_assert_eq(nh->total_ns, 4);
    cr_assert_eq(nh->next, TP_NONE);
    cr_assert_eq(root->last_child, nf->next);

    tp_tree_free(f);
    tp_tree_free(t);
}

/* main: f f g f f f; threshold 3 folds only the last run. */
Test(fold, threshold_keeps_short_runs)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    const uint32_t seq[] = {F_F, F_F, F_G, F_F, F_F, F_F};
    for (size_t i = 0; i < 6; i++) {
        call(t, seq[i], ts += 10, NULL);
        ret(t, ts += 5, NULL);
    }
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);

    tp_tree *f3 = fold(t, 3);
    const tp_node *root = &f3->nodes[f3->first_root];
    uint32_t counts[8], funcs[8];
    size_t n = 0;
    for (uint32_t i = root->first_child; i != TP_NONE; i = f3->nodes[i].next, n++) {
        counts[n] = f3->nodes[i].count;
        funcs[n] = f3->nodes[i].func;
    }
    cr_assert_eq(n, 4);
    cr_assert_eq(counts[0], 1);
    cr_assert_eq(counts[1], 1);
    cr_assert_eq(counts[2], 1);
    cr_assert_eq(counts[3], 3);
    cr_assert_eq(funcs[2], F_G);
    cr_assert_eq(funcs[3], F_F);
    cr_assert_eq(f3->nodes[root->last_child].flags, TP_NODE_FOLDED);
    cr_assert_eq(f3->nodes[root->first_child].flags, 0);

    tp_tree *f2 = fold(t, 0);
    root = &f2->nodes[f2->first_root];
    n = 0;
    for (uint32_t i = root->first_child; i != TP_NONE; i = f2->nodes[i].next, n++)
        counts[n] = f2->nodes[i].count;
    cr_assert_eq(n, 3);
    cr_assert_eq(counts[0], 2);
    cr_assert_eq(counts[1], 1);
    cr_assert_eq(counts[2], 3);
    tp_tree_free(f2);
    tp_tree_free(f3);
    tp_tree_free(t);
}

/* Two calls of f, the second raising, the first catching: flags OR'ed, nexc 1. */
Test(fold, exceptions_are_counted_and_flags_merged)
{
    tp_tree *t = new_tree();
    call(t, F_F, 0, "a");
    cr_assert_eq(tp_tree_caught(t, 1, "KeyError", 8, "'k'", 3), 0);
    ret(t, 2, "1");
    call(t, F_F, 3, "a");
    cr_assert_eq(tp_tree_unwind(t, 5, "ValueError", 10, "bad", 3), 0);
    call(t, F_F, 6, "a");
    cr_assert_eq(tp_tree_finish(t, 10), 0);

    tp_tree *f = fold(t, 0);
    cr_assert_eq(f->nnodes, 1);
    const tp_node *n = &f->nodes[0];
    cr_assert_eq(n->count, 3);
    cr_assert_eq(n->nexc, 1);
    cr_assert_eq(n->flags,
                 TP_NODE_FOLDED | TP_NODE_EXC | TP_NODE_CAUGHT | TP_NODE_OPEN | TP_NODE_RET_MIXED);
    cr_assert_str_eq(n->args, "a");
    cr_assert_str_eq(n->ret, "1");
    cr_assert_str_eq(n->exc_type, "KeyError");
    cr_assert_eq(n->start_ns, 0);
    cr_assert_eq(n->end_ns, 10);
    cr_assert_eq(n->total_ns, 2 + 2 + 4);
    cr_assert_eq(n->min_ns, 2);
    cr_assert_eq(n->max_ns, 4);
    cr_assert_eq(f->first_root, 0);
    cr_assert_eq(f->last_root, 0);
    tp_tree_free(f);
    tp_tree_free(t);
}

Test(fold, unfinished_tree_is_refused)
{
    tp_tree *t = new_tree();
    tp_tree *f = NULL;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), TP_ERR_SEQUENCE);
    cr_assert_null(f);
    tp_tree_free(t);
}

Test(fold, empty_tree_folds_to_empty)
{
    tp_tree *t = new_tree();
    cr_assert_eq(tp_tree_set_label(t, "job"), 0);
    cr_assert_eq(tp_tree_finish(t, 7), 0);
    tp_tree *f = fold(t, 0);
    cr_assert_eq(f->nnodes, 0);
    cr_assert_eq(f->first_root, TP_NONE);
    cr_assert_str_eq(f->meta.label, "job");
    cr_assert_neq(f->meta.label, t->meta.label);
    cr_assert_eq(f->meta.duration_ns, 7);
    cr_assert_eq(f->nfuncs, 4);
    cr_assert_str_eq(f->funcs[F_G].qualname, "g");
    tp_tree_free(f);
    tp_tree_free(t);
}

/* 100k nested calls of alternating f/g: folding keeps every level. */
Test(fold, deep_nesting_does_not_overflow)
{
    tp_tree *t = new_tree();
    const int depth = 100000;
    for (int i = 0; i < depth; i++)
        call(t, i % 2 ? F_G : F_F, (uint64_t)i, NULL);
    for (int i = 0; i < depth; i++)
        ret(t, (uint64_t)(depth + i), NULL);
    cr_assert_eq(tp_tree_finish(t, 2 * depth), 0);
    tp_tree *f = fold(t, 0);
    cr_assert_eq(f->nnodes, (size_t)depth);
    cr_assert_eq(f->nodes[depth - 1].depth, (uint32_t)depth - 1);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* echo('line1'), echo('line2'), echo('line3') fold into one group that still
 * knows each call: its members are the raw nodes, in order. The second call
 * made a different call, so the group says its calls differ; a group whose
 * calls made the same calls does not. */
Test(fold, group_keeps_every_call_and_says_when_calls_differ)
{
    tp_tree *t = new_tree();
    call(t, F_MAIN, 0, NULL);
    call(t, F_F, 1, "s='line1'"); /* 1 */
    call(t, F_G, 2, NULL);        /* 2 */
    ret(t, 3, NULL);
    ret(t, 4, NULL);
    call(t, F_F, 5, "s='line2'"); /* 3 */
    call(t, F_H, 6, NULL);        /* 4: h, not g */
    ret(t, 7, NULL);
    ret(t, 8, NULL);
    call(t, F_F, 9, "s='line3'"); /* 5 */
    call(t, F_G, 10, NULL);       /* 6 */
    ret(t, 11, NULL);
    ret(t, 12, NULL);
    call(t, F_G, 13, NULL); /* 7, 8: two g's that made no calls */
    ret(t, 14, NULL);
    call(t, F_G, 15, NULL);
    ret(t, 16, NULL);
    ret(t, 20, NULL);
    cr_assert_eq(tp_tree_finish(t, 20), 0);
    tp_tree *f = fold(t, 0);
    cr_assert_eq(f->fold_src, t);
    const tp_node *n = f->nodes;
    uint32_t grp = n[0].first_child;
    cr_assert_eq(n[grp].count, 3);
    cr_assert_eq(n[grp].flags & (TP_NODE_FOLDED | TP_NODE_ARGS_MIXED | TP_NODE_SHAPE_MIXED),
                 TP_NODE_FOLDED | TP_NODE_ARGS_MIXED | TP_NODE_SHAPE_MIXED);
    tp_fold_group g = f->fold_groups[grp];
    cr_assert_eq(g.len, 3);
    cr_assert_eq(f->fold_members[g.off], 1);
    cr_assert_eq(f->fold_members[g.off + 1], 3);
    cr_assert_eq(f->fold_members[g.off + 2], 5);
    cr_assert_str_eq(t->nodes[f->fold_members[g.off + 1]].args, "s='line2'");
    uint32_t gg = n[grp].next;
    cr_assert_eq(n[gg].count, 2);
    cr_assert_eq(n[gg].flags & TP_NODE_SHAPE_MIXED, 0);
    cr_assert_eq(f->fold_groups[gg].len, 2);
    cr_assert_eq(f->fold_members[f->fold_groups[gg].off], 7);
    /* A node of one call is its own group. */
    cr_assert_eq(f->fold_groups[0].len, 1);
    cr_assert_eq(f->fold_members[f->fold_groups[0].off], 0);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* A group's memory delta is its measured calls' sum, and it is marked
 * measured when any of them was; an unmeasured group stays unmarked. */
Test(fold, memory_deltas_are_summed_and_marked)
{
    tp_tree *t = new_tree();
    call(t, F_MAIN, 0, NULL);
    call(t, F_F, 1, NULL);
    ret(t, 2, NULL);
    cr_assert_eq(tp_tree_memory(t, 1024), 0);
    call(t, F_F, 3, NULL);
    ret(t, 4, NULL); /* not measured */
    call(t, F_F, 5, NULL);
    ret(t, 6, NULL);
    cr_assert_eq(tp_tree_memory(t, -24), 0);
    call(t, F_G, 7, NULL);
    ret(t, 8, NULL);
    call(t, F_G, 9, NULL);
    ret(t, 10, NULL);
    call(t, F_H, 11, NULL);
    ret(t, 12, NULL);
    cr_assert_eq(tp_tree_memory(t, INT64_MAX), 0);
    call(t, F_H, 13, NULL);
    ret(t, 14, NULL);
    cr_assert_eq(tp_tree_memory(t, INT64_MAX), 0);
    ret(t, 20, NULL);
    cr_assert_eq(tp_tree_finish(t, 20), 0);
    tp_tree *f = fold(t, 2);
    const tp_node *n = f->nodes;
    uint32_t gf = n[f->first_root].first_child, gg = n[gf].next, gh = n[gg].next;
    cr_assert_eq(n[gf].count, 3);
    cr_assert(n[gf].flags & TP_NODE_MEM);
    cr_assert_eq(n[gf].mem_delta, 1000);
    cr_assert_eq(n[gg].count, 2);
    cr_assert_not(n[gg].flags & TP_NODE_MEM);
    cr_assert_eq(n[gg].mem_delta, 0);
    cr_assert_eq(n[gh].mem_delta, INT64_MAX, "the sum saturates");
    cr_assert_not(n[f->first_root].flags & TP_NODE_MEM);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* ---- Repeated sequences ---------------------------------------------------- */

/* Calls funcs[0..n) in order under the current call, each lasting dur[k]. */
static void calls(tp_tree *t, uint64_t *ts, const uint32_t *funcs, size_t n, const uint64_t *dur)
{
    for (size_t k = 0; k < n; k++) {
        call(t, funcs[k], *ts += 1, NULL);
        ret(t, *ts += dur ? dur[k] : 1, NULL);
    }
}

/* The folded children of the first root as "func:count:seq" words. */
static void check_kids(const tp_tree *f, const char *want)
{
    char got[512] = "";
    size_t len = 0;
    for (uint32_t i = f->nodes[f->first_root].first_child; i != TP_NONE; i = f->nodes[i].next)
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%u:%u:%u", len ? " " : "",
                                f->nodes[i].func, f->nodes[i].count, f->nodes[i].seq);
    cr_assert_str_eq(got, want);
}

/* main: (f, g) four times, then h: [f, g] x4 is two groups, f's first. */
Test(fold, sequence_of_two_folds_into_one_group_per_position)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    for (int i = 0; i < 4; i++) {
        uint32_t seq[] = {F_F, F_G};
        uint64_t dur[] = {2 + (uint64_t)i, 10};
        calls(t, &ts, seq, 2, dur);
    }
    calls(t, &ts, (uint32_t[]){F_H}, 1, NULL);
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    tp_tree *f = fold(t, 0);
    check_kids(f, "1:4:2 2:4:0 3:1:0");
    const tp_node *nf = &f->nodes[f->nodes[f->first_root].first_child];
    const tp_node *ng = &f->nodes[nf->next];
    cr_assert_eq(nf->flags, TP_NODE_FOLDED | TP_NODE_SEQ);
    cr_assert_eq(ng->flags, TP_NODE_FOLDED | TP_NODE_SEQ);
    cr_assert_eq(f->nodes[ng->next].flags, 0);
    cr_assert_eq(nf->total_ns, 2 + 3 + 4 + 5);
    cr_assert_eq(nf->min_ns, 2);
    cr_assert_eq(nf->max_ns, 5);
    cr_assert_eq(ng->total_ns, 40);
    /* Each group keeps its position's calls, in order: raw nodes 1,3,5,7
     * (f) and 2,4,6,8 (g). */
    uint32_t fi = f->nodes[f->first_root].first_child, gi = nf->next;
    const tp_fold_group gf = f->fold_groups[fi], gg = f->fold_groups[gi];
    cr_assert_eq(gf.len, 4);
    cr_assert_eq(gg.len, 4);
    for (uint32_t k = 0; k < 4; k++) {
        cr_assert_eq(f->fold_members[gf.off + k], 1 + 2 * k);
        cr_assert_eq(f->fold_members[gg.off + k], 2 + 2 * k);
    }
    tp_tree_free(f);
    tp_tree_free(t);
}

/* Both sides of the threshold: 2 repetitions fold at 2, not at 3. */
Test(fold, sequence_needs_threshold_repetitions)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    calls(t, &ts, (uint32_t[]){F_F, F_G, F_F, F_G}, 4, NULL);
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    tp_tree *f = fold(t, 2);
    check_kids(f, "1:2:2 2:2:0");
    tp_tree_free(f);
    f = fold(t, 3);
    check_kids(f, "1:1:0 2:1:0 1:1:0 2:1:0");
    cr_assert_eq(f->nnodes, 5);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* A run of one function folds as it always did (a sequence [f, f] covers
 * no more); a sequence that covers more calls than a run wins. */
Test(fold, run_of_one_function_wins_ties_and_longer_cover_wins)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    calls(t, &ts, (uint32_t[]){F_F, F_F, F_F, F_F}, 4, NULL);
    calls(t, &ts, (uint32_t[]){F_G, F_G, F_H, F_G, F_G, F_H, F_G}, 7, NULL);
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    tp_tree *f = fold(t, 0);
    /* f x4 (not [f, f] x2), then [g, g, h] x2 (three groups, not g x2
     * first), then g. */
    check_kids(f, "1:4:0 2:2:3 2:2:0 3:2:0 2:1:0");
    tp_tree_free(f);
    tp_tree_free(t);
}

/* Eight functions repeated fold; nine do not (TP_FOLD_SEQ_MAX). */
Test(fold, sequence_of_eight_folds_and_of_nine_does_not)
{
    for (uint32_t len = 8; len <= 9; len++) {
        tp_tree *t = new_tree();
        for (uint32_t k = 0; k < 9; k++) {
            char q[8];
            snprintf(q, sizeof(q), "s%u", k);
            cr_assert_eq(tp_tree_def_func(t, 10 + k, "m", q, "m.py", 1), 0);
        }
        uint64_t ts = 0;
        call(t, F_MAIN, ts, NULL);
        for (int rep = 0; rep < 3; rep++)
            for (uint32_t k = 0; k < len; k++)
                calls(t, &ts, (uint32_t[]){10 + k}, 1, NULL);
        ret(t, ts += 1, NULL);
        cr_assert_eq(tp_tree_finish(t, ts), 0);
        tp_tree *f = fold(t, 0);
        const tp_node *first = &f->nodes[f->nodes[f->first_root].first_child];
        if (len == 8) {
            cr_assert_eq(f->nnodes, 1 + 8);
            cr_assert_eq(first->seq, 8);
            cr_assert_eq(first->count, 3);
        } else {
            cr_assert_eq(f->nnodes, 1 + 27);
            cr_assert_eq(first->seq, 0);
            cr_assert_eq(first->count, 1);
        }
        tp_tree_free(f);
        tp_tree_free(t);
    }
}

/* Repetitions whose calls made different calls say so; the children of a
 * position are all its calls' children, folded in turn. */
Test(fold, sequence_repetitions_that_differ_are_marked)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    for (int i = 0; i < 3; i++) {
        call(t, F_F, ts += 1, NULL);
        if (i == 1)
            calls(t, &ts, (uint32_t[]){F_H}, 1, NULL);
        ret(t, ts += 1, NULL);
        calls(t, &ts, (uint32_t[]){F_G}, 1, NULL);
    }
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    tp_tree *f = fold(t, 0);
    check_kids(f, "1:3:2 2:3:0");
    const tp_node *nf = &f->nodes[f->nodes[f->first_root].first_child];
    cr_assert_eq(nf->flags, TP_NODE_FOLDED | TP_NODE_SEQ | TP_NODE_SHAPE_MIXED);
    cr_assert_eq(f->nodes[nf->next].flags, TP_NODE_FOLDED | TP_NODE_SEQ);
    cr_assert_neq(nf->first_child, TP_NONE);
    cr_assert_eq(f->nodes[nf->first_child].func, F_H);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* 100k siblings: (f, g, h) 33333 times then f, and, at threshold 1000,
 * blocks of 999 (f, g) pairs and an h that never reach it. Exact results;
 * the scan is linear (a quadratic one would take minutes here). */
Test(fold, hundred_thousand_siblings_fold_exactly)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    for (int i = 0; i < 33333; i++)
        calls(t, &ts, (uint32_t[]){F_F, F_G, F_H}, 3, NULL);
    calls(t, &ts, (uint32_t[]){F_F}, 1, NULL);
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    cr_assert_eq(t->nnodes, 100001);
    tp_tree *f = fold(t, 0);
    check_kids(f, "1:33333:3 2:33333:0 3:33333:0 1:1:0");
    tp_tree_free(f);
    tp_tree_free(t);

    t = new_tree();
    ts = 0;
    call(t, F_MAIN, ts, NULL);
    for (int b = 0; b < 50; b++) {
        for (int i = 0; i < 999; i++)
            calls(t, &ts, (uint32_t[]){F_F, F_G}, 2, NULL);
        calls(t, &ts, (uint32_t[]){F_H}, 1, NULL);
    }
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    cr_assert_eq(t->nnodes, 1 + 50 * 1999);
    f = fold(t, 1000);
    cr_assert_eq(f->nnodes, t->nnodes);
    for (size_t i = 0; i < f->nnodes; i++)
        cr_assert_eq(f->nodes[i].count, 1);
    tp_tree_free(f);
    f = fold(t, 999);
    size_t n = 0;
    for (uint32_t i = f->nodes[f->first_root].first_child; i != TP_NONE; i = f->nodes[i].next)
        n++;
    cr_assert_eq(n, 150); /* [f, g] x999 and h, 50 times */
    cr_assert_eq(f->nodes[f->nodes[f->first_root].first_child].seq, 2);
    cr_assert_eq(f->nodes[f->nodes[f->first_root].first_child].count, 999);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* The groups of a sequence are calls like any folded node: statistics of
 * the folded tree count each call once, as the raw tree's do. */
Test(fold, statistics_of_a_folded_sequence_count_each_call_once)
{
    tp_tree *t = new_tree();
    uint64_t ts = 0;
    call(t, F_MAIN, ts, NULL);
    for (int i = 0; i < 5; i++)
        calls(t, &ts, (uint32_t[]){F_F, F_G, F_H}, 3, (uint64_t[]){1, 2, 3});
    ret(t, ts += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    tp_tree *f = fold(t, 0);
    check_kids(f, "1:5:3 2:5:0 3:5:0");
    tp_stats *a = NULL, *b = NULL;
    cr_assert_eq(tp_tree_stats(t, &a), 0);
    cr_assert_eq(tp_tree_stats(f, &b), 0);
    cr_assert_eq(a->calls, 16);
    cr_assert_eq(b->calls, 16);
    cr_assert_eq(b->max_depth, 1);
    cr_assert_eq(b->nfuncs, a->nfuncs);
    for (size_t k = 0; k < a->nfuncs; k++) {
        cr_assert_eq(b->funcs[k].func, a->funcs[k].func);
        cr_assert_eq(b->funcs[k].count, a->funcs[k].count);
        cr_assert_eq(b->funcs[k].total_ns, a->funcs[k].total_ns);
        cr_assert_eq(b->funcs[k].self_ns, a->funcs[k].self_ns);
    }
    tp_tree_stats_free(a);
    tp_tree_stats_free(b);
    tp_tree_free(f);
    tp_tree_free(t);
}
