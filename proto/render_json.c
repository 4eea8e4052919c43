/* Compact JSON pieces shared by tph, tphd and the report UI: strings, exact
 * millisecond times, statistics and diffs. There is one writer for each, so a
 * trace file (tph) and its stored copy (tphd) give the same bytes, and the
 * report UI reads the same shapes (docs/API.md).
 *
 * Times are nanoseconds written as milliseconds, exactly and without trailing
 * zeros (1500 ns is 0.0015), so no float formatting is involved. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_priv.h"
#include "render_web.h"

/* ---- Scalars ------------------------------------------------------------ */

int tp_render_web_string(tp_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        return tp_buf_puts(out, "null");
    const unsigned char *p = (const unsigned char *)s;
    tp_buf_putc(out, '"');
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        uint32_t cp;
        size_t len = c >= 0x20 && c != '"' && c != '\\' ? tp_utf8_decode(p + i, n - i, &cp) : 0;
        if (len) {
            i += len;
            continue;
        }
        tp_buf_append(out, p + run, i - run);
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            tp_buf_append(out, esc, 2);
        } else if (c == '\n') {
            tp_buf_puts(out, "\\n");
        } else if (c == '\t') {
            tp_buf_puts(out, "\\t");
        } else if (c == '\r') {
            tp_buf_puts(out, "\\r");
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            tp_buf_append(out, esc, 6);
        } else {
            tp_buf_puts(out, "\\ufffd");
        }
        i++;
        run = i;
    }
    tp_buf_append(out, p + run, n - run);
    tp_buf_putc(out, '"');
    return tp_buf_error(out);
}

void tp_render_priv_json_str(tp_buf *b, const char *s)
{
    tp_render_web_string(b, s, s ? strlen(s) : 0);
}

void tp_render_priv_json_ms(tp_buf *b, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    char frac[8];
    int64_t whole = ns / 1000000, rest = ns % 1000000;
    int nd = 6;
    for (int i = 5; i >= 0; i--, rest /= 10)
        frac[i] = (char)('0' + rest % 10);
    while (nd > 0 && frac[nd - 1] == '0')
        nd--;
    tp_render_priv_u64(b, (uint64_t)whole);
    if (nd) {
        tp_buf_putc(b, '.');
        tp_buf_append(b, frac, (size_t)nd);
    }
}

void tp_render_priv_json_kms(tp_buf *b, const char *key, int64_t ns)
{
    tp_buf_printf(b, ",\"%s\":", key);
    tp_render_priv_json_ms(b, ns);
}

void tp_render_priv_json_name(tp_buf *b, const tp_func *f)
{
    size_t ml = strlen(f->module), ql = strlen(f->qualname);
    char stackbuf[256];
    char *tmp = ml + ql + 1 < sizeof(stackbuf) ? stackbuf : malloc(ml + ql + 2);
    if (!tmp) {
        tp_buf_reserve(b, SIZE_MAX); /* makes the buffer's error sticky */
        return;
    }
    size_t n = 0;
    if (ml) {
        memcpy(tmp, f->module, ml);
        tmp[ml] = '.';
        n = ml + 1;
    }
    memcpy(tmp + n, f->qualname, ql);
    tp_render_web_string(b, tmp, n + ql);
    if (tmp != stackbuf)
        free(tmp);
}

void tp_render_priv_json_func(tp_buf *b, const tp_func *f)
{
    tp_buf_puts(b, "\"name\":");
    tp_render_priv_json_name(b, f);
    tp_buf_puts(b, ",\"module\":");
    tp_render_priv_json_str(b, f->module);
    tp_buf_puts(b, ",\"qualname\":");
    tp_render_priv_json_str(b, f->qualname);
    tp_buf_puts(b, ",\"file\":");
    tp_render_priv_json_str(b, f->file);
}

void tp_render_priv_json_text(tp_buf *b, const char *s, uint32_t max, bool *cut)
{
    if (!s) {
        tp_buf_puts(b, "null");
        return;
    }
    size_t n = strlen(s);
    if (max && n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        *cut = true;
    }
    tp_render_web_string(b, s, n);
}

/* ---- Statistics ----------------------------------------------------------- */

/* What a statistics object holds beyond the summary keys. */
typedef struct stats_shape {
    bool lists;   /* "functions" and "by_module" */
    uint32_t top; /* at most this many functions listed (0: all) */
    bool web;     /* the report UI's extras: the slowest call's args, avg_ms */
} stats_shape;

static void put_slowest(tp_buf *out, const tp_tree *t, const tp_stats *s, bool web)
{
    if (s->slowest == TP_NONE || s->slowest >= t->nnodes) {
        tp_buf_puts(out, "null");
        return;
    }
    const tp_node *n = &t->nodes[s->slowest];
    tp_buf_puts(out, "{\"name\":");
    tp_render_priv_json_name(out, &t->funcs[n->func]);
    tp_buf_printf(out, ",\"node\":%u", s->slowest);
    tp_render_priv_json_kms(out, "ms", n->total_ns);
    if (web) {
        bool cut = false;
        tp_buf_puts(out, ",\"args\":");
        tp_render_priv_json_text(out, n->args, 1000, &cut);
    }
    tp_buf_putc(out, '}');
}

static void put_most_called(tp_buf *out, const tp_tree *t, const tp_stats *s)
{
    const tp_func_stats *mc = NULL;
    for (size_t i = 0; i < s->nfuncs && s->most_called != TP_NONE; i++)
        if (s->funcs[i].func == s->most_called)
            mc = &s->funcs[i];
    if (!mc) {
        tp_buf_puts(out, "null");
        return;
    }
    tp_buf_puts(out, "{\"name\":");
    tp_render_priv_json_name(out, &t->funcs[mc->func]);
    tp_buf_printf(out, ",\"count\":%llu}", (unsigned long long)mc->count);
}

static void put_lists(tp_buf *out, const tp_tree *t, const tp_stats *s, const stats_shape *sh)
{
    tp_buf_puts(out, ",\"functions\":[");
    size_t nf = sh->top && sh->top < s->nfuncs ? sh->top : s->nfuncs;
    for (size_t i = 0; i < nf; i++) {
        const tp_func_stats *fs = &s->funcs[i];
        const tp_func *f = &t->funcs[fs->func];
        tp_buf_puts(out, i ? ",{" : "{");
        tp_render_priv_json_func(out, f);
        tp_buf_printf(out, ",\"lineno\":%d,\"count\":%llu", (int)f->lineno,
                      (unsigned long long)fs->count);
        tp_render_priv_json_kms(out, "total_ms", fs->total_ns);
        tp_render_priv_json_kms(out, "self_ms", fs->self_ns);
        tp_render_priv_json_kms(out, "min_ms", fs->min_ns);
        tp_render_priv_json_kms(out, "max_ms", fs->max_ns);
        if (sh->web)
            tp_render_priv_json_kms(out, "avg_ms",
                                    fs->count ? fs->total_ns / (int64_t)fs->count : 0);
        tp_buf_printf(out, ",\"exceptions\":%llu}", (unsigned long long)fs->nexc);
    }
    tp_buf_puts(out, "],\"by_module\":[");
    for (size_t i = 0; i < s->nmods; i++) {
        const tp_module_stats *m = &s->mods[i];
        tp_buf_puts(out, i ? ",{\"module\":" : "{\"module\":");
        tp_render_priv_json_str(out, m->module);
        tp_buf_printf(out, ",\"calls\":%llu,\"functions\":%u", (unsigned long long)m->calls,
                      m->functions);
        tp_render_priv_json_kms(out, "self_ms", m->self_ns);
        tp_buf_putc(out, '}');
    }
    tp_buf_putc(out, ']');
}

static int stats_json(const tp_tree *t, const tp_stats *s, const stats_shape *sh, tp_buf *out)
{
    if (!t || !s || !out)
        return -EINVAL;
    tp_buf_printf(out,
                  "{\"calls\":%llu,\"unique_functions\":%u,\"modules\":%u,\"max_depth\":%u,"
                  "\"exceptions\":%llu",
                  (unsigned long long)s->calls, s->unique_functions, s->modules, s->max_depth,
                  (unsigned long long)s->exceptions);
    tp_render_priv_json_kms(out, "duration_ms", s->duration_ns);
    tp_buf_puts(out, ",\"slowest\":");
    put_slowest(out, t, s, sh->web);
    tp_buf_puts(out, ",\"most_called\":");
    put_most_called(out, t, s);
    if (sh->lists)
        put_lists(out, t, s, sh);
    tp_buf_putc(out, '}');
    return tp_buf_error(out);
}

int tp_render_stats_json(const tp_tree *t, const tp_stats *s, bool full, tp_buf *out)
{
    stats_shape sh = {.lists = full};
    return stats_json(t, s, &sh, out);
}

int tp_render_web_stats(const tp_tree *t, const tp_stats *s, uint32_t top, tp_buf *out)
{
    stats_shape sh = {.lists = true, .top = top, .web = true};
    return stats_json(t, s, &sh, out);
}

/* ---- Diffs ---------------------------------------------------------------- */

static const char *diff_kind(int kind)
{
    switch (kind) {
    case TP_DIFF_ADDED:
        return "added";
    case TP_DIFF_REMOVED:
        return "removed";
    case TP_DIFF_COUNT:
        return "count";
    default:
        return "time";
    }
}

static void put_names(tp_buf *b, char *const *names, size_t n)
{
    tp_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            tp_buf_putc(b, ',');
        tp_render_priv_json_str(b, names[i]);
    }
    tp_buf_putc(b, ']');
}

int tp_render_diff_json(const tp_diff *d, tp_buf *out)
{
    if (!d || !out)
        return -EINVAL;
    tp_buf_printf(out, "{\"calls_a\":%llu,\"calls_b\":%llu", (unsigned long long)d->calls_a,
                  (unsigned long long)d->calls_b);
    tp_render_priv_json_kms(out, "duration_a_ms", d->duration_a_ns);
    tp_render_priv_json_kms(out, "duration_b_ms", d->duration_b_ns);
    tp_buf_puts(out, ",\"changes\":[");
    for (size_t i = 0; i < d->n; i++) {
        const tp_diff_entry *e = &d->entries[i];
        tp_buf_printf(out, "%s{\"kind\":\"%s\",\"path\":", i ? "," : "", diff_kind(e->kind));
        tp_render_priv_json_str(out, e->path);
        tp_buf_puts(out, ",\"name\":");
        tp_render_priv_json_str(out, e->name);
        tp_buf_printf(out, ",\"count_a\":%llu,\"count_b\":%llu", (unsigned long long)e->count_a,
                      (unsigned long long)e->count_b);
        tp_render_priv_json_kms(out, "total_a_ms", e->total_a_ns);
        tp_render_priv_json_kms(out, "total_b_ms", e->total_b_ns);
        tp_buf_putc(out, '}');
    }
    tp_buf_puts(out, "],\"functions_added\":");
    put_names(out, d->funcs_added, d->nfuncs_added);
    tp_buf_puts(out, ",\"functions_removed\":");
    put_names(out, d->funcs_removed, d->nfuncs_removed);
    tp_buf_putc(out, '}');
    return tp_buf_error(out);
}

int tp_render_web_diff(const tp_diff *d, tp_buf *out)
{
    return tp_render_diff_json(d, out);
}
