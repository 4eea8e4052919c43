/* The one stats/diff JSON writer shared by tph (files) and tphd (stored traces). */
#include <criterion/criterion.h>
#include <string.h>

#include "buf.h"
#include "render.h"
#include "tree.h"

#define MS 1000000ULL

/* main -> work (2 ms) -> work (1 ms, raised), 4 ms in all. */
static tp_tree *small_tree(int slow)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "work", "app.py", 5), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 1, 0, false, "n=1", 3), 0);
    cr_assert_eq(tp_tree_return(t, (slow ? 3 : 2) * MS, "1", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, (slow ? 3 : 2) * MS, false, "n=2", 3), 0);
    cr_assert_eq(tp_tree_unwind(t, (slow ? 4 : 3) * MS, "KeyError", 8, "'x'", 3), 0);
    cr_assert_eq(tp_tree_return(t, 4 * MS, "None", 4), 0);
    cr_assert_eq(tp_tree_finish(t, 4 * MS), 0);
    return t;
}

Test(render_json, stats_summary_exact)
{
    tp_tree *t = small_tree(0);
    tp_stats *s;
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_stats_json(t, s, false, &b), 0);
    const char *j = tp_buf_cstr(&b);
    cr_assert(strstr(j, "\"calls\":3") != NULL, "%s", j);
    cr_assert(strstr(j, "\"unique_functions\":2") != NULL, "%s", j);
    cr_assert(strstr(j, "\"max_depth\":1") != NULL, "%s", j);
    cr_assert(strstr(j, "\"exceptions\":1") != NULL, "%s", j);
    cr_assert(strstr(j, "\"duration_ms\":4") != NULL, "%s", j);
    cr_assert(strstr(j, "\"most_called\":{\"name\":\"work\",\"module\":\"app\",\"count\":2}") !=
                  NULL,
              "%s", j);
    cr_assert(strstr(j, "\"functions\"") == NULL, "summary only: %s", j);
    tp_buf_free(&b);

    cr_assert_eq(tp_render_stats_json(t, s, true, &b), 0);
    j = tp_buf_cstr(&b);
    cr_assert(strstr(j, "\"name\":\"work\",\"module\":\"app\",\"file\":") != NULL, "%s", j);
    cr_assert(strstr(j, "\"qualname\"") == NULL, "one key per fact: %s", j);
    cr_assert(strstr(j, "\"count\":2,\"total_ms\":3,\"self_ms\":3,\"min_ms\":1,\"max_ms\":2") !=
                  NULL,
              "%s", j);
    cr_assert(strstr(j, "\"by_module\":[{\"module\":\"app\",\"calls\":3,\"functions\":2") != NULL,
              "%s", j);
    tp_buf_free(&b);
    tp_tree_stats_free(s);
    tp_tree_free(t);
}

Test(render_json, diff_reports_time_change)
{
    tp_tree *a = small_tree(0), *b = small_tree(1);
    tp_diff *d;
    cr_assert_eq(tp_tree_diff(a, b, NULL, &d), 0);
    tp_buf out = TP_BUF_INIT;
    cr_assert_eq(tp_render_diff_json(d, &out), 0);
    const char *j = tp_buf_cstr(&out);
    cr_assert(strncmp(j, "{\"calls_a\":3,\"calls_b\":3,", 25) == 0, "%s", j);
    cr_assert(
        strstr(j, "{\"kind\":\"time\",\"path\":\"app.main > app.work\",\"function\":\"app.work\","
                  "\"count_a\":2,\"count_b\":2,\"total_a_ms\":3,\"total_b_ms\":4}") != NULL,
        "%s", j);
    cr_assert(strstr(j, "\"functions_added\":[],\"functions_removed\":[]") != NULL, "%s", j);
    tp_buf_free(&out);
    tp_tree_diff_free(d);
    tp_tree_free(a);
    tp_tree_free(b);
}
