/* Statistics on the raw tree (and on a folded one: same counts). */
#include <criterion/criterion.h>
#include <string.h>

#include "tp_err.h"
#include "tree.h"

enum { F_MAIN, F_FACT, F_G, F_H };

static void call(tp_tree *t, uint32_t f, uint64_t ts)
{
    cr_assert_eq(tp_tree_call(t, f, ts, false, NULL, 0), 0);
}

static void ret(tp_tree *t, uint64_t ts)
{
    cr_assert_eq(tp_tree_return(t, ts, NULL, 0), 0);
}

/* main [0,1000]
 *   fact [100,400] > fact [150,350] > fact [200,300]   (recursion)
 *   g [500,520]  g [530,560] raises  g [600,610]
 *   h [700,900] > g [750,760]                            (module "other") */
static tp_tree *build(uint64_t finish_at)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, F_MAIN, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, F_FACT, "app", "fact", "app.py", 5), 0);
    cr_assert_eq(tp_tree_def_func(t, F_G, "lib", "g", "lib.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, F_H, "other", "h", "other.py", 1), 0);
    call(t, F_MAIN, 0);
    call(t, F_FACT, 100);
    call(t, F_FACT, 150);
    call(t, F_FACT, 200);
    ret(t, 300);
    ret(t, 350);
    ret(t, 400);
    call(t, F_G, 500);
    ret(t, 520);
    call(t, F_G, 530);
    cr_assert_eq(tp_tree_unwind(t, 560, "ValueError", 10, "x", 1), 0);
    call(t, F_G, 600);
    ret(t, 610);
    call(t, F_H, 700);
    call(t, F_G, 750);
    ret(t, 760);
    ret(t, 900);
    ret(t, 1000);
    cr_assert_eq(tp_tree_finish(t, finish_at), 0);
    return t;
}

static void check(const tp_tree *t, const tp_stats *s)
{
    cr_assert_eq(s->calls, 9);
    cr_assert_eq(s->modules, 3);
    cr_assert_eq(s->max_depth, 3);
    cr_assert_eq(s->unique_functions, 4);
    cr_assert_eq(s->exceptions, 1);
    cr_assert_eq(s->most_called, F_G);

    cr_assert_eq(s->nfuncs, 4);
    const tp_func_stats *f = s->funcs;
    cr_assert_eq(f[0].func, F_MAIN);
    cr_assert_eq(f[0].count, 1);
    cr_assert_eq(f[0].total_ns, 1000);
    cr_assert_eq(f[0].self_ns, 440);
    cr_assert_eq(f[1].func, F_FACT);
    cr_assert_eq(f[1].count, 3);
    cr_assert_eq(f[1].total_ns, 300); /* not 300+200+100 */
    cr_assert_eq(f[1].self_ns, 300);
    cr_assert_eq(f[1].min_ns, 100);
    cr_assert_eq(f[1].max_ns, 300);
    cr_assert_eq(f[1].nexc, 0);
    cr_assert_eq(f[2].func, F_H);
    cr_assert_eq(f[2].total_ns, 200);
    cr_assert_eq(f[2].self_ns, 190);
    cr_assert_eq(f[3].func, F_G);
    cr_assert_eq(f[3].count, 4);
    cr_assert_eq(f[3].total_ns, 70);
    cr_assert_eq(f[3].self_ns, 70);
    cr_assert_eq(f[3].min_ns, 10);
    cr_assert_eq(f[3].max_ns, 30);
    cr_assert_eq(f[3].nexc, 1);

    cr_assert_eq(s->nmods, 3);
    cr_assert_str_eq(s->mods[0].module, "app");
    cr_assert_eq(s->mods[0].calls, 4);
    cr_assert_eq(s->mods[0].functions, 2);
    cr_assert_eq(s->mods[0].self_ns, 740);
    cr_assert_str_eq(s->mods[1].module, "lib");
    cr_assert_eq(s->mods[1].calls, 4);
    cr_assert_eq(s->mods[1].functions, 1);
    cr_assert_eq(s->mods[1].self_ns, 70);
    cr_assert_str_eq(s->mods[2].module, "other");
    cr_assert_eq(s->mods[2].calls, 1);
    cr_assert_eq(s->mods[2].self_ns, 190);
    cr_assert_eq(t->nodes[s->slowest].func, F_MAIN);
}

Test(stats, raw_tree_exact_numbers)
{
    tp_tree *t = build(1200);
    tp_stats *s = NULL;
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    check(t, s);
    cr_assert_eq(s->slowest, 0);
    cr_assert_eq(s->duration_ns, 1200);
    tp_tree_stats_free(s);
    tp_tree_free(t);
}

Test(stats, folded_tree_gives_the_same_counts)
{
    tp_tree *t = build(1200);
    tp_tree *f = NULL;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    cr_assert_lt(f->nnodes, t->nnodes);
    tp_stats *s = NULL;
    cr_assert_eq(tp_tree_stats(f, &s), 0);
    check(f, s);
    tp_tree_stats_free(s);
    tp_tree_free(f);
    tp_tree_free(t);
}

Test(stats, duration_falls_back_to_roots_span)
{
    tp_tree *t = build(0);
    tp_stats *s = NULL;
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    cr_assert_eq(s->duration_ns, 1000);
    tp_tree_stats_free(s);
    tp_tree_free(t);
}

Test(stats, empty_tree_has_no_slowest)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    tp_stats *s = NULL;
    cr_assert_eq(tp_tree_stats(t, &s), TP_ERR_SEQUENCE);
    cr_assert_eq(tp_tree_finish(t, 0), 0);
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    cr_assert_eq(s->calls, 0);
    cr_assert_eq(s->nfuncs, 0);
    cr_assert_eq(s->nmods, 0);
    cr_assert_eq(s->slowest, TP_NONE);
    cr_assert_eq(s->most_called, TP_NONE);
    tp_tree_stats_free(s);
    tp_tree_free(t);
}

/* Ties in total time sort by "module.qualname"; modules with equal calls by name. */
Test(stats, ties_sort_by_name)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "b", "x", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "a.b", "y", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "a", "z", "", 0), 0);
    for (uint32_t f = 0; f < 3; f++) {
        call(t, f, f * 10);
        ret(t, f * 10 + 5);
    }
    cr_assert_eq(tp_tree_finish(t, 30), 0);
    tp_stats *s = NULL;
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    cr_assert_eq(s->funcs[0].func, 1); /* "a.b.y" < "a.z" < "b.x" */
    cr_assert_eq(s->funcs[1].func, 2);
    cr_assert_eq(s->funcs[2].func, 0);
    cr_assert_eq(s->most_called, 1);
    cr_assert_str_eq(s->mods[0].module, "a");
    cr_assert_str_eq(s->mods[1].module, "a.b");
    cr_assert_str_eq(s->mods[2].module, "b");
    tp_tree_stats_free(s);
    tp_tree_free(t);
}
