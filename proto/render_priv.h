/* Internals shared by the renderers (proto/render_*.c). Not a contract:
 * nothing outside proto/render_*.c includes this header. UTF-8 decoding,
 * JSON strings and number text come from json.h. */
#ifndef TP_RENDER_PRIV_H
#define TP_RENDER_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"
#include "render.h"
#include "tree.h"

/* ANSI SGR sequences of the coloured text output. */
#define SGR_RESET "\x1b[0m"
#define SGR_BOLD  "\x1b[1m"
#define SGR_EXC   "\x1b[1;31m"
#define SGR_FAST  "\x1b[32m" /* < 1 ms */
#define SGR_SLOW  "\x1b[33m" /* < 100 ms */
#define SGR_HOT   "\x1b[31m" /* >= 100 ms */

/** Append s[0..n) for a terminal: control characters (C0, DEL, C1), line and
 *  paragraph separators and bidirectional overrides become visible escapes
 *  (\n, \r, \t, \xNN, \uXXXX), bytes that are not UTF-8 become \xNN, and with
 *  ascii every other non-ASCII character becomes \uXXXX (or \UXXXXXXXX), so a
 *  traced string can neither move the cursor nor fake a line. Backslashes are
 *  kept as they are: Python reprs already escape their own. */
void tp__render_text(tp_buf *b, const char *s, size_t n, bool ascii);

/** Columns that text produced by tp__render_text() takes (its code
 *  points; wide characters count as one). */
size_t tp__render_width(const char *s, size_t n);

/** Append "module.qualname" of func, escaped by tp__render_text(). */
void tp__render_name(tp_buf *b, const tp_tree *t, uint32_t func, bool ascii);

/** Append ns as milliseconds with `decimals` (3, 4 or 6) fixed decimals,
 *  rounded half up, from integers only ("0.050"). Negative values print 0. */
void tp__render_ms(tp_buf *b, int64_t ns, int decimals);

#define TP_DUR_MS    0x01 /* tracepatch 1.0.0's fixed "0.05ms" instead of 3 significant digits */
#define TP_DUR_ASCII 0x02 /* "us" for the microsecond (7-bit output) */

/** ns as tp_render_format_duration() spells it ("850ns", "1.23\u00b5s", "12.3ms",
 *  "1.23s"), or in 1.0.0's style with TP_DUR_MS, straight into the buffer. */
void tp__render_duration(tp_buf *b, int64_t ns, unsigned how);

/** Append n bytes of s escaped for HTML or XML text and attribute values
 *  (& < > " ' as entities): the one markup escaper (render_web.c). */
void tp__render_markup(tp_buf *b, const char *s, size_t n);

/** The TP_DUR_* flags a text tree's options ask for. */
unsigned tp__render_dur_how(const tp_render_opts *o);

/** "module.qualname" of f (just the qualname without a module) as a JSON
 *  string value: the dotted full name, for the keys that hold one string
 *  for a function (1.0.0's "slowest_call_name"; "name" is never this,
 *  see render.h). */
void tp__render_json_name(tp_json *w, const tp_func *f);

/** "name" (the qualname), "module" and "file" of f as the next members of
 *  w: how every JSON output names a function. */
void tp__render_json_func(tp_json *w, const tp_func *f);

/** "Type: message" (or "Type" without a message) of n's exception as a JSON
 *  string value, assembled in the caller's scratch buffer tmp. */
void tp__render_json_exc(tp_json *w, const tp_node *n, tp_buf *tmp);

/** s as a JSON string value cut at max bytes (0: never) on a character
 *  boundary, setting *cut when it was; null for NULL. */
void tp__render_json_text(tp_json *w, const char *s, uint32_t max, bool *cut);

/** The stats header block with a choice of style and colour (the public
 *  tp_render_stats_header() is unicode without colour). */
int tp__render_header(const tp_tree *t, const tp_stats *s, bool ascii, bool color, unsigned how,
                      tp_buf *out);

#endif
