/* Machine-readable renderers: tracepatch JSON, CSV, Chrome trace events and
 * folded stacks.
 *
 * JSON keeps tracepatch 1.0.0's schema and adds keys (see tp_render_json()).
 * Its times are microseconds for 1.0.0's readers (start/end in Unix seconds,
 * elapsed_ms), all from one truncated clock: wall_us = wall_start_ns / 1000
 * and t_us = wall_us + node_ns / 1000. Exact nanoseconds travel beside them
 * (wall_start_ns, duration_ns, and start_ns/end_ns since the trace start per
 * call), so a tree written, loaded (proto/load.c) and written again gives the
 * same bytes.
 *
 * Every walk is iterative over the index links, and pretty-printed JSON stops
 * indenting deeper than JSON_INDENT_CAP levels, so a 100k-deep trace costs
 * linear time and output, not a C stack overflow or quadratic whitespace. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render.h"
#include "render_priv.h"
#include "tp_err.h"
#include "tree_priv.h"
#include "tp_version.h"

#define JSON_INDENT_CAP  64 /* deepest indentation level written (2 spaces each) */
#define CONFIG_MAX_DEPTH 64 /* nesting accepted in a trace's config object */
#define NS_PER_US        INT64_C(1000)

/* ---- JSON writer --------------------------------------------------------- */

typedef struct jw {
    tp_buf *b;
    bool pretty;
    bool first;     /* the innermost open container has no element yet */
    uint32_t depth; /* open containers */
} jw;

static void jw_indent(jw *w)
{
    static const char spaces[] = "                                ";
    if (!w->pretty)
        return;
    tp_buf_putc(w->b, '\n');
    size_t n = (size_t)(w->depth < JSON_INDENT_CAP ? w->depth : JSON_INDENT_CAP) * 2;
    while (n) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        tp_buf_append(w->b, spaces, k);
        n -= k;
    }
}

/* Before an element of the innermost container. */
static void jw_elem(jw *w)
{
    if (!w->first)
        tp_buf_putc(w->b, ',');
    w->first = false;
    jw_indent(w);
}

static void jw_open(jw *w, char c)
{
    tp_buf_putc(w->b, c);
    w->depth++;
    w->first = true;
}

static void jw_close(jw *w, char c)
{
    w->depth--;
    if (!w->first)
        jw_indent(w);
    tp_buf_putc(w->b, c);
    w->first = false;
}

/* The body of a JSON string: escapes what JSON requires and turns bytes that
 * are not UTF-8 into U+FFFD, so any input gives a valid document. */
static void json_escape(tp_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            tp_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            tp_buf_append(b, e, 2);
            i++;
        } else if (c < 0x20) {
            const char *short_esc = c == '\n'   ? "\\n"
                                    : c == '\r' ? "\\r"
                                    : c == '\t' ? "\\t"
                                    : c == '\b' ? "\\b"
                                    : c == '\f' ? "\\f"
                                                : NULL;
            if (short_esc)
                tp_buf_puts(b, short_esc);
            else
                tp_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            uint32_t cp;
            size_t len = tp_utf8_decode(p + i, n - i, &cp);
            if (len) {
                tp_buf_append(b, p + i, len);
                i += len;
            } else {
                tp_buf_puts(b, "\xef\xbf\xbd");
                i++;
            }
        }
    }
}

static void jw_str(jw *w, const char *s)
{
    if (!s) {
        tp_buf_puts(w->b, "null");
        return;
    }
    tp_buf_putc(w->b, '"');
    json_escape(w->b, s, strlen(s));
    tp_buf_putc(w->b, '"');
}

/* Separator, quoted key and colon in one append: a trace has millions. */
static void jw_key(jw *w, const char *k)
{
    char tmp[64];
    size_t kl = strlen(k), n = 0;
    if (w->pretty || kl > sizeof(tmp) - 4) {
        jw_elem(w);
        tp_buf_putc(w->b, '"');
        tp_buf_puts(w->b, k);
        tp_buf_puts(w->b, w->pretty ? "\": " : "\":");
        return;
    }
    if (!w->first)
        tmp[n++] = ',';
    w->first = false;
    tmp[n++] = '"';
    memcpy(tmp + n, k, kl);
    n += kl;
    tmp[n++] = '"';
    tmp[n++] = ':';
    tp_buf_append(w->b, tmp, n);
}

static void jw_kstr(jw *w, const char *k, const char *v)
{
    jw_key(w, k);
    jw_str(w, v);
}

static void jw_kbool(jw *w, const char *k, bool v)
{
    jw_key(w, k);
    tp_buf_puts(w->b, v ? "true" : "false");
}

static void jw_ku64(jw *w, const char *k, uint64_t v)
{
    jw_key(w, k);
    tp_render_priv_u64(w->b, v);
}

/* Milliseconds with microsecond precision: ns is truncated to whole µs. */
static void jw_kms(jw *w, const char *k, int64_t ns)
{
    int64_t us = ns > 0 ? ns / NS_PER_US : 0;
    jw_key(w, k);
    tp_render_priv_fixed(w->b, us / 1000, us % 1000, 3);
}

/* Unix seconds with microsecond precision. */
static void jw_kseconds(jw *w, const char *k, int64_t us)
{
    if (us < 0)
        us = 0;
    jw_key(w, k);
    tp_render_priv_fixed(w->b, us / 1000000, us % 1000000, 6);
}

/* "Type: message" (or "Type" without a message). */
static void put_exc_text(tp_buf *b, const tp_node *n)
{
    const char *ty = n->exc_type ? n->exc_type : "";
    json_escape(b, ty, strlen(ty));
    if (n->exc_msg && n->exc_msg[0]) {
        tp_buf_puts(b, ": ");
        json_escape(b, n->exc_msg, strlen(n->exc_msg));
    }
}

/* ---- The config object ------------------------------------------------------ */

typedef struct scan {
    const char *s;
    size_t n, i;
} scan;

static void skip_ws(scan *c)
{
    while (c->i < c->n &&
           (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int hex4(scan *c, uint32_t *ret)
{
    uint32_t v = 0;
    if (c->n - c->i < 4)
        return -1;
    for (int k = 0; k < 4; k++) {
        char h = c->s[c->i++];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= (uint32_t)(h - '0');
        else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
            v |= (uint32_t)((h | 0x20) - 'a' + 10);
        else
            return -1;
    }
    *ret = v;
    return 0;
}

static void put_utf8(tp_buf *b, uint32_t cp)
{
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        tp_buf_append(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        tp_buf_append(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        tp_buf_append(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        tp_buf_append(b, u, 4);
    }
}

/* Decodes a JSON string (at its opening quote) into raw UTF-8 in tmp. Lone
 * surrogates become U+FFFD; raw bytes are checked later by json_escape(). */
static int scan_string(scan *c, tp_buf *tmp)
{
    tp_buf_reset(tmp);
    c->i++;
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->s[c->i++];
        if (ch == '"')
            return tp_buf_error(tmp) ? -1 : 0;
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            tp_buf_append(tmp, &ch, 1);
            continue;
        }
        if (c->i >= c->n)
            return -1;
        char e = c->s[c->i++];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            tp_buf_putc(tmp, out[simple - "\"\\/bfnrt"]);
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || hex4(c, &cp))
            return -1;
        if (cp >= 0xd800 && cp < 0xdc00 && c->n - c->i >= 6 && c->s[c->i] == '\\' &&
            c->s[c->i + 1] == 'u') {
            size_t save = c->i;
            c->i += 2;
            if (!hex4(c, &lo) && lo >= 0xdc00 && lo < 0xe000)
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else
                c->i = save;
        }
        put_utf8(tmp, cp >= 0xd800 && cp < 0xe000 ? 0xfffd : cp);
    }
    return -1;
}

/* Copies a JSON number (grammar checked) or literal. */
static int scan_scalar(scan *c, jw *w)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lits[k]);
        if (c->n - c->i >= l && !memcmp(c->s + c->i, lits[k], l)) {
            tp_buf_append(w->b, lits[k], l);
            c->i += l;
            return 0;
        }
    }
    size_t st = c->i;
#define DIGITS(min)                                                                                \
    do {                                                                                           \
        size_t d0 = c->i;                                                                          \
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')                              \
            c->i++;                                                                                \
        if (c->i - d0 < (min))                                                                     \
            return -1;                                                                             \
    } while (0)
    if (c->i < c->n && c->s[c->i] == '-')
        c->i++;
    if (c->i < c->n && c->s[c->i] == '0')
        c->i++;
    else
        DIGITS(1);
    if (c->i < c->n && c->s[c->i] == '.') {
        c->i++;
        DIGITS(1);
    }
    if (c->i < c->n && (c->s[c->i] | 0x20) == 'e') {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
            c->i++;
        DIGITS(1);
    }
#undef DIGITS
    tp_buf_append(w->b, c->s + st, c->i - st);
    return 0;
}

/* Reads an object key (and its ':') and writes it as the next member. */
static int config_key(scan *c, jw *w, tp_buf *tmp)
{
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != '"' || scan_string(c, tmp))
        return -1;
    jw_elem(w);
    tp_buf_putc(w->b, '"');
    json_escape(w->b, tmp->data ? tmp->data : "", tmp->len);
    tp_buf_puts(w->b, w->pretty ? "\": " : "\":");
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != ':')
        return -1;
    c->i++;
    return 0;
}

/* Re-emits the config object through the writer (so it is indented like the
 * rest and its strings are escaped like ours). The text comes from a client,
 * so it is checked, not trusted: anything but one valid JSON object makes it
 * "{}". Iterative, with bounded nesting. */
static int config_copy(scan *c, jw *w, tp_buf *tmp)
{
    char stack[CONFIG_MAX_DEPTH];
    int sp = 0;
    bool want_value = true; /* otherwise: after a value */
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != '{')
        return -1;
    for (;;) {
        skip_ws(c);
        if (c->i >= c->n)
            return -1;
        char ch = c->s[c->i];
        if (want_value && (ch == '{' || ch == '[')) {
            char close = ch == '{' ? '}' : ']';
            if (sp == CONFIG_MAX_DEPTH)
                return -1;
            stack[sp++] = close;
            c->i++;
            jw_open(w, ch);
            skip_ws(c);
            if (c->i < c->n && c->s[c->i] == close) {
                want_value = false; /* empty: closed just below */
            } else if (ch == '{') {
                if (config_key(c, w, tmp))
                    return -1;
            } else {
                jw_elem(w);
            }
            continue;
        }
        if (want_value) {
            if (ch == '"') {
                if (scan_string(c, tmp))
                    return -1;
                tp_buf_putc(w->b, '"');
                json_escape(w->b, tmp->data ? tmp->data : "", tmp->len);
                tp_buf_putc(w->b, '"');
            } else if (scan_scalar(c, w)) {
                return -1;
            }
            want_value = false;
            continue;
        }
        if (ch == ',' && !w->first) {
            c->i++;
            if (stack[sp - 1] == '}' ? config_key(c, w, tmp) : (jw_elem(w), 0))
                return -1;
            want_value = true;
            continue;
        }
        if (ch != stack[sp - 1])
            return -1;
        c->i++;
        jw_close(w, ch);
        if (--sp == 0) {
            skip_ws(c);
            return c->i == c->n ? 0 : -1;
        }
    }
}

static int jw_config(jw *w, const char *json)
{
    jw_key(w, "config");
    if (json) {
        tp_buf tmp = TP_BUF_INIT, out = TP_BUF_INIT;
        jw sub = {.b = &out, .pretty = w->pretty, .depth = w->depth};
        scan c = {json, strlen(json), 0};
        int bad = config_copy(&c, &sub, &tmp);
        int err = tp_buf_error(&tmp) ? tp_buf_error(&tmp) : tp_buf_error(&out);
        if (!bad && !err)
            tp_buf_append(w->b, out.data, out.len);
        tp_buf_free(&tmp);
        tp_buf_free(&out);
        if (err)
            return err;
        if (!bad)
            return 0;
    }
    tp_buf_puts(w->b, "{}");
    return 0;
}
/* ---- tracepatch JSON ---------------------------------------------------------- */

/* Local ISO-8601 time with microseconds, as Python's datetime.isoformat(). */
static void put_timestamp(tp_buf *b, int64_t wall_us)
{
    time_t sec = (time_t)(wall_us / 1000000);
    struct tm tm;
    char d[64];
    if (!localtime_r(&sec, &tm) || !strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(d, sizeof(d), "1970-01-01T00:00:00");
    tp_buf_printf(b, "\"%s.%06" PRId64 "\"", d, wall_us % 1000000);
}

static void json_func_name(jw *w, const tp_tree *t, uint32_t func)
{
    const tp_func *f = &t->funcs[func];
    tp_buf_putc(w->b, '"');
    if (f->module[0]) {
        json_escape(w->b, f->module, strlen(f->module));
        tp_buf_putc(w->b, '.');
    }
    json_escape(w->b, f->qualname, strlen(f->qualname));
    tp_buf_putc(w->b, '"');
}

static void json_stats_funcs(jw *w, const tp_tree *t, const tp_stats *s)
{
    jw_key(w, "functions");
    jw_open(w, '[');
    for (size_t i = 0; i < s->nfuncs; i++) {
        const tp_func_stats *f = &s->funcs[i];
        jw_elem(w);
        jw_open(w, '{');
        jw_key(w, "name");
        json_func_name(w, t, f->func);
        jw_kstr(w, "module", t->funcs[f->func].module);
        jw_kstr(w, "qualname", t->funcs[f->func].qualname);
        jw_ku64(w, "count", f->count);
        jw_kms(w, "total_ms", f->total_ns);
        jw_kms(w, "self_ms", f->self_ns);
        jw_kms(w, "min_ms", f->min_ns);
        jw_kms(w, "max_ms", f->max_ns);
        jw_kms(w, "avg_ms", f->count ? f->total_ns / (int64_t)f->count : 0);
        jw_ku64(w, "exceptions", f->nexc);
        jw_close(w, '}');
    }
    jw_close(w, ']');
    jw_key(w, "per_module");
    jw_open(w, '[');
    for (size_t i = 0; i < s->nmods; i++) {
        jw_elem(w);
        jw_open(w, '{');
        jw_kstr(w, "module", s->mods[i].module);
        jw_ku64(w, "calls", s->mods[i].calls);
        jw_ku64(w, "functions", s->mods[i].functions);
        jw_kms(w, "self_ms", s->mods[i].self_ns);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void json_stats(jw *w, const tp_tree *t, const tp_stats *s)
{
    bool has_slowest = s->slowest != TP_NONE && s->slowest < t->nnodes;
    const tp_node *slow = has_slowest ? &t->nodes[s->slowest] : NULL;
    jw_key(w, "stats");
    jw_open(w, '{');
    jw_ku64(w, "calls", s->calls);
    jw_ku64(w, "modules", s->modules);
    jw_ku64(w, "max_depth", s->max_depth);
    jw_ku64(w, "unique_functions", s->unique_functions);
    jw_ku64(w, "exceptions", s->exceptions);
    jw_kms(w, "duration_ms", s->duration_ns);
    jw_key(w, "slowest");
    if (slow) {
        jw_open(w, '{');
        jw_key(w, "name");
        json_func_name(w, t, slow->func);
        jw_kms(w, "elapsed_ms", slow->total_ns);
        jw_close(w, '}');
    } else {
        tp_buf_puts(w->b, "null");
    }
    jw_key(w, "most_called");
    if (s->most_called != TP_NONE) {
        uint64_t count = 0;
        for (size_t i = 0; i < s->nfuncs; i++)
            if (s->funcs[i].func == s->most_called)
                count = s->funcs[i].count;
        jw_open(w, '{');
        jw_key(w, "name");
        json_func_name(w, t, s->most_called);
        jw_ku64(w, "count", count);
        jw_close(w, '}');
    } else {
        tp_buf_puts(w->b, "null");
    }
    json_stats_funcs(w, t, s);
    /* tracepatch 1.0.0's names for the same facts. */
    jw_ku64(w, "max_depth_reached", s->max_depth);
    jw_ku64(w, "unique_modules", s->modules);
    jw_kms(w, "slowest_call_ms", slow ? slow->total_ns : 0);
    jw_key(w, "slowest_call_name");
    if (slow)
        json_func_name(w, t, slow->func);
    else
        tp_buf_puts(w->b, "\"\"");
    jw_close(w, '}');
}

/* A node's keys up to and including the opening of "children". */
static void json_node(jw *w, const tp_tree *t, const tp_node *n, int64_t wall_us)
{
    const tp_func *f = &t->funcs[n->func];
    int64_t start_us = wall_us + n->start_ns / NS_PER_US;
    int64_t end_us = wall_us + n->end_ns / NS_PER_US;
    bool exc = (n->flags & TP_NODE_EXC) != 0;
    jw_elem(w);
    jw_open(w, '{');
    jw_kstr(w, "name", f->qualname);
    jw_kstr(w, "module", f->module);
    jw_kstr(w, "args", n->args);
    jw_kstr(w, "return_value", exc ? NULL : n->ret);
    jw_key(w, "exception");
    if (exc) {
        tp_buf_putc(w->b, '"');
        put_exc_text(w->b, n);
        tp_buf_putc(w->b, '"');
    } else {
        tp_buf_puts(w->b, "null");
    }
    jw_kseconds(w, "start", start_us);
    jw_kseconds(w, "end", end_us);
    /* A call's active time (a generator's resumes); a folded group's span
     * (its summed time is total_ms). */
    jw_kms(w, "elapsed_ms", (n->flags & TP_NODE_FOLDED) ? n->end_ns - n->start_ns : n->total_ns);
    jw_kstr(w, "file", f->file[0] ? f->file : NULL);
    jw_key(w, "lineno");
    if (f->lineno > 0)
        tp_render_priv_u64(w->b, (uint64_t)f->lineno);
    else
        tp_buf_puts(w->b, "null");
    jw_kstr(w, "qualname", f->qualname);
    jw_kstr(w, "exception_type", n->exc_type);
    jw_kstr(w, "exception_message", n->exc_type ? n->exc_msg : NULL);
    jw_kbool(w, "caught", (n->flags & TP_NODE_CAUGHT) != 0);
    jw_kbool(w, "unfinished", (n->flags & TP_NODE_OPEN) != 0);
    jw_kbool(w, "generator", (n->flags & TP_NODE_GEN) != 0);
    jw_ku64(w, "suspends", n->suspends);
    jw_ku64(w, "thread", n->thread);
    jw_ku64(w, "start_ns", (uint64_t)(n->start_ns > 0 ? n->start_ns : 0));
    jw_ku64(w, "end_ns", (uint64_t)(n->end_ns > 0 ? n->end_ns : 0));
    if (!(n->flags & TP_NODE_FOLDED)) {
        jw_ku64(w, "active_ns", (uint64_t)(n->total_ns > 0 ? n->total_ns : 0));
        jw_ku64(w, "self_ns", (uint64_t)(n->self_ns > 0 ? n->self_ns : 0));
    }
    if (n->flags & TP_NODE_FOLDED) {
        /* A folded tree (tph tree --json, tphd): start/end span the group. */
        jw_ku64(w, "count", n->count);
        jw_kms(w, "total_ms", n->total_ns);
        jw_kms(w, "self_ms", n->self_ns);
        jw_kms(w, "min_ms", n->min_ns);
        jw_kms(w, "max_ms", n->max_ns);
        jw_ku64(w, "raised", n->nexc);
        jw_kbool(w, "args_mixed", (n->flags & TP_NODE_ARGS_MIXED) != 0);
        jw_kbool(w, "return_mixed", (n->flags & TP_NODE_RET_MIXED) != 0);
    }
    jw_key(w, "children");
    jw_open(w, '[');
}

static void json_trace(jw *w, const tp_tree *t, int64_t wall_us)
{
    jw_key(w, "trace");
    jw_open(w, '[');
    uint32_t i = t->first_root;
    while (i != TP_NONE) {
        json_node(w, t, &t->nodes[i], wall_us);
        if (t->nodes[i].first_child != TP_NONE) {
            i = t->nodes[i].first_child;
            continue;
        }
        /* Close this node, then every ancestor whose children are done. */
        while (i != TP_NONE) {
            jw_close(w, ']');
            jw_close(w, '}');
            if (t->nodes[i].next != TP_NONE) {
                i = t->nodes[i].next;
                break;
            }
            i = t->nodes[i].parent;
        }
    }
    jw_close(w, ']');
}

/* The document, key by key (1.0.0's keys first, ours marked +):
 *
 *   tracepatch_version  "2.0.0"       schema_version  1
 *   timestamp           local ISO-8601 of the trace start, with µs
 *   label, trace_id     string or null
 *   start +             Unix seconds, µs      wall_start_ns +  exact
 *   duration_ms         with µs               duration_ns +    exact
 *   call_count, was_limited, limit_reason, dropped +
 *   config              the trace's config object ({} when none or invalid)
 *   stats               calls, modules, max_depth, unique_functions,
 *                       exceptions +, duration_ms, slowest {name, elapsed_ms},
 *                       most_called {name, count}, functions [{name, module,
 *                       qualname, count, total_ms, self_ms, min_ms, max_ms,
 *                       avg_ms, exceptions}], per_module [{module, calls,
 *                       functions, self_ms}], and 1.0.0's max_depth_reached,
 *                       unique_modules, slowest_call_ms, slowest_call_name
 *   trace               root calls, each: name (the qualname), module, args,
 *                       return_value, exception ("Type: message"), start, end
 *                       (Unix seconds, µs), elapsed_ms, file, lineno (null
 *                       when unknown); + qualname, exception_type,
 *                       exception_message, caught, unfinished, generator,
 *                       suspends, thread, start_ns, end_ns (since the trace
 *                       start); on a folded node + count, total_ms, self_ms,
 *                       min_ms, max_ms, raised, args_mixed, return_mixed;
 *                       then children. */
int tp_render_json(const tp_tree *t, bool pretty, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    tp_stats *s = NULL;
    int r = tp_tree_stats(t, &s);
    if (r)
        return r;
    const tp_trace_meta *m = &t->meta;
    int64_t wall_us = m->wall_start_ns > 0 ? m->wall_start_ns / NS_PER_US : 0;
    jw w = {.b = out, .pretty = pretty, .first = true};
    jw_open(&w, '{');
    jw_kstr(&w, "tracepatch_version", TP_VERSION);
    jw_ku64(&w, "schema_version", 1);
    jw_key(&w, "timestamp");
    put_timestamp(out, wall_us);
    jw_kstr(&w, "label", m->label);
    jw_kstr(&w, "trace_id", m->trace_id[0] ? m->trace_id : NULL);
    jw_kseconds(&w, "start", wall_us);
    jw_ku64(&w, "wall_start_ns", (uint64_t)(m->wall_start_ns > 0 ? m->wall_start_ns : 0));
    jw_kms(&w, "duration_ms", m->duration_ns);
    jw_ku64(&w, "duration_ns", (uint64_t)(m->duration_ns > 0 ? m->duration_ns : 0));
    jw_ku64(&w, "call_count", m->call_count);
    jw_kbool(&w, "was_limited", m->limit_reason != NULL);
    jw_kstr(&w, "limit_reason", m->limit_reason);
    jw_ku64(&w, "dropped", m->dropped);
    r = jw_config(&w, m->config_json);
    if (!r) {
        json_stats(&w, t, s);
        json_trace(&w, t, wall_us);
        jw_close(&w, '}');
        tp_buf_putc(out, '\n');
        r = tp_buf_error(out);
    }
    tp_stats_free(s);
    return r;
}

/* ---- CSV ------------------------------------------------------------------------ */

/* Columns: tracepatch 1.0.0's seven, in its order, then ours. Times use the
 * JSON clock; elapsed_ms and self_ms have 4 decimals like 1.0.0's. */
#define CSV_HEADER                                                                                 \
    "module,function,args,return_value,elapsed_ms,depth,parent,exception,start,end,self_ms,"       \
    "file,lineno\r\n"

/* One RFC 4180 cell. Text starting with = + - @ (or a tab or CR) gets a
 * leading ' so spreadsheets do not run it as a formula; bytes that are not
 * UTF-8 become U+FFFD. */
static void csv_cell(tp_buf *b, const char *a, const char *sep, const char *c)
{
    const char *parts[3] = {a ? a : "", sep ? sep : "", c ? c : ""};
    bool quote = false;
    for (int k = 0; k < 3; k++)
        if (strpbrk(parts[k], ",\"\r\n"))
            quote = true;
    char first = parts[0][0] ? parts[0][0] : parts[1][0] ? parts[1][0] : parts[2][0];
    if (quote)
        tp_buf_putc(b, '"');
    if (first && strchr("=+-@\t\r", first))
        tp_buf_putc(b, '\'');
    for (int k = 0; k < 3; k++) {
        const unsigned char *p = (const unsigned char *)parts[k];
        size_t n = strlen(parts[k]), i = 0;
        while (i < n) {
            size_t run = i;
            while (run < n && p[run] < 0x80 && p[run] != '"')
                run++;
            tp_buf_append(b, p + i, run - i);
            if ((i = run) >= n)
                break;
            uint32_t cp;
            size_t len = p[i] == '"' ? 1 : tp_utf8_decode(p + i, n - i, &cp);
            if (p[i] == '"')
                tp_buf_append(b, "\"\"", 2);
            else if (!len)
                tp_buf_puts(b, "\xef\xbf\xbd");
            else
                tp_buf_append(b, p + i, len);
            i += len ? len : 1;
        }
    }
    if (quote)
        tp_buf_putc(b, '"');
}

static void csv_name(tp_buf *b, const tp_tree *t, uint32_t func)
{
    const tp_func *f = &t->funcs[func];
    csv_cell(b, f->module, f->module[0] ? "." : "", f->qualname);
}

static void csv_seconds(tp_buf *b, int64_t us)
{
    tp_render_priv_fixed(b, us / 1000000, us % 1000000, 6);
}

static void csv_row(tp_buf *b, const tp_tree *t, const tp_node *n, int64_t wall_us)
{
    const tp_func *f = &t->funcs[n->func];
    bool exc = (n->flags & TP_NODE_EXC) != 0;
    csv_cell(b, f->module, NULL, NULL);
    tp_buf_putc(b, ',');
    csv_cell(b, f->qualname, NULL, NULL);
    tp_buf_putc(b, ',');
    csv_cell(b, n->args, NULL, NULL);
    tp_buf_putc(b, ',');
    csv_cell(b, exc ? NULL : n->ret, NULL, NULL);
    tp_buf_putc(b, ',');
    tp_render_priv_ms(b, n->total_ns, 4);
    tp_buf_putc(b, ',');
    tp_render_priv_u64(b, n->depth);
    tp_buf_putc(b, ',');
    if (n->parent != TP_NONE)
        csv_name(b, t, t->nodes[n->parent].func);
    tp_buf_putc(b, ',');
    if (exc)
        csv_cell(b, n->exc_type, n->exc_msg && n->exc_msg[0] ? ": " : NULL, n->exc_msg);
    tp_buf_putc(b, ',');
    csv_seconds(b, wall_us + n->start_ns / NS_PER_US);
    tp_buf_putc(b, ',');
    csv_seconds(b, wall_us + n->end_ns / NS_PER_US);
    tp_buf_putc(b, ',');
    tp_render_priv_ms(b, n->self_ns, 4);
    tp_buf_putc(b, ',');
    csv_cell(b, f->file, NULL, NULL);
    tp_buf_putc(b, ',');
    if (f->lineno > 0)
        tp_render_priv_u64(b, (uint64_t)f->lineno);
    tp_buf_append(b, "\r\n", 2);
}

int tp_render_csv(const tp_tree *t, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    int64_t wall_us = t->meta.wall_start_ns > 0 ? t->meta.wall_start_ns / NS_PER_US : 0;
    tp_buf_puts(out, CSV_HEADER);
    uint32_t i = t->first_root;
    while (i != TP_NONE && !tp_buf_error(out)) {
        csv_row(out, t, &t->nodes[i], wall_us);
        i = tp_tree_priv_next(t, i);
    }
    return tp_buf_error(out);
}

/* ---- Chrome trace events ---------------------------------------------------------- */

/* Microseconds with nanosecond decimals. */
static void put_us(tp_buf *b, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    tp_render_priv_fixed(b, ns / NS_PER_US, ns % NS_PER_US, 3);
}

static void chrome_event(jw *w, const tp_tree *t, const tp_node *n)
{
    const tp_func *f = &t->funcs[n->func];
    tp_buf *b = w->b;
    tp_buf_puts(b, "{\"name\":");
    json_func_name(w, t, n->func);
    tp_buf_puts(b, ",\"cat\":");
    jw_str(w, f->module);
    tp_buf_puts(b, ",\"ph\":\"X\",\"ts\":");
    put_us(b, n->start_ns);
    tp_buf_puts(b, ",\"dur\":");
    put_us(b, n->end_ns - n->start_ns);
    tp_buf_puts(b, ",\"pid\":1,\"tid\":");
    tp_render_priv_u64(b, n->thread);
    tp_buf_puts(b, ",\"args\":");
    jw a = {.b = b, .first = true};
    jw_open(&a, '{');
    if (n->args)
        jw_kstr(&a, "args", n->args);
    if (n->ret && !(n->flags & TP_NODE_EXC))
        jw_kstr(&a, "return_value", n->ret);
    if (n->flags & TP_NODE_EXC) {
        jw_key(&a, "exception");
        tp_buf_putc(b, '"');
        put_exc_text(b, n);
        tp_buf_putc(b, '"');
    } else if ((n->flags & TP_NODE_CAUGHT) && n->exc_type) {
        jw_kstr(&a, "caught", n->exc_type);
    }
    if (n->flags & TP_NODE_OPEN)
        jw_kbool(&a, "unfinished", true);
    if (n->flags & TP_NODE_FOLDED)
        jw_ku64(&a, "count", n->count);
    jw_close(&a, '}');
    tp_buf_putc(b, '}');
}

int tp_render_chrome(const tp_tree *t, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    jw w = {.b = out, .first = true};
    bool first = true;
    tp_buf_puts(out, "{\"traceEvents\":[");
    if (t->meta.label) {
        tp_buf_puts(out, "\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,"
                         "\"args\":{\"name\":");
        jw_str(&w, t->meta.label);
        tp_buf_puts(out, "}}");
        first = false;
    }
    uint32_t i = t->first_root;
    while (i != TP_NONE && !tp_buf_error(out)) {
        tp_buf_puts(out, first ? "\n" : ",\n");
        first = false;
        chrome_event(&w, t, &t->nodes[i]);
        i = tp_tree_priv_next(t, i);
    }
    tp_buf_puts(out,
                first ? "],\"displayTimeUnit\":\"ms\"}\n" : "\n],\"displayTimeUnit\":\"ms\"}\n");
    return tp_buf_error(out);
}

/* ---- Folded stacks -------------------------------------------------------------- */

#define FOLDED_MAX_TEXT ((size_t)256 * 1024 * 1024) /* all stack lines together */

/* A unique stack: the stack of its parent plus one function. */
typedef struct fstack {
    uint32_t parent; /* stack id, TP_NONE at a root */
    uint32_t func;
    uint32_t depth;
    int64_t self_ns;
} fstack;

typedef struct fline {
    size_t off; /* into the text buffer, NUL-terminated */
    int64_t self_ns;
} fline;

typedef struct folded_ctx {
    fstack *st;
    size_t nst;
    uint32_t *hash; /* open addressing: stack id + 1, 0 = empty */
    size_t hcap;
    tp_buf text;
    fline *lines;
    size_t nlines;
} folded_ctx;

static uint64_t stack_hash(uint32_t parent, uint32_t func)
{
    uint64_t x = ((uint64_t)parent << 32 | func) + 0x9e3779b97f4a7c15ULL;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* Finds or adds the stack (parent, func); the table holds at most nnodes. */
static uint32_t stack_id(folded_ctx *c, uint32_t parent, uint32_t func)
{
    size_t i = stack_hash(parent, func) & (c->hcap - 1);
    while (c->hash[i]) {
        fstack *s = &c->st[c->hash[i] - 1];
        if (s->parent == parent && s->func == func)
            return c->hash[i] - 1;
        i = (i + 1) & (c->hcap - 1);
    }
    uint32_t id = (uint32_t)c->nst++;
    c->st[id] = (fstack){parent, func, parent == TP_NONE ? 0 : c->st[parent].depth + 1, 0};
    c->hash[i] = id + 1;
    return id;
}

/* "module.qualname" for a frame: ';' would split the stack and control bytes
 * would break the line, so they become ':' and '?'. */
static void folded_name(tp_buf *b, const tp_tree *t, uint32_t func)
{
    const tp_func *f = &t->funcs[func];
    const char *parts[3] = {f->module, f->module[0] ? "." : "", f->qualname};
    for (int k = 0; k < 3; k++) {
        const unsigned char *p = (const unsigned char *)parts[k];
        size_t n = strlen(parts[k]), i = 0;
        while (i < n) {
            size_t run = i;
            while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != ';')
                run++;
            tp_buf_append(b, p + i, run - i);
            if ((i = run) >= n)
                break;
            uint32_t cp;
            size_t len = p[i] >= 0x80 ? tp_utf8_decode(p + i, n - i, &cp) : 1;
            if (p[i] == ';')
                tp_buf_putc(b, ':');
            else if (p[i] < 0x80)
                tp_buf_putc(b, '?');
            else if (!len)
                tp_buf_puts(b, "\xef\xbf\xbd");
            else
                tp_buf_append(b, p + i, len);
            i += len ? len : 1;
        }
    }
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int folded_collect(folded_ctx *c, const tp_tree *t)
{
    uint32_t *sid = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*sid));
    if (!sid)
        return -ENOMEM;
    uint32_t i = t->first_root;
    while (i != TP_NONE) {
        const tp_node *n = &t->nodes[i];
        sid[i] = stack_id(c, n->parent == TP_NONE ? TP_NONE : sid[n->parent], n->func);
        c->st[sid[i]].self_ns = add_sat(c->st[sid[i]].self_ns, n->self_ns);
        i = tp_tree_priv_next(t, i);
    }
    free(sid);
    return 0;
}

/* Spells out every stack with time of its own, root first. */
static int folded_spell(folded_ctx *c, const tp_tree *t)
{
    uint32_t *chain = NULL;
    size_t chain_cap = 0;
    int r = 0;
    for (size_t id = 0; id < c->nst; id++) {
        if (c->st[id].self_ns <= 0)
            continue;
        size_t len = (size_t)c->st[id].depth + 1;
        if (len > chain_cap) {
            uint32_t *ch = realloc(chain, len * sizeof(*ch));
            if (!ch) {
                r = -ENOMEM;
                break;
            }
            chain = ch;
            chain_cap = len;
        }
        size_t k = len;
        for (uint32_t s = (uint32_t)id; s != TP_NONE; s = c->st[s].parent)
            chain[--k] = c->st[s].func;
        c->lines[c->nlines++] = (fline){c->text.len, c->st[id].self_ns};
        for (k = 0; k < len; k++) {
            if (k)
                tp_buf_putc(&c->text, ';');
            folded_name(&c->text, t, chain[k]);
        }
        tp_buf_putc(&c->text, '\0');
        if ((r = tp_buf_error(&c->text)))
            break;
        if (c->text.len > FOLDED_MAX_TEXT) {
            r = TP_ERR_LIMIT;
            break;
        }
    }
    free(chain);
    return r;
}

static int cmp_fline(const void *pa, const void *pb, void *text)
{
    const fline *a = pa, *b = pb;
    return strcmp((const char *)text + a->off, (const char *)text + b->off);
}

int tp_render_folded(const tp_tree *t, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    folded_ctx c = {0};
    size_t n = t->nnodes ? t->nnodes : 1;
    c.hcap = 16;
    while (c.hcap < 2 * n)
        c.hcap *= 2;
    c.st = malloc(n * sizeof(*c.st));
    c.hash = calloc(c.hcap, sizeof(*c.hash));
    int r = c.st && c.hash ? folded_collect(&c, t) : -ENOMEM;
    if (!r) {
        c.lines = malloc((c.nst ? c.nst : 1) * sizeof(*c.lines));
        r = c.lines ? folded_spell(&c, t) : -ENOMEM;
    }
    if (r)
        goto cleanup;
    /* Two functions may print alike (same name, other file): sort the lines
     * and merge equal ones before rounding to microseconds. */
    qsort_r(c.lines, c.nlines, sizeof(*c.lines), cmp_fline, c.text.data);
    for (size_t i = 0; i < c.nlines;) {
        const char *s = c.text.data + c.lines[i].off;
        int64_t self = 0;
        size_t j = i;
        for (; j < c.nlines && !strcmp(s, c.text.data + c.lines[j].off); j++)
            self = add_sat(self, c.lines[j].self_ns);
        int64_t us = add_sat(self, NS_PER_US / 2) / NS_PER_US;
        if (us > 0)
            tp_buf_printf(out, "%s %" PRId64 "\n", s, us);
        i = j;
    }
    r = tp_buf_error(out);
cleanup:
    free(c.st);
    free(c.hash);
    free(c.lines);
    tp_buf_free(&c.text);
    return r;
}
