/* The one JSON writer of the C tree: every JSON document proto/, tphd and tph
 * produce (trace files, Chrome traces, statistics, diffs, the report UI's
 * data, query answers) is written through it, so the same string gives the
 * same bytes everywhere.
 *
 * A tp_json writes values, objects, arrays and keys into a caller's tp_buf,
 * compact or pretty (2 spaces per level, "key": value), and places commas,
 * newlines and indentation itself. Allocation failures are sticky in the
 * tp_buf (tp_buf_error()), so a document is checked once at the end. The
 * module keeps no global state: any thread may write its own documents.
 *
 * Strings, one rule (tp_json_escape()):
 *   - '"' and '\\' are escaped with a backslash;
 *   - \b \f \n \r \t use their two-character escapes, every other C0 control
 *     (U+0000-U+001F) is \u00XX with lowercase hex;
 *   - well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or values
 *     past U+10FFFF) is copied as it is, DEL, C1 controls, U+2028 and U+2029
 *     included (JSON allows them; JavaScript's JSON.parse too);
 *   - every byte that does not start or continue a well-formed sequence
 *     becomes U+FFFD, written as its UTF-8 bytes EF BF BD.
 * So any input gives valid UTF-8 JSON, and text that was already valid UTF-8
 * reads back byte for byte. */
#ifndef TP_JSON_H
#define TP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TP_JSON_INDENT_CAP 64 /* deepest level indented: a 100k-deep tree stays linear */
#define TP_JSON_COPY_DEPTH 64 /* nesting tp_json_copy() accepts */

/** A writer. Callers stack-allocate it, so its fields are public; all are
 *  private except b (read-only: the buffer written to). */
typedef struct tp_json {
    tp_buf *b;      /* read-only */
    bool pretty;    /* private */
    bool first;     /* private: the innermost container has no member yet */
    bool after_key; /* private: a key was written, its value comes next */
    uint32_t depth; /* private: open containers */
} tp_json;

/** Start a document in out (appended to, not reset). pretty: newlines and
 *  2-space indentation, "key": value; otherwise no whitespace at all. */
void tp_json_init(tp_json *w, tp_buf *out, bool pretty);

/** Open an object or array as the next value. */
void tp_json_obj(tp_json *w);
void tp_json_arr(tp_json *w);
/** Close the innermost object or array. Pretty output puts the closing
 *  bracket on its own line unless the container is empty ("{}", "[]"). */
void tp_json_obj_end(tp_json *w);
void tp_json_arr_end(tp_json *w);

/** The next member's key (a NUL-terminated string, escaped like values). */
void tp_json_key(tp_json *w, const char *k);

/** s as a string value; NULL writes null. */
void tp_json_str(tp_json *w, const char *s);
/** s[0..n) as a string value; s may hold NUL bytes (written \u0000). */
void tp_json_strn(tp_json *w, const char *s, size_t n);
void tp_json_null(tp_json *w);
void tp_json_bool(tp_json *w, bool v);
void tp_json_u64(tp_json *w, uint64_t v);
void tp_json_i64(tp_json *w, int64_t v);
/** "<whole>.<frac>" with frac zero-padded to digits (1-9) digits; negative
 *  whole values write 0 (times are never negative). */
void tp_json_fixed(tp_json *w, int64_t whole, int64_t frac, int digits);
/** ns as milliseconds, exact and without trailing zeros (1500 -> 0.0015,
 *  2000000 -> 2); negative values write 0. */
void tp_json_ms(tp_json *w, int64_t ns);
/** bytes as KiB (1024 bytes) with 3 decimals, rounded half up, signed:
 *  1000000 -> 976.563, -512 -> -0.500, 0 -> 0.000. */
void tp_json_kib(tp_json *w, int64_t bytes);
/** A member: the key, then the value as the functions above write it. */
void tp_json_kstr(tp_json *w, const char *k, const char *s);
void tp_json_kbool(tp_json *w, const char *k, bool v);
void tp_json_ku64(tp_json *w, const char *k, uint64_t v);
void tp_json_ki64(tp_json *w, const char *k, int64_t v);
void tp_json_kms(tp_json *w, const char *k, int64_t ns);

/** Text the caller guarantees is one valid JSON value (a number it
 *  formatted, a literal), written as it is. */
void tp_json_raw(tp_json *w, const char *s, size_t n);

/** Before a value the caller appends to w->b itself (another renderer's
 *  whole document, written straight into the same buffer): writes the
 *  separator and indentation a value needs here. */
void tp_json_external(tp_json *w);

/** Re-emit the JSON text json[0..n) (e.g. a client's config object) as the
 *  next value, indented like the rest of the document and with its strings
 *  escaped by the one rule. The text is checked, not trusted: on anything
 *  but exactly one JSON value of type object (any value when any is true),
 *  nested at most TP_JSON_COPY_DEPTH deep, nothing is written and
 *  TP_ERR_JSON is returned (the caller writes its fallback). Returns 0,
 *  TP_ERR_JSON or -ENOMEM. */
int tp_json_copy(tp_json *w, const char *json, size_t n, bool any);

/** 0, or -ENOMEM when an append to the buffer failed. */
int tp_json_error(const tp_json *w);

/* ---- The escaper and number text, for writers that build JSON by hand
 *      inside another format (a <script> element, a sort key) ---------- */

/** Append the body of a JSON string for s[0..n) (no quotes), by the rule
 *  above. */
void tp_json_escape(tp_buf *b, const char *s, size_t n);
/** Append s[0..n) as a JSON string literal, quotes included; NULL appends
 *  null. Returns tp_buf_error(b). */
int tp_json_string(tp_buf *b, const char *s, size_t n);
/** Append v in decimal (no printf: renderers write millions of numbers). */
void tp_json_put_u64(tp_buf *b, uint64_t v);
/** Append "<whole>.<frac>" as tp_json_fixed() writes it. */
void tp_json_put_fixed(tp_buf *b, int64_t whole, int64_t frac, int digits);
/** Append ns as tp_json_ms() writes it. */
void tp_json_put_ms(tp_buf *b, int64_t ns);

/** Decode one UTF-8 sequence at s (n > 0 bytes available). Returns its
 *  length (1-4) and the code point in *cp, or 0 when s[0] does not start a
 *  well-formed sequence (overlong forms, surrogates and values past
 *  U+10FFFF are rejected, as RFC 3629 asks). The rule the escaper applies,
 *  shared with the text and CSV renderers. */
static inline size_t tp_json_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
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

#endif
