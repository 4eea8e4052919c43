/* jansson values through the one JSON writer (proto/json_jansson.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json_jansson.h"

Test(json_jansson, strings_use_tracepatch_escaper_not_janssons)
{
    /* jansson writes \u001F and escapes nothing else differently; ours is
     * lowercase, like every other output of the tree. */
    json_t *v = json_pack("{s:s#}", "k", "a\x1f\b\"\xc3\xa9", (size_t)6);
    char *s = tp_json_jansson_dumps(v);
    cr_assert_str_eq(s, "{\"k\":\"a\\u001f\\b\\\"\xc3\xa9\"}");
    char *j = json_dumps(v, JSON_COMPACT);
    cr_assert_str_eq(j, "{\"k\":\"a\\u001F\\b\\\"\xc3\xa9\"}");
    free(j);
    free(s);
    json_decref(v);
}

Test(json_jansson, keeps_insertion_order_types_and_nul_bytes)
{
    json_t *v = json_pack("{s:i,s:b,s:n,s:[f,f,f,f,f],s:s#,s:{}}", "z", -7, "a", 1, "m", "r", 2.0,
                          0.1, 1e300, 1.5e-5, 1e22, "nul", "x\0y", (size_t)3, "e");
    char *s = tp_json_jansson_dumps(v);
    char *j = json_dumps(v, JSON_COMPACT);
    cr_assert_str_eq(s, "{\"z\":-7,\"a\":true,\"m\":null,\"r\":[2.0,0.10000000000000001,1."
                        "0000000000000001e300,1.5e-5,1e22],"
                        "\"nul\":\"x\\u0000y\",\"e\":{}}");
    cr_assert_str_eq(s, j, "same bytes as jansson when no string differs: %s", j);
    free(s);
    free(j);
    json_decref(v);
}

Test(json_jansson, pretty_writer_indents_nested_values)
{
    json_t *v = json_pack("{s:[i,{s:s}]}", "a", 1, "b", "c");
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, true);
    cr_assert_eq(tp_json_jansson(&w, v), 0);
    cr_assert_str_eq(tp_buf_cstr(&b), "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"c\"\n    }\n"
                                      "  ]\n}");
    tp_buf_free(&b);
    json_decref(v);
}

Test(json_jansson, too_deep_or_null_writes_nothing)
{
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < TP_JSON_JANSSON_DEPTH + 1; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, false);
    cr_assert_eq(tp_json_jansson(&w, root), -EINVAL);
    cr_assert_eq(tp_json_jansson(&w, NULL), -EINVAL);
    cr_assert_eq(b.len, 0);
    cr_assert_null(tp_json_jansson_dumps(root));
    tp_buf_free(&b);
    json_decref(root);
}
