/* Loading tracepatch JSON trace files into a tree: the document half.
 *
 * Two dialects arrive here: tracepatch 1.0.0's files (and its bare array of
 * root calls from `tph tree --format json`), whose times come from
 * time.perf_counter() and whose optional keys may be absent, and ours
 * (proto/render_trace_json.c), which add exact nanosecond times and exception,
 * generator and thread keys. Either way the tree is rebuilt through the
 * public builder (tree.h) from events replayed in time order
 * (load_replay.c), so a loaded tree obeys every invariant a recorded one
 * does, and one of ours comes back as it was written.
 *
 * Times: start_ns/end_ns when present; else start/end (seconds) read to the
 * microsecond, relative to the trace start the file names or else to the
 * earliest call. A call without start begins where its previous sibling
 * ended (or its parent began); a call without end lasts elapsed_ms.
 *
 * Depth: jansson parses recursively and stops at 2048 nested arrays and
 * objects, about 1020 nested calls; deeper files fail with TP_ERR_LIMIT.
 * Everything after parsing is iterative. */
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
#include "load_priv.h"
#include "tp_err.h"

/* The replay knows when calls started and ended, not when a generator ran
 * between its resumes. A generator's active time is its elapsed_ms (exact in
 * our files' active_ns); self times come from our files' self_ns, or, for a
 * file without them, are the active time less the children's. */
static void restore_times(loader *l)
{
    tp_tree *t = l->t;
    bool all_self = true;
    for (size_t i = 0; i < l->calls.size; i++) {
        const call_info *c = &l->calls.items[i].c;
        if (l->calls.items[i].seq >= t->nnodes)
            continue;
        tp_node *n = &t->nodes[l->calls.items[i].seq];
        if (c->spawned)
            n->flags |= TP_NODE_SPAWNED; /* its place is its file's nesting */
        if (c->has_mem) {
            n->flags |= TP_NODE_MEM;
            n->mem_delta = c->mem_bytes;
        }
        int64_t span = n->end_ns - n->start_ns, active = -1;
        if (c->has_active_ns)
            active = (int64_t)c->active_ns;
        else if (c->generator && c->has_elapsed)
            active = c->elapsed_us * 1000;
        if (active >= 0 && active <= span)
            n->total_ns = n->min_ns = n->max_ns = active;
        if (c->has_self_ns && c->self_ns <= (uint64_t)n->total_ns)
            n->self_ns = (int64_t)c->self_ns;
        else
            all_self = false;
    }
    if (all_self)
        return;
    for (size_t i = 0; i < t->nnodes; i++)
        t->nodes[i].self_ns = t->nodes[i].total_ns;
    /* Children come after their parent: walking backwards subtracts every
     * child before its parent is clamped. */
    for (size_t i = t->nnodes; i-- > 0;) {
        tp_node *n = &t->nodes[i];
        if (n->self_ns < 0)
            n->self_ns = 0;
        if (n->parent != TP_NONE)
            t->nodes[n->parent].self_ns -= n->total_ns;
    }
}

/* ---- Errors ---------------------------------------------------------------- */

/* Writes "<path>: <message>" where path names the call being read. */
int tp_load_priv_fail(loader *l, const char *fmt, ...)
{
    if (!l->err || !l->errsz)
        return TP_ERR_JSON;
    size_t off = 0;
    for (size_t i = 0; i < l->stack.size && off < l->errsz; i++) {
        int n = snprintf(l->err + off, l->errsz - off, i ? ".children[%zu]" : "trace[%zu]",
                         l->stack.items[i].index);
        off += n > 0 ? (size_t)n : 0;
    }
    if (l->stack.size && off < l->errsz) {
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
        return tp_load_priv_fail(l, "'%s' must be a string or null", key);
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
        return tp_load_priv_fail(l, "'%s' must be true or false", key);
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
        return tp_load_priv_fail(l, "'%s' must be an integer from 0 to %llu", key,
                                 (unsigned long long)max);
    *ret = (uint64_t)json_integer_value(v);
    if (present)
        *present = true;
    return 0;
}

/* A call's memory delta: our exact memory_delta_bytes when present, else
 * memory_delta_kb (tracepatch 1.0.0's key, KiB) rounded to whole bytes. */
static int get_opt_mem(loader *l, json_t *o, call_info *c)
{
    json_t *v = json_object_get(o, "memory_delta_bytes");
    if (v && !json_is_null(v)) {
        json_int_t b = json_is_integer(v) ? json_integer_value(v) : 0;
        if (!json_is_integer(v) || abs_d((double)b) > MAX_MEM_KB * 1024)
            return tp_load_priv_fail(l, "'memory_delta_bytes' must be an integer from %.0f to %.0f",
                                     -MAX_MEM_KB * 1024, MAX_MEM_KB * 1024);
        c->mem_bytes = (int64_t)b;
        c->has_mem = true;
        return 0;
    }
    v = json_object_get(o, "memory_delta_kb");
    if (!v || json_is_null(v))
        return 0;
    double d = json_is_number(v) ? json_number_value(v) : 0;
    if (!json_is_number(v) || !isfinite(d) || abs_d(d) > MAX_MEM_KB)
        return tp_load_priv_fail(l, "'memory_delta_kb' must be a number from %.0f to %.0f",
                                 -MAX_MEM_KB, MAX_MEM_KB);
    c->mem_bytes = round_i64(d * 1024);
    c->has_mem = true;
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
        return tp_load_priv_fail(l, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || abs_d(d) > limit)
        return tp_load_priv_fail(l, "'%s' is out of range", key);
    if (nonneg && d < 0)
        return tp_load_priv_fail(l, "'%s' must not be negative", key);
    *ret_us = round_i64(d * scale);
    *present = true;
    return 0;
}

/* ---- Functions ---------------------------------------------------------------- */

/* Interns a function by (module, qualname, file, lineno), describing it to
 * the tree the first time. The key is the four fields back to back, each
 * string with its NUL, so ("ab", "c") and ("a", "bc") differ. */
static int intern_func(loader *l, const char *m, const char *q, const char *f, int32_t lineno,
                       uint32_t *ret_id)
{
    size_t lm = strlen(m) + 1, lq = strlen(q) + 1, lf = strlen(f) + 1;
    size_t n = lm + lq + lf + sizeof(lineno);
    if (tp_vec_reserve(&l->key, n) < 0)
        return -ENOMEM;
    char *k = l->key.items;
    memcpy(k, m, lm);
    memcpy(k + lm, q, lq);
    memcpy(k + lm + lq, f, lf);
    memcpy(k + lm + lq + lf, &lineno, sizeof(lineno));
    uint64_t id;
    if (tp_hmap_bytes_get(&l->funcs, k, n, &id)) {
        *ret_id = (uint32_t)id;
        return 0;
    }
    id = tp_hmap_bytes_size(&l->funcs);
    int r = tp_tree_def_func(l->t, (uint32_t)id, m, q, f, lineno);
    if (r == TP_ERR_LIMIT)
        return tp_load_priv_fail(l, "too many distinct functions");
    if (r)
        return r;
    if (tp_hmap_bytes_put(&l->funcs, k, n, id) < 0)
        return -ENOMEM;
    *ret_id = (uint32_t)id;
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
        return tp_load_priv_fail(l, "a call must be an object");
    json_t *name = json_object_get(o, "name");
    if (!name)
        return tp_load_priv_fail(l, "'name' is missing");
    if (!json_is_string(name))
        return tp_load_priv_fail(l, "'name' must be a string");
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
        r = get_opt_uint(l, o, "start_ns", MAX_SPAN_US * 1000, &c->start_ns, &c->has_start_ns);
    if (!r)
        r = get_opt_uint(l, o, "end_ns", MAX_SPAN_US * 1000, &c->end_ns, &c->has_end_ns);
    if (!r)
        r = get_opt_uint(l, o, "active_ns", MAX_SPAN_US * 1000, &c->active_ns, &c->has_active_ns);
    if (!r)
        r = get_opt_uint(l, o, "self_ns", MAX_SPAN_US * 1000, &c->self_ns, &c->has_self_ns);
    if (!r)
        r = get_opt_bool(l, o, "unfinished", &c->unfinished);
    if (!r)
        r = get_opt_bool(l, o, "generator", &c->generator);
    if (!r)
        r = get_opt_bool(l, o, "spawned", &c->spawned);
    if (!r)
        r = get_opt_uint(l, o, "suspends", UINT32_MAX, &v, NULL);
    c->suspends = (uint32_t)v;
    if (!r)
        r = get_opt_uint(l, o, "thread", UINT32_MAX, &v, NULL);
    c->thread = (uint32_t)v;
    if (!r)
        r = get_opt_mem(l, o, c);
    if (r)
        return r;
    c->children = json_object_get(o, "children");
    if (c->children && json_is_null(c->children))
        c->children = NULL;
    if (c->children && !json_is_array(c->children))
        return tp_load_priv_fail(l, "'children' must be an array");
    c->module = c->module ? c->module : "";
    c->qualname = qual ? qual : json_string_value(name);
    c->file = c->file ? c->file : "";
    return 0;
}

/* ---- Reading the calls ---------------------------------------------------------- */

/* A file time (µs) as ns since the trace start; earlier times count as 0. */
static int rel_ns(loader *l, const char *key, int64_t us, int64_t *ret_ns)
{
    if (us <= l->base_us) {
        *ret_ns = 0;
        return 0;
    }
    if (us - l->base_us > MAX_SPAN_US)
        return tp_load_priv_fail(l, "'%s' is more than 3 years after the trace start", key);
    *ret_ns = (us - l->base_us) * 1000;
    return 0;
}

static int new_segment(loader *l, uint32_t *ret)
{
    if (tp_vec_grow1(&l->segs) < 0)
        return -ENOMEM;
    l->segs.items[l->segs.size] = (segment){NONE, NONE, NONE};
    *ret = (uint32_t)l->segs.size++;
    return 0;
}

static int add_event(loader *l, uint32_t seg, uint32_t what)
{
    if (tp_vec_grow1(&l->ev) < 0)
        return -ENOMEM;
    event *e = l->ev.items;
    uint32_t k = (uint32_t)l->ev.size++;
    e[k] = (event){what, NONE};
    segment *s = &l->segs.items[seg];
    if (s->tail == NONE)
        s->head = k;
    else
        e[s->tail].next = k;
    s->tail = k;
    return 0;
}

/* Reads a call (its object is at the top of the walk) and records its CALL
 * event in its segment. */
static int enter(loader *l, json_t *o, size_t index)
{
    if (tp_vec_grow1(&l->stack) < 0)
        return -ENOMEM;
    l->stack.items[l->stack.size++] = (frame){.index = index};
    frame *p = l->stack.size > 1 ? &l->stack.items[l->stack.size - 2] : NULL;
    if (l->calls.size >= MAX_CALLS)
        return tp_load_priv_fail(l, "too many calls");
    if (tp_vec_grow1(&l->calls) < 0)
        return -ENOMEM;
    lcall *calls = l->calls.items;
    uint32_t x = (uint32_t)l->calls.size;
    lcall *c = &calls[x];
    *c = (lcall){.parent = p ? p->call : NONE};
    int r = read_call(l, o, &c->c);
    if (!r)
        r = intern_func(l, c->c.module, c->c.qualname, c->c.file, c->c.lineno, &c->func);
    if (!r && c->c.suspends > l->suspends_left)
        r = tp_load_priv_fail(l, "too many generator suspensions (more than %u in one file)",
                              MAX_SUSPENDS);
    if (!r && c->c.has_start_ns)
        c->start_ns = (int64_t)c->c.start_ns;
    else if (!r && c->c.has_start)
        r = rel_ns(l, "start", c->c.start_us, &c->start_ns);
    else
        c->start_ns = p ? p->cursor_ns : l->root_cursor_ns;
    if (r)
        return r;
    l->suspends_left -= c->c.suspends;
    l->calls.size++;
    /* A root or a generator starts a segment; other calls join their parent's. */
    if (!p || c->c.generator)
        r = new_segment(l, &c->seg);
    else
        c->seg = l->calls.items[p->call].seg;
    if (!r)
        r = add_event(l, c->seg, x << 1);
    l->stack.items[l->stack.size - 1].call = x;
    l->stack.items[l->stack.size - 1].cursor_ns = c->start_ns;
    if (c->start_ns > l->max_ns)
        l->max_ns = c->start_ns;
    return r;
}

/* Finishes reading the call at the top of the walk: its end, and its END
 * event unless it was still open when the trace stopped. */
static int leave(loader *l)
{
    frame *f = &l->stack.items[l->stack.size - 1];
    lcall *c = &l->calls.items[f->call];
    int64_t end = f->cursor_ns;
    int r = 0;
    if (c->c.has_end_ns)
        end = (int64_t)c->c.end_ns;
    else if (c->c.has_end)
        r = rel_ns(l, "end", c->c.end_us, &end);
    else if (c->c.has_elapsed)
        end = c->start_ns + c->c.elapsed_us * 1000; /* both bounded: no overflow */
    if (!r && end > MAX_SPAN_US * 1000)
        r = tp_load_priv_fail(l, "the call ends more than 3 years after the trace start");
    if (!r && !c->c.unfinished)
        r = add_event(l, c->seg, f->call << 1 | 1);
    if (r)
        return r;
    c->end_ns = c->c.unfinished ? f->cursor_ns : end;
    if (c->end_ns > l->max_ns)
        l->max_ns = c->end_ns;
    l->stack.size--;
    int64_t *cursor =
        l->stack.size ? &l->stack.items[l->stack.size - 1].cursor_ns : &l->root_cursor_ns;
    if (c->end_ns > *cursor)
        *cursor = c->end_ns;
    return 0;
}

/* Walks the nested calls (iteratively) into l->calls, in document order. */
static int collect(loader *l, json_t *trace)
{
    size_t next_root = 0;
    for (;;) {
        frame *top = l->stack.size ? &l->stack.items[l->stack.size - 1] : NULL;
        json_t *list = top ? l->calls.items[top->call].c.children : trace;
        size_t *next = top ? &top->next_child : &next_root;
        size_t n = list ? json_array_size(list) : 0;
        int r;
        if (*next < n) {
            size_t idx = (*next)++;
            r = enter(l, json_array_get(list, idx), idx);
        } else if (top) {
            r = leave(l);
        } else {
            return 0;
        }
        if (r)
            return r;
    }
}

/* A call starts while its parent runs: inside the parent's span (a file
 * edited by hand, or rounded, may say otherwise). */
static void sanitize(loader *l)
{
    for (size_t x = 0; x < l->calls.size; x++) {
        lcall *c = &l->calls.items[x];
        if (c->parent != NONE) {
            const lcall *p = &l->calls.items[c->parent];
            if (c->start_ns < p->start_ns)
                c->start_ns = p->start_ns;
            if (!p->c.unfinished && c->start_ns > p->end_ns)
                c->start_ns = p->end_ns;
        }
        if (c->end_ns < c->start_ns)
            c->end_ns = c->start_ns;
    }
}

/* ---- The document ------------------------------------------------------------------ */

/* Earliest node start in whole microseconds (false when no node has one).
 * Malformed nodes are skipped here; the replay reports them. */
static int earliest_start(json_t *trace, int64_t *ret_us, bool *ret_found)
{
    /* The lists above the current one, and where each resumes. */
    TP_VEC(struct {
        json_t *list;
        size_t i;
    })
    stack = TP_VEC_INIT;
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
                if (tp_vec_grow1(&stack) < 0) {
                    tp_vec_free(&stack);
                    return -ENOMEM;
                }
                stack.items[stack.size].list = list;
                stack.items[stack.size++].i = i;
                list = ch;
                i = 0;
            }
            continue;
        }
        if (!stack.size)
            break;
        stack.size--;
        list = stack.items[stack.size].list;
        i = stack.items[stack.size].i;
    }
    tp_vec_free(&stack);
    *ret_us = best;
    *ret_found = found;
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
    const char *env[4]; /* hostname, python_version, platform, working_directory */
    bool was_limited, has_start, has_duration, has_call_count, has_wall_ns, has_duration_ns;
    bool running;
    int64_t start_us, duration_us;
    uint64_t call_count, dropped, wall_ns, duration_ns; /* the _ns ones are ours, exact */
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
    static const char *const env_keys[4] = {"hostname", "python_version", "platform",
                                            "working_directory"};
    for (int k = 0; !r && k < 4; k++)
        r = get_opt_str(l, doc, env_keys[k], &m->env[k], NULL);
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
    if (!r)
        r = get_opt_bool(l, doc, "running", &m->running);
    if (!r)
        r = get_opt_uint(l, doc, "wall_start_ns", INT64_MAX, &m->wall_ns, &m->has_wall_ns);
    if (!r)
        r = get_opt_uint(l, doc, "duration_ns", MAX_SPAN_US * 1000, &m->duration_ns,
                         &m->has_duration_ns);
    if (r)
        return r;
    m->config = json_object_get(doc, "config");
    if (m->config && !json_is_null(m->config) && !json_is_object(m->config))
        return tp_load_priv_fail(l, "'config' must be an object or null");
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
    if (!r)
        r = tp_tree_set_env(t, m->env[0], m->env[1], m->env[2], m->env[3]);
    if (!r && json_is_object(m->config)) {
        char *cfg = json_dumps(m->config, JSON_COMPACT | JSON_REAL_PRECISION(15));
        r = cfg ? tp_tree_set_config_json(t, cfg) : -ENOMEM;
        free(cfg);
    }
    if (r)
        return r;
    set_trace_id(t, m->trace_id);
    int64_t wall_us = l->base_us;
    if (!m->has_start && !m->has_wall_ns && m->timestamp)
        parse_timestamp(m->timestamp, &wall_us);
    t->meta.wall_start_ns = wall_us > 0 && wall_us <= INT64_MAX / 1000 ? wall_us * 1000 : 0;
    if (m->has_wall_ns)
        t->meta.wall_start_ns = (int64_t)m->wall_ns;
    if (m->has_call_count)
        t->meta.call_count = m->call_count;
    t->meta.dropped = m->dropped;
    t->meta.running = m->running;
    return 0;
}

/* "threads": [{"thread", "name"}] (ours): the names the views show for the
 * threads. Absent or null in a file with one thread. */
static int apply_thread_names(loader *l, json_t *doc)
{
    json_t *th = json_is_object(doc) ? json_object_get(doc, "threads") : NULL;
    if (!th || json_is_null(th))
        return 0;
    if (!json_is_array(th))
        return tp_load_priv_fail(l, "'threads' must be an array");
    size_t i;
    json_t *o;
    json_array_foreach(th, i, o)
    {
        if (!json_is_object(o))
            return tp_load_priv_fail(l, "'threads' entries must be objects");
        uint64_t id = 0;
        bool has_id = false;
        const char *name = NULL;
        size_t len = 0;
        int r = get_opt_uint(l, o, "thread", UINT32_MAX, &id, &has_id);
        if (!r)
            r = get_opt_str(l, o, "name", &name, &len);
        if (!r && (!has_id || !name))
            r = tp_load_priv_fail(l, "a 'threads' entry needs 'thread' and 'name'");
        if (!r)
            r = tp_tree_set_thread_name(l->t, (uint32_t)id, name, len);
        if (r)
            return r;
    }
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

int tp_load_json(const char *text, size_t len, tp_tree **ret, char *err, size_t errsz)
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
        r = tp_load_priv_fail(&l, "a trace must be a JSON object (or an array of calls)");
    else if (!trace)
        r = tp_load_priv_fail(&l, "'trace' is missing: this is not a tracepatch trace");
    else if (!json_is_array(trace))
        r = tp_load_priv_fail(&l, "'trace' must be an array");
    if (!r)
        r = read_meta(&l, doc, &m);
    if (!r)
        r = tp_tree_new(&l.t);
    if (r)
        goto cleanup;
    /* µs times count from the trace start when the file says when that was
     * (ours), else from the earliest call (tracepatch 1.0.0's perf_counter). */
    bool found = m.has_start || m.has_wall_ns;
    l.base_us = m.has_wall_ns ? (int64_t)(m.wall_ns / 1000) : m.start_us;
    if (!found && (r = earliest_start(trace, &l.base_us, &found)))
        goto cleanup;
    r = collect(&l, trace);
    if (!r) {
        sanitize(&l);
        r = tp_load_priv_replay(&l);
    }
    if (!r)
        r = apply_meta(&l, &m);
    if (r)
        goto cleanup;
    int64_t end = m.has_duration_ns ? (int64_t)m.duration_ns
                  : m.has_duration  ? m.duration_us * 1000
                                    : 0;
    r = tp_tree_finish(l.t, (uint64_t)(end > l.max_ns ? end : l.max_ns));
    if (r)
        goto cleanup;
    restore_times(&l);
    r = apply_thread_names(&l, doc);
    if (r)
        goto cleanup;
    *ret = l.t;
    l.t = NULL;
cleanup:
    tp_tree_free(l.t);
    tp_vec_free(&l.stack);
    tp_hmap_bytes_free(&l.funcs);
    tp_vec_free(&l.key);
    tp_vec_free(&l.calls);
    tp_vec_free(&l.ev);
    tp_vec_free(&l.segs);
    for (size_t i = 0; i < l.th.size; i++)
        tp_vec_free(&l.th.items[i].s);
    tp_vec_free(&l.th);
    tp_hmap_free(&l.th_index);
    json_decref(doc);
    return r;
}
