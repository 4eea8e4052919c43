/* SVG flame graphs (proto/render_svg.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "render.h"
#include "render_fixture.h"
#include "tree.h"

static char *svg_of(const tp_tree *t, const char *title)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_svg(t, title, &b), 0);
    char *s = strdup(b.data);
    tp_buf_free(&b);
    return s;
}

/* main (100 µs) calls a (25 µs) then b (50 µs): main spans the drawing
 * width (1180 px), a and b sit side by side one row above it. */
Test(render_svg, widths_follow_active_time_and_callees_stack_above)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "main", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "m", "a", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "m", "b", "", 0), 0);
    fx_call(t, 0, 0, NULL);
    fx_call(t, 1, 10, NULL);
    fx_ret(t, 35, NULL);
    fx_call(t, 2, 40, NULL);
    fx_ret(t, 90, NULL);
    fx_ret(t, 100, NULL);
    cr_assert_eq(tp_tree_finish(t, 100 * US), 0);
    char *s = svg_of(t, "demo");
    cr_assert(
        strstr(s, "<text x=\"600\" y=\"24\" font-size=\"16\">demo (100\xc2\xb5s, 3 calls)</text>"),
        "%s", s);
    cr_assert(strstr(s, "<title>m.main (100\xc2\xb5s, 100.00%)</title><rect x=\"10.00\" y=\"56\" "
                        "width=\"1180.00\" height=\"15\""),
              "%s", s);
    cr_assert(strstr(s, "<title>m.a (25.0\xc2\xb5s, 25.00%)</title><rect x=\"10.00\" y=\"40\" "
                        "width=\"295.00\""),
              "%s", s);
    cr_assert(strstr(s, "<title>m.b (50.0\xc2\xb5s, 50.00%)</title><rect x=\"305.00\" y=\"40\" "
                        "width=\"590.00\""),
              "%s", s);
    cr_assert(strstr(s, "</svg>\n"));
    free(s);
    tp_tree_free(t);
}

/* Traced names and labels are untrusted: markup is escaped, control bytes
 * and invalid UTF-8 (which XML cannot carry) become visible escapes. */
Test(render_svg, escapes_markup_controls_and_invalid_utf8)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_set_label(t, "<b>&\"'"), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "<script>x\x01\xff", "", 0), 0);
    fx_call(t, 0, 0, NULL);
    fx_ret(t, 100, NULL);
    cr_assert_eq(tp_tree_finish(t, 100 * US), 0);
    char *s = svg_of(t, NULL);
    cr_assert(strstr(s, ">&lt;b&gt;&amp;&quot;&#39; ("), "%s", s);
    cr_assert(strstr(s, "<title>m.&lt;script&gt;x\\x01\\xff ("), "%s", s);
    cr_assert_null(strstr(s, "<script"));
    cr_assert_null(strstr(s, "\x01"));
    free(s);
    tp_tree_free(t);
}

Test(render_svg, empty_tree_is_a_valid_document)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_finish(t, 0), 0);
    char *s = svg_of(t, NULL);
    cr_assert(strstr(s, ">Flame graph (0ns, 0 calls)</text>\n</svg>\n"), "%s", s);
    free(s);
    tp_tree_free(t);
}
