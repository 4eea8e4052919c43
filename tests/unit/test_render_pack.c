/* The HTML report's packed tree (render_pack.c, docs/API.md "The packed
 * report tree"): exact bytes for a tiny tree, and the deflate + base64
 * wrapping the page reads with DecompressionStream("deflate"). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "render_web.h"
#include "tp_err.h"
#include "tree.h"

/* f(a=1) -> None over [0, 100] ns, calling g(x) -> 1 over [10, 30] and
 * g(x) raising ValueError('bad') over [40, 50]. */
static tp_tree *tiny(void)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "m.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "m", "g", "m.py", 5), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, "a=1", 3), 0);
    cr_assert_eq(tp_tree_call(t, 1, 10, false, "x", 1), 0);
    cr_assert_eq(tp_tree_return(t, 30, "1", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, 40, false, "x", 1), 0);
    cr_assert_eq(tp_tree_unwind(t, 50, "ValueError", 10, "bad", 3), 0);
    cr_assert_eq(tp_tree_return(t, 100, "None", 4), 0);
    cr_assert_eq(tp_tree_finish(t, 100), 0);
    return t;
}

Test(render_pack, tiny_tree_packs_to_exact_bytes)
{
    static const uint8_t want[] = {
        'T',  'P',  'K', '1', 10, /* strings, in the order first used: the functions', then args,
                                     ret, exceptions */
        1,    'm',  1,   'f', 4,   'm', '.', 'p', 'y', 1,   'g', 3,   'a', '=',
        '1',  1,    'x', 4,   'N', 'o', 'n', 'e', 1,   '1', 10,  'V', 'a', 'l',
        'u',  'e',  'E', 'r', 'r', 'o', 'r', 3,   'b', 'a', 'd', 2, /* functions: module, qualname,
                                                                       file, zigzag line */
        1,    2,    3,   2,                                         /* m.f, m.py:1 */
        1,    4,    3,   10,                                        /* m.g, m.py:5 */
        3,                   /* nodes, then one column each, in pre-order f, g, g */
        0,    0,    1,       /* up: a root, f's first child, its sibling */
        0,    1,    1,       /* func */
        0,    0,    0,       /* zigzag depth - level */
        0,    0,    0,       /* thread */
        1,    1,    1,       /* count */
        0,    0,    1,       /* flags: bit 0 exc */
        0,    20,   20,      /* zigzag start: from 0, from f's start 0, from the first g's end 30 */
        0xc8, 0x01, 40,  20, /* zigzag span: 100, 20, 10 */
        0,    0,    0,       /* zigzag total - span */
        60,   0,    0,       /* zigzag total - self: f ran 30 ns in its calls */
        0,    0,    0,       /* zigzag total - min */
        0,    0,    0,       /* zigzag max - min */
        5,    6,    6,       /* args: a=1, x, x (one string) */
        7,    8,    0,       /* ret: None, 1, none (raised) */
        0,    0,    9,       /* exception type */
        0,    0,    10,      /* exception message */
        0,    0,    0,       /* nexc */
        0,    0,    0,       /* suspends */
        0,    0,    0,       /* seq */
        0,    0,    0,       /* zigzag memory delta */
    };
    tp_tree *t = tiny();
    tp_buf b = TP_BUF_INIT;
    uint32_t *ids = NULL;
    cr_assert_eq(tp_render_web_pack(t, &b, &ids), 0);
    cr_assert_eq(b.len, sizeof(want), "%zu bytes", b.len);
    for (size_t i = 0; i < sizeof(want); i++)
        cr_assert_eq((uint8_t)b.data[i], want[i], "byte %zu: %u, want %u", i, (uint8_t)b.data[i],
                     want[i]);
    cr_assert_eq(ids[0], 0);
    cr_assert_eq(ids[1], 1);
    cr_assert_eq(ids[2], 2);
    free(ids);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render_pack, empty_tree_packs_to_a_header)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_finish(t, 0), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_web_pack(t, &b, NULL), 0);
    static const uint8_t want[] = {'T', 'P', 'K', '1', 0, 0, 0};
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_eq(memcmp(b.data, want, sizeof(want)), 0);
    tp_buf_free(&b);
    tp_tree_free(t);
    cr_assert_eq(tp_render_web_pack(NULL, &b, NULL), -EINVAL);
}

static size_t unbase64(const char *s, size_t n, uint8_t *out)
{
    static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *p = strchr(d, s[i]);
        cr_assert(p && *p, "not base64: %c", s[i]);
        v = v << 6 | (uint32_t)(p - d);
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(v >> bits);
        }
    }
    return o;
}

Test(render_pack, deflate_b64_is_zlib_format_with_padding)
{
    tp_buf b = TP_BUF_INIT;
    /* zlib's stream for nothing at level 6: header 78 9c, an empty fixed
     * block, the Adler-32 of nothing (1). */
    cr_assert_eq(tp_render_web_deflate_b64("", 0, 6, &b), 0);
    cr_assert_str_eq(tp_buf_cstr(&b), "eJwDAAAAAAE=");
    tp_buf_reset(&b);
    cr_assert_eq(tp_render_web_deflate_b64("", 0, 10, &b), -EINVAL);
    /* Every input length mod 3 comes back exactly. */
    char in[300];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)(i * 7 % 251);
    for (size_t n = 297; n < 300; n++) {
        tp_buf_reset(&b);
        cr_assert_eq(tp_render_web_deflate_b64(in, n, 9, &b), 0);
        cr_assert_eq(b.len % 4, 0);
        uint8_t z[400], back[400];
        size_t zn = unbase64(b.data, b.len, z);
        uLongf bn = sizeof(back);
        cr_assert_eq(uncompress(back, &bn, z, zn), Z_OK);
        cr_assert_eq(bn, n);
        cr_assert_eq(memcmp(back, in, n), 0);
    }
    tp_buf_free(&b);
}
