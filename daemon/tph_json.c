/* The JSON `tph stats --json` and `tph diff --json` print for files. tphd
 * answers the same queries for stored traces with tp_stats_json()
 * (daemon/finalize.c) and diff_json() (daemon/query_tree.c); these mirror
 * them key for key so that a file and its imported copy give the same bytes
 * (tests/e2e/test_tph_daemon.py checks it). They belong in proto/ once
 * someone moves them there; until then keep the three in step. */
#include "tph.h"

#include <errno.h>
#include <stdlib.h>

#include "tree.h"

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* Strings of a loaded file are valid UTF-8 (jansson checked them), so this
 * fails only when memory does. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("?");
}

static json_t *func_json(const tp_tree *t, const tp_func_stats *f)
{
    const tp_func *fn = &t->funcs[f->func];
    char name[512];

    tp_func_name(t, f->func, name, sizeof name);
    return json_pack("{s:o, s:o, s:o, s:o, s:i, s:I, s:f, s:f, s:f, s:f, s:I}", "name", jstr(name),
                     "module", jstr(fn->module), "qualname", jstr(fn->qualname), "file",
                     jstr(fn->file), "lineno", (int)fn->lineno, "count", (json_int_t)f->count,
                     "total_ms", ms(f->total_ns), "self_ms", ms(f->self_ns), "min_ms",
                     ms(f->min_ns), "max_ms", ms(f->max_ns), "exceptions", (json_int_t)f->nexc);
}

static json_t *module_json(const tp_module_stats *m)
{
    return json_pack("{s:o, s:I, s:i, s:f}", "module", jstr(m->module), "calls",
                     (json_int_t)m->calls, "functions", (int)m->functions, "self_ms",
                     ms(m->self_ns));
}

static int add_lists(json_t *o, const tp_tree *t, const tp_stats *s)
{
    json_t *funcs = json_array(), *mods = json_array();

    if (json_object_set_new(o, "functions", funcs) < 0 ||
        json_object_set_new(o, "by_module", mods) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < s->nfuncs; i++)
        if (json_array_append_new(funcs, func_json(t, &s->funcs[i])) < 0)
            return -ENOMEM;
    for (size_t i = 0; i < s->nmods; i++)
        if (json_array_append_new(mods, module_json(&s->mods[i])) < 0)
            return -ENOMEM;
    return 0;
}

static json_t *most_called_json(const tp_tree *t, const tp_stats *s)
{
    uint64_t count = 0;
    char name[512];

    if (s->most_called == TP_NONE || s->most_called >= t->nfuncs)
        return json_null();
    for (size_t i = 0; i < s->nfuncs; i++)
        if (s->funcs[i].func == s->most_called)
            count = s->funcs[i].count;
    tp_func_name(t, s->most_called, name, sizeof name);
    return json_pack("{s:o, s:I}", "name", jstr(name), "count", (json_int_t)count);
}

static json_t *slowest_json(const tp_tree *t, const tp_stats *s)
{
    char name[512];

    if (s->slowest == TP_NONE || s->slowest >= t->nnodes)
        return json_null();
    tp_func_name(t, t->nodes[s->slowest].func, name, sizeof name);
    return json_pack("{s:o, s:I, s:f}", "name", jstr(name), "node", (json_int_t)s->slowest, "ms",
                     ms(t->nodes[s->slowest].total_ns));
}

json_t *tph_stats_json(const tp_tree *t, const tp_stats *s)
{
    json_t *o;

    o = json_pack("{s:I, s:i, s:i, s:i, s:I, s:f}", "calls", (json_int_t)s->calls,
                  "unique_functions", (int)s->unique_functions, "modules", (int)s->modules,
                  "max_depth", (int)s->max_depth, "exceptions", (json_int_t)s->exceptions,
                  "duration_ms", ms(s->duration_ns));
    if (!o)
        return NULL;
    if (json_object_set_new(o, "slowest", slowest_json(t, s)) < 0 ||
        json_object_set_new(o, "most_called", most_called_json(t, s)) < 0 ||
        add_lists(o, t, s) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *names_json(char **names, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, jstr(names[i]));
    return a;
}

json_t *tph_diff_json(const tp_diff *d)
{
    static const char *const kinds[] = {"", "added", "removed", "count", "time"};
    json_t *changes = json_array();

    for (size_t i = 0; changes && i < d->n; i++) {
        const tp_diff_entry *e = &d->entries[i];
        json_array_append_new(
            changes, json_pack("{s:s, s:o, s:o, s:I, s:I, s:f, s:f}", "kind",
                               e->kind >= 1 && e->kind <= 4 ? kinds[e->kind] : "?", "path",
                               jstr(e->path), "name", jstr(e->name), "count_a",
                               (json_int_t)e->count_a, "count_b", (json_int_t)e->count_b,
                               "total_a_ms", ms(e->total_a_ns), "total_b_ms", ms(e->total_b_ns)));
    }
    return json_pack("{s:I, s:I, s:f, s:f, s:o, s:o, s:o}", "calls_a", (json_int_t)d->calls_a,
                     "calls_b", (json_int_t)d->calls_b, "duration_a_ms", ms(d->duration_a_ns),
                     "duration_b_ms", ms(d->duration_b_ns), "changes", changes, "functions_added",
                     names_json(d->funcs_added, d->nfuncs_added), "functions_removed",
                     names_json(d->funcs_removed, d->nfuncs_removed));
}

int tph_json_append(json_t *j, tp_buf *out)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int r;

    json_decref(j);
    if (!text)
        return -ENOMEM;
    r = tp_buf_puts(out, text);
    free(text);
    return r;
}
