/* The text reports around the tree: the stats header above it (72 columns,
 * two halves, as tracepatch 1.0.0 prints it), `tph stats` (header, top
 * functions, per-module table) and `tph diff`. Untrusted text goes through
 * tp__render_text(), as in the tree. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_priv.h"
#include "tree_priv.h"

#define HEADER_WIDTH 72 /* the rule above and below the stats header */
#define HEADER_LEFT  42 /* left column of the header, padded with spaces */

/* ---- Stats header ------------------------------------------------------- */

static void put_rule(tp_buf *b, bool ascii)
{
    for (int i = 0; i < HEADER_WIDTH; i++)
        tp_buf_puts(b, ascii ? "-" : "\u2500");
    tp_buf_putc(b, '\n');
}

/* Appends "<left padded to HEADER_LEFT columns>| <right>\n"; left and right
 * are already escaped. */
static void put_columns(tp_buf *b, const tp_buf *left, const tp_buf *right)
{
    tp_buf_append(b, left->data, left->len);
    for (size_t w = tp__render_width(left->data, left->len); w < HEADER_LEFT; w++)
        tp_buf_putc(b, ' ');
    tp_buf_puts(b, "| ");
    tp_buf_append(b, right->data, right->len);
    tp_buf_putc(b, '\n');
}

static uint64_t func_count(const tp_stats *s, uint32_t func)
{
    for (size_t i = 0; i < s->nfuncs; i++)
        if (s->funcs[i].func == func)
            return s->funcs[i].count;
    return 0;
}

int tp__render_header(const tp_tree *t, const tp_stats *s, bool ascii, bool color, unsigned how,
                      tp_buf *out)
{
    tp_buf l = TP_BUF_INIT, r = TP_BUF_INIT;
    const char *none = ascii ? "-" : "\u2014";
    if (t->meta.label) {
        tp_buf_puts(out, "Trace: ");
        if (color)
            tp_buf_puts(out, SGR_BOLD);
        tp__render_text(out, t->meta.label, strlen(t->meta.label), ascii);
        if (color)
            tp_buf_puts(out, SGR_RESET);
        tp_buf_putc(out, '\n');
    }
    put_rule(out, ascii);

    tp_buf_printf(&l, "Recorded:     %" PRIu64 " calls across %" PRIu32 " modules", s->calls,
                  s->modules);
    tp_buf_puts(&r, "Duration: ");
    tp__render_duration(&r, s->duration_ns, how);
    put_columns(out, &l, &r);

    tp_buf_reset(&l);
    tp_buf_reset(&r);
    tp_buf_printf(&l, "Max depth:    %" PRIu32 " levels", s->max_depth);
    tp_buf_printf(&r, "Unique functions: %" PRIu32, s->unique_functions);
    put_columns(out, &l, &r);

    tp_buf_reset(&l);
    tp_buf_reset(&r);
    tp_buf_puts(&l, "Slowest:      ");
    if (s->slowest != TP_NONE && s->slowest < t->nnodes) {
        tp__render_name(&l, t, t->nodes[s->slowest].func, ascii);
        tp_buf_puts(&l, " [");
        tp__render_duration(&l, t->nodes[s->slowest].total_ns, how);
        tp_buf_putc(&l, ']');
    } else {
        tp_buf_puts(&l, none);
    }
    tp_buf_puts(&r, "Most called: ");
    if (s->most_called != TP_NONE) {
        tp__render_name(&r, t, s->most_called, ascii);
        tp_buf_printf(&r, " [%s%" PRIu64 "]", ascii ? "x" : "\u00d7",
                      func_count(s, s->most_called));
    } else {
        tp_buf_puts(&r, none);
    }
    put_columns(out, &l, &r);
    put_rule(out, ascii);

    int err = tp_buf_error(&l) ? tp_buf_error(&l) : tp_buf_error(&r);
    tp_buf_free(&l);
    tp_buf_free(&r);
    return err ? err : tp_buf_error(out);
}

int tp_render_stats_header(const tp_tree *t, const tp_stats *s, tp_buf *out)
{
    if (!t || !s || !out)
        return -EINVAL;
    return tp__render_header(t, s, false, false, 0, out);
}

/* ---- tph stats ------------------------------------------------------------ */

#define STATS_TOP      20 /* rows of the functions table */
#define STATS_NAME_MAX 48 /* name column stops growing here; longer names push */

/* Appends an escaped name padded to width columns (bold with colour). */
static void put_cell_name(tp_buf *b, const char *text, size_t len, size_t width, bool color)
{
    if (color)
        tp_buf_puts(b, SGR_BOLD);
    tp_buf_append(b, text, len);
    if (color)
        tp_buf_puts(b, SGR_RESET);
    for (size_t w = tp__render_width(text, len); w < width; w++)
        tp_buf_putc(b, ' ');
}

static void put_cell_duration(tp_buf *b, int64_t ns)
{
    char d[32];
    tp_render_format_duration(ns, d, sizeof(d));
    /* Right-aligned in 10 columns; "\u00b5" is two bytes, one column. */
    size_t len = strlen(d);
    for (size_t w = tp__render_width(d, len); w < 10; w++)
        tp_buf_putc(b, ' ');
    tp_buf_putc(b, ' ');
    tp_buf_append(b, d, len);
}

/* Escaped names of the rows, NUL-separated in one buffer; offsets in off. */
static int stats_names(const tp_tree *t, const tp_stats *s, size_t rows, tp_buf *names, size_t *off,
                       size_t *ret_width)
{
    size_t width = strlen("function");
    for (size_t i = 0; i < rows; i++) {
        off[i] = names->len;
        tp__render_name(names, t, s->funcs[i].func, false);
        size_t w = tp__render_width(names->data + off[i], names->len - off[i]);
        if (w > width)
            width = w;
        tp_buf_putc(names, '\0');
    }
    *ret_width = width > STATS_NAME_MAX ? STATS_NAME_MAX : width;
    return tp_buf_error(names);
}

static int stats_functions(const tp_tree *t, const tp_stats *s, bool color, tp_buf *out)
{
    size_t rows = s->nfuncs < STATS_TOP ? s->nfuncs : STATS_TOP;
    size_t *off = malloc((rows ? rows : 1) * sizeof(*off));
    tp_buf names = TP_BUF_INIT;
    size_t width;
    int r = off ? stats_names(t, s, rows, &names, off, &width) : -ENOMEM;
    if (r)
        goto cleanup;
    tp_buf_printf(out, "Functions by total time (%zu):\n  ", s->nfuncs);
    put_cell_name(out, "function", strlen("function"), width, false);
    tp_buf_printf(out, " %7s %10s %10s %10s %10s %10s\n", "calls", "total", "self", "min", "max",
                  "avg");
    for (size_t i = 0; i < rows; i++) {
        const tp_func_stats *f = &s->funcs[i];
        const char *name = names.data + off[i];
        tp_buf_puts(out, "  ");
        put_cell_name(out, name, strlen(name), width, color);
        tp_buf_printf(out, " %7" PRIu64, f->count);
        put_cell_duration(out, f->total_ns);
        put_cell_duration(out, f->self_ns);
        put_cell_duration(out, f->min_ns);
        put_cell_duration(out, f->max_ns);
        put_cell_duration(out, f->count ? f->total_ns / (int64_t)f->count : 0);
        tp_buf_putc(out, '\n');
    }
    if (s->nfuncs > rows)
        tp_buf_printf(out, "  ... %zu more functions\n", s->nfuncs - rows);
    r = tp_buf_error(out);
cleanup:
    free(off);
    tp_buf_free(&names);
    return r;
}

static int stats_modules(const tp_stats *s, bool color, tp_buf *out)
{
    tp_buf name = TP_BUF_INIT;
    size_t width = strlen("module");
    for (size_t i = 0; i < s->nmods; i++) {
        tp_buf_reset(&name);
        tp__render_text(&name, s->mods[i].module, strlen(s->mods[i].module), false);
        size_t w = tp__render_width(name.data, name.len);
        width = w > width ? w : width;
    }
    width = width > STATS_NAME_MAX ? STATS_NAME_MAX : width;
    tp_buf_printf(out, "Modules by calls (%zu):\n  ", s->nmods);
    put_cell_name(out, "module", strlen("module"), width, false);
    tp_buf_printf(out, " %7s %10s %10s %7s\n", "calls", "functions", "self", "share");
    for (size_t i = 0; i < s->nmods; i++) {
        const tp_module_stats *m = &s->mods[i];
        tp_buf_reset(&name);
        tp__render_text(&name, m->module, strlen(m->module), false);
        tp_buf_puts(out, "  ");
        put_cell_name(out, tp_buf_cstr(&name), name.len, width, color);
        /* Share of calls in whole percent, rounded half up. */
        uint64_t pct = s->calls ? (m->calls * 200 / s->calls + 1) / 2 : 0;
        tp_buf_printf(out, " %7" PRIu64 " %10" PRIu32, m->calls, m->functions);
        put_cell_duration(out, m->self_ns);
        tp_buf_printf(out, " %6" PRIu64 "%%\n", pct);
    }
    int r = tp_buf_error(&name);
    tp_buf_free(&name);
    return r ? r : tp_buf_error(out);
}

int tp_render_stats(const tp_tree *t, const tp_stats *s, bool color, tp_buf *out)
{
    if (!t || !s || !out)
        return -EINVAL;
    int r = tp__render_header(t, s, false, color, 0, out);
    if (r)
        return r;
    if (!s->calls) {
        tp_buf_puts(out, "\nNo calls captured in this trace.\n");
        return tp_buf_error(out);
    }
    tp_buf_putc(out, '\n');
    r = stats_functions(t, s, color, out);
    if (r)
        return r;
    tp_buf_putc(out, '\n');
    return stats_modules(s, color, out);
}

/* ---- tph diff ------------------------------------------------------------- */

/* " (+20%)" when a is not zero. */
static void put_change_pct(tp_buf *b, double a, double bv)
{
    if (a > 0)
        tp_buf_printf(b, " (%+.0f%%)", (bv - a) * 100.0 / a);
}

static void put_diff_entry(tp_buf *b, const tp_diff_entry *e, bool color)
{
    static const char *const sgr[] = {"", "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[33m"};
    static const char mark[] = " +-~~";
    int k = e->kind >= TP_DIFF_ADDED && e->kind <= TP_DIFF_TIME ? e->kind : 0;
    tp_buf_puts(b, "  ");
    if (color && k)
        tp_buf_puts(b, sgr[k]);
    tp_buf_putc(b, k ? mark[k] : '?');
    tp_buf_putc(b, ' ');
    tp__render_text(b, e->path ? e->path : "", strlen(e->path ? e->path : ""), false);
    tp_buf_puts(b, "  ");
    if (k == TP_DIFF_REMOVED || k == TP_DIFF_ADDED) {
        bool a = k == TP_DIFF_REMOVED;
        tp_buf_printf(b, "[\u00d7%" PRIu64 ", ", a ? e->count_a : e->count_b);
        tp__render_duration(b, a ? e->total_a_ns : e->total_b_ns, 0);
        tp_buf_putc(b, ']');
    } else {
        if (e->count_a != e->count_b)
            tp_buf_printf(b, "calls \u00d7%" PRIu64 " -> \u00d7%" PRIu64 ", ", e->count_a,
                          e->count_b);
        tp_buf_puts(b, "time ");
        tp__render_duration(b, e->total_a_ns, 0);
        tp_buf_puts(b, " -> ");
        tp__render_duration(b, e->total_b_ns, 0);
        put_change_pct(b, (double)e->total_a_ns, (double)e->total_b_ns);
    }
    if (color && k)
        tp_buf_puts(b, SGR_RESET);
    tp_buf_putc(b, '\n');
}

static void put_func_list(tp_buf *b, const char *title, char *const *names, size_t n, char mark,
                          bool color)
{
    if (!n)
        return;
    tp_buf_printf(b, "%s (%zu):\n", title, n);
    for (size_t i = 0; i < n; i++) {
        tp_buf_puts(b, "  ");
        if (color)
            tp_buf_puts(b, mark == '+' ? "\x1b[32m" : "\x1b[31m");
        tp_buf_printf(b, "%c ", mark);
        tp__render_text(b, names[i], strlen(names[i]), false);
        if (color)
            tp_buf_puts(b, SGR_RESET);
        tp_buf_putc(b, '\n');
    }
}

int tp_render_diff(const tp_diff *d, bool color, tp_buf *out)
{
    if (!d || !out)
        return -EINVAL;
    size_t kinds[5] = {0};
    for (size_t i = 0; i < d->n; i++)
        if (d->entries[i].kind >= TP_DIFF_ADDED && d->entries[i].kind <= TP_DIFF_TIME)
            kinds[d->entries[i].kind]++;
    int64_t dc = (int64_t)(d->calls_b - d->calls_a);
    tp_buf_printf(out, "Calls:     %" PRIu64 " -> %" PRIu64 " (%+" PRId64 ")\n", d->calls_a,
                  d->calls_b, dc);
    tp_buf_puts(out, "Duration:  ");
    tp__render_duration(out, d->duration_a_ns, 0);
    tp_buf_puts(out, " -> ");
    tp__render_duration(out, d->duration_b_ns, 0);
    put_change_pct(out, (double)d->duration_a_ns, (double)d->duration_b_ns);
    tp_buf_putc(out, '\n');
    if (!d->n && !d->nfuncs_added && !d->nfuncs_removed) {
        tp_buf_puts(out, "\nNo significant differences found.\n");
        return tp_buf_error(out);
    }
    if (d->nfuncs_removed || d->nfuncs_added)
        tp_buf_putc(out, '\n');
    put_func_list(out, "Functions removed", d->funcs_removed, d->nfuncs_removed, '-', color);
    put_func_list(out, "Functions added", d->funcs_added, d->nfuncs_added, '+', color);
    if (d->n)
        tp_buf_printf(out, "\nCall paths (%zu):\n", d->n);
    for (size_t i = 0; i < d->n; i++)
        put_diff_entry(out, &d->entries[i], color);
    tp_buf_printf(
        out, "\nSummary: %zu call %s: %zu removed, %zu added, %zu in call count, %zu in time\n",
        d->n, d->n == 1 ? "path differs" : "paths differ", kinds[TP_DIFF_REMOVED],
        kinds[TP_DIFF_ADDED], kinds[TP_DIFF_COUNT], kinds[TP_DIFF_TIME]);
    return tp_buf_error(out);
}
