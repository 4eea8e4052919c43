/* The report UI's whole-trace summaries (render_web_agg.c): the function
 * table of a time range, timeline buckets, merged and sandwich flame
 * graphs. Answers are parsed back with jansson. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "render_web.h"
#include "tree.h"

/* main(0..10000) -> [f(1000..3000) -> g(1500..2000), f(4000..5000),
 * f(6000..7500), Cls.h(8000..9000) raises], then a second root k(11000..12000). */
static tp_tree *sample(void)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "f", "app.py", 10), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "lib", "g", "lib.py", 20), 0);
    cr_assert_eq(tp_tree_def_func(t, 3, "lib", "Cls.h", "lib.py", 30), 0);
    cr_assert_eq(tp_tree_def_func(t, 4, "", "k", "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, "a", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, 1000, false, "x=0", 3), 0);
    cr_assert_eq(tp_tree_call(t, 2, 1500, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 2000, "None", 4), 0);
    cr_assert_eq(tp_tree_return(t, 3000, "0", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, 4000, false, "x=1", 3), 0);
    cr_assert_eq(tp_tree_return(t, 5000, "1", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, 6000, false, "x=2", 3), 0);
    cr_assert_eq(tp_tree_return(t, 7500, "2", 1), 0);
    cr_assert_eq(tp_tree_call(t, 3, 8000, false, "", 0), 0);
    cr_assert_eq(tp_tree_unwind(t, 9000, "ValueError", 10, "bad", 3), 0);
    cr_assert_eq(tp_tree_return(t, 10000, NULL, 0), 0);
    cr_assert_eq(tp_tree_call(t, 4, 11000, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 12000, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 12000), 0);
    return t;
}

/* The answer with its numbers as written, compact, for exact comparison. */
static char *answer(tp_buf *b)
{
    json_error_t err;
    json_t *j = json_loadb(b->data, b->len, JSON_DECODE_ANY, &err);
    cr_assert_not_null(j, "invalid JSON (%s) in: %s", err.text, tp_buf_cstr(b));
    json_decref(j);
    return strndup(b->data, b->len);
}

Test(render_web_agg, profile_counts_calls_that_started_in_the_range)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_profile(t, 4000, 12000, &b), 0);
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, 0, &err);
    cr_assert_not_null(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "calls")), 4);
    json_t *fns = json_object_get(j, "functions");
    cr_assert_eq(json_array_size(fns), 3);
    const char *names[] = {"f", "Cls.h", "k"};
    const int counts[] = {2, 1, 1};
    const double totals[] = {0.0025, 0.001, 0.001};
    for (int i = 0; i < 3; i++) {
        json_t *f = json_array_get(fns, i);
        cr_assert_str_eq(json_string_value(json_object_get(f, "name")), names[i]);
        cr_assert_eq(json_integer_value(json_object_get(f, "count")), counts[i]);
        cr_assert_float_eq(json_number_value(json_object_get(f, "total_ms")), totals[i], 1e-12);
    }
    json_t *f = json_array_get(fns, 0);
    cr_assert_float_eq(json_number_value(json_object_get(f, "min_ms")), 0.001, 1e-12);
    cr_assert_float_eq(json_number_value(json_object_get(f, "max_ms")), 0.0015, 1e-12);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(fns, 1), "exceptions")), 1);
    json_decref(j);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web_agg, profile_range_end_is_exclusive_and_an_inverted_range_fails)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_profile(t, 0, 4000, &b), 0);
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, 0, &err);
    /* main, f(x=0), g: f(x=1) starts at 4000, in the next range. */
    cr_assert_eq(json_integer_value(json_object_get(j, "calls")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(j, "functions"), 0), "name")),
                     "main");
    json_decref(j);
    cr_assert_eq(tp_render_web_profile(t, 5, 4, &b), -EINVAL);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web_agg, timeline_buckets_sum_busy_time_per_row)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_timeline(t, 0, 12000, 4, &b), 0);
    char *s = answer(&b);
    /* Row 0: main covers 0..10000, k 11000..12000 (bucket 3 holds 1000 ns
     * of each; main, first, names it). Row 1: the f calls and Cls.h
     * (bucket 2: f 1500 ns, h 1000 ns, so f names it). Row 2: g. */
    cr_assert_str_eq(s, "{\"t0_ms\":0,\"t1_ms\":0.012,\"bucket_ms\":0.003,\"buckets\":4,"
                        "\"lanes\":[{\"name\":\"thread 0\",\"thread\":0,\"rows\":["
                        "[[0,0.003,0,1],[1,0.003,0,0],[2,0.003,0,0],[3,0.002,0,1]],"
                        "[[0,0.002,1,1],[1,0.001,1,1],[2,0.0025,1,2]],"
                        "[[0,0.0005,2,1]]]}],"
                        "\"funcs\":[\"app.main\",\"app.f\",\"lib.g\",\"lib.Cls.h\",\"k\"]}");
    free(s);
    cr_assert_eq(tp_render_web_timeline(t, 0, 12000, 0, &b), -EINVAL);
    cr_assert_eq(tp_render_web_timeline(t, 0, 12000, TP_WEB_MAX_BUCKETS + 1, &b), -EINVAL);
    cr_assert_eq(tp_render_web_timeline(t, 5, 5, 4, &b), -EINVAL);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web_agg, timeline_of_a_window_counts_only_what_lies_in_it)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_timeline(t, 4000, 6000, 2, &b), 0);
    char *s = answer(&b);
    /* main runs through both buckets but started before them; f(x=1)
     * ends where bucket 1 begins, so it is not in it. */
    cr_assert_str_eq(s, "{\"t0_ms\":0.004,\"t1_ms\":0.006,\"bucket_ms\":0.001,\"buckets\":2,"
                        "\"lanes\":[{\"name\":\"thread 0\",\"thread\":0,\"rows\":["
                        "[[0,0.001,0,0],[1,0.001,0,0]],[[0,0.001,1,1]]]}],"
                        "\"funcs\":[\"app.main\",\"app.f\",\"lib.g\",\"lib.Cls.h\",\"k\"]}");
    free(s);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web_agg, merged_flame_merges_identical_stacks_heaviest_first)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_flame(t, NULL, 0, 0, &b), 0);
    char *s = answer(&b);
    cr_assert_str_eq(
        s, "{\"mode\":\"merged\",\"count\":2,\"total_ms\":0.011,\"self_ms\":0.0055,\"nodes\":["
           "{\"function\":\"app.main\",\"module\":\"app\",\"count\":1,\"total_ms\":0.01,\"self_"
           "ms\":0.0045,\"kids\":["
           "{\"function\":\"app.f\",\"module\":\"app\",\"count\":3,\"total_ms\":0.0045,\"self_ms\":"
           "0.004,\"kids\":["
           "{\"function\":\"lib.g\",\"module\":\"lib\",\"count\":1,\"total_ms\":0.0005,\"self_ms\":"
           "0.0005}]},"
           "{\"function\":\"lib.Cls.h\",\"module\":\"lib\",\"count\":1,\"total_ms\":0.001,\"self_"
           "ms\":0.001}]},"
           "{\"function\":\"k\",\"module\":\"\",\"count\":1,\"total_ms\":0.001,\"self_ms\":0.001}],"
           "\"cut\":false}");
    free(s);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web_agg, merged_flame_leaves_out_small_groups_and_stops_at_the_budget)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_flame(t, NULL, 1500, 0, &b), 0);
    char *s = answer(&b);
    cr_assert_str_eq(
        s, "{\"mode\":\"merged\",\"count\":2,\"total_ms\":0.011,\"self_ms\":0.0055,\"nodes\":["
           "{\"function\":\"app.main\",\"module\":\"app\",\"count\":1,\"total_ms\":0.01,\"self_"
           "ms\":0.0045,\"kids\":["
           "{\"function\":\"app.f\",\"module\":\"app\",\"count\":3,\"total_ms\":0.0045,\"self_ms\":"
           "0.004,\"kids\":[]}]}],"
           "\"cut\":false}");
    free(s);
    tp_buf_free(&b);
    cr_assert_eq(tp_render_web_flame(t, NULL, 0, 2, &b), 0);
    s = answer(&b);
    cr_assert(strstr(s, "\"cut\":true"), "%s", s);
    cr_assert_null(strstr(s, "lib.Cls.h"), "%s", s);
    free(s);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web_agg, sandwich_merges_callers_upwards_and_callees_downwards)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_flame(t, "app.f", 0, 0, &b), 0);
    char *s = answer(&b);
    cr_assert_str_eq(
        s,
        "{\"mode\":\"sandwich\",\"fn\":\"app.f\",\"count\":3,\"total_ms\":0.0045,\"self_ms\":0.004,"
        "\"callees\":[{\"function\":\"lib.g\",\"module\":\"lib\",\"count\":1,\"total_ms\":0.0005,"
        "\"self_ms\":0.0005}],"
        "\"callers\":[{\"function\":\"app.main\",\"module\":\"app\",\"count\":3,\"total_ms\":0."
        "0045,\"self_ms\":0.004}"
        "],"
        "\"cut\":false}");
    free(s);
    tp_buf_free(&b);
    cr_assert_eq(tp_render_web_flame(t, "nope", 0, 0, &b), 0);
    s = answer(&b);
    cr_assert_str_eq(
        s, "{\"mode\":\"sandwich\",\"fn\":\"nope\",\"count\":0,\"total_ms\":0,\"self_ms\":0,"
           "\"callees\":[],\"callers\":[],\"cut\":false}");
    free(s);
    tp_buf_free(&b);
    tp_tree_free(t);
}

/* A chain of depth n of a() calls, each with one leaf call of b(). */
static tp_tree *comb(uint32_t n)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "", "a", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "", "b", "", 0), 0);
    uint64_t ts = 0;
    for (uint32_t k = 0; k < n; k++) {
        cr_assert_eq(tp_tree_call(t, 0, ts++, false, NULL, 0), 0);
        cr_assert_eq(tp_tree_call(t, 1, ts++, false, NULL, 0), 0);
        cr_assert_eq(tp_tree_return(t, ts++, NULL, 0), 0);
    }
    for (uint32_t k = 0; k < n; k++)
        cr_assert_eq(tp_tree_return(t, ts++, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, ts), 0);
    return t;
}

/* Every b() has an ancestor chain as deep as the trace: looking up each
 * call's ancestors for an outer b() cost n^2 / 2 steps (2*10^10 at the larger
 * size, minutes); one pass over the tree costs n. */
Test(render_web_agg, sandwich_of_a_deep_comb_is_linear_in_calls)
{
    static const uint32_t sizes[] = {25000, 200000};
    for (size_t k = 0; k < 2; k++) {
        tp_tree *t = comb(sizes[k]);
        tp_buf b = TP_BUF_INIT;
        cr_assert_eq(tp_render_web_flame(t, "b", 0, 1, &b), 0);
        json_error_t err;
        json_t *j = json_loadb(b.data, b.len, 0, &err);
        cr_assert_not_null(j, "%s", err.text);
        cr_assert_eq(json_integer_value(json_object_get(j, "count")), sizes[k]);
        json_t *callers = json_object_get(j, "callers");
        cr_assert_eq(json_array_size(callers), 1);
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(callers, 0), "count")),
                     sizes[k]);
        cr_assert_eq(json_array_size(json_object_get(j, "callees")), 0);
        cr_assert(json_is_true(json_object_get(j, "cut")));
        json_decref(j);
        tp_buf_free(&b);
        tp_tree_free(t);
    }
}

/* One call on each of n threads: every root opens a lane. Finding a
 * thread's lane by scanning the lanes cost n^2 / 2 lane reads (10^10, 500 bytes
 * apart, at the larger size); a map of thread to lane costs n. */
Test(render_web_agg, timeline_of_many_threads_is_linear_in_threads)
{
    static const uint32_t sizes[] = {20000, 160000};
    for (size_t k = 0; k < 2; k++) {
        uint32_t n = sizes[k];
        tp_tree *t = NULL;
        cr_assert_eq(tp_tree_new(&t), 0);
        cr_assert_eq(tp_tree_def_func(t, 0, "", "f", "", 0), 0);
        for (uint32_t th = 1; th <= n; th++) {
            cr_assert_eq(tp_tree_thread(t, th), 0);
            cr_assert_eq(tp_tree_call(t, 0, 2 * th, false, NULL, 0), 0);
            cr_assert_eq(tp_tree_return(t, 2 * th + 1, NULL, 0), 0);
        }
        /* And a second call on the first thread, which reuses its lane. */
        cr_assert_eq(tp_tree_thread(t, 1), 0);
        cr_assert_eq(tp_tree_call(t, 0, 2 * n + 2, false, NULL, 0), 0);
        cr_assert_eq(tp_tree_return(t, 2 * n + 3, NULL, 0), 0);
        cr_assert_eq(tp_tree_finish(t, 2 * n + 4), 0);
        tp_buf b = TP_BUF_INIT;
        cr_assert_eq(tp_render_web_timeline(t, 0, 2 * n + 4, 1, &b), 0);
        json_error_t err;
        json_t *j = json_loadb(b.data, b.len, 0, &err);
        cr_assert_not_null(j, "%s", err.text);
        json_t *lanes = json_object_get(j, "lanes");
        cr_assert_eq(json_array_size(lanes), n);
        for (uint32_t i = 0; i < n; i++) {
            json_t *l = json_array_get(lanes, i);
            cr_assert_eq(json_integer_value(json_object_get(l, "thread")), i + 1);
            json_t *cell = json_array_get(json_array_get(json_object_get(l, "rows"), 0), 0);
            cr_assert_eq(json_integer_value(json_array_get(cell, 3)), i == 0 ? 2 : 1);
        }
        json_decref(j);
        tp_buf_free(&b);
        tp_tree_free(t);
    }
}

/* The first 63 asyncio tasks get a lane each; the rest share one. */
Test(render_web_agg, timeline_gives_63_tasks_a_lane_each_and_the_rest_one)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "", "main", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "", "job", "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, NULL, 0), 0);
    for (uint32_t k = 0; k < 70; k++) {
        cr_assert_eq(tp_tree_spawn(t, 0), 0);
        cr_assert_eq(tp_tree_call(t, 1, 1 + 2 * k, true, NULL, 0), 0);
        cr_assert_eq(tp_tree_return(t, 2 + 2 * k, NULL, 0), 0);
    }
    cr_assert_eq(tp_tree_return(t, 200, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 200), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_timeline(t, 0, 200, 1, &b), 0);
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, 0, &err);
    cr_assert_not_null(j, "%s", err.text);
    json_t *lanes = json_object_get(j, "lanes");
    cr_assert_eq(json_array_size(lanes), 65);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(lanes, 0), "name")),
                     "thread 0");
    for (size_t i = 1; i < 64; i++)
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(lanes, i), "name")),
                         "task job");
    json_t *more = json_array_get(lanes, 64);
    cr_assert_str_eq(json_string_value(json_object_get(more, "name")), "tasks (more)");
    json_t *cell = json_array_get(json_array_get(json_object_get(more, "rows"), 0), 0);
    cr_assert_eq(json_integer_value(json_array_get(cell, 3)), 7);
    json_decref(j);
    tp_buf_free(&b);
    tp_tree_free(t);
}
