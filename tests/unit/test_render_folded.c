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

/* Lines come in the byte order of their stacks, also where one name is a
 * prefix of another ("a" < "a-x" < "a;b" as sort(1) has it), whatever the
 * order the calls were made in. */
Test(render_folded, lines_in_byte_order_with_prefix_names)
{
    tp_tree *t;
    const char *names[] = {"a", "a-x", "ab", "a-x-y", "b", "a!"};
    cr_assert_eq(tp_tree_new(&t), 0);
    for (uint32_t f = 0; f < 6; f++)
        cr_assert_eq(tp_tree_def_func(t, f, "", names[f], "", 0), 0);
    /* every name at the root and under "a" and "a-x": 2 µs of its own each */
    uint64_t now = 0;
    for (uint32_t f = 0; f < 6; f++) {
        fx_call(t, f, now, NULL);
        now += 2;
        if (f <= 1)
            for (uint32_t g = 0; g < 6; g++) {
                fx_call(t, g, now, NULL);
                fx_ret(t, now + 2, NULL);
                now += 2;
            }
        fx_ret(t, now, NULL);
    }
    cr_assert_eq(tp_tree_finish(t, now * US), 0);
    char *s = fx_text_of(tp_render_folded, t);
    cr_assert_str_eq(s, "a 2\n"
                        "a! 2\n"
                        "a-x 2\n"
                        "a-x-y 2\n"
                        "a-x;a 2\n"
                        "a-x;a! 2\n"
                        "a-x;a-x 2\n"
                        "a-x;a-x-y 2\n"
                        "a-x;ab 2\n"
                        "a-x;b 2\n"
                        "a;a 2\n"
                        "a;a! 2\n"
                        "a;a-x 2\n"
                        "a;a-x-y 2\n"
                        "a;ab 2\n"
                        "a;b 2\n"
                        "ab 2\n"
                        "b 2\n");
    free(s);
    tp_tree_free(t);
}

typedef struct count_sink {
    size_t bytes;
    char tail[8];
} count_sink;

static int count_drain(void *ctx, const char *p, size_t n)
{
    count_sink *c = ctx;
    c->bytes += n;
    if (n >= sizeof(c->tail) - 1)
        memcpy(c->tail, p + n - (sizeof(c->tail) - 1), sizeof(c->tail) - 1);
    return 0;
}

/* A chain 12,000 calls deep spells 288 MB of stacks (quadratic in the
 * depth): they stream out through a drain, and the buffer never holds more
 * than its pieces. */
Test(render_folded, a_deep_chain_streams_in_bounded_memory, .timeout = 120)
{
    enum { D = 12000 };
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "", 0), 0);
    for (uint64_t i = 0; i < D; i++)
        fx_call(t, 0, i, NULL);
    for (uint64_t i = D; i < 2 * D; i++)
        fx_ret(t, i + 1, NULL); /* each call 2 µs of its own */
    cr_assert_eq(tp_tree_finish(t, (2 * D + 1) * US), 0);
    count_sink c = {0};
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_buf_set_drain(&b, 1 << 20, count_drain, &c), 0);
    cr_assert_eq(tp_render_folded(t, &b), 0);
    cr_assert_leq(b.cap, (size_t)3 << 20);
    cr_assert_eq(tp_buf_flush(&b), 0);
    /* the stack at depth k is "m.f" k times, joined: 4k - 1 bytes, then " 2\n" */
    cr_assert_eq(c.bytes, (size_t)2 * D * (D + 1) + 2 * (size_t)D);
    cr_assert_str_eq(c.tail, ";m.f 2\n"); /* the deepest stack comes last */
    tp_buf_free(&b);
    tp_tree_free(t);
}
