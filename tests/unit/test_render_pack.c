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
        'T',  'P',  'K',  '2', 10, /* strings, in the order first used: the functions', then args,
                                      ret, exceptions */
        1,    'm',  1,    'f', 4,   'm', '.', 'p', 'y', 1,   'g', 3,   'a', '=',
        '1',  1,    'x',  4,   'N', 'o', 'n', 'e', 1,   '1', 10,  'V', 'a', 'l',
        'u',  'e',  'E',  'r', 'r', 'o', 'r', 3,   'b', 'a', 'd', 2, /* functions: module, qualname,
                                                                        file, zigzag line */
        1,    2,    3,    2,                                         /* m.f, m.py:1 */
        1,    4,    3,    10,                                        /* m.g, m.py:5 */
        3,              /* nodes, then one column each, in pre-order f, g, g */
        0,    0,    1,  /* up: a root, f's first child, its sibling */
        0,    1,    1,  /* func */
        0,    0,    0,  /* zigzag depth - level */
        0,    0,    0,  /* thread */
        1,    1,    1,  /* count */
        0,    0,    1,  /* flags: bit 0 exc */
        0,    20,   20, /* zigzag start: from 0, from f's start 0, from the first g's end 30 */
        0xc8, 0x01, 40,   20, /* zigzag span: 100, 20, 10 */
        0,    0,    0,        /* zigzag total - span */
        60,   0,    0,        /* zigzag total - self: f ran 30 ns in its calls */
        0,    0,    0,        /* zigzag total - min */
        0,    0,    0,        /* zigzag max - min */
        1,    1,    7,        /* args: a=1 and x new (strings 5, 6), then x again (6 + 1) */
        1,    1,    0,        /* ret: None, 1 new, none (raised) */
        0,    0,    1,        /* exception type: new */
        0,    0,    1,        /* exception message: new */
        0,    0,    0,        /* nexc */
        0,    0,    0,        /* suspends */
        0,    0,    0,        /* seq */
        0,    0,    0,        /* zigzag memory delta */
        0,    0,    0,        /* zigzag call: each the call after the one before */
        0,    0,    0,        /* zigzag raw parent + 1 - f's call + 1, then the sibling's */
        0,                    /* no more strings for the groups' calls */
        0xc0, 0x84, 0x3d,     /* the bound on the groups' calls: 1,000,000 */
        0,                    /* no folded groups */
    };
    tp_tree *t = tiny();
    tp_buf b = TP_BUF_INIT;
    uint32_t *ids = NULL;
    cr_assert_eq(tp_render_web_pack(t, TP_WEB_PACK_MAX_MEMBERS, &b, &ids, NULL), 0);
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
    cr_assert_eq(tp_render_web_pack(t, TP_WEB_PACK_MAX_MEMBERS, &b, NULL, NULL), 0);
    static const uint8_t want[] = {'T', 'P', 'K', '2', 0, 0, 0, 0, 0xc0, 0x84, 0x3d, 0};
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_eq(memcmp(b.data, want, sizeof(want)), 0);
    tp_buf_free(&b);
    tp_tree_free(t);
    cr_assert_eq(tp_render_web_pack(NULL, TP_WEB_PACK_MAX_MEMBERS, &b, NULL, NULL), -EINVAL);
}

/* f(a=1) over [0, 100] calling g(x=1) -> 1 over [10, 20], g(x=2) -> 2 over
 * [30, 40] (which calls h() -> None over [32, 36]) and g(x=3) -> 3 over
 * [50, 60], folded: the raw calls are f 0, g 1, g 2, h 3, g 4; the folded
 * tree is f, g x3, h. */
static tp_tree *grouped(tp_tree **ret_raw)
{
    tp_tree *t = NULL, *f = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "m.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "m", "g", "m.py", 5), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "m", "h", "m.py", 9), 0);
    cr_assert_eq(tp_tree_call(t, 0, 0, false, "a=1", 3), 0);
    cr_assert_eq(tp_tree_call(t, 1, 10, false, "x=1", 3), 0);
    cr_assert_eq(tp_tree_return(t, 20, "1", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, 30, false, "x=2", 3), 0);
    cr_assert_eq(tp_tree_call(t, 2, 32, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 36, "None", 4), 0);
    cr_assert_eq(tp_tree_return(t, 40, "2", 1), 0);
    cr_assert_eq(tp_tree_call(t, 1, 50, false, "x=3", 3), 0);
    cr_assert_eq(tp_tree_return(t, 60, "3", 1), 0);
    cr_assert_eq(tp_tree_return(t, 100, "None", 4), 0);
    cr_assert_eq(tp_tree_finish(t, 100), 0);
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    *ret_raw = t;
    return f;
}

/* The bytes of grouped()'s pack up to the end of the node columns, without
 * the string table's count and the strings the group's calls add. */
static const uint8_t grouped_head[] = {'T', 'P', 'K', '2'};
/* 9 strings: the functions', then the nodes' */
static const uint8_t grouped_strings[] = {
    1,   'm', 1,   'f', 4,   'm', '.', 'p', 'y', 1,   'g', 1,   'h', 3,
    'a', '=', '1', 3,   'x', '=', '1', 4,   'N', 'o', 'n', 'e', 1,   '1',
};
static const uint8_t grouped_nodes[] = {
    3,    1,    2,    3,  2, /* functions: m.f m.py:1 */
    1,    4,    3,    10,    /* m.g m.py:5 */
    1,    5,    3,    18,    /* m.h m.py:9 */
    3,                       /* nodes: f, g x3, h */
    0,    0,    0,           /* up */
    0,    1,    2,           /* func */
    0,    0,    0,           /* depth */
    0,    0,    0,           /* thread */
    1,    3,    1,           /* count */
    0,    0xf0, 0x02, 0,     /* flags: folded, args_mixed, ret_mixed, calls_mixed (368) */
    0,    20,   44,          /* zigzag start: 0, 10 from f's, 22 from the group's */
    0xc8, 0x01, 100,  8,     /* zigzag span: 100, 50 (first start to last end), 4 */
    0,    39,   0,           /* zigzag total - span: the group's calls ran 30 of its 50 */
    60,   8,    0,           /* zigzag total - self */
    0,    40,   0,           /* zigzag total - min (min 10) */
    0,    0,    0,           /* zigzag max - min */
    1,    1,    0,           /* args: a=1 and the first call's x=1 new, not captured */
    1,    1,    9,           /* ret: None and 1 new, None again (8 + 1) */
    0,    0,    0,           /* exception type */
    0,    0,    0,           /* exception message */
    0,    0,    0,           /* nexc */
    0,    0,    0,           /* suspends */
    0,    0,    0,           /* seq */
    0,    0,    0,           /* memory */
    0,    0,    2,           /* zigzag call: 0, 1, then h is 3 (one past 1 + 1) */
    0,    0,    2,           /* zigzag raw parent: none, f (f's call + 1), g 2 (one past g 1) */
};

static void assert_bytes(const tp_buf *b, size_t at, const uint8_t *want, size_t n,
                         const char *what)
{
    cr_assert_geq(b->len, at + n, "%s: %zu bytes", what, b->len);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq((uint8_t)b->data[at + i], want[i], "%s: byte %zu: %u, want %u", what, i,
                     (uint8_t)b->data[at + i], want[i]);
}

Test(render_pack, folded_group_packs_its_calls_after_the_columns)
{
    static const uint8_t want_members[] = {
        3,          /* the bound: 3 calls of groups */
        1,          /* one group */
        1,  3,      /* node 1, its 3 calls */
        0,  2,  4,  /* zigzag call: 1 (as the node's), 2, 4 */
        0,  0,  0,  /* zigzag raw parent + 1: f, each as the one before */
        0,  1,  0,  /* raw children */
        0,  0,  0,  /* depth - the node's */
        0,  0,  0,  /* thread */
        1,  1,  1,  /* count */
        0,  0,  0,  /* flags */
        0,  20, 20, /* zigzag start: the node's, then 10 after the previous call's end */
        20, 20, 20, /* zigzag span */
        0,  0,  0,  /* zigzag total - span */
        0,  8,  0,  /* zigzag total - self: h ran 4 of g 2's 10 */
        0,  0,  0,  /* zigzag total - min */
        0,  0,  0,  /* zigzag max - min */
        8,  1,  1,  /* args: x=1 again (7 + 1), x=2 and x=3 new */
        10, 1,  1,  /* ret: 1 again (9 + 1), 2 and 3 new */
        0,  0,  0,  /* exception type */
        0,  0,  0,  /* exception message */
        0,  0,  0,  /* nexc */
        0,  0,  0,  /* suspends */
        0,  0,  0,  /* memory */
    };
    static const uint8_t more_strings[] = {3, 'x', '=', '2', 3, 'x', '=', '3', 1, '2', 1, '3'};
    tp_tree *raw = NULL, *f = grouped(&raw);
    tp_buf b = TP_BUF_INIT;
    size_t members_at = 0;
    cr_assert_eq(tp_render_web_pack(f, 3, &b, NULL, &members_at), 0);
    size_t at = 0;
    assert_bytes(&b, at, grouped_head, sizeof(grouped_head), "magic");
    at += sizeof(grouped_head);
    cr_assert_eq((uint8_t)b.data[at++], 9, "the nodes' 9 strings");
    assert_bytes(&b, at, grouped_strings, sizeof(grouped_strings), "strings");
    at += sizeof(grouped_strings);
    assert_bytes(&b, at, grouped_nodes, sizeof(grouped_nodes), "nodes");
    at += sizeof(grouped_nodes);
    cr_assert_eq(members_at, at, "the calls begin at %zu, want %zu", members_at, at);
    cr_assert_eq((uint8_t)b.data[at++], 4, "the calls' 4 strings");
    assert_bytes(&b, at, more_strings, sizeof(more_strings), "the calls' strings");
    at += sizeof(more_strings);
    assert_bytes(&b, at, want_members, sizeof(want_members), "members");
    at += sizeof(want_members);
    cr_assert_eq(b.len, at, "%zu bytes, want %zu", b.len, at);
    tp_buf_free(&b);
    tp_tree_free(f);
    tp_tree_free(raw);
}

Test(render_pack, group_past_the_bound_is_left_out_whole)
{
    tp_tree *raw = NULL, *f = grouped(&raw);
    tp_buf b = TP_BUF_INIT;
    /* Appended after what out held: the offset counts from there. */
    tp_buf_puts(&b, "xyz");
    size_t members_at = 0;
    cr_assert_eq(tp_render_web_pack(f, 2, &b, NULL, &members_at), 0);
    cr_assert_eq(memcmp(b.data, "xyz", 3), 0);
    memmove(b.data, b.data + 3, b.len - 3);
    b.len -= 3;
    size_t at = sizeof(grouped_head);
    cr_assert_eq((uint8_t)b.data[at++], 9, "only the nodes' 9 strings");
    assert_bytes(&b, at, grouped_strings, sizeof(grouped_strings), "strings");
    at += sizeof(grouped_strings);
    assert_bytes(&b, at, grouped_nodes, sizeof(grouped_nodes), "nodes");
    at += sizeof(grouped_nodes);
    cr_assert_eq(members_at, at);
    static const uint8_t want_members[] = {0, 2, 0}; /* no more strings, the bound, no group */
    assert_bytes(&b, at, want_members, sizeof(want_members), "members");
    cr_assert_eq(b.len, at + sizeof(want_members));
    tp_buf_free(&b);
    tp_tree_free(f);
    tp_tree_free(raw);
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
