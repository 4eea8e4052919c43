/* Internals shared by the renderers (render_text.c, render_export.c,
 * render_json.c, render_web.c). Not a contract: nothing outside
 * proto/render_*.c includes this header. */
#ifndef TP_RENDER_PRIV_H
#define TP_RENDER_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "tree.h"

/** Decode one UTF-8 sequence at s (n > 0 bytes available). Returns its length
 *  (1-4) and the code point in *cp, or 0 when s[0] does not start a
 *  well-formed sequence (overlong forms, surrogates and values past U+10FFFF
 *  are rejected, as RFC 3629 asks). */
static inline size_t tp_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    v = (v << 6) | (s[1] & 0x3f);
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    *cp = v;
    return len;
}

/** Append s[0..n) for a terminal: control characters (C0, DEL, C1), line and
 *  paragraph separators and bidirectional overrides become visible escapes
 *  (\n, \r, \t, \xNN, \uXXXX), bytes that are not UTF-8 become \xNN, and with
 *  ascii every other non-ASCII character becomes \uXXXX (or \UXXXXXXXX), so a
 *  traced string can neither move the cursor nor fake a line. Backslashes are
 *  kept as they are: Python reprs already escape their own. */
void tp_render_priv_text(tp_buf *b, const char *s, size_t n, bool ascii);

/** Columns that text produced by tp_render_priv_text() takes (its code
 *  points; wide characters count as one). */
size_t tp_render_priv_width(const char *s, size_t n);

/** Append "module.qualname" of func, escaped by tp_render_priv_text(). */
void tp_render_priv_name(tp_buf *b, const tp_tree *t, uint32_t func, bool ascii);

/** Append v in decimal (no printf: renderers write millions of numbers). */
void tp_render_priv_u64(tp_buf *b, uint64_t v);

/** Append "<whole>.<frac>" with frac zero-padded to `digits` digits (1-9);
 *  negative whole values print as 0. */
void tp_render_priv_fixed(tp_buf *b, int64_t whole, int64_t frac, int digits);

/** Append ns as milliseconds with `decimals` (3, 4 or 6) fixed decimals,
 *  rounded half up, from integers only ("0.050"). Negative values print 0. */
void tp_render_priv_ms(tp_buf *b, int64_t ns, int decimals);

/** Append s as a JSON string literal (tp_render_web_string()), or null. */
void tp_render_priv_json_str(tp_buf *b, const char *s);

/** Append ns as milliseconds, exact and without trailing zeros (1500 ->
 *  0.0015, 2000000 -> 2); negative values print 0. */
void tp_render_priv_json_ms(tp_buf *b, int64_t ns);

/** Append ,"key": and ns as tp_render_priv_json_ms() writes it. */
void tp_render_priv_json_kms(tp_buf *b, const char *key, int64_t ns);

/** Append "module.qualname" of f (just the qualname without a module) as a
 *  JSON string. */
void tp_render_priv_json_name(tp_buf *b, const tp_func *f);

/** Append "name","module","qualname","file" of f as JSON members (no
 *  braces, no leading comma). */
void tp_render_priv_json_func(tp_buf *b, const tp_func *f);

/** Append s as a JSON string cut at max bytes (0: never) on a character
 *  boundary, setting *cut when it was; null for NULL. */
void tp_render_priv_json_text(tp_buf *b, const char *s, uint32_t max, bool *cut);

/** The stats header block with a choice of style and colour (the public
 *  tp_render_stats_header() is unicode without colour). */
int tp_render_priv_header(const tp_tree *t, const tp_stats *s, bool ascii, bool color, tp_buf *out);

#endif
