/* The tracepatch JSON trace file (tp_render_json()): tracepatch 1.0.0's
 * schema plus keys of ours, through the one JSON writer (json.h).
 *
 * Its times are microseconds for 1.0.0's readers (start/end in Unix seconds,
 * elapsed_ms), all from one truncated clock: wall_us = wall_start_ns / 1000
 * and t_us = wall_us + node_ns / 1000. Exact nanoseconds travel beside them
 * (wall_start_ns, duration_ns, and start_ns/end_ns since the trace start per
 * call), so a tree written, loaded (proto/load_json.c) and written again
 * gives the same bytes.
 *
 * The walk is iterative over the index links, and the writer stops
 * indenting past TP_JSON_INDENT_CAP levels, so a 100k-deep trace costs
 * linear time and output, not a C stack overflow or quadratic whitespace. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "render.h"
#include "render_priv.h"
#include "tp_err.h"
#include "tp_version.h"
#include "tree_priv.h"

#define NS_PER_US INT64_C(1000)

/* The file's own context: the writer and a scratch buffer for strings built
 * from several parts ("Type: message"). */
typedef struct doc {
    tp_json w;
    tp_buf tmp;
} doc;

static void kstr(doc *d, const char *k, const char *v)
{
    tp_json_key(&d->w, k);
    tp_json_str(&d->w, v);
}

static void kbool(doc *d, const char *k, bool v)
{
    tp_json_key(&d->w, k);
    tp_json_bool(&d->w, v);
}

static void ku64(doc *d, const char *k, uint64_t v)
{
    tp_json_key(&d->w, k);
    tp_json_u64(&d->w, v);
}

/* Milliseconds with microsecond precision: ns is truncated to whole µs. */
static void kms(doc *d, const char *k, int64_t ns)
{
    int64_t us = ns > 0 ? ns / NS_PER_US : 0;
    tp_json_key(&d->w, k);
    tp_json_fixed(&d->w, us / 1000, us % 1000, 3);
}

/* Unix seconds with microsecond precision. */
static void kseconds(doc *d, const char *k, int64_t us)
{
    if (us < 0)
        us = 0;
    tp_json_key(&d->w, k);
    tp_json_fixed(&d->w, us / 1000000, us % 1000000, 6);
}

/* "name" and "module" of func, as 1.0.0's nodes spell a function: the
 * qualname, and the module beside it. */
static void func_name(doc *d, const tp_tree *t, uint32_t func)
{
    kstr(d, "name", t->funcs[func].qualname);
    kstr(d, "module", t->funcs[func].module);
}

/* "Type: message" (or "Type" without a message). */
static void exc_text(doc *d, const tp_node *n)
{
    tp_buf_reset(&d->tmp);
    tp_buf_puts(&d->tmp, n->exc_type ? n->exc_type : "");
    if (n->exc_msg && n->exc_msg[0]) {
        tp_buf_puts(&d->tmp, ": ");
        tp_buf_puts(&d->tmp, n->exc_msg);
    }
    if (tp_buf_error(&d->tmp))
        tp_buf_reserve(d->w.b, SIZE_MAX); /* the document fails too */
    else
        tp_json_strn(&d->w, d->tmp.data ? d->tmp.data : "", d->tmp.len);
}

/* The trace's config object, re-emitted through the writer so it is
 * indented and escaped like the rest; "{}" when absent or not one valid JSON
 * object (the text comes from a client). */
static int config(doc *d, const char *json)
{
    tp_json_key(&d->w, "config");
    int r = json ? tp_json_copy(&d->w, json, strlen(json), false) : TP_ERR_JSON;
    if (r == TP_ERR_JSON) {
        tp_json_obj(&d->w);
        tp_json_obj_end(&d->w);
        r = 0;
    }
    return r;
}

/* Local ISO-8601 time with microseconds, as Python's datetime.isoformat(). */
static void timestamp(doc *d, int64_t wall_us)
{
    time_t sec = (time_t)(wall_us / 1000000);
    struct tm tm;
    char day[64], full[96];
    if (!localtime_r(&sec, &tm) || !strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(day, sizeof(day), "1970-01-01T00:00:00");
    snprintf(full, sizeof(full), "%s.%06" PRId64, day, wall_us % 1000000);
    tp_json_key(&d->w, "timestamp");
    tp_json_str(&d->w, full);
}

static void json_stats_funcs(doc *d, const tp_tree *t, const tp_stats *s)
{
    tp_json_key(&d->w, "functions");
    tp_json_arr(&d->w);
    for (size_t i = 0; i < s->nfuncs; i++) {
        const tp_func_stats *f = &s->funcs[i];
        tp_json_obj(&d->w);
        func_name(d, t, f->func);
        kstr(d, "qualname", t->funcs[f->func].qualname);
        ku64(d, "count", f->count);
        kms(d, "total_ms", f->total_ns);
        kms(d, "self_ms", f->self_ns);
        kms(d, "min_ms", f->min_ns);
        kms(d, "max_ms", f->max_ns);
        kms(d, "avg_ms", f->count ? f->total_ns / (int64_t)f->count : 0);
        ku64(d, "exceptions", f->nexc);
        tp_json_obj_end(&d->w);
    }
    tp_json_arr_end(&d->w);
    tp_json_key(&d->w, "per_module");
    tp_json_arr(&d->w);
    for (size_t i = 0; i < s->nmods; i++) {
        tp_json_obj(&d->w);
        kstr(d, "module", s->mods[i].module);
        ku64(d, "calls", s->mods[i].calls);
        ku64(d, "functions", s->mods[i].functions);
        kms(d, "self_ms", s->mods[i].self_ns);
        tp_json_obj_end(&d->w);
    }
    tp_json_arr_end(&d->w);
}

static void json_stats(doc *d, const tp_tree *t, const tp_stats *s)
{
    bool has_slowest = s->slowest != TP_NONE && s->slowest < t->nnodes;
    const tp_node *slow = has_slowest ? &t->nodes[s->slowest] : NULL;
    tp_json_key(&d->w, "stats");
    tp_json_obj(&d->w);
    ku64(d, "calls", s->calls);
    ku64(d, "modules", s->modules);
    ku64(d, "max_depth", s->max_depth);
    ku64(d, "unique_functions", s->unique_functions);
    ku64(d, "exceptions", s->exceptions);
    kms(d, "duration_ms", s->duration_ns);
    tp_json_key(&d->w, "slowest");
    if (slow) {
        tp_json_obj(&d->w);
        func_name(d, t, slow->func);
        kms(d, "elapsed_ms", slow->total_ns);
        tp_json_obj_end(&d->w);
    } else {
        tp_json_null(&d->w);
    }
    tp_json_key(&d->w, "most_called");
    if (s->most_called != TP_NONE) {
        uint64_t count = 0;
        for (size_t i = 0; i < s->nfuncs; i++)
            if (s->funcs[i].func == s->most_called)
                count = s->funcs[i].count;
        tp_json_obj(&d->w);
        func_name(d, t, s->most_called);
        ku64(d, "count", count);
        tp_json_obj_end(&d->w);
    } else {
        tp_json_null(&d->w);
    }
    json_stats_funcs(d, t, s);
    /* tracepatch 1.0.0's names for the same facts. */
    ku64(d, "max_depth_reached", s->max_depth);
    ku64(d, "unique_modules", s->modules);
    kms(d, "slowest_call_ms", slow ? slow->total_ns : 0);
    tp_json_key(&d->w, "slowest_call_name");
    if (slow)
        tp_render_priv_json_name(&d->w, &t->funcs[slow->func]);
    else
        tp_json_str(&d->w, "");
    tp_json_obj_end(&d->w);
}

/* A node's keys up to and including the opening of "children". */
static void json_node(doc *d, const tp_tree *t, const tp_node *n, int64_t wall_us)
{
    const tp_func *f = &t->funcs[n->func];
    int64_t start_us = wall_us + n->start_ns / NS_PER_US;
    int64_t end_us = wall_us + n->end_ns / NS_PER_US;
    bool exc = (n->flags & TP_NODE_EXC) != 0;
    tp_json_obj(&d->w);
    kstr(d, "name", f->qualname);
    kstr(d, "module", f->module);
    kstr(d, "args", n->args);
    kstr(d, "return_value", exc ? NULL : n->ret);
    tp_json_key(&d->w, "exception");
    if (exc) {
        exc_text(d, n);
    } else {
        tp_json_null(&d->w);
    }
    kseconds(d, "start", start_us);
    kseconds(d, "end", end_us);
    /* A call's active time (a generator's resumes); a folded group's span
     * (its summed time is total_ms). */
    kms(d, "elapsed_ms", (n->flags & TP_NODE_FOLDED) ? n->end_ns - n->start_ns : n->total_ns);
    kstr(d, "file", f->file[0] ? f->file : NULL);
    tp_json_key(&d->w, "lineno");
    if (f->lineno > 0)
        tp_json_u64(&d->w, (uint64_t)f->lineno);
    else
        tp_json_null(&d->w);
    kstr(d, "qualname", f->qualname);
    kstr(d, "exception_type", n->exc_type);
    kstr(d, "exception_message", n->exc_type ? n->exc_msg : NULL);
    kbool(d, "caught", (n->flags & TP_NODE_CAUGHT) != 0);
    kbool(d, "unfinished", (n->flags & TP_NODE_OPEN) != 0);
    kbool(d, "generator", (n->flags & TP_NODE_GEN) != 0);
    ku64(d, "suspends", n->suspends);
    ku64(d, "thread", n->thread);
    ku64(d, "start_ns", (uint64_t)(n->start_ns > 0 ? n->start_ns : 0));
    ku64(d, "end_ns", (uint64_t)(n->end_ns > 0 ? n->end_ns : 0));
    if (!(n->flags & TP_NODE_FOLDED)) {
        ku64(d, "active_ns", (uint64_t)(n->total_ns > 0 ? n->total_ns : 0));
        ku64(d, "self_ns", (uint64_t)(n->self_ns > 0 ? n->self_ns : 0));
    }
    if (n->flags & TP_NODE_FOLDED) {
        /* A folded tree (tph tree --json, tphd): start/end span the group. */
        ku64(d, "count", n->count);
        kms(d, "total_ms", n->total_ns);
        kms(d, "self_ms", n->self_ns);
        kms(d, "min_ms", n->min_ns);
        kms(d, "max_ms", n->max_ns);
        ku64(d, "raised", n->nexc);
        kbool(d, "args_mixed", (n->flags & TP_NODE_ARGS_MIXED) != 0);
        kbool(d, "return_mixed", (n->flags & TP_NODE_RET_MIXED) != 0);
    }
    tp_json_key(&d->w, "children");
    tp_json_arr(&d->w);
}

static void json_trace(doc *d, const tp_tree *t, int64_t wall_us)
{
    tp_json_key(&d->w, "trace");
    tp_json_arr(&d->w);
    uint32_t i = t->first_root;
    while (i != TP_NONE) {
        json_node(d, t, &t->nodes[i], wall_us);
        if (t->nodes[i].first_child != TP_NONE) {
            i = t->nodes[i].first_child;
            continue;
        }
        /* Close this node, then every ancestor whose children are done. */
        while (i != TP_NONE) {
            tp_json_arr_end(&d->w);
            tp_json_obj_end(&d->w);
            if (t->nodes[i].next != TP_NONE) {
                i = t->nodes[i].next;
                break;
            }
            i = t->nodes[i].parent;
        }
    }
    tp_json_arr_end(&d->w);
}

/* The document, key by key (1.0.0's keys first, ours marked +). Wherever it
 * names a function, "name" means what 1.0.0's nodes mean by it: the
 * qualname, with "module" beside it.
 *
 *   tracepatch_version  "2.0.0"       schema_version  1
 *   timestamp           local ISO-8601 of the trace start, with µs
 *   label, trace_id     string or null
 *   start +             Unix seconds, µs      wall_start_ns +  exact
 *   duration_ms         with µs               duration_ns +    exact
 *   call_count, was_limited, limit_reason, dropped +
 *   config              the trace's config object ({} when none or invalid)
 *   stats               calls, modules, max_depth, unique_functions,
 *                       exceptions +, duration_ms, slowest {name, module,
 *                       elapsed_ms}, most_called {name, module, count},
 *                       functions [{name, module, qualname, count, total_ms,
 *                       self_ms, min_ms, max_ms, avg_ms, exceptions}],
 *                       per_module [{module, calls, functions, self_ms}], and
 *                       1.0.0's max_depth_reached, unique_modules,
 *                       slowest_call_ms, slowest_call_name ("module.qualname")
 *   trace               root calls, each: name (the qualname), module, args,
 *                       return_value, exception ("Type: message"), start, end
 *                       (Unix seconds, µs), elapsed_ms, file, lineno (null
 *                       when unknown); + qualname, exception_type,
 *                       exception_message, caught, unfinished, generator,
 *                       suspends, thread, start_ns, end_ns (since the trace
 *                       start), active_ns, self_ns (exact; elapsed_ms is the
 *                       active time); on a folded node instead + count,
 *                       total_ms, self_ms,
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
    doc d = {.tmp = TP_BUF_INIT};
    tp_json_init(&d.w, out, pretty);
    tp_json_obj(&d.w);
    kstr(&d, "tracepatch_version", TP_VERSION);
    ku64(&d, "schema_version", 1);
    timestamp(&d, wall_us);
    kstr(&d, "label", m->label);
    kstr(&d, "trace_id", m->trace_id[0] ? m->trace_id : NULL);
    kseconds(&d, "start", wall_us);
    ku64(&d, "wall_start_ns", (uint64_t)(m->wall_start_ns > 0 ? m->wall_start_ns : 0));
    kms(&d, "duration_ms", m->duration_ns);
    ku64(&d, "duration_ns", (uint64_t)(m->duration_ns > 0 ? m->duration_ns : 0));
    ku64(&d, "call_count", m->call_count);
    kbool(&d, "was_limited", m->limit_reason != NULL);
    kstr(&d, "limit_reason", m->limit_reason);
    ku64(&d, "dropped", m->dropped);
    r = config(&d, m->config_json);
    if (!r) {
        json_stats(&d, t, s);
        json_trace(&d, t, wall_us);
        tp_json_obj_end(&d.w);
        tp_buf_putc(out, '\n');
        r = tp_json_error(&d.w);
    }
    tp_buf_free(&d.tmp);
    tp_stats_free(s);
    return r;
}
