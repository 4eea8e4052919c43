/* Diffing two traces by call path. */
#include <criterion/criterion.h>
#include <string.h>

#include "tp_err.h"
#include "tree.h"

enum { F_MAIN, F_LOAD, F_OLD, F_WORK, F_HELPER, F_NEW, F_SUB, F_REC };

static tp_tree *new_tree(void)
{
    static const char *names[] = {"main", "load", "old", "work", "helper", "new", "sub", "rec"};
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    for (uint32_t i = 0; i < 8; i++)
        cr_assert_eq(tp_tree_def_func(t, i, "app", names[i], "app.py", (int32_t)i), 0);
    return t;
}

/* One call of f lasting dur, starting at *ts; *ts moves past it. */
static void leaf(tp_tree *t, uint32_t f, uint64_t *ts, uint64_t dur)
{
    cr_assert_eq(tp_tree_call(t, f, *ts, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, *ts + dur, NULL, 0), 0);
    *ts += dur + 1;
}

static void call(tp_tree *t, uint32_t f, uint64_t ts)
{
    cr_assert_eq(tp_tree_call(t, f, ts, false, NULL, 0), 0);
}

static void ret(tp_tree *t, uint64_t ts)
{
    cr_assert_eq(tp_tree_return(t, ts, NULL, 0), 0);
}

/* a: main > {load x2, old, work > helper}
 * b: main > {load x3, work (slower) > helper, new > sub} */
static void build_pair(tp_tree **ret_a, tp_tree **ret_b)
{
    tp_tree *a = new_tree();
    uint64_t ts = 1;
    call(a, F_MAIN, 0);
    leaf(a, F_LOAD, &ts, 100);
    leaf(a, F_LOAD, &ts, 100);
    leaf(a, F_OLD, &ts, 50);
    call(a, F_WORK, ts);
    ts += 10;
    leaf(a, F_HELPER, &ts, 200);
    ret(a, ts + 789); /* work: 1000 */
    ret(a, 10000);
    cr_assert_eq(tp_tree_finish(a, 10000), 0);

    tp_tree *b = new_tree();
    ts = 1;
    call(b, F_MAIN, 0);
    for (int i = 0; i < 3; i++)
        leaf(b, F_LOAD, &ts, 100);
    call(b, F_WORK, ts);
    uint64_t w0 = ts;
    ts += 10;
    leaf(b, F_HELPER, &ts, 200);
    ret(b, w0 + 1500);
    ts = w0 + 1501;
    call(b, F_NEW, ts);
    leaf(b, F_SUB, &ts, 10);
    ret(b, ts + 20);
    ret(b, 10500);
    cr_assert_eq(tp_tree_finish(b, 10600), 0);
    *ret_a = a;
    *ret_b = b;
}

static void check_entry(const tp_diff_entry *e, int kind, const char *path, const char *name,
                        uint64_t ca, uint64_t cb)
{
    cr_assert_eq(e->kind, kind);
    cr_assert_str_eq(e->path, path);
    cr_assert_str_eq(e->name, name);
    cr_assert_eq(e->count_a, ca);
    cr_assert_eq(e->count_b, cb);
}

Test(diff, exact_entries_with_low_thresholds)
{
    tp_tree *a, *b;
    build_pair(&a, &b);
    tp_diff_opts o = {.time_pct = 20, .time_abs_ns = 100};
    tp_diff *d = NULL;
    cr_assert_eq(tp_tree_diff(a, b, &o, &d), 0);
    cr_assert_eq(d->n, 4);
    check_entry(&d->entries[0], TP_DIFF_REMOVED, "app.main > app.old", "app.old", 1, 0);
    cr_assert_eq(d->entries[0].total_a_ns, 50);
    cr_assert_eq(d->entries[0].total_b_ns, 0);
    check_entry(&d->entries[1], TP_DIFF_ADDED, "app.main > app.new", "app.new", 0, 1);
    cr_assert_eq(d->entries[1].total_b_ns, 31);
    check_entry(&d->entries[2], TP_DIFF_COUNT, "app.main > app.load", "app.load", 2, 3);
    cr_assert_eq(d->entries[2].total_a_ns, 200);
    cr_assert_eq(d->entries[2].total_b_ns, 300);
    check_entry(&d->entries[3], TP_DIFF_TIME, "app.main > app.work", "app.work", 1, 1);
    cr_assert_eq(d->entries[3].total_a_ns, 1000);
    cr_assert_eq(d->entries[3].total_b_ns, 1500);

    cr_assert_eq(d->nfuncs_added, 2);
    cr_assert_str_eq(d->funcs_added[0], "app.new");
    cr_assert_str_eq(d->funcs_added[1], "app.sub");
    cr_assert_eq(d->nfuncs_removed, 1);
    cr_assert_str_eq(d->funcs_removed[0], "app.old");
    cr_assert_eq(d->calls_a, 6);
    cr_assert_eq(d->calls_b, 8);
    cr_assert_eq(d->duration_a_ns, 10000);
    cr_assert_eq(d->duration_b_ns, 10600);
    tp_tree_diff_free(d);
    tp_tree_free(a);
    tp_tree_free(b);
}

Test(diff, default_thresholds_hide_small_time_changes)
{
    tp_tree *a, *b;
    build_pair(&a, &b);
    tp_diff *d = NULL;
    cr_assert_eq(tp_tree_diff(a, b, NULL, &d), 0);
    cr_assert_eq(d->n, 3);
    cr_assert_eq(d->entries[2].kind, TP_DIFF_COUNT);
    tp_tree_diff_free(d);
    /* 20% of 1000 is 200: a 500 ns change passes the percent test only. */
    tp_diff_opts o = {.time_pct = 60, .time_abs_ns = 100};
    cr_assert_eq(tp_tree_diff(a, b, &o, &d), 0);
    cr_assert_eq(d->n, 3);
    tp_tree_diff_free(d);
    tp_tree_free(a);
    tp_tree_free(b);
}

Test(diff, identical_trees_have_no_entries)
{
    tp_tree *a, *b;
    build_pair(&a, &b);
    tp_diff *d = NULL;
    tp_diff_opts o = {.time_pct = 0, .time_abs_ns = 0};
    cr_assert_eq(tp_tree_diff(b, b, &o, &d), 0);
    cr_assert_eq(d->n, 0);
    cr_assert_eq(d->nfuncs_added, 0);
    cr_assert_eq(d->nfuncs_removed, 0);
    cr_assert_eq(d->calls_a, d->calls_b);
    tp_tree_diff_free(d);
    tp_tree_free(a);
    tp_tree_free(b);
}

/* a: main > rec > rec > ... (100k deep); b: main > rec. Only the topmost
 * missing path is reported, and nothing overflows. */
Test(diff, deep_removed_chain_reports_topmost_only)
{
    tp_tree *a = new_tree();
    const uint64_t depth = 100000;
    call(a, F_MAIN, 0);
    for (uint64_t i = 0; i < depth; i++)
        call(a, F_REC, i + 1);
    for (uint64_t i = 0; i <= depth; i++)
        ret(a, depth + 1 + i);
    cr_assert_eq(tp_tree_finish(a, 3 * depth), 0);
    tp_tree *b = new_tree();
    call(b, F_MAIN, 0);
    call(b, F_REC, 1);
    ret(b, 2);
    ret(b, 3);
    cr_assert_eq(tp_tree_finish(b, 3), 0);

    tp_diff *d = NULL;
    tp_diff_opts o = {.time_pct = 1e9, .time_abs_ns = INT64_MAX};
    cr_assert_eq(tp_tree_diff(a, b, &o, &d), 0);
    cr_assert_eq(d->n, 1);
    check_entry(&d->entries[0], TP_DIFF_REMOVED, "app.main > app.rec > app.rec", "app.rec", 1, 0);
    cr_assert_eq(d->nfuncs_removed, 0);
    tp_tree_diff_free(d);
    tp_tree_free(a);
    tp_tree_free(b);
}

Test(diff, unfinished_tree_is_refused)
{
    tp_tree *a = new_tree();
    tp_diff *d = NULL;
    cr_assert_eq(tp_tree_diff(a, a, NULL, &d), TP_ERR_SEQUENCE);
    cr_assert_null(d);
    tp_tree_free(a);
}
