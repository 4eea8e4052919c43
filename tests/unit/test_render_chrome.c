/* Chrome trace events (proto/render_chrome.c). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_fixture.h"
#include "tree.h"

Test(render_chrome, golden)
{
    tp_tree *t = fx_rich_tree();
    char *s = fx_text_of(tp_render_chrome, t);
    json_t *j = fx_parse_ok(s);
    cr_assert_eq(json_array_size(json_object_get(j, "traceEvents")), 13); /* 12 calls + name */
    cr_assert_str_eq(json_string_value(json_object_get(j, "displayTimeUnit")), "ms");
    json_decref(j);
    fx_golden("render_chrome.json", s);
    free(s);
    tp_tree_free(t);
}

Test(render_chrome, empty_trace)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_finish(t, 0), 0);
    char *s = fx_text_of(tp_render_chrome, t);
    cr_assert_str_eq(s, "{\"traceEvents\":[],\"displayTimeUnit\":\"ms\"}\n");
    free(s);
    tp_tree_free(t);
}
