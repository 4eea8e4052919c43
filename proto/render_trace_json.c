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
#include <stdlib.h>
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
    /* Streaming (tp_render_json_stream()); sink NULL: all in w's buffer. */
    tp_render_sink sink;
    void *ctx;
    size_t chunk;
    int sink_err; /* sticky: the first error of the sink */
    /* Top-level keys written last (tp_render_section), nsec of them. */
    const tp_render_section *sec;
    size_t nsec;
} doc;

/* Hand what is written so far to the sink once it is a chunk's worth. Only
 * called between values, where the text ends in ASCII punctuation. */
static void flush(doc *d, bool last)
{
    tp_buf *b = d->w.b;
    if (!d->sink || d->sink_err || tp_buf_error(b) || (!last && b->len < d->chunk))
        return;
    if (b->len)
        d->sink_err = d->sink(d->ctx, b->data, b->len);
    tp_buf_reset(b);
}

/* Milliseconds with microsecond precision: ns is truncated to whole µs. */
static void kms_us(doc *d, const char *k, int64_t ns)
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
    tp_json_kstr(&d->w, "name", t->funcs[func].qualname);
    tp_json_kstr(&d->w, "module", t->funcs[func].module);
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

/* "threads": [{"thread", "name"}] in the order the threads were named, only
 * when the roots are calls of more than one thread (the views then give each
 * thread but thread 0 a line of its own), so a one-thread file is as before. */
static int thread_names(doc *d, const tp_tree *t)
{
    tp_thread_group *g = NULL;
    size_t ng = 0;
    int r = tp_tree_thread_groups(t, &g, &ng);
    free(g);
    if (r || !ng || !t->nthreads)
        return r;
    tp_json_key(&d->w, "threads");
    tp_json_arr(&d->w);
    for (size_t i = 0; i < t->nthreads; i++) {
        tp_json_obj(&d->w);
        tp_json_ku64(&d->w, "thread", t->threads[i].thread);
        tp_json_kstr(&d->w, "name", t->threads[i].name);
        tp_json_obj_end(&d->w);
    }
    tp_json_arr_end(&d->w);
    return 0;
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
    tp_json_kstr(&d->w, "timestamp", full);
}

static void json_stats_funcs(doc *d, const tp_tree *t, const tp_stats *s)
{
    tp_json_key(&d->w, "functions");
    tp_json_arr(&d->w);
    for (size_t i = 0; i < s->nfuncs; i++) {
        const tp_func_stats *f = &s->funcs[i];
        tp_json_obj(&d->w);
        func_name(d, t, f->func);
        tp_json_kstr(&d->w, "qualname", t->funcs[f->func].qualname);
        tp_json_ku64(&d->w, "count", f->count);
        kms_us(d, "total_ms", f->total_ns);
        kms_us(d, "self_ms", f->self_ns);
        kms_us(d, "min_ms", f->min_ns);
        kms_us(d, "max_ms", f->max_ns);
        kms_us(d, "avg_ms", f->count ? f->total_ns / (int64_t)f->count : 0);
        tp_json_ku64(&d->w, "exceptions", f->nexc);
        tp_json_obj_end(&d->w);
    }
    tp_json_arr_end(&d->w);
    tp_json_key(&d->w, "per_module");
    tp_json_arr(&d->w);
    for (size_t i = 0; i < s->nmods; i++) {
        tp_json_obj(&d->w);
        tp_json_kstr(&d->w, "module", s->mods[i].module);
        tp_json_ku64(&d->w, "calls", s->mods[i].calls);
        tp_json_ku64(&d->w, "functions", s->mods[i].functions);
        kms_us(d, "self_ms", s->mods[i].self_ns);
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
    tp_json_ku64(&d->w, "calls", s->calls);
    tp_json_ku64(&d->w, "modules", s->modules);
    tp_json_ku64(&d->w, "max_depth", s->max_depth);
    tp_json_ku64(&d->w, "unique_functions", s->unique_functions);
    tp_json_ku64(&d->w, "exceptions", s->exceptions);
    kms_us(d, "duration_ms", s->duration_ns);
    tp_json_key(&d->w, "slowest");
    if (slow) {
        tp_json_obj(&d->w);
        func_name(d, t, slow->func);
        kms_us(d, "elapsed_ms", slow->total_ns);
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
        tp_json_ku64(&d->w, "count", count);
        tp_json_obj_end(&d->w);
    } else {
        tp_json_null(&d->w);
    }
    json_stats_funcs(d, t, s);
    /* tracepatch 1.0.0's names for the same facts. */
    tp_json_ku64(&d->w, "max_depth_reached", s->max_depth);
    tp_json_ku64(&d->w, "unique_modules", s->modules);
    kms_us(d, "slowest_call_ms", slow ? slow->total_ns : 0);
    tp_json_key(&d->w, "slowest_call_name");
    if (slow)
        tp__render_json_name(&d->w, &t->funcs[slow->func]);
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
    tp_json_kstr(&d->w, "name", f->qualname);
    tp_json_kstr(&d->w, "module", f->module);
    tp_json_kstr(&d->w, "args", n->args);
    tp_json_kstr(&d->w, "return_value", exc ? NULL : n->ret);
    tp_json_key(&d->w, "exception");
    if (exc) {
        tp__render_json_exc(&d->w, n, &d->tmp);
    } else {
        tp_json_null(&d->w);
    }
    kseconds(d, "start", start_us);
    kseconds(d, "end", end_us);
    /* A call's active time (a generator's resumes); a folded group's span
     * (its summed time is total_ms). */
    kms_us(d, "elapsed_ms", (n->flags & TP_NODE_FOLDED) ? n->end_ns - n->start_ns : n->total_ns);
    tp_json_kstr(&d->w, "file", f->file[0] ? f->file : NULL);
    tp_json_key(&d->w, "lineno");
    if (f->lineno > 0)
        tp_json_u64(&d->w, (uint64_t)f->lineno);
    else
        tp_json_null(&d->w);
    tp_json_kstr(&d->w, "qualname", f->qualname);
    tp_json_kstr(&d->w, "exception_type", n->exc_type);
    tp_json_kstr(&d->w, "exception_message", n->exc_type ? n->exc_msg : NULL);
    tp_json_kbool(&d->w, "caught", (n->flags & TP_NODE_CAUGHT) != 0);
    tp_json_kbool(&d->w, "unfinished", (n->flags & TP_NODE_OPEN) != 0);
    tp_json_kbool(&d->w, "generator", (n->flags & TP_NODE_GEN) != 0);
    tp_json_ku64(&d->w, "suspends", n->suspends);
    tp_json_ku64(&d->w, "thread", n->thread);
    tp_json_ku64(&d->w, "start_ns", (uint64_t)(n->start_ns > 0 ? n->start_ns : 0));
    tp_json_ku64(&d->w, "end_ns", (uint64_t)(n->end_ns > 0 ? n->end_ns : 0));
    if (!(n->flags & TP_NODE_FOLDED)) {
        tp_json_ku64(&d->w, "active_ns", (uint64_t)(n->total_ns > 0 ? n->total_ns : 0));
        tp_json_ku64(&d->w, "self_ns", (uint64_t)(n->self_ns > 0 ? n->self_ns : 0));
    }
    if (n->flags & TP_NODE_SPAWNED)
        tp_json_kbool(&d->w, "spawned", true); /* an asyncio task under its creator */
    if (n->flags & TP_NODE_MEM) {
        /* track_memory: tracepatch 1.0.0's key, and the exact bytes beside
         * it as start_ns is beside start. */
        tp_json_key(&d->w, "memory_delta_kb");
        tp_json_kib(&d->w, n->mem_delta);
        tp_json_ki64(&d->w, "memory_delta_bytes", n->mem_delta);
    }
    if (n->flags & TP_NODE_FOLDED) {
        /* A folded tree (tph tree --json, tphd): start/end span the group. */
        tp_json_ku64(&d->w, "count", n->count);
        kms_us(d, "total_ms", n->total_ns);
        kms_us(d, "self_ms", n->self_ns);
        kms_us(d, "min_ms", n->min_ns);
        kms_us(d, "max_ms", n->max_ns);
        tp_json_ku64(&d->w, "raised", n->nexc);
        tp_json_kbool(&d->w, "args_mixed", (n->flags & TP_NODE_ARGS_MIXED) != 0);
        tp_json_kbool(&d->w, "return_mixed", (n->flags & TP_NODE_RET_MIXED) != 0);
        tp_json_kbool(&d->w, "calls_mixed", (n->flags & TP_NODE_SHAPE_MIXED) != 0);
        /* A repeated sequence: this group and the next seq - 1 siblings. */
        if (n->seq)
            tp_json_ku64(&d->w, "sequence", n->seq);
    }
    tp_json_key(&d->w, "children");
    tp_json_arr(&d->w);
}

static void json_trace(doc *d, const tp_tree *t, int64_t wall_us)
{
    tp_json_key(&d->w, "trace");
    tp_json_arr(&d->w);
    uint32_t i = t->first_root;
    while (i != TP_NONE && !d->sink_err) {
        json_node(d, t, &t->nodes[i], wall_us);
        flush(d, false);
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
 *   hostname, python_version, platform, working_directory
 *                       strings, each only when known (1.0.0 writes all four)
 *   start +             Unix seconds, µs      wall_start_ns +  exact
 *   duration_ms         with µs               duration_ns +    exact
 *   call_count, was_limited, limit_reason, dropped +
 *   running +           true, only for a trace tphd was still receiving
 *   threads +           [{thread, name}] of the named threads, only when the
 *                       roots are calls of more than one thread
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
 *                       active time); with track_memory memory_delta_kb
 *                       (signed KiB, 3 decimals) and + memory_delta_bytes
 *                       (exact), only on measured calls; on a folded node instead + count,
 *                       total_ms, self_ms,
 *                       min_ms, max_ms, raised, args_mixed, return_mixed,
 *                       calls_mixed, and sequence (L) on the first of the L
 *                       groups of a folded repeated sequence; then children. */
static int render(doc *d, const tp_tree *t, bool pretty, tp_buf *out);

int tp_render_json(const tp_tree *t, bool pretty, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    doc d = {.tmp = TP_BUF_INIT};
    return render(&d, t, pretty, out);
}

int tp_render_json_sections(const tp_tree *t, bool pretty, const tp_render_section *sec, size_t n,
                            tp_buf *out)
{
    if (!t || !out || (n && !sec))
        return -EINVAL;
    doc d = {.tmp = TP_BUF_INIT, .sec = sec, .nsec = n};
    return render(&d, t, pretty, out);
}

int tp_render_json_stream(const tp_tree *t, bool pretty, const tp_render_section *sec, size_t nsec,
                          size_t chunk, tp_render_sink sink, void *ctx)
{
    if (!t || !sink || (nsec && !sec))
        return -EINVAL;
    tp_buf out = TP_BUF_INIT;
    doc d = {
        .tmp = TP_BUF_INIT, .sink = sink, .ctx = ctx, .chunk = chunk, .sec = sec, .nsec = nsec};
    int r = render(&d, t, pretty, &out);
    tp_buf_free(&out);
    return r;
}

static int render(doc *d0, const tp_tree *t, bool pretty, tp_buf *out)
{
    tp_stats *s = NULL;
    int r = tp_tree_stats(t, &s);
    if (r)
        return r;
    const tp_trace_meta *m = &t->meta;
    int64_t wall_us = m->wall_start_ns > 0 ? m->wall_start_ns / NS_PER_US : 0;
    doc d = *d0;
    tp_json_init(&d.w, out, pretty);
    tp_json_obj(&d.w);
    tp_json_kstr(&d.w, "tracepatch_version", TP_VERSION);
    tp_json_ku64(&d.w, "schema_version", 1);
    timestamp(&d, wall_us);
    tp_json_kstr(&d.w, "label", m->label);
    tp_json_kstr(&d.w, "trace_id", m->trace_id[0] ? m->trace_id : NULL);
    /* 1.0.0's environment keys, where it puts them; only those known. */
    if (m->hostname)
        tp_json_kstr(&d.w, "hostname", m->hostname);
    if (m->python_version)
        tp_json_kstr(&d.w, "python_version", m->python_version);
    if (m->platform)
        tp_json_kstr(&d.w, "platform", m->platform);
    if (m->working_directory)
        tp_json_kstr(&d.w, "working_directory", m->working_directory);
    kseconds(&d, "start", wall_us);
    tp_json_ku64(&d.w, "wall_start_ns", (uint64_t)(m->wall_start_ns > 0 ? m->wall_start_ns : 0));
    kms_us(&d, "duration_ms", m->duration_ns);
    tp_json_ku64(&d.w, "duration_ns", (uint64_t)(m->duration_ns > 0 ? m->duration_ns : 0));
    tp_json_ku64(&d.w, "call_count", m->call_count);
    tp_json_kbool(&d.w, "was_limited", m->limit_reason != NULL);
    tp_json_kstr(&d.w, "limit_reason", m->limit_reason);
    tp_json_ku64(&d.w, "dropped", m->dropped);
    if (m->running)
        tp_json_kbool(&d.w, "running", true);
    r = thread_names(&d, t);
    if (!r)
        r = config(&d, m->config_json);
    if (!r) {
        json_stats(&d, t, s);
        json_trace(&d, t, wall_us);
        for (size_t i = 0; i < d.nsec; i++) {
            if (!d.sec[i].len)
                continue;
            tp_json_key(&d.w, d.sec[i].key);
            tp_json_raw(&d.w, d.sec[i].json, d.sec[i].len);
            flush(&d, false);
        }
        tp_json_obj_end(&d.w);
        tp_buf_putc(out, '\n');
        r = tp_json_error(&d.w);
        if (!r) {
            flush(&d, true);
            r = d.sink_err;
        }
    }
    tp_buf_free(&d.tmp);
    tp_tree_stats_free(s);
    return r;
}
