/* Folded stacks (proto/render_folded.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_fixture.h"
#include "tree.h"

Test(render_folded, golden)
{
    tp_tree *t = fx_rich_tree();
    char *s = fx_text_of(tp_render_folded, t);
    fx_golden("render_folded.txt", s);
    free(s);
    tp_tree_free(t);
}

/* Equal stacks from different call sites merge; names that would break the
 * format are defused; lines under half a microsecond are left out. */
Test(render_folded, merges_and_sanitises)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "main", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "m", "a;b\nc", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "m", "a;b\nc", "other.py", 2), 0); /* prints alike */
    cr_assert_eq(tp_tree_def_func(t, 3, "m", "tiny", "", 0), 0);
    fx_call(t, 0, 0, NULL);
    fx_call(t, 1, 10, NULL);
    fx_ret(t, 20, NULL);
    fx_call(t, 2, 30, NULL);
    fx_ret(t, 45, NULL);
    cr_assert_eq(tp_tree_call(t, 3, 50 * US, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 50 * US + 400, NULL, 0), 0);
    fx_ret(t, 100, NULL);
    cr_assert_eq(tp_tree_finish(t, 100 * US), 0);
    char *s = fx_text_of(tp_render_folded, t);
    cr_assert_str_eq(s, "m.main 75\n"
                        "m.main;m.a:b?c 25\n");
    free(s);
    tp_tree_free(t);
}
