/* The report UI's JSON (subtrees, search, stats, diff) and the
 * self-contained HTML report. Answers are parsed back with jansson. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_web.h"
#include "tp_err.h"
#include "tree.h"

/* main(a) -> [f(x=0) -> g, f(x=1), f(x=2)], h()  (h raises), then a second root k. */
static tp_tree *sample(void)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "f", "app.py", 10), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "lib", "g", "lib.py", 20), 0);
    cr_assert_eq(tp_tree_def_func(t, 3, "lib", "Cls.h", "lib.py", 30), 0);
    cr_assert_eq(tp_tree_def_func(t, 4, "", "k", "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, "a", 1), 0);      /* node 0 */
    cr_assert_eq(tp_tree_call(t, 1, 1000, false, "x=0", 3), 0); /* node 1 */
    cr_assert_eq(tp_tree_call(t, 2, 1500, false, NULL, 0), 0);  /* node 2 */
    cr_assert_eq(tp_tree_return(t, 2000, "None", 4), 0);
    cr_assert_eq(tp_tree_return(t, 3000, "'<b>'", 5), 0);
    cr_assert_eq(tp_tree_call(t, 1, 4000, false, "x=1", 3), 0); /* node 3 */
    cr_assert_eq(tp_tree_return(t, 5000, "1", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, 6000, false, "x=2", 3), 0); /* node 4 */
    cr_assert_eq(tp_tree_return(t, 7500, "2", 1), 0);
    cr_assert_eq(tp_tree_call(t, 3, 8000, false, "", 0), 0); /* node 5 */
    cr_assert_eq(tp_tree_unwind(t, 9000, "ValueError", 10, "bad \"x\"", 7), 0);
    cr_assert_eq(tp_tree_return(t, 10000, NULL, 0), 0);
    cr_assert_eq(tp_tree_call(t, 4, 11000, false, NULL, 0), 0); /* node 6 */
    cr_assert_eq(tp_tree_return(t, 12000, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 12000), 0);
    return t;
}

static json_t *parse(tp_buf *b)
{
    json_error_t err;
    json_t *j = json_loadb(b->data, b->len, 0, &err);
    cr_assert_not_null(j, "invalid JSON (%s) in: %s", err.text, tp_buf_cstr(b));
    return j;
}

static json_t *render_tree(const tp_tree *t, const tp_web_tree_opts *o)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_tree(t, o, &b), 0);
    json_t *j = parse(&b);
    tp_buf_free(&b);
    return j;
}

#define GET(obj, key) json_object_get((obj), (key))
#define INT(obj, key) json_integer_value(GET((obj), (key)))
#define STR(obj, key) json_string_value(GET((obj), (key)))
#define AT(arr, i)    json_array_get((arr), (i))

Test(render_web, roots_with_default_depth_list_no_kids)
{
    tp_tree *t = sample();
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    json_t *j = render_tree(t, &o);
    cr_assert(json_is_null(GET(j, "node")));
    cr_assert(json_is_null(GET(j, "self")));
    cr_assert_eq(INT(j, "total"), 2);
    json_t *nodes = GET(j, "nodes");
    cr_assert_eq(json_array_size(nodes), 2);
    json_t *main = AT(nodes, 0);
    cr_assert_eq(INT(main, "id"), 0);
    cr_assert_str_eq(STR(main, "name"), "main");
    cr_assert_str_eq(STR(main, "module"), "app");
    cr_assert_null(GET(main, "qualname"), "name is the qualname: no second key");
    cr_assert_eq(INT(main, "children"), 4);
    cr_assert(json_is_true(GET(main, "has_more")));
    cr_assert_null(GET(main, "kids"));
    cr_assert(json_is_null(GET(main, "parent")));
    cr_assert_eq(json_real_value(GET(main, "total_ms")), 0.01);
    cr_assert_str_eq(STR(AT(nodes, 1), "name"), "k");
    cr_assert_str_eq(STR(AT(nodes, 1), "module"), "");
    json_decref(j);
    tp_tree_free(t);
}

Test(render_web, node_children_two_levels_carry_fields)
{
    tp_tree *t = sample();
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.node = 0;
    o.depth = 2;
    json_t *j = render_tree(t, &o);
    cr_assert_eq(INT(j, "node"), 0);
    cr_assert_eq(INT(j, "total"), 4);
    cr_assert_eq(INT(GET(j, "self"), "id"), 0);
    json_t *kids = GET(j, "nodes");
    cr_assert_eq(json_array_size(kids), 4);
    json_t *f0 = AT(kids, 0);
    cr_assert_str_eq(STR(f0, "args"), "x=0");
    cr_assert_str_eq(STR(f0, "ret"), "'<b>'");
    cr_assert_str_eq(STR(f0, "file"), "app.py");
    cr_assert_eq(INT(f0, "line"), 10);
    cr_assert_eq(INT(f0, "parent"), 0);
    cr_assert_eq(INT(f0, "depth"), 1);
    cr_assert_eq(json_real_value(GET(f0, "start_ms")), 0.001);
    cr_assert_eq(json_real_value(GET(f0, "total_ms")), 0.002);
    cr_assert_eq(json_real_value(GET(f0, "self_ms")), 0.0015);
    json_t *g = AT(GET(f0, "kids"), 0);
    cr_assert_eq(INT(g, "id"), 2);
    cr_assert(json_is_null(GET(g, "args")), "not captured is null");
    cr_assert(json_is_false(GET(f0, "has_more")));
    cr_assert(json_is_false(GET(g, "has_more")));
    json_t *h = AT(kids, 3);
    cr_assert_str_eq(STR(h, "name"), "Cls.h");
    json_t *exc = GET(h, "exc");
    cr_assert_str_eq(STR(exc, "type"), "ValueError");
    cr_assert_str_eq(STR(exc, "msg"), "bad \"x\"");
    cr_assert(json_is_false(GET(exc, "caught")));
    cr_assert_str_eq(json_string_value(AT(GET(h, "flags"), 0)), "exc");
    cr_assert(json_is_null(GET(h, "ret")));
    json_decref(j);
    tp_tree_free(t);
}

Test(render_web, offset_and_limit_page_a_level)
{
    tp_tree *t = sample();
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.node = 0;
    o.offset = 1;
    o.limit = 2;
    json_t *j = render_tree(t, &o);
    cr_assert_eq(INT(j, "offset"), 1);
    cr_assert_eq(INT(j, "total"), 4);
    json_t *kids = GET(j, "nodes");
    cr_assert_eq(json_array_size(kids), 2);
    cr_assert_eq(INT(AT(kids, 0), "id"), 3);
    cr_assert_eq(INT(AT(kids, 1), "id"), 4);
    json_decref(j);
    tp_tree_free(t);
}

Test(render_web, budget_is_breadth_first_and_marks_has_more)
{
    tp_tree *t = sample();
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.depth = -1;
    o.max_nodes = 4; /* roots (2), then main's first two children */
    json_t *j = render_tree(t, &o);
    json_t *main = AT(GET(j, "nodes"), 0);
    json_t *kids = GET(main, "kids");
    cr_assert_eq(json_array_size(kids), 2);
    cr_assert(json_is_true(GET(main, "has_more")), "main lists 2 of its 4 children");
    cr_assert_null(GET(AT(kids, 0), "kids"), "g did not fit");
    cr_assert(json_is_true(GET(AT(kids, 0), "has_more")));
    json_decref(j);
    o.max_nodes = 100;
    o.limit = 3;
    j = render_tree(t, &o);
    main = AT(GET(j, "nodes"), 0);
    cr_assert_eq(json_array_size(GET(main, "kids")), 3);
    cr_assert(json_is_true(GET(main, "has_more")));
    cr_assert_eq(INT(AT(GET(AT(GET(main, "kids"), 0), "kids"), 0), "id"), 2);
    json_decref(j);
    tp_tree_free(t);
}

Test(render_web, depth_zero_gives_the_node_alone)
{
    tp_tree *t = sample();
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.node = 1;
    o.depth = 0;
    json_t *j = render_tree(t, &o);
    cr_assert_eq(json_array_size(GET(j, "nodes")), 0);
    cr_assert_str_eq(STR(GET(j, "self"), "args"), "x=0");
    cr_assert(json_is_true(GET(GET(j, "self"), "has_more")));
    json_decref(j);
    tp_tree_free(t);
}

Test(render_web, unknown_node_is_einval)
{
    tp_tree *t = sample();
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.node = 7;
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_tree(t, &o, &b), -EINVAL);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web, long_text_is_cut_on_a_character_boundary)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "m.py", 1), 0);
    const char *arg = "s='\xc3\xa9\xc3\xa9\xc3\xa9'"; /* s='ééé' */
    cr_assert_eq(tp_tree_call(t, 0, 0, false, arg, strlen(arg)), 0);
    cr_assert_eq(tp_tree_return(t, 10, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 10), 0);
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.max_text = 6; /* "s='" + é + half of é */
    json_t *j = render_tree(t, &o);
    json_t *n = AT(GET(j, "nodes"), 0);
    cr_assert_str_eq(STR(n, "args"), "s='\xc3\xa9");
    cr_assert(json_is_true(GET(n, "cut")));
    json_decref(j);
    o.max_text = 0;
    j = render_tree(t, &o);
    n = AT(GET(j, "nodes"), 0);
    cr_assert_str_eq(STR(n, "args"), arg);
    cr_assert(json_is_false(GET(n, "cut")));
    json_decref(j);
    tp_tree_free(t);
}

Test(render_web, folded_tree_reports_count_and_mixed_args)
{
    tp_tree *t = sample(), *f = NULL;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.depth = 2;
    json_t *j = render_tree(f, &o);
    json_t *kids = GET(AT(GET(j, "nodes"), 0), "kids");
    cr_assert_eq(json_array_size(kids), 2, "f x3 became one node, then h");
    json_t *ff = AT(kids, 0);
    cr_assert_eq(INT(ff, "count"), 3);
    cr_assert_eq(json_real_value(GET(ff, "min_ms")), 0.001);
    cr_assert_eq(json_real_value(GET(ff, "max_ms")), 0.002);
    const char *fl[3] = {0};
    for (size_t i = 0; i < json_array_size(GET(ff, "flags")) && i < 3; i++)
        fl[i] = json_string_value(AT(GET(ff, "flags"), i));
    cr_assert_str_eq(fl[0], "folded");
    cr_assert_str_eq(fl[1], "args_mixed");
    json_decref(j);
    tp_tree_free(f);
    tp_tree_free(t);
}

Test(render_web, node_text_escaped_like_the_trace_file)
{
    /* \b and a stray byte: the report UI once wrote \u0008 and \ufffd where
     * the trace file writes \b and U+FFFD itself (json.h has the one rule). */
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f\x01", "m.py", 1), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, "s='\b\xff'", 6), 0);
    cr_assert_eq(tp_tree_return(t, 10, "'\f\xe2\x82\xac'", 6), 0);
    cr_assert_eq(tp_tree_finish(t, 10), 0);
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_tree(t, &o, &b), 0);
    const char *s = tp_buf_cstr(&b);
    cr_assert_not_null(strstr(s, "\"name\":\"f\\u0001\",\"module\":\"m\",\"file\":"), "%s", s);
    cr_assert_not_null(strstr(s, "\"args\":\"s='\\b\xef\xbf\xbd'\",\"ret\":\"'\\f\xe2\x82\xac'\""),
                       "%s", s);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web, search_finds_names_args_values_and_exceptions_in_order)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_search(t, "X=1", 0, &b), 0);
    json_t *j = parse(&b);
    cr_assert_eq(INT(j, "total"), 1);
    json_t *m = AT(GET(j, "matches"), 0);
    cr_assert_eq(INT(m, "id"), 3);
    cr_assert_eq(json_array_size(GET(m, "path")), 2);
    cr_assert_eq(json_integer_value(AT(GET(m, "path"), 0)), 0);
    cr_assert_eq(json_integer_value(AT(GET(m, "path"), 1)), 3);
    cr_assert_eq(json_array_size(GET(m, "pos")), 2);
    cr_assert_eq(json_integer_value(AT(GET(m, "pos"), 0)), 0, "main is the first root");
    cr_assert_eq(json_integer_value(AT(GET(m, "pos"), 1)), 1, "f(x=1) is main's second child");
    json_decref(j);

    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_search(t, "lib.", 0, &b), 0);
    j = parse(&b);
    cr_assert_eq(INT(j, "total"), 2, "lib.g and lib.Cls.h by module, or lib.py by file");
    cr_assert_eq(INT(AT(GET(j, "matches"), 0), "id"), 2);
    cr_assert_eq(json_array_size(GET(AT(GET(j, "matches"), 0), "path")), 3);
    cr_assert_eq(INT(AT(GET(j, "matches"), 1), "id"), 5);
    json_decref(j);

    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_search(t, "valueerror", 0, &b), 0);
    j = parse(&b);
    cr_assert_eq(INT(AT(GET(j, "matches"), 0), "id"), 5);
    json_decref(j);

    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_search(t, "app", 1, &b), 0);
    j = parse(&b);
    cr_assert_eq(INT(j, "total"), 4, "main and the three f calls");
    cr_assert_eq(json_array_size(GET(j, "matches")), 1);
    cr_assert(json_is_true(GET(j, "truncated")));
    json_decref(j);

    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_search(t, "", 0, &b), 0);
    j = parse(&b);
    cr_assert_eq(INT(j, "total"), 0);
    json_decref(j);
    tp_buf_free(&b);
    tp_tree_free(t);
}

/* Folded, f(x=0), f(x=1), f(x=2) are one group showing the first call's
 * arguments; a search for the second's still finds the group, and says which
 * of its calls matched. */
Test(render_web, search_finds_calls_inside_folded_groups)
{
    tp_tree *t = sample(), *f;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_search(f, "x=1", 0, &b), 0);
    json_t *j = parse(&b);
    cr_assert_eq(INT(j, "total"), 1, "%s", tp_buf_cstr(&b));
    json_t *m = AT(GET(j, "matches"), 0);
    uint32_t grp = f->nodes[f->first_root].first_child;
    cr_assert_eq(f->nodes[grp].count, 3);
    cr_assert_eq(INT(m, "id"), grp);
    cr_assert_eq(json_array_size(GET(m, "calls")), 1);
    cr_assert_eq(json_integer_value(AT(GET(m, "calls"), 0)), 1, "the group's second call");
    cr_assert_eq(INT(m, "calls_total"), 1);
    json_decref(j);

    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_search(f, "x=", 0, &b), 0);
    j = parse(&b);
    m = AT(GET(j, "matches"), 0);
    cr_assert_eq(INT(m, "calls_total"), 3);
    cr_assert_eq(json_array_size(GET(m, "calls")), 3);
    json_decref(j);
    tp_buf_free(&b);
    tp_tree_free(f);
    tp_tree_free(t);
}

Test(render_web, members_list_the_calls_of_a_folded_group_paged)
{
    tp_tree *t = sample(), *f;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    uint32_t grp = f->nodes[f->first_root].first_child;
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_members(f, grp, 0, 0, 1000, &b), 0);
    json_t *j = parse(&b);
    cr_assert_eq(INT(j, "node"), grp);
    cr_assert_eq(INT(j, "total"), 3);
    json_t *calls = GET(j, "calls");
    cr_assert_eq(json_array_size(calls), 3, "%s", tp_buf_cstr(&b));
    /* Each call as it was, with its id in the unfolded tree. */
    const char *args[] = {"x=0", "x=1", "x=2"};
    const char *rets[] = {"'<b>'", "1", "2"};
    const int ids[] = {1, 3, 4}, kids[] = {1, 0, 0};
    for (int k = 0; k < 3; k++) {
        json_t *c = AT(calls, k);
        cr_assert_eq(INT(c, "id"), ids[k]);
        cr_assert_str_eq(STR(c, "args"), args[k]);
        cr_assert_str_eq(STR(c, "ret"), rets[k]);
        cr_assert_eq(INT(c, "count"), 1);
        cr_assert_eq(INT(c, "children"), kids[k]);
        cr_assert_eq(INT(c, "parent"), 0);
    }
    json_decref(j);
    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_members(f, grp, 1, 1, 1000, &b), 0);
    j = parse(&b);
    cr_assert_eq(INT(j, "offset"), 1);
    cr_assert_eq(json_array_size(GET(j, "calls")), 1);
    cr_assert_str_eq(STR(AT(GET(j, "calls"), 0), "args"), "x=1");
    json_decref(j);
    /* A tree that was not folded: a call stands for itself. */
    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_members(t, 3, 0, 0, 1000, &b), 0);
    j = parse(&b);
    cr_assert_eq(INT(j, "total"), 1);
    cr_assert_eq(INT(AT(GET(j, "calls"), 0), "id"), 3);
    json_decref(j);
    cr_assert_eq(tp_render_web_members(f, (uint32_t)f->nnodes, 0, 0, 1000, &b), -EINVAL);
    tp_buf_free(&b);
    tp_tree_free(f);
    tp_tree_free(t);
}

Test(render_web, stats_and_diff_json)
{
    tp_tree *t = sample();
    tp_stats *s = NULL;
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_stats(t, s, 2, &b), 0);
    json_t *j = parse(&b);
    cr_assert_eq(INT(j, "calls"), 7);
    cr_assert_eq(INT(j, "exceptions"), 1);
    cr_assert_eq(INT(j, "max_depth"), 2);
    cr_assert_str_eq(STR(GET(j, "slowest"), "name"), "main");
    cr_assert_str_eq(STR(GET(j, "slowest"), "module"), "app");
    cr_assert_eq(json_real_value(GET(GET(j, "slowest"), "ms")), 0.01);
    cr_assert_str_eq(STR(GET(j, "most_called"), "name"), "f");
    cr_assert_str_eq(STR(GET(j, "most_called"), "module"), "app");
    cr_assert_eq(INT(GET(j, "most_called"), "count"), 3);
    cr_assert_eq(json_array_size(GET(j, "functions")), 2, "top 2");
    json_t *f = AT(GET(j, "functions"), 1);
    cr_assert_str_eq(STR(f, "name"), "f");
    cr_assert_eq(json_real_value(GET(f, "total_ms")), 0.0045);
    cr_assert_eq(json_real_value(GET(f, "avg_ms")), 0.0015);
    cr_assert(json_array_size(GET(j, "by_module")) >= 2);
    json_decref(j);

    tp_tree *t2 = sample();
    tp_diff *d = NULL;
    cr_assert_eq(tp_tree_diff(t, t2, NULL, &d), 0);
    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_diff(d, &b), 0);
    j = parse(&b);
    cr_assert_eq(INT(j, "calls_a"), 7);
    cr_assert_eq(INT(j, "calls_b"), 7);
    cr_assert_eq(json_array_size(GET(j, "changes")), 0);
    cr_assert_eq(json_array_size(GET(j, "functions_added")), 0);
    json_decref(j);
    tp_tree_diff_free(d);
    tp_tree_free(t2);
    tp_tree_stats_free(s);
    tp_buf_free(&b);
    tp_tree_free(t);
}

static const char page[] = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
                           "<title>tracepatch</title>\n"
                           "<link rel=\"icon\" href=\"/assets/favicon.svg\">\n"
                           "<link rel=\"stylesheet\" href=\"/assets/style.css\">\n"
                           "</head><body><main id=\"app\"></main>\n"
                           "<script src=\"/assets/app.js\"></script>\n</body></html>\n";

static tp_web_assets assets(const char *js)
{
    tp_web_assets a = {page, sizeof(page) - 1, js, strlen(js), "body{}", 6, "JSHASH", "CSSHASH"};
    return a;
}

/* The text between <script type="application/json" id="tp-data"> and the next </script>. */
static json_t *report_data(const char *html)
{
    const char *open = "<script type=\"application/json\" id=\"tp-data\">";
    const char *p = strstr(html, open);
    cr_assert_not_null(p);
    p += strlen(open);
    const char *e = strstr(p, "</script>");
    cr_assert_not_null(e);
    json_error_t err;
    json_t *j = json_loadb(p, (size_t)(e - p), 0, &err);
    cr_assert_not_null(j, "report data is not JSON: %s", err.text);
    return j;
}

Test(render_web, html_report_inlines_everything_and_escapes_script_ends)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "m.py", 1), 0);
    const char *arg = "x='</script><script>alert(1)</script>', y='<!--<script>'";
    cr_assert_eq(tp_tree_call(t, 0, 0, false, arg, strlen(arg)), 0);
    cr_assert_eq(tp_tree_return(t, 10, "'</SCRIPT>'", 11), 0);
    cr_assert_eq(tp_tree_finish(t, 10), 0);
    cr_assert_eq(tp_tree_set_label(t, "<b>lbl</b>"), 0);
    tp_web_assets a = assets("start();");
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_html(t, NULL, &a, &b), 0);
    const char *html = tp_buf_cstr(&b);
    cr_assert_not_null(strstr(html, "<style>body{}</style>"));
    cr_assert_not_null(strstr(html, "<script>start();</script>"));
    cr_assert_not_null(strstr(html, "script-src 'sha256-JSHASH'; style-src 'sha256-CSSHASH'"));
    cr_assert_not_null(strstr(html, "<title>tracepatch: &lt;b&gt;lbl&lt;/b&gt;</title>"));
    cr_assert_null(strstr(html, "/assets/"), "no reference to the server is left");
    /* The stats' slowest call shows its args, escaped. */
    cr_assert_not_null(strstr(html, "x='<\\/script><script>alert(1)<\\/script>'"));
    cr_assert_not_null(strstr(html, "<\\u0021--<script>"));
    /* Exactly four "</script": the data's, the tree's, the calls' and the app's. */
    int n = 0;
    for (const char *p = html; (p = strstr(p, "</script")); p++)
        n++;
    cr_assert_eq(n, 4);
    /* The tree element holds the folded tree's pack up to the groups'
     * calls, the calls element the rest, each deflated, in base64. */
    tp_tree *folded = NULL;
    cr_assert_eq(tp_tree_fold(t, NULL, &folded), 0);
    tp_buf pk = TP_BUF_INIT, z = TP_BUF_INIT;
    size_t members_at = 0;
    cr_assert_eq(tp_render_web_pack(folded, TP_WEB_PACK_MAX_MEMBERS, &pk, NULL, &members_at), 0);
    cr_assert(members_at > 0 && members_at < pk.len);
    static const char *const elems[] = {"tp-tree", "tp-members"};
    for (int e = 0; e < 2; e++) {
        char open[96];
        snprintf(open, sizeof open, "<script type=\"application/octet-stream\" id=\"%s\">",
                 elems[e]);
        const char *tb = strstr(html, open);
        cr_assert_not_null(tb, "%s", open);
        tb += strlen(open);
        const char *te = strstr(tb, "</script>");
        cr_assert_not_null(te);
        tp_buf_reset(&z);
        if (e == 0)
            cr_assert_eq(tp_render_web_deflate_b64(pk.data, members_at, TP_WEB_PACK_LEVEL, &z), 0);
        else
            cr_assert_eq(tp_render_web_deflate_b64(pk.data + members_at, pk.len - members_at,
                                                   TP_WEB_PACK_LEVEL, &z),
                         0);
        cr_assert_eq((size_t)(te - tb), z.len, "%s", elems[e]);
        cr_assert_eq(memcmp(tb, z.data, z.len), 0, "%s", elems[e]);
    }
    cr_assert_not_null(memmem(pk.data, pk.len, arg, strlen(arg)), "the args as they were");
    tp_buf_free(&pk);
    tp_buf_free(&z);
    tp_tree_free(folded);
    json_t *j = report_data(html);
    cr_assert_null(GET(j, "tree"));
    cr_assert_str_eq(STR(GET(GET(j, "stats"), "slowest"), "args"), arg,
                     "the escapes decode to the original text");
    cr_assert_str_eq(STR(GET(j, "trace"), "label"), "<b>lbl</b>");
    cr_assert_eq(INT(GET(j, "stats"), "calls"), 1);
    json_decref(j);

    tp_buf_reset(&b);
    cr_assert_eq(tp_render_html(t, "{\"id\":\"abc\",\"label\":\"from daemon\"}", &a, &b), 0);
    j = report_data(tp_buf_cstr(&b));
    cr_assert_str_eq(STR(GET(j, "trace"), "label"), "from daemon");
    json_decref(j);
    tp_buf_free(&b);
    tp_tree_free(t);
}

/* The config text comes from a client: a broken one once went into the
 * report as it was and left data the app cannot parse. */
Test(render_web, html_report_checks_the_config_text)
{
    static const struct {
        const char *config, *want; /* want: the "config" member as written */
    } cases[] = {
        {"{\"a\": \"x\"", "\"config\":null"},
        {"{\"a\":1} trailing", "\"config\":null"},
        {"[1]", "\"config\":null"},
        {" {\"max_depth\": 30, \"s\": \"\\b\"}", "\"config\":{\"max_depth\":30,\"s\":\"\\b\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_tree *t = sample();
        cr_assert_eq(tp_tree_set_config_json(t, cases[i].config), 0);
        tp_web_assets a = assets("ok();");
        tp_buf b = TP_BUF_INIT;
        cr_assert_eq(tp_render_html(t, NULL, &a, &b), 0);
        const char *html = tp_buf_cstr(&b);
        cr_assert_not_null(strstr(html, cases[i].want), "config %s", cases[i].config);
        json_decref(report_data(html));
        tp_buf_free(&b);
        tp_tree_free(t);
    }
}

Test(render_web, html_report_refuses_unusable_assets)
{
    tp_tree *t = sample();
    tp_buf b = TP_BUF_INIT;
    tp_web_assets a = assets("x('</script>')");
    cr_assert_eq(tp_render_html(t, NULL, &a, &b), -EINVAL);
    a = assets("ok();");
    a.html = "<html><body>no tags</body></html>";
    a.html_len = strlen(a.html);
    cr_assert_eq(tp_render_html(t, NULL, &a, &b), -EINVAL);
    cr_assert_eq(b.len, 0);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_web, roots_listing_names_the_hot_path_through_the_heaviest_children)
{
    /* main's heaviest child is f(x=0) (2000 ns, tied with h: the first
     * wins), and its only child g: the path ends there. */
    tp_tree *t = sample();
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    json_t *j = render_tree(t, &o);
    json_t *path = GET(j, "hot_path"), *pos = GET(j, "hot_pos");
    cr_assert_eq(json_array_size(path), 3);
    cr_assert_eq(json_integer_value(AT(path, 0)), 0);
    cr_assert_eq(json_integer_value(AT(path, 1)), 1);
    cr_assert_eq(json_integer_value(AT(path, 2)), 2);
    cr_assert_eq(json_array_size(pos), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(json_integer_value(AT(pos, i)), 0);
    json_decref(j);
    /* A node's children listing has no hot path. */
    o.node = 0;
    j = render_tree(t, &o);
    cr_assert_null(GET(j, "hot_path"));
    json_decref(j);
    tp_tree_free(t);
}

Test(render_web, generator_node_carries_active_time_span_and_task_flag)
{
    /* main spawns task() (seq 1), which runs 1 us, waits 998 us, runs 1 us. */
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "task", "app.py", 5), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_spawn(t, 0), 0);
    cr_assert_eq(tp_tree_call(t, 1, 1000, true, NULL, 0), 0);
    cr_assert_eq(tp_tree_yield(t, 1, 2000), 0);
    cr_assert_eq(tp_tree_resume(t, 1, 1000000), 0);
    cr_assert_eq(tp_tree_return(t, 1001000, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 1002000, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 1002000), 0);
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.node = 0;
    json_t *j = render_tree(t, &o);
    json_t *task = AT(GET(j, "nodes"), 0);
    cr_assert_str_eq(STR(task, "name"), "task");
    cr_assert_eq(json_number_value(GET(task, "total_ms")), 0.002);
    cr_assert_eq(json_number_value(GET(task, "span_ms")), 1.0);
    json_t *flags = GET(task, "flags");
    bool spawned = false, gen = false;
    for (size_t i = 0; i < json_array_size(flags); i++) {
        spawned |= strcmp(json_string_value(AT(flags, i)), "spawned") == 0;
        gen |= strcmp(json_string_value(AT(flags, i)), "gen") == 0;
    }
    cr_assert(spawned && gen);
    json_decref(j);
    tp_tree_free(t);
}

/* main -> (f(x=i), g) three times on thread 0, then k on a thread named
 * "Thread-1 (w)". */
static tp_tree *seq_and_thread(void)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "f", "app.py", 10), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "lib", "g", "lib.py", 20), 0);
    cr_assert_eq(tp_tree_def_func(t, 4, "", "k", "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, NULL, 0), 0);
    for (int i = 0; i < 3; i++) {
        char a[8];
        snprintf(a, sizeof(a), "x=%d", i);
        cr_assert_eq(tp_tree_call(t, 1, 100 + 10 * (uint64_t)i, false, a, strlen(a)), 0);
        cr_assert_eq(tp_tree_return(t, 102 + 10 * (uint64_t)i, NULL, 0), 0);
        cr_assert_eq(tp_tree_call(t, 2, 104 + 10 * (uint64_t)i, false, NULL, 0), 0);
        cr_assert_eq(tp_tree_return(t, 107 + 10 * (uint64_t)i, NULL, 0), 0);
    }
    cr_assert_eq(tp_tree_return(t, 200, NULL, 0), 0);
    cr_assert_eq(tp_tree_event(t, TP_EV_THREAD, TP_EVF_TEXT, 0, 1, 0, "Thread-1 (w)", 12, NULL, 0),
                 0);
    cr_assert_eq(tp_tree_call(t, 4, 50, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 90, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 300), 0);
    return t;
}

/* The roots say which threads the UI draws under a row of their own; the
 * first group of a folded sequence says how many groups the sequence has. */
Test(render_web, roots_name_grouped_threads_and_sequences_carry_seq)
{
    tp_tree *t = seq_and_thread(), *f;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    o.depth = 2;
    json_t *j = render_tree(f, &o);
    json_t *th = GET(j, "threads");
    cr_assert_eq(json_array_size(th), 1);
    json_t *g = AT(th, 0);
    cr_assert_eq(INT(g, "thread"), 1);
    cr_assert_str_eq(STR(g, "name"), "Thread-1 (w)");
    cr_assert_eq(INT(g, "roots"), 1);
    cr_assert_eq(INT(g, "calls"), 1);
    cr_assert_eq(json_real_value(GET(g, "total_ms")), 0.00004);
    json_t *nodes = GET(j, "nodes");
    cr_assert_eq(json_array_size(nodes), 2);
    cr_assert_eq(INT(g, "first_root"), INT(AT(nodes, 1), "id"), "k, after main");
    cr_assert_str_eq(STR(AT(nodes, 1), "name"), "k");
    json_t *kids = GET(AT(nodes, 0), "kids");
    cr_assert_eq(json_array_size(kids), 2);
    cr_assert_eq(INT(AT(kids, 0), "seq"), 2);
    cr_assert_eq(INT(AT(kids, 0), "count"), 3);
    cr_assert_null(GET(AT(kids, 1), "seq"));
    cr_assert_str_eq(json_string_value(AT(GET(AT(kids, 1), "flags"), 1)), "seq");
    json_decref(j);

    /* A child listing has no "threads"; a one-thread tree neither. */
    o.node = (uint32_t)INT(AT(nodes, 0), "id");
    j = render_tree(f, &o);
    cr_assert_null(GET(j, "threads"));
    json_decref(j);
    tp_tree_free(f);
    tp_tree_free(t);
    t = sample();
    tp_render_web_tree_opts_init(&o);
    j = render_tree(t, &o);
    cr_assert_null(GET(j, "threads"));
    json_decref(j);
    tp_tree_free(t);
}

/* A call inside a folded sequence is found through its position's group,
 * which lists which of its calls matched. */
Test(render_web, search_finds_calls_inside_folded_sequences)
{
    tp_tree *t = seq_and_thread(), *f;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_search(f, "x=2", 0, &b), 0);
    json_t *j = parse(&b);
    cr_assert_eq(INT(j, "total"), 1, "%s", tp_buf_cstr(&b));
    json_t *m = AT(GET(j, "matches"), 0);
    uint32_t main_id = f->first_root;
    uint32_t grp = f->nodes[main_id].first_child;
    cr_assert_eq(f->nodes[grp].seq, 2);
    cr_assert_eq(INT(m, "id"), grp);
    cr_assert_eq(json_integer_value(AT(GET(m, "path"), 0)), main_id);
    cr_assert_eq(json_integer_value(AT(GET(m, "calls"), 0)), 2, "the third repetition");
    json_decref(j);
    tp_buf_free(&b);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* Searching text of n bytes for a query of n / 2 that almost matches at
 * every offset: comparing the query afresh at each offset cost n^2 / 4 byte
 * comparisons (7*10^10 at the larger size, minutes); a search that never
 * steps back over the text costs n. */
Test(render_web, search_of_long_text_is_linear_in_its_length)
{
    static const size_t sizes[] = {64 * 1024, 512 * 1024};
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k], qn = n / 2;
        char *text = malloc(n + 1), *query = malloc(qn + 2);
        cr_assert(text && query);
        memset(text, 'a', n);
        text[n] = 'B';
        memset(query, 'A', qn);
        query[qn + 1] = '\0';
        tp_tree *t = NULL;
        cr_assert_eq(tp_tree_new(&t), 0);
        cr_assert_eq(tp_tree_def_func(t, 0, "", "f", "", 0), 0);
        cr_assert_eq(tp_tree_call(t, 0, 0, false, text, n + 1), 0);
        cr_assert_eq(tp_tree_return(t, 1, NULL, 0), 0);
        cr_assert_eq(tp_tree_finish(t, 1), 0);
        tp_buf b = TP_BUF_INIT;
        query[qn] = 'c';
        cr_assert_eq(tp_render_web_search(t, query, 0, &b), 0);
        json_t *j = parse(&b);
        cr_assert_eq(INT(j, "total"), 0);
        json_decref(j);
        tp_buf_reset(&b);
        query[qn] = 'b'; /* "aaa...ab" in any case ends the text */
        cr_assert_eq(tp_render_web_search(t, query, 0, &b), 0);
        j = parse(&b);
        cr_assert_eq(INT(j, "total"), 1);
        cr_assert_eq(INT(AT(GET(j, "matches"), 0), "id"), 0);
        json_decref(j);
        tp_buf_free(&b);
        tp_tree_free(t);
        free(text);
        free(query);
    }
}

/* A chain of n calls of f(): every call matches "f" and its path is as long
 * as its depth, so limit matches cost limit * n path ids. The answer stops
 * listing before TP_WEB_MAX_PATH_IDS ids: the first k calls, the largest k
 * with k * (k + 1) / 2 ids, whatever the limit. */
Test(render_web, search_paths_of_a_deep_chain_are_bounded)
{
    const uint32_t n = 3000;
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "m.py", 1), 0);
    for (uint32_t k = 0; k < n; k++)
        cr_assert_eq(tp_tree_call(t, 0, k, false, NULL, 0), 0);
    for (uint32_t k = 0; k < n; k++)
        cr_assert_eq(tp_tree_return(t, n + k, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 2 * n), 0);
    uint64_t k = 0;
    while ((k + 1) * (k + 2) / 2 <= TP_WEB_MAX_PATH_IDS)
        k++;
    cr_assert_eq(k, 1413);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_search(t, "f", UINT32_MAX, &b), 0);
    json_t *j = parse(&b);
    json_t *m = GET(j, "matches");
    cr_assert_eq(INT(j, "total"), n);
    cr_assert_eq(json_array_size(m), k);
    cr_assert(json_is_true(GET(j, "truncated")));
    cr_assert_eq(json_array_size(GET(AT(m, k - 1), "path")), k);
    json_decref(j);
    /* Under the bound, limit alone decides. */
    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_search(t, "f", 10, &b), 0);
    j = parse(&b);
    cr_assert_eq(json_array_size(GET(j, "matches")), 10);
    cr_assert(json_is_true(GET(j, "truncated")));
    json_decref(j);
    tp_buf_free(&b);
    tp_tree_free(t);
}
