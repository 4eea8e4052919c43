/* Compact JSON statistics and diffs, shared by tph, tphd and the report UI,
 * and the JSON pieces every renderer uses for a function. All of it goes
 * through the one writer (json.h), so a trace file (tph) and its stored copy
 * (tphd) give the same bytes, and the report UI reads the same shapes
 * (docs/API.md).
 *
 * Times are nanoseconds written as milliseconds, exactly and without trailing
 * zeros (1500 ns is 0.0015), so no float formatting is involved. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "render.h"
#include "render_priv.h"
#include "render_web.h"

/* ---- Functions and text --------------------------------------------------- */

void tp__render_json_name(tp_json *w, const tp_func *f)
{
    size_t ml = strlen(f->module), ql = strlen(f->qualname);
    char stackbuf[256];
    char *tmp = ml + ql + 1 < sizeof(stackbuf) ? stackbuf : malloc(ml + ql + 2);
    if (!tmp) {
        tp_buf_reserve(w->b, SIZE_MAX); /* makes the buffer's error sticky */
        return;
    }
    size_t n = 0;
    if (ml) {
        memcpy(tmp, f->module, ml);
        tmp[ml] = '.';
        n = ml + 1;
    }
    memcpy(tmp + n, f->qualname, ql);
    tp_json_strn(w, tmp, n + ql);
    if (tmp != stackbuf)
        free(tmp);
}

void tp__render_json_func(tp_json *w, const tp_func *f)
{
    tp_json_kstr(w, "name", f->qualname);
    tp_json_kstr(w, "module", f->module);
    tp_json_kstr(w, "file", f->file);
}

void tp__render_json_text(tp_json *w, const char *s, uint32_t max, bool *cut)
{
    if (!s) {
        tp_json_null(w);
        return;
    }
    size_t n = strlen(s);
    if (max && n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        *cut = true;
    }
    tp_json_strn(w, s, n);
}

void tp__render_json_exc(tp_json *w, const tp_node *n, tp_buf *tmp)
{
    tp_buf_reset(tmp);
    tp_buf_puts(tmp, n->exc_type ? n->exc_type : "");
    if (n->exc_msg && n->exc_msg[0]) {
        tp_buf_puts(tmp, ": ");
        tp_buf_puts(tmp, n->exc_msg);
    }
    if (tp_buf_error(tmp))
        tp_buf_reserve(w->b, SIZE_MAX); /* the document fails too */
    else
        tp_json_strn(w, tmp->data ? tmp->data : "", tmp->len);
}

/* ---- Statistics ----------------------------------------------------------- */

/* What a statistics object holds beyond the summary keys. */
typedef struct stats_shape {
    bool lists;   /* "functions" and "by_module" */
    uint32_t top; /* at most this many functions listed (0: all) */
    bool web;     /* the report UI's extras: the slowest call's args, avg_ms */
} stats_shape;

static void put_slowest(tp_json *w, const tp_tree *t, const tp_stats *s, bool web)
{
    if (s->slowest == TP_NONE || s->slowest >= t->nnodes) {
        tp_json_null(w);
        return;
    }
    const tp_node *n = &t->nodes[s->slowest];
    tp_json_obj(w);
    tp_json_kstr(w, "name", t->funcs[n->func].qualname);
    tp_json_kstr(w, "module", t->funcs[n->func].module);
    tp_json_ku64(w, "node", s->slowest);
    tp_json_kms(w, "ms", n->total_ns);
    if (web) {
        bool cut = false;
        tp_json_key(w, "args");
        tp__render_json_text(w, n->args, 1000, &cut);
    }
    tp_json_obj_end(w);
}

static void put_most_called(tp_json *w, const tp_tree *t, const tp_stats *s)
{
    const tp_func_stats *mc = NULL;
    for (size_t i = 0; i < s->nfuncs && s->most_called != TP_NONE; i++)
        if (s->funcs[i].func == s->most_called)
            mc = &s->funcs[i];
    if (!mc) {
        tp_json_null(w);
        return;
    }
    tp_json_obj(w);
    tp_json_kstr(w, "name", t->funcs[mc->func].qualname);
    tp_json_kstr(w, "module", t->funcs[mc->func].module);
    tp_json_ku64(w, "count", mc->count);
    tp_json_obj_end(w);
}

static void put_lists(tp_json *w, const tp_tree *t, const tp_stats *s, const stats_shape *sh)
{
    tp_json_key(w, "functions");
    tp_json_arr(w);
    size_t nf = sh->top && sh->top < s->nfuncs ? sh->top : s->nfuncs;
    for (size_t i = 0; i < nf; i++) {
        const tp_func_stats *fs = &s->funcs[i];
        const tp_func *f = &t->funcs[fs->func];
        tp_json_obj(w);
        tp__render_json_func(w, f);
        tp_json_ki64(w, "lineno", f->lineno);
        tp_json_ku64(w, "count", fs->count);
        tp_json_kms(w, "total_ms", fs->total_ns);
        tp_json_kms(w, "self_ms", fs->self_ns);
        tp_json_kms(w, "min_ms", fs->min_ns);
        tp_json_kms(w, "max_ms", fs->max_ns);
        if (sh->web)
            tp_json_kms(w, "avg_ms", fs->count ? fs->total_ns / (int64_t)fs->count : 0);
        tp_json_ku64(w, "exceptions", fs->nexc);
        tp_json_obj_end(w);
    }
    tp_json_arr_end(w);
    tp_json_key(w, "by_module");
    tp_json_arr(w);
    for (size_t i = 0; i < s->nmods; i++) {
        const tp_module_stats *m = &s->mods[i];
        tp_json_obj(w);
        tp_json_kstr(w, "module", m->module);
        tp_json_ku64(w, "calls", m->calls);
        tp_json_ku64(w, "functions", m->functions);
        tp_json_kms(w, "self_ms", m->self_ns);
        tp_json_obj_end(w);
    }
    tp_json_arr_end(w);
}

static int stats_json(const tp_tree *t, const tp_stats *s, const stats_shape *sh, tp_buf *out)
{
    if (!t || !s || !out)
        return -EINVAL;
    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_ku64(&w, "calls", s->calls);
    tp_json_ku64(&w, "unique_functions", s->unique_functions);
    tp_json_ku64(&w, "modules", s->modules);
    tp_json_ku64(&w, "max_depth", s->max_depth);
    tp_json_ku64(&w, "exceptions", s->exceptions);
    tp_json_kms(&w, "duration_ms", s->duration_ns);
    tp_json_key(&w, "slowest");
    put_slowest(&w, t, s, sh->web);
    tp_json_key(&w, "most_called");
    put_most_called(&w, t, s);
    if (sh->lists)
        put_lists(&w, t, s, sh);
    tp_json_obj_end(&w);
    return tp_json_error(&w);
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

static void put_names(tp_json *w, const char *key, char *const *names, size_t n)
{
    tp_json_key(w, key);
    tp_json_arr(w);
    for (size_t i = 0; i < n; i++)
        tp_json_str(w, names[i]);
    tp_json_arr_end(w);
}

int tp_render_diff_json(const tp_diff *d, tp_buf *out)
{
    if (!d || !out)
        return -EINVAL;
    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_ku64(&w, "calls_a", d->calls_a);
    tp_json_ku64(&w, "calls_b", d->calls_b);
    tp_json_kms(&w, "duration_a_ms", d->duration_a_ns);
    tp_json_kms(&w, "duration_b_ms", d->duration_b_ns);
    tp_json_key(&w, "changes");
    tp_json_arr(&w);
    for (size_t i = 0; i < d->n; i++) {
        const tp_diff_entry *e = &d->entries[i];
        tp_json_obj(&w);
        tp_json_kstr(&w, "kind", diff_kind(e->kind));
        tp_json_kstr(&w, "path", e->path);
        tp_json_kstr(&w, "function", e->name);
        tp_json_ku64(&w, "count_a", e->count_a);
        tp_json_ku64(&w, "count_b", e->count_b);
        tp_json_kms(&w, "total_a_ms", e->total_a_ns);
        tp_json_kms(&w, "total_b_ms", e->total_b_ns);
        tp_json_obj_end(&w);
    }
    tp_json_arr_end(&w);
    put_names(&w, "functions_added", d->funcs_added, d->nfuncs_added);
    put_names(&w, "functions_removed", d->funcs_removed, d->nfuncs_removed);
    tp_json_obj_end(&w);
    return tp_json_error(&w);
}

int tp_render_web_diff(const tp_diff *d, tp_buf *out)
{
    return tp_render_diff_json(d, out);
}
