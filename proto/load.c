/* Loading tracepatch JSON trace files into a tree.
 *
 * Two dialects arrive here: tracepatch 1.0.0's files (and its bare array of
 * root nodes from `tph tree --format json`), whose node times come from
 * time.perf_counter() and whose optional keys may be absent, and ours
 * (proto/render_export.c), which adds a top-level "start" and per-node
 * exception/generator/thread keys. Either way the tree is rebuilt through
 * the public builder (tree.h), call by call in document order, so a loaded
 * tree obeys every invariant a recorded one does.
 *
 * Times: a node's start/end (seconds) are read to the microsecond and made
 * relative to the top-level "start" when there is one, else to the earliest
 * node start. A node without start begins where its previous sibling ended
 * (or its parent began); a node without end lasts elapsed_ms.
 *
 * Depth: jansson parses recursively and stops at 2048 nested arrays and
 * objects, about 1020 nested calls; deeper files fail with TP_ERR_LIMIT. The
 * walk below is iterative. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h> /* isfinite(): a macro, no libm needed */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"
#include "tp_err.h"

#define MAX_SECONDS  1e12        /* |start|, |end| (about 31700 years) */
#define MAX_MS       1e12        /* elapsed_ms, duration_ms */
#define MAX_SUSPENDS (16u << 20) /* yield/resume pairs replayed per document */

typedef struct call_info {
    const char *module, *qualname, *file, *args, *ret, *exc_type, *exc_msg;
    size_t args_len, ret_len, type_len, msg_len;
    int32_t lineno;
    bool has_start, has_end, has_elapsed;
    int64_t start_us, end_us, elapsed_us;
    bool raised, caught, unfinished, generator;
    uint32_t suspends, thread;
    json_t *children; /* NULL when none */
} call_info;

/* One call being replayed. */
typedef struct frame {
    call_info c;
    size_t index; /* in the parent's children (or trace) array */
    size_t next_child;
    uint32_t seq; /* the tree node (call sequence number) */
    int64_t start_ns;
    int64_t cursor_ns; /* latest time inside this call so far */
    bool running_open; /* stays running at the end: its last child may too */
} frame;

typedef struct func_ent {
    const char *module, *qualname, *file; /* owned by the JSON document */
    int32_t lineno;
    uint32_t id;
} func_ent;

typedef struct loader {
    tp_tree *t;
    char *err;
    size_t errsz;
    frame *stack;
    size_t sp, cap;
    func_ent *funcs; /* open addressing; id == UINT32_MAX marks empty */
    size_t fcap, nfuncs;
    int64_t base_us;    /* file times are relative to this */
    uint8_t *root_last; /* per root: the last root of its thread */
    uint64_t suspends_left;
    int64_t max_ns;         /* latest time replayed */
    int64_t root_cursor_ns; /* where a root without start begins */
} loader;

/* ---- Errors ---------------------------------------------------------------- */

/* Writes "<path>: <message>" where path names the call being read. */
__attribute__((format(printf, 2, 3))) static int fail(loader *l, const char *fmt, ...)
{
    if (!l->err || !l->errsz)
        return TP_ERR_JSON;
    size_t off = 0;
    for (size_t i = 0; i < l->sp && off < l->errsz; i++) {
        int n = snprintf(l->err + off, l->errsz - off, i ? ".children[%zu]" : "trace[%zu]",
                         l->stack[i].index);
        off += n > 0 ? (size_t)n : 0;
    }
    if (l->sp && off < l->errsz) {
        int n = snprintf(l->err + off, l->errsz - off, ": ");
        off += n > 0 ? (size_t)n : 0;
    }
    if (off < l->errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->err + off, l->errsz - off, fmt, ap);
        va_end(ap);
    }
    return TP_ERR_JSON;
}

/* Rounds |x| <= 1e18 to the nearest integer, halves away from zero, without
 * libm (tpproto_json does not link it). */
static int64_t round_i64(double x)
{
    return (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
}

static double abs_d(double x)
{
    return x < 0 ? -x : x;
}

/* ---- Typed field access ----------------------------------------------------- */

/* A string or null (or absent): *ret is NULL unless it is a string. */
static int get_opt_str(loader *l, json_t *o, const char *key, const char **ret, size_t *ret_len)
{
    json_t *v = json_object_get(o, key);
    *ret = NULL;
    if (ret_len)
        *ret_len = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(l, "'%s' must be a string or null", key);
    *ret = json_string_value(v);
    if (ret_len)
        *ret_len = json_string_length(v);
    return 0;
}

static int get_opt_bool(loader *l, json_t *o, const char *key, bool *ret)
{
    json_t *v = json_object_get(o, key);
    *ret = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fail(l, "'%s' must be true or false", key);
    *ret = json_is_true(v);
    return 0;
}

/* An integer in [0, max] or absent/null (then *ret = 0 and *present false). */
static int get_opt_uint(loader *l, json_t *o, const char *key, uint64_t max, uint64_t *ret,
                        bool *present)
{
    json_t *v = json_object_get(o, key);
    *ret = 0;
    if (present)
        *present = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return fail(l, "'%s' must be an integer from 0 to %llu", key, (unsigned long long)max);
    *ret = (uint64_t)json_integer_value(v);
    if (present)
        *present = true;
    return 0;
}

/* A number (seconds or milliseconds) scaled to whole microseconds. */
static int get_opt_time(loader *l, json_t *o, const char *key, double scale, double limit,
                        bool nonneg, int64_t *ret_us, bool *present)
{
    json_t *v = json_object_get(o, key);
    *present = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return fail(l, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || abs_d(d) > limit)
        return fail(l, "'%s' is out of range", key);
    if (nonneg && d < 0)
        return fail(l, "'%s' must not be negative", key);
    *ret_us = round_i64(d * scale);
    *present = true;
    return 0;
}

/* ---- Functions ---------------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL; /* a separator, so ("ab","c") != ("a","bc") */
}

static uint64_t func_hash(const char *m, const char *q, const char *f, int32_t lineno)
{
    uint64_t h = 1469598103934665603ULL;
    h = hash_bytes(hash_bytes(hash_bytes(h, m), q), f);
    return (h ^ (uint32_t)lineno) * 1099511628211ULL;
}

static int grow_funcs(loader *l)
{
    size_t cap = l->fcap ? l->fcap * 2 : 64;
    func_ent *n = malloc(cap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        n[i].id = UINT32_MAX;
    for (size_t i = 0; i < l->fcap; i++) {
        func_ent *e = &l->funcs[i];
        if (e->id == UINT32_MAX)
            continue;
        size_t k = func_hash(e->module, e->qualname, e->file, e->lineno) & (cap - 1);
        while (n[k].id != UINT32_MAX)
            k = (k + 1) & (cap - 1);
        n[k] = *e;
    }
    free(l->funcs);
    l->funcs = n;
    l->fcap = cap;
    return 0;
}

/* Interns a function by (module, qualname, file, lineno), describing it to
 * the tree the first time. */
static int intern_func(loader *l, const char *m, const char *q, const char *f, int32_t lineno,
                       uint32_t *ret_id)
{
    if ((l->nfuncs + 1) * 2 > l->fcap) {
        int r = grow_funcs(l);
        if (r)
            return r;
    }
    size_t k = func_hash(m, q, f, lineno) & (l->fcap - 1);
    for (; l->funcs[k].id != UINT32_MAX; k = (k + 1) & (l->fcap - 1)) {
        func_ent *e = &l->funcs[k];
        if (e->lineno == lineno && !strcmp(e->module, m) && !strcmp(e->qualname, q) &&
            !strcmp(e->file, f)) {
            *ret_id = e->id;
            return 0;
        }
    }
    uint32_t id = (uint32_t)l->nfuncs;
    int r = tp_tree_def_func(l->t, id, m, q, f, lineno);
    if (r == TP_ERR_LIMIT)
        return fail(l, "too many distinct functions");
    if (r)
        return r;
    l->funcs[k] = (func_ent){m, q, f, lineno, id};
    l->nfuncs++;
    *ret_id = id;
    return 0;
}

/* ---- One call ------------------------------------------------------------------- */

/* The exception: our exception_type/exception_message when present, else
 * tracepatch 1.0.0's "Type: message" text. A call with both an exception and
 * a return value returned: the exception was handled inside. */
static int read_exception(loader *l, json_t *o, call_info *c)
{
    const char *exc;
    size_t exc_len;
    int r = get_opt_str(l, o, "exception", &exc, &exc_len);
    if (!r)
        r = get_opt_str(l, o, "exception_type", &c->exc_type, &c->type_len);
    if (!r)
        r = get_opt_str(l, o, "exception_message", &c->exc_msg, &c->msg_len);
    if (r)
        return r;
    if (!c->exc_type && exc) {
        const char *colon = strstr(exc, ": ");
        c->exc_type = exc;
        c->type_len = colon ? (size_t)(colon - exc) : exc_len;
        c->exc_msg = colon ? colon + 2 : "";
        c->msg_len = colon ? exc_len - c->type_len - 2 : 0;
    }
    if (c->exc_type && !c->exc_msg)
        c->exc_msg = "";
    c->raised = exc && !c->ret;
    if (exc && c->ret)
        c->caught = true;
    return 0;
}

static int read_call(loader *l, json_t *o, call_info *c)
{
    *c = (call_info){0};
    if (!json_is_object(o))
        return fail(l, "a call must be an object");
    json_t *name = json_object_get(o, "name");
    if (!name)
        return fail(l, "'name' is missing");
    if (!json_is_string(name))
        return fail(l, "'name' must be a string");
    const char *qual = NULL;
    uint64_t v = 0;
    int r = get_opt_str(l, o, "module", &c->module, NULL);
    if (!r)
        r = get_opt_str(l, o, "qualname", &qual, NULL);
    if (!r)
        r = get_opt_str(l, o, "file", &c->file, NULL);
    if (!r)
        r = get_opt_str(l, o, "args", &c->args, &c->args_len);
    if (!r)
        r = get_opt_str(l, o, "return_value", &c->ret, &c->ret_len);
    if (!r)
        r = get_opt_bool(l, o, "caught", &c->caught);
    if (!r)
        r = read_exception(l, o, c);
    if (!r)
        r = get_opt_uint(l, o, "lineno", INT32_MAX, &v, NULL);
    c->lineno = (int32_t)v;
    if (!r)
        r = get_opt_time(l, o, "start", 1e6, MAX_SECONDS, false, &c->start_us, &c->has_start);
    if (!r)
        r = get_opt_time(l, o, "end", 1e6, MAX_SECONDS, false, &c->end_us, &c->has_end);
    if (!r)
        r = get_opt_time(l, o, "elapsed_ms", 1e3, MAX_MS, true, &c->elapsed_us, &c->has_elapsed);
    if (!r)
        r = get_opt_bool(l, o, "unfinished", &c->unfinished);
    if (!r)
        r = get_opt_bool(l, o, "generator", &c->generator);
    if (!r)
        r = get_opt_uint(l, o, "suspends", UINT32_MAX, &v, NULL);
    c->suspends = (uint32_t)v;
    if (!r)
        r = get_opt_uint(l, o, "thread", UINT32_MAX, &v, NULL);
    c->thread = (uint32_t)v;
    if (r)
        return r;
    c->children = json_object_get(o, "children");
    if (c->children && json_is_null(c->children))
        c->children = NULL;
    if (c->children && !json_is_array(c->children))
        return fail(l, "'children' must be an array");
    c->module = c->module ? c->module : "";
    c->qualname = qual ? qual : json_string_value(name);
    c->file = c->file ? c->file : "";
    return 0;
}

/* ---- Replay ---------------------------------------------------------------------- */

static int64_t rel_ns(const loader *l, int64_t us)
{
    return us > l->base_us ? (us - l->base_us) * 1000 : 0;
}

static int push_frame(loader *l, size_t index)
{
    if (l->sp == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        frame *s = realloc(l->stack, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        l->stack = s;
        l->cap = cap;
    }
    l->stack[l->sp++] = (frame){.index = index};
    return 0;
}

/* Maps a builder error to a message naming the call. */
static int builder_fail(loader *l, int r)
{
    if (r == -ENOMEM)
        return r;
    if (r == TP_ERR_LIMIT)
        return fail(l, "too many calls");
    return fail(l, "the calls cannot be replayed (%s)", tp_strerror(r));
}

/* Starts a call: the CALL event, and CAUGHT right away (only its flag and
 * type are kept, so its time does not matter). */
static int enter(loader *l, json_t *o, size_t index, bool last)
{
    int r = push_frame(l, index);
    if (r)
        return r;
    frame *f = &l->stack[l->sp - 1];
    frame *p = l->sp > 1 ? &l->stack[l->sp - 2] : NULL;
    call_info *c = &f->c;
    r = read_call(l, o, c);
    if (r)
        return r;
    if (!p && (r = tp_tree_thread(l->t, c->thread)))
        return builder_fail(l, r);
    uint32_t func = 0;
    r = intern_func(l, c->module, c->qualname, c->file, c->lineno, &func);
    if (r)
        return r;
    f->start_ns = c->has_start ? rel_ns(l, c->start_us) : p ? p->cursor_ns : l->root_cursor_ns;
    f->cursor_ns = f->start_ns;
    f->seq = (uint32_t)l->t->nnodes;
    r = tp_tree_call(l->t, func, (uint64_t)f->start_ns, c->generator, c->args, c->args_len);
    if (!r && c->caught)
        r = tp_tree_caught(l->t, (uint64_t)f->start_ns, c->exc_type, c->type_len, c->exc_msg,
                           c->msg_len);
    if (r)
        return builder_fail(l, r);
    /* An unfinished call stays running only where a recorded one could: on
     * top of its thread's final stack (every other one is closed at its end). */
    f->running_open = c->unfinished && !(c->generator && c->suspends) &&
                      (p ? p->running_open && last : l->root_last[index]);
    if (f->start_ns > l->max_ns)
        l->max_ns = f->start_ns;
    return 0;
}

/* Ends the current call: suspensions, then RETURN or UNWIND, unless it stays
 * open. An unfinished generator that suspended is left suspended. */
static int leave(loader *l)
{
    frame *f = &l->stack[l->sp - 1];
    call_info *c = &f->c;
    int64_t end = c->has_end       ? rel_ns(l, c->end_us)
                  : c->has_elapsed ? f->start_ns + c->elapsed_us * 1000
                                   : f->cursor_ns;
    if (c->unfinished)
        end = f->cursor_ns; /* the trace's end comes from tp_tree_finish() */
    if (c->suspends > l->suspends_left)
        return fail(l, "too many generator suspensions (more than %u in one file)", MAX_SUSPENDS);
    l->suspends_left -= c->suspends;
    bool suspended = c->unfinished && c->generator && c->suspends;
    int r = 0;
    for (uint32_t k = suspended ? 1 : 0; k < c->suspends && !r; k++) {
        r = tp_tree_yield(l->t, f->seq, (uint64_t)end);
        if (!r)
            r = tp_tree_resume(l->t, f->seq, (uint64_t)end);
    }
    if (!r && suspended)
        r = tp_tree_yield(l->t, f->seq, (uint64_t)end);
    else if (!r && !f->running_open && c->raised)
        r = tp_tree_unwind(l->t, (uint64_t)end, c->exc_type, c->type_len, c->exc_msg, c->msg_len);
    else if (!r && !f->running_open)
        r = tp_tree_return(l->t, (uint64_t)end, c->ret, c->ret_len);
    if (r)
        return builder_fail(l, r);
    if (end > l->max_ns)
        l->max_ns = end;
    l->sp--;
    int64_t *cursor = l->sp ? &l->stack[l->sp - 1].cursor_ns : &l->root_cursor_ns;
    if (end > *cursor)
        *cursor = end;
    return 0;
}

static int replay(loader *l, json_t *trace)
{
    size_t next_root = 0;
    for (;;) {
        frame *top = l->sp ? &l->stack[l->sp - 1] : NULL;
        json_t *list = top ? top->c.children : trace;
        size_t *next = top ? &top->next_child : &next_root;
        size_t n = list ? json_array_size(list) : 0;
        int r;
        if (*next < n) {
            size_t idx = (*next)++;
            r = enter(l, json_array_get(list, idx), idx, idx + 1 == n);
        } else if (top) {
            r = leave(l);
        } else {
            return 0;
        }
        if (r)
            return r;
    }
}

/* ---- The document ------------------------------------------------------------------ */

/* Earliest node start in whole microseconds (false when no node has one).
 * Malformed nodes are skipped here; the replay reports them. */
static int earliest_start(json_t *trace, int64_t *ret_us, bool *ret_found)
{
    json_t **stack = NULL;
    size_t *idx = NULL, sp = 0, cap = 0;
    bool found = false;
    int64_t best = 0;
    json_t *list = trace;
    size_t i = 0;
    for (;;) {
        if (i < json_array_size(list)) {
            json_t *o = json_array_get(list, i++);
            json_t *s = json_object_get(o, "start");
            if (json_is_number(s) && isfinite(json_number_value(s)) &&
                abs_d(json_number_value(s)) <= MAX_SECONDS) {
                int64_t us = round_i64(json_number_value(s) * 1e6);
                if (!found || us < best)
                    best = us;
                found = true;
            }
            json_t *ch = json_object_get(o, "children");
            if (json_is_array(ch) && json_array_size(ch)) {
                if (sp == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    json_t **ns = realloc(stack, nc * sizeof(*ns));
                    size_t *ni = ns ? realloc(idx, nc * sizeof(*ni)) : NULL;
                    if (!ns || !ni) {
                        free(ns ? ns : stack);
                        free(idx);
                        return -ENOMEM;
                    }
                    stack = ns;
                    idx = ni;
                    cap = nc;
                }
                stack[sp] = list;
                idx[sp++] = i;
                list = ch;
                i = 0;
            }
            continue;
        }
        if (!sp)
            break;
        sp--;
        list = stack[sp];
        i = idx[sp];
    }
    free(stack);
    free(idx);
    *ret_us = best;
    *ret_found = found;
    return 0;
}

static int cmp_root(const void *pa, const void *pb)
{
    const uint64_t *a = pa, *b = pb; /* thread << 32 | index */
    return (*a > *b) - (*a < *b);
}

/* Marks the last root of every thread: only it may stay running. */
static int mark_last_roots(loader *l, json_t *trace)
{
    size_t n = json_array_size(trace);
    if (n > UINT32_MAX)
        return fail(l, "too many calls");
    uint64_t *keys = malloc((n ? n : 1) * sizeof(*keys));
    l->root_last = calloc(n ? n : 1, 1);
    if (!keys || !l->root_last) {
        free(keys);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *th = json_object_get(json_array_get(trace, i), "thread");
        uint64_t thread = json_is_integer(th) && json_integer_value(th) >= 0 &&
                                  json_integer_value(th) <= UINT32_MAX
                              ? (uint64_t)json_integer_value(th)
                              : 0;
        keys[i] = thread << 32 | i;
    }
    qsort(keys, n, sizeof(*keys), cmp_root);
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || keys[i + 1] >> 32 != keys[i] >> 32)
            l->root_last[keys[i] & UINT32_MAX] = 1;
    free(keys);
    return 0;
}

/* "2026-02-12T14:30:22[.123456][Z|+hh:mm]" to Unix µs; local time without a
 * zone, as Python's naive isoformat() writes it. */
static bool parse_timestamp(const char *s, int64_t *ret_us)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return false;
    s += n;
    int64_t frac = 0;
    if (*s == '.') {
        int digits = 0;
        for (s++; isdigit((unsigned char)*s); s++, digits++)
            if (digits < 6)
                frac = frac * 10 + (*s - '0');
        if (!digits)
            return false;
        for (; digits < 6; digits++)
            frac *= 10;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t sec;
    if (!*s) {
        tm.tm_isdst = -1;
        sec = mktime(&tm);
    } else {
        int oh = 0, om = 0;
        if (!strcmp(s, "Z"))
            sec = timegm(&tm);
        else if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2 &&
                 strlen(s) == 6)
            sec = timegm(&tm) - (*s == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        else
            return false;
    }
    if (sec == (time_t)-1)
        return false;
    *ret_us = (int64_t)sec * 1000000 + frac;
    return true;
}

/* Keeps a trace ID made of hex digits (dashes dropped), lowercased. */
static void set_trace_id(tp_tree *t, const char *id)
{
    char out[sizeof(t->meta.trace_id)];
    size_t k = 0;
    for (; id && *id; id++) {
        if (*id == '-')
            continue;
        if (!isxdigit((unsigned char)*id) || k + 1 >= sizeof(out))
            return;
        out[k++] = (char)tolower((unsigned char)*id);
    }
    out[k] = '\0';
    memcpy(t->meta.trace_id, out, k + 1);
}

typedef struct doc_meta {
    const char *label, *trace_id, *timestamp, *limit_reason;
    bool was_limited, has_start, has_duration, has_call_count;
    int64_t start_us, duration_us;
    uint64_t call_count, dropped;
    json_t *config;
} doc_meta;

static int read_meta(loader *l, json_t *doc, doc_meta *m)
{
    *m = (doc_meta){0};
    if (!json_is_object(doc))
        return 0;
    int r = get_opt_str(l, doc, "label", &m->label, NULL);
    if (!r)
        r = get_opt_str(l, doc, "trace_id", &m->trace_id, NULL);
    if (!r)
        r = get_opt_str(l, doc, "timestamp", &m->timestamp, NULL);
    if (!r)
        r = get_opt_str(l, doc, "limit_reason", &m->limit_reason, NULL);
    if (!r)
        r = get_opt_bool(l, doc, "was_limited", &m->was_limited);
    if (!r)
        r = get_opt_time(l, doc, "start", 1e6, MAX_SECONDS, false, &m->start_us, &m->has_start);
    if (!r)
        r = get_opt_time(l, doc, "duration_ms", 1e3, MAX_MS, true, &m->duration_us,
                         &m->has_duration);
    if (!r)
        r = get_opt_uint(l, doc, "call_count", UINT64_MAX >> 1, &m->call_count, &m->has_call_count);
    if (!r)
        r = get_opt_uint(l, doc, "dropped", UINT64_MAX >> 1, &m->dropped, NULL);
    if (r)
        return r;
    m->config = json_object_get(doc, "config");
    if (m->config && !json_is_null(m->config) && !json_is_object(m->config))
        return fail(l, "'config' must be an object or null");
    return 0;
}

static int apply_meta(loader *l, const doc_meta *m)
{
    tp_tree *t = l->t;
    int r = tp_tree_set_label(t, m->label);
    if (!r)
        r = tp_tree_set_limit_reason(t, m->limit_reason  ? m->limit_reason
                                        : m->was_limited ? "unknown"
                                                         : NULL);
    if (!r && json_is_object(m->config)) {
        char *cfg = json_dumps(m->config, JSON_COMPACT | JSON_REAL_PRECISION(15));
        r = cfg ? tp_tree_set_config_json(t, cfg) : -ENOMEM;
        free(cfg);
    }
    if (r)
        return r;
    set_trace_id(t, m->trace_id);
    int64_t wall_us = l->base_us;
    if (!m->has_start && m->timestamp)
        parse_timestamp(m->timestamp, &wall_us);
    t->meta.wall_start_ns = wall_us > 0 ? wall_us * 1000 : 0;
    if (m->has_call_count)
        t->meta.call_count = m->call_count;
    t->meta.dropped = m->dropped;
    return 0;
}

/* Parses text, reporting syntax errors with jansson's line and column. */
static int parse(const char *text, size_t len, json_t **ret, char *err, size_t errsz)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    if (i == len) {
        if (err && errsz)
            snprintf(err, errsz, "empty document");
        return TP_ERR_JSON;
    }
    json_error_t e;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (doc) {
        *ret = doc;
        return 0;
    }
    enum json_error_code code = json_error_code(&e);
    if (code == json_error_out_of_memory)
        return -ENOMEM;
    if (err && errsz) {
        if (code == json_error_stack_overflow)
            snprintf(err, errsz,
                     "line %d column %d: nested deeper than the JSON parser's 2048 levels "
                     "(about 1020 nested calls)",
                     e.line, e.column);
        else
            snprintf(err, errsz, "line %d column %d: %s", e.line, e.column, e.text);
    }
    return code == json_error_stack_overflow ? TP_ERR_LIMIT : TP_ERR_JSON;
}

int tp_tree_from_json(const char *text, size_t len, tp_tree **ret, char *err, size_t errsz)
{
    if (err && errsz)
        err[0] = '\0';
    if (!text || !ret)
        return -EINVAL;
    loader l = {.err = err, .errsz = errsz, .suspends_left = MAX_SUSPENDS};
    json_t *doc = NULL;
    doc_meta m = {0};
    int r = parse(text, len, &doc, err, errsz);
    if (r)
        return r;
    json_t *trace = json_is_array(doc) ? doc : json_object_get(doc, "trace");
    if (!json_is_object(doc) && !json_is_array(doc))
        r = fail(&l, "a trace must be a JSON object (or an array of calls)");
    else if (!trace)
        r = fail(&l, "'trace' is missing: this is not a tracepatch trace");
    else if (!json_is_array(trace))
        r = fail(&l, "'trace' must be an array");
    if (!r)
        r = read_meta(&l, doc, &m);
    if (!r)
        r = tp_tree_new(&l.t);
    if (r)
        goto cleanup;
    bool found = m.has_start;
    l.base_us = m.start_us;
    if (!found && (r = earliest_start(trace, &l.base_us, &found)))
        goto cleanup;
    r = mark_last_roots(&l, trace);
    if (!r)
        r = replay(&l, trace);
    if (!r)
        r = apply_meta(&l, &m);
    if (r)
        goto cleanup;
    int64_t end = m.has_duration ? m.duration_us * 1000 : 0;
    r = tp_tree_finish(l.t, (uint64_t)(end > l.max_ns ? end : l.max_ns));
    if (r)
        goto cleanup;
    *ret = l.t;
    l.t = NULL;
cleanup:
    tp_tree_free(l.t);
    free(l.stack);
    free(l.funcs);
    free(l.root_last);
    json_decref(doc);
    return r;
}
