/* The JSON writer and its escaper (json.h). */
#include <errno.h>
#include <string.h>

#include "json.h"
#include "tp_err.h"

/* ---- Number text and strings ----------------------------------------------- */

void tp_json_put_u64(tp_buf *b, uint64_t v)
{
    char d[20];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    tp_buf_append(b, d + i, sizeof(d) - i);
}

void tp_json_put_fixed(tp_buf *b, int64_t whole, int64_t frac, int digits)
{
    char d[10];
    tp_json_put_u64(b, whole > 0 ? (uint64_t)whole : 0);
    d[0] = '.';
    for (int k = digits; k > 0; k--) {
        d[k] = (char)('0' + (frac > 0 ? frac % 10 : 0));
        frac /= 10;
    }
    tp_buf_append(b, d, (size_t)digits + 1);
}

void tp_json_put_ms(tp_buf *b, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    char frac[6];
    int64_t whole = ns / 1000000, rest = ns % 1000000;
    int nd = 6;
    for (int i = 5; i >= 0; i--, rest /= 10)
        frac[i] = (char)('0' + rest % 10);
    while (nd > 0 && frac[nd - 1] == '0')
        nd--;
    tp_json_put_u64(b, (uint64_t)whole);
    if (nd) {
        tp_buf_putc(b, '.');
        tp_buf_append(b, frac, (size_t)nd);
    }
}

void tp_json_escape(tp_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* Plain ASCII goes out in one append: most text is nothing else. */
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
            static const char short_esc[] = "\b\f\n\r\t";
            static const char short_chr[] = "bfnrt";
            const char *k = c ? memchr(short_esc, c, 5) : NULL;
            if (k) {
                char e[2] = {'\\', short_chr[k - short_esc]};
                tp_buf_append(b, e, 2);
            } else {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                tp_buf_append(b, e, 6);
            }
            i++;
        } else {
            uint32_t cp;
            size_t len = tp_json_utf8_decode(p + i, n - i, &cp);
            if (len) {
                tp_buf_append(b, p + i, len);
                i += len;
            } else {
                tp_buf_append(b, "\xef\xbf\xbd", 3);
                i++;
            }
        }
    }
}

int tp_json_string(tp_buf *b, const char *s, size_t n)
{
    if (!s)
        return tp_buf_append(b, "null", 4);
    tp_buf_putc(b, '"');
    tp_json_escape(b, s, n);
    tp_buf_putc(b, '"');
    return tp_buf_error(b);
}

/* ---- Structure ------------------------------------------------------------ */

void tp_json_init(tp_json *w, tp_buf *out, bool pretty)
{
    *w = (tp_json){.b = out, .pretty = pretty, .first = true};
}

int tp_json_error(const tp_json *w)
{
    return tp_buf_error(w->b);
}

/* A newline and the deepest indentation, so that any line break is one
 * append of a prefix of it. */
#define SP16 "                "
static const char nl_indent[] = "\n" SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16;
_Static_assert(sizeof(nl_indent) == 2 + 2 * TP_JSON_INDENT_CAP, "one space pair per level");

static size_t indent_len(const tp_json *w)
{
    return 1 + (size_t)(w->depth < TP_JSON_INDENT_CAP ? w->depth : TP_JSON_INDENT_CAP) * 2;
}

static void indent(tp_json *w)
{
    if (w->pretty)
        tp_buf_append(w->b, nl_indent, indent_len(w));
}

/* Before any value: after a key nothing; in an array the separator and
 * indentation; at the top level nothing. */
static void value(tp_json *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->depth)
        return;
    if (!w->first)
        tp_buf_putc(w->b, ',');
    w->first = false;
    indent(w);
}

static void push(tp_json *w, char c)
{
    value(w);
    tp_buf_putc(w->b, c);
    w->depth++;
    w->first = true;
}

static void pop(tp_json *w, char c)
{
    if (!w->depth)
        return;
    w->depth--;
    if (!w->first)
        indent(w);
    tp_buf_putc(w->b, c);
    w->first = false;
}

void tp_json_obj(tp_json *w)
{
    push(w, '{');
}

void tp_json_arr(tp_json *w)
{
    push(w, '[');
}

void tp_json_obj_end(tp_json *w)
{
    pop(w, '}');
}

void tp_json_arr_end(tp_json *w)
{
    pop(w, ']');
}

/* A key that needs no escaping (all keys the renderers write). */
static bool plain_key(const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char u = (unsigned char)k[i];
        if (u < 0x20 || u >= 0x80 || u == '"' || u == '\\')
            return false;
    }
    return true;
}

void tp_json_key(tp_json *w, const char *k)
{
    size_t kn = strlen(k);
    tp_buf *b = w->b;
    if (plain_key(k, kn)) {
        /* Separator, line break, quoted key and colon in one piece: a trace
         * file has millions of keys. */
        size_t ind = w->pretty ? indent_len(w) : 0;
        size_t need = 1 + ind + kn + 4;
        if (!tp_buf_reserve(b, need)) {
            char *o = b->data + b->len;
            if (!w->first)
                *o++ = ',';
            memcpy(o, nl_indent, ind);
            o += ind;
            *o++ = '"';
            memcpy(o, k, kn);
            o += kn;
            *o++ = '"';
            *o++ = ':';
            if (w->pretty)
                *o++ = ' ';
            *o = '\0';
            b->len = (size_t)(o - b->data);
        }
        w->first = false;
        w->after_key = true;
        return;
    }
    if (!w->first)
        tp_buf_putc(b, ',');
    w->first = false;
    indent(w);
    tp_buf_putc(b, '"');
    tp_json_escape(b, k, kn);
    tp_buf_append(b, w->pretty ? "\": " : "\":", w->pretty ? 3 : 2);
    w->after_key = true;
}

/* ---- Values ---------------------------------------------------------------- */

void tp_json_strn(tp_json *w, const char *s, size_t n)
{
    value(w);
    tp_json_string(w->b, s, n);
}

void tp_json_str(tp_json *w, const char *s)
{
    tp_json_strn(w, s, s ? strlen(s) : 0);
}

void tp_json_null(tp_json *w)
{
    value(w);
    tp_buf_append(w->b, "null", 4);
}

void tp_json_bool(tp_json *w, bool v)
{
    value(w);
    tp_buf_puts(w->b, v ? "true" : "false");
}

void tp_json_u64(tp_json *w, uint64_t v)
{
    value(w);
    tp_json_put_u64(w->b, v);
}

void tp_json_i64(tp_json *w, int64_t v)
{
    value(w);
    if (v < 0) {
        tp_buf_putc(w->b, '-');
        tp_json_put_u64(w->b, (uint64_t)0 - (uint64_t)v);
    } else {
        tp_json_put_u64(w->b, (uint64_t)v);
    }
}

void tp_json_fixed(tp_json *w, int64_t whole, int64_t frac, int digits)
{
    value(w);
    tp_json_put_fixed(w->b, whole, frac, digits);
}

void tp_json_kib(tp_json *w, int64_t bytes)
{
    value(w);
    /* The magnitude as unsigned: -INT64_MIN does not fit an int64_t. */
    uint64_t u = bytes < 0 ? 0 - (uint64_t)bytes : (uint64_t)bytes;
    /* At most 1023 * 1000 + 512 < 1024000: the rounding never carries. */
    uint64_t whole = u / 1024, frac = ((u % 1024) * 1000 + 512) / 1024;
    if (bytes < 0 && (whole || frac))
        tp_buf_append(w->b, "-", 1);
    tp_json_put_u64(w->b, whole);
    char d[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                 (char)('0' + frac % 10)};
    tp_buf_append(w->b, d, sizeof(d));
}

void tp_json_ms(tp_json *w, int64_t ns)
{
    value(w);
    tp_json_put_ms(w->b, ns);
}

void tp_json_kstr(tp_json *w, const char *k, const char *s)
{
    tp_json_key(w, k);
    tp_json_str(w, s);
}

void tp_json_kbool(tp_json *w, const char *k, bool v)
{
    tp_json_key(w, k);
    tp_json_bool(w, v);
}

void tp_json_ku64(tp_json *w, const char *k, uint64_t v)
{
    tp_json_key(w, k);
    tp_json_u64(w, v);
}

void tp_json_ki64(tp_json *w, const char *k, int64_t v)
{
    tp_json_key(w, k);
    tp_json_i64(w, v);
}

void tp_json_kms(tp_json *w, const char *k, int64_t ns)
{
    tp_json_key(w, k);
    tp_json_ms(w, ns);
}

void tp_json_raw(tp_json *w, const char *s, size_t n)
{
    value(w);
    tp_buf_append(w->b, s, n);
}

void tp_json_external(tp_json *w)
{
    value(w);
}

/* ---- Re-emitting checked JSON text ------------------------------------------- */

typedef struct scan {
    const char *s;
    size_t n, i;
    tp_buf tmp; /* the current string, decoded */
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
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    tp_buf_append(b, u, n);
}

/* Decodes a JSON string (at its opening quote) into raw UTF-8 in c->tmp.
 * Lone surrogates become U+FFFD; raw bytes are checked by the escaper when
 * the string is written again. */
static int scan_string(scan *c)
{
    tp_buf_reset(&c->tmp);
    c->i++;
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->s[c->i++];
        if (ch == '"')
            return tp_buf_error(&c->tmp) ? -1 : 0;
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            tp_buf_append(&c->tmp, &ch, 1);
            continue;
        }
        if (c->i >= c->n)
            return -1;
        char e = c->s[c->i++];
        const char *simple = e ? strchr("\"\\/bfnrt", e) : NULL;
        if (simple) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            tp_buf_putc(&c->tmp, out[simple - "\"\\/bfnrt"]);
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
        put_utf8(&c->tmp, cp >= 0xd800 && cp < 0xe000 ? 0xfffd : cp);
    }
    return -1;
}

static int scan_digits(scan *c, size_t min)
{
    size_t d0 = c->i;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')
        c->i++;
    return c->i - d0 < min ? -1 : 0;
}

/* A number (grammar checked) or literal, copied as it is. */
static int scan_scalar(scan *c, tp_json *w)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lits[k]);
        if (c->n - c->i >= l && !memcmp(c->s + c->i, lits[k], l)) {
            tp_json_raw(w, lits[k], l);
            c->i += l;
            return 0;
        }
    }
    size_t st = c->i;
    if (c->i < c->n && c->s[c->i] == '-')
        c->i++;
    if (c->i < c->n && c->s[c->i] == '0')
        c->i++;
    else if (scan_digits(c, 1))
        return -1;
    if (c->i < c->n && c->s[c->i] == '.') {
        c->i++;
        if (scan_digits(c, 1))
            return -1;
    }
    if (c->i < c->n && (c->s[c->i] | 0x20) == 'e') {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
            c->i++;
        if (scan_digits(c, 1))
            return -1;
    }
    tp_json_raw(w, c->s + st, c->i - st);
    return 0;
}

/* An object key and its ':', written as the next member's key. */
static int scan_key(scan *c, tp_json *w)
{
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != '"' || scan_string(c))
        return -1;
    /* Keys may hold NUL bytes (\u0000): write them through the escaper. */
    if (!w->first)
        tp_buf_putc(w->b, ',');
    w->first = false;
    indent(w);
    tp_json_string(w->b, c->tmp.data ? c->tmp.data : "", c->tmp.len);
    tp_buf_append(w->b, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
    w->after_key = true;
    skip_ws(c);
    if (c->i >= c->n || c->s[c->i] != ':')
        return -1;
    c->i++;
    return 0;
}

/* Iterative, with bounded nesting: the text comes from a client. */
static int copy_value(scan *c, tp_json *w, bool any)
{
    char stack[TP_JSON_COPY_DEPTH];
    int sp = 0;
    bool want_value = true; /* otherwise: after a value */
    skip_ws(c);
    if (!any && (c->i >= c->n || c->s[c->i] != '{'))
        return -1;
    for (;;) {
        skip_ws(c);
        if (c->i >= c->n)
            return -1;
        char ch = c->s[c->i];
        if (want_value && (ch == '{' || ch == '[')) {
            char end = ch == '{' ? '}' : ']';
            if (sp == TP_JSON_COPY_DEPTH)
                return -1;
            stack[sp++] = end;
            c->i++;
            push(w, ch);
            skip_ws(c);
            if (c->i < c->n && c->s[c->i] == end)
                want_value = false; /* empty: closed just below */
            else if (ch == '{' && scan_key(c, w))
                return -1;
            continue;
        }
        if (want_value) {
            if (ch == '"') {
                if (scan_string(c))
                    return -1;
                tp_json_strn(w, c->tmp.data ? c->tmp.data : "", c->tmp.len);
            } else if (scan_scalar(c, w)) {
                return -1;
            }
            want_value = false;
        } else if (ch == ',' && sp && !w->first) {
            c->i++;
            if (stack[sp - 1] == '}' && scan_key(c, w))
                return -1;
            want_value = true;
            continue;
        } else if (sp && ch == stack[sp - 1]) {
            c->i++;
            pop(w, ch);
            sp--;
        } else {
            return -1;
        }
        if (sp == 0) {
            skip_ws(c);
            return c->i == c->n ? 0 : -1;
        }
    }
}

int tp_json_copy(tp_json *w, const char *json, size_t n, bool any)
{
    if (!json)
        return TP_ERR_JSON;
    /* Written aside first, so a bad text leaves nothing behind. */
    tp_buf out = TP_BUF_INIT;
    tp_json sub = *w;
    sub.b = &out;
    scan c = {.s = json, .n = n, .tmp = TP_BUF_INIT};
    int bad = copy_value(&c, &sub, any);
    int r = tp_buf_error(&c.tmp) ? tp_buf_error(&c.tmp) : tp_buf_error(&out);
    if (!r && bad)
        r = TP_ERR_JSON;
    if (!r) {
        tp_buf_append(w->b, out.data, out.len);
        w->first = sub.first;
        w->after_key = sub.after_key;
        r = tp_buf_error(w->b);
    }
    tp_buf_free(&c.tmp);
    tp_buf_free(&out);
    return r;
}
