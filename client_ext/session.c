/* The Session type: configuration, start/stop, state properties, and the
 * session's function table. Outputs are in output.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "clock.h"
#include "frame.h"
#include "codeinfo.h"
#include "hooks.h"
#include "record.h"
#include "sender.h"
#include "upload.h"

/* The numeric settings' defaults and ranges, once: Session parses with them
 * and the settings schema (tracepatch/_settings.py) reads them from the
 * module's LIMITS, so a value the Python side accepts never raises here
 * (tests/py/test_settings.py passes every boundary). Seconds have an
 * exclusive lower bound; a NAN default is None (the setting follows another). */
enum { L_DEPTH, L_CALLS, L_TIME, L_REPR, L_REPR_ARGS, L_REPR_RETURN, L_STREAM_AFTER, L_STREAM_MEM };
static const struct {
    const char *name;
    double def, lo, hi;
} limits[] = {
    [L_DEPTH] = {"max_depth", 30, 1, 1000000},
    /* call numbers must stay below TP_NONE */
    [L_CALLS] = {"max_calls", 10000, 1, (double)(UINT32_MAX - 2)},
    [L_TIME] = {"max_time", 60, 0, 1e9},
    [L_REPR] = {"max_repr", 120, TP_MIN_REPR, 1000000},
    [L_REPR_ARGS] = {"max_repr_args", NAN, TP_MIN_REPR, 1000000},
    [L_REPR_RETURN] = {"max_repr_return", NAN, TP_MIN_REPR, 1000000},
    [L_STREAM_AFTER] = {"stream_after", 0.5, 0, 1e9},
    [L_STREAM_MEM] = {"stream_memory", 4, 0, 1000000}, /* MiB */
};

int tp_session_add_limits(PyObject *m)
{
    PyObject *d = PyDict_New();
    if (!d)
        return -1;
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        bool secs = i == L_TIME || i == L_STREAM_AFTER;
        PyObject *t;
        if (secs)
            t = Py_BuildValue("(ddd)", limits[i].def, limits[i].lo, limits[i].hi);
        else if (isnan(limits[i].def))
            t = Py_BuildValue("(OLL)", Py_None, (long long)limits[i].lo, (long long)limits[i].hi);
        else
            t = Py_BuildValue("(LLL)", (long long)limits[i].def, (long long)limits[i].lo,
                              (long long)limits[i].hi);
        if (!t || PyDict_SetItemString(d, limits[i].name, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(d);
            return -1;
        }
        Py_DECREF(t);
    }
    int r = PyModule_AddObjectRef(m, "LIMITS", d);
    Py_DECREF(d);
    return r;
}

/* ---- errors ------------------------------------------------------------- */

void tp_session_error(tp_session *s, const char *fmt, ...)
{
    tp_exc_saved saved;
    tp_exc_save(&saved);
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg && s->errors)
        PyList_Append(s->errors, msg);
    Py_XDECREF(msg);
    tp_exc_restore(&saved);
}

/* ---- the function table --------------------------------------------------- */

static bool prefix_listed(char **list, const char *m, size_t mlen)
{
    for (size_t i = 0; list && list[i]; i++) {
        if (tp_codeinfo_module_matches(m, mlen, list[i]))
            return true;
    }
    return false;
}

static bool filtered(tp_session *s, tp_codeinfo *ci)
{
    if (ci->flags & TP_CI_INTERNAL)
        return true;
    if ((ci->flags & TP_CI_ASYNCIO) && !s->show_asyncio)
        return true;
    Py_ssize_t mlen;
    const char *m = PyUnicode_AsUTF8AndSize(ci->module, &mlen);
    if (!m) {
        PyErr_Clear();
        return true;
    }
    if (s->ninclude && !prefix_listed(s->include, m, (size_t)mlen))
        return true;
    return prefix_listed(s->ignore, m, (size_t)mlen);
}

uint32_t tp_session_func_slow(tp_session *s, tp_codeinfo *ci)
{
    uint32_t id;
    uint64_t val;
    if (tp_hmap_get(&s->funcmap, ci->gid, &val)) {
        id = (uint32_t)val;
        goto done;
    }
    if (filtered(s, ci)) {
        id = TP_FUNC_FILTERED;
    } else {
        /* Ids are uint32 on the wire and TP_FUNC_* are reserved above. */
        if (s->funcs.size >= TP_FUNC_FILTERED || tp_vec_grow1(&s->funcs) < 0)
            return TP_FUNC_ERROR;
        id = (uint32_t)s->funcs.size;
    }
    if (tp_hmap_put(&s->funcmap, ci->gid, id) < 0)
        return TP_FUNC_ERROR;
    if (id != TP_FUNC_FILTERED) {
        s->funcs.items[id] = (tp_funcent){Py_NewRef(ci->module), Py_NewRef(ci->qualname),
                                          Py_NewRef(ci->file), ci->lineno};
        s->funcs.size++;
    }
done:
    ci->last_serial = s->serial;
    ci->last_id = id;
    return id;
}

/* ---- configuration ---------------------------------------------------------- */

static void free_prefixes(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        PyMem_RawFree(list[i]);
    PyMem_RawFree(list);
}

/* A module prefix list: any iterable of non-empty dotted names, not a str. */
static int parse_prefixes(PyObject *o, const char *what, char ***ret, size_t *ret_n)
{
    if (PyUnicode_Check(o) || PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a sequence of module names, not a string", what);
        return -1;
    }
    PyObject *seq = PySequence_Fast(o, "");
    if (!seq) {
        PyErr_Format(PyExc_TypeError, "%s must be a sequence of module names", what);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    char **list = PyMem_RawCalloc((size_t)n + 1, sizeof(char *));
    if (!list) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t len;
        const char *str = PyUnicode_Check(it) ? PyUnicode_AsUTF8AndSize(it, &len) : NULL;
        if (!str) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "%s[%zd] must be a str, not %.100s", what, i,
                             Py_TYPE(it)->tp_name);
            goto fail;
        }
        if (len == 0 || str[0] == '.' || str[len - 1] == '.' || strstr(str, "..") ||
            strpbrk(str, " \t\n")) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] is not a module name: %R", what, i, it);
            goto fail;
        }
        list[i] = PyMem_RawMalloc((size_t)len + 1);
        if (!list[i]) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(list[i], str, (size_t)len + 1);
    }
    Py_DECREF(seq);
    *ret = list;
    *ret_n = (size_t)n;
    return 0;
fail:
    Py_DECREF(seq);
    free_prefixes(list);
    return -1;
}

static int parse_int(PyObject *o, const char *what, long long lo, long long hi, long long *ret)
{
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s must be between %lld and %lld, got %R", what, lo, hi, o);
        return -1;
    }
    *ret = v;
    return 0;
}

static int parse_limited(PyObject *o, int which, long long *ret)
{
    return parse_int(o, limits[which].name, (long long)limits[which].lo,
                     (long long)limits[which].hi, ret);
}

/* A positive number of seconds up to its limit (an int, a float). */
static int parse_seconds(PyObject *o, int which, double *ret)
{
    const char *what = limits[which].name;
    if ((!PyFloat_Check(o) && !PyLong_Check(o)) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a number of seconds, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    double secs = PyFloat_AsDouble(o);
    if (secs == -1.0 && PyErr_Occurred())
        return -1;
    if (!isfinite(secs) || secs <= limits[which].lo || secs > limits[which].hi) {
        PyErr_Format(PyExc_ValueError, "%s must be a positive number of seconds, got %R", what, o);
        return -1;
    }
    *ret = secs;
    return 0;
}

static int parse_bool(PyObject *o, const char *what, bool *ret)
{
    if (!PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be True or False, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    *ret = o == Py_True;
    return 0;
}

static int parse_str_or_none(PyObject *o, const char *what, PyObject **ret)
{
    if (o != Py_None && !PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str or None, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    Py_XSETREF(*ret, o == Py_None ? NULL : Py_NewRef(o));
    return 0;
}

static int parse_trace_id(tp_session *s, PyObject *o)
{
    if (o == Py_None) {
        /* No id given: 128 random bits. */
        PyObject *os = PyImport_ImportModule("os");
        PyObject *b = os ? PyObject_CallMethod(os, "urandom", "i", 16) : NULL;
        Py_XDECREF(os);
        if (!b)
            return -1;
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(b);
        for (int i = 0; i < 16; i++)
            snprintf(s->trace_id + 2 * i, 3, "%02x", p[i]);
        Py_DECREF(b);
        return 0;
    }
    Py_ssize_t len;
    const char *id = PyUnicode_Check(o) ? PyUnicode_AsUTF8AndSize(o, &len) : NULL;
    if (!id) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "trace_id must be a str, not %.100s",
                         Py_TYPE(o)->tp_name);
        return -1;
    }
    bool ok = len == 32;
    for (Py_ssize_t i = 0; ok && i < len; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "trace_id must be 32 lowercase hex characters, got %R", o);
        return -1;
    }
    memcpy(s->trace_id, id, 33);
    return 0;
}

/* sample_calls: None (every call) or a fraction; each call is then recorded
 * with that probability, decided by a xorshift64 seeded per session. */
static int parse_sample(tp_session *s, PyObject *v)
{
    s->sampling = false;
    s->sample_skipped = 0;
    if (v == Py_None)
        return 0;
    if ((!PyFloat_Check(v) && !PyLong_Check(v)) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "sample_calls must be a number from 0 to 1, not %.100s",
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    double p = PyFloat_AsDouble(v);
    if (p == -1.0 && PyErr_Occurred())
        return -1;
    if (!(p >= 0.0 && p <= 1.0)) {
        PyErr_Format(PyExc_ValueError, "sample_calls must be a number from 0 to 1, got %R", v);
        return -1;
    }
    if (p >= 1.0)
        return 0;
    s->sampling = true;
    s->sample_below = (uint64_t)(p * 18446744073709551616.0); /* p * 2^64, < 2^64 as p < 1 */
    uint64_t seed = (uint64_t)tp_clock_mono_ns() ^ ((uint64_t)(uintptr_t)s << 17);
    s->sample_state = seed ? seed : 0x9e3779b97f4a7c15ULL;
    return 0;
}

static int session_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    tp_session *s = (tp_session *)self;
    static char *kw[] = {"label",           "trace_id",      "max_depth",
                         "max_calls",       "max_time",      "max_repr",
                         "show_args",       "show_return",   "ignore_modules",
                         "include_modules", "threads",       "config_json",
                         "show_asyncio",    "sample_calls",  "max_repr_args",
                         "max_repr_return", "track_memory",  "stream_socket",
                         "stream_after",    "stream_memory", NULL};
    PyObject *label = Py_None, *trace_id = Py_None, *ignore = NULL, *include = NULL;
    PyObject *depth = NULL, *calls = NULL, *time = NULL, *repr = NULL, *config = Py_None;
    PyObject *sargs = Py_True, *sret = Py_True, *threads = Py_False, *sasync = Py_False;
    PyObject *sample = Py_None, *repr_args = Py_None, *repr_ret = Py_None, *mem = Py_False;
    PyObject *ssock = Py_None, *safter = NULL, *smem = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOOOOOOOOOOOOOOOOOOO:Session", kw, &label,
                                     &trace_id, &depth, &calls, &time, &repr, &sargs, &sret,
                                     &ignore, &include, &threads, &config, &sasync, &sample,
                                     &repr_args, &repr_ret, &mem, &ssock, &safter, &smem))
        return -1;
    if (s->state != TP_SESSION_NEW) {
        PyErr_SetString(PyExc_RuntimeError, "a started Session cannot be reconfigured");
        return -1;
    }
    long long v;
    if (parse_str_or_none(label, "label", &s->label) < 0 ||
        parse_str_or_none(config, "config_json", &s->config_json) < 0 ||
        parse_trace_id(s, trace_id) < 0)
        return -1;
    /* An option not given takes its default from the limits table. */
    v = (long long)limits[L_DEPTH].def;
    if (depth && parse_limited(depth, L_DEPTH, &v) < 0)
        return -1;
    s->max_depth = (uint32_t)v;
    v = (long long)limits[L_CALLS].def;
    if (calls && parse_limited(calls, L_CALLS, &v) < 0)
        return -1;
    s->max_calls = (uint32_t)v;
    v = (long long)limits[L_REPR].def;
    if (repr && parse_limited(repr, L_REPR, &v) < 0)
        return -1;
    s->max_repr = (uint32_t)v;
    /* tracepatch 1.0.0's separate limits; None: max_repr. */
    s->max_repr_args = s->max_repr_return = s->max_repr;
    if (repr_args != Py_None && parse_limited(repr_args, L_REPR_ARGS, &v) < 0)
        return -1;
    if (repr_args != Py_None)
        s->max_repr_args = (uint32_t)v;
    if (repr_ret != Py_None && parse_limited(repr_ret, L_REPR_RETURN, &v) < 0)
        return -1;
    if (repr_ret != Py_None)
        s->max_repr_return = (uint32_t)v;
    double secs = limits[L_TIME].def;
    if (time && parse_seconds(time, L_TIME, &secs) < 0)
        return -1;
    s->max_time_ns = (int64_t)(secs * 1e9);
    secs = limits[L_STREAM_AFTER].def;
    if (safter && parse_seconds(safter, L_STREAM_AFTER, &secs) < 0)
        return -1;
    s->stream_after_ns = (int64_t)(secs * 1e9);
    v = (long long)limits[L_STREAM_MEM].def;
    if (smem && parse_limited(smem, L_STREAM_MEM, &v) < 0)
        return -1;
    s->stream_memory = (size_t)v << 20; /* MiB */
    if (tp_upload_stream_socket(s, ssock) < 0)
        return -1;
    if (parse_sample(s, sample) < 0)
        return -1;
    if (parse_bool(sargs, "show_args", &s->show_args) < 0 ||
        parse_bool(sret, "show_return", &s->show_return) < 0 ||
        parse_bool(threads, "threads", &s->threads) < 0 ||
        parse_bool(sasync, "show_asyncio", &s->show_asyncio) < 0 ||
        parse_bool(mem, "track_memory", &s->track_memory) < 0)
        return -1;
    bool plain = !s->sampling && !s->track_memory;
    s->quick = (plain ? (s->show_args ? TP_QUICK_CALL_ARGS : TP_QUICK_CALL) : 0) |
               (!s->track_memory ? (s->show_return ? TP_QUICK_RETURN_VALUE : TP_QUICK_RETURN) : 0) |
               (!s->track_memory ? TP_QUICK_SUSPEND : 0);
    char **ign = NULL, **inc = NULL;
    size_t nign = 0, ninc = 0;
    if (ignore && parse_prefixes(ignore, "ignore_modules", &ign, &nign) < 0)
        return -1;
    if (include && parse_prefixes(include, "include_modules", &inc, &ninc) < 0) {
        free_prefixes(ign);
        return -1;
    }
    free_prefixes(s->ignore);
    free_prefixes(s->include);
    s->ignore = ign;
    s->nignore = nign;
    s->include = inc;
    s->ninclude = ninc;
    s->configured = true;
    return 0;
}

static PyObject *session_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    tp_session *s = (tp_session *)type->tp_alloc(type, 0);
    if (!s)
        return NULL;
    s->errors = PyList_New(0);
    if (!s->errors) {
        Py_DECREF(s);
        return NULL;
    }
    s->susp_free = UINT32_MAX;
    return (PyObject *)s;
}

/* ---- start / stop ------------------------------------------------------------ */

static int registry_add(tp_session *s)
{
    if (tp_vec_grow1(&tp_module_g.active) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    tp_module_g.active.items[tp_module_g.active.size++] = (tp_session *)Py_NewRef(s);
    return 0;
}

/* Drops the registry's reference: the caller must hold its own. */
static void registry_remove(tp_session *s)
{
    for (size_t i = 0; i < tp_module_g.active.size; i++) {
        if (tp_module_g.active.items[i] == s) {
            memmove(&tp_module_g.active.items[i], &tp_module_g.active.items[i + 1],
                    (tp_module_g.active.size - i - 1) * sizeof(*tp_module_g.active.items));
            tp_module_g.active.size--;
            Py_DECREF(s);
            return;
        }
    }
}

void tp_session_recording_off(tp_session *s)
{
    if (!s->recording)
        return;
    s->recording = false;
    s->end_t = tp_now() - s->t0;
    tp_module_g.nrecording--;
    if (s->threads)
        tp_module_g.nthreads_sessions--;
    if (s->track_memory)
        tp_module_g.nmemory_sessions--;
}

void tp_session_limit(tp_session *s, int reason)
{
    if (!s->recording)
        return;
    tp_session_recording_off(s);
    s->limit = reason;
    tp_scope_unbind_all(s, false);
    tp_hooks_update(true);
}

/* The log's times from ticks to ns. */
static void convert_times(tp_session *s)
{
    /* A trace that streamed keeps the ratio its batches went out with, so
     * that its own tree and tphd's agree to the nanosecond. */
    double r = tp_upload_streamed(s) ? s->ns_per_tick : tp_clock_ns_per_tick();
    s->ns_per_tick = r;
    s->end_ns = (int64_t)((double)s->end_t * r + 0.5);
    tp_evlog_set_scale(&s->log, r);
}

/* Suspended generators that ended without an event (3.13 closes one
 * suspended outside a try block without running it, at close() or when it is
 * collected): each ends at its last suspension. The events go to a thread
 * index of their own, as the builder keeps each thread's times monotonic and
 * these are older than the threads' last events; they are written oldest
 * first, so that one more index is needed at most. */
typedef struct gone {
    uint64_t t;
    uint32_t idx;
} gone;

static int gone_cmp(const void *a, const void *b)
{
    const gone *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

static bool generator_gone(const tp_fent *e)
{
    if (!e->wref)
        return false;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *g = NULL;
    if (PyWeakref_GetRef(e->wref, &g) < 0) {
        PyErr_Clear();
        return false;
    }
    bool suspended = g && !tp_frame_generator_finished(g);
    Py_XDECREF(g);
    return !suspended;
#else
    return false; /* only 3.13+ takes these references */
#endif
}

static void close_silent(tp_session *s)
{
    size_t n = 0;
    gone *all = s->susp.size ? PyMem_Malloc(s->susp.size * sizeof(*all)) : NULL;
    for (uint32_t i = 0; i < s->susp.size; i++) {
        tp_fent *e = &s->susp.items[i].ent;
        if (!generator_gone(e))
            continue;
        if (!all) { /* no memory to order them: closed as found */
            if (!tp_record_close_unseen(s, e))
                return;
            continue;
        }
        all[n++] = (gone){(uint64_t)e->t_susp, i};
    }
    if (!all)
        return;
    qsort(all, n, sizeof(*all), gone_cmp);
    for (size_t k = 0; k < n; k++)
        if (!tp_record_close_unseen(s, &s->susp.items[all[k].idx].ent))
            break;
    PyMem_Free(all);
}

/* End an active session (stop(), or a start() that failed half-way). */
static void session_end(tp_session *s)
{
    if (s->recording)
        tp_hooks_check(s);
    tp_session_recording_off(s);
    s->state = TP_SESSION_STOPPED;
    close_silent(s);
    convert_times(s);
    tp_scope_unbind_all(s, true);
    for (size_t i = 0; i < s->bindings.size; i++) {
        tp_binding *b = s->bindings.items[i];
        while (b->stack.size)
            tp_fent_clear(&b->stack.items[--b->stack.size]);
        if (b->unwind_pending) {
            b->unwind_pending = false;
            tp_fent_clear(&b->unwind_ent);
        }
    }
    tp_tls *tls = tp_scope_tls_get(false);
    if (tls)
        tls->busy++;
    tp_scope_leave(s);
    if (!tp_module_g.nthreads_sessions)
        tp_threads_off();
    Py_INCREF(s);
    registry_remove(s);
    tp_hooks_update(false);
    if (tls)
        tls->busy--;
    tp_module_g.gen++;
    if (tls && !tls->busy)
        tp_scope_refresh(tls);
    Py_DECREF(s);
}

static PyObject *session_start(PyObject *self, PyObject *unused)
{
    tp_session *s = (tp_session *)self;
    if (!s->configured) {
        PyErr_SetString(PyExc_RuntimeError, "Session.__init__ was not called");
        return NULL;
    }
    if (s->state != TP_SESSION_NEW) {
        PyErr_SetString(PyExc_RuntimeError, s->state == TP_SESSION_ACTIVE
                                                ? "this Session is already recording"
                                                : "a Session records once; create a new one");
        return NULL;
    }
    if (atomic_load(&tp_module_g.fork_frozen)) {
        /* Forked by C code that skipped Python's at-fork handlers. */
        PyObject *r = tp_module_after_fork_child();
        Py_XDECREF(r);
    }
    tp_tls *tls = tp_scope_tls_get(true);
    if (!tls)
        return NULL;
    if (s->track_memory && !s->mem_probe) {
        /* Read once per trace; the hooks call it with no lookup. The C
         * module, so that importing it runs no Python code (tracemalloc.py
         * has imported it when tracing was started). */
        PyObject *m = PyImport_ImportModule("_tracemalloc");
        s->mem_probe = m ? PyObject_GetAttrString(m, "get_traced_memory") : NULL;
        Py_XDECREF(m);
        if (!s->mem_probe)
            return NULL;
    }
    if (tp_evlog_init(&s->log) < 0)
        return PyErr_NoMemory();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    s->wall_start_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
    s->start_pid = (long)getpid();
    s->ns_per_tick = tp_clock_ns_per_tick();
    s->max_time_ticks = (int64_t)((double)s->max_time_ns / s->ns_per_tick);
    s->t0 = tp_now();
    s->stream_due =
        s->stream_path ? s->t0 + (int64_t)((double)s->stream_after_ns / s->ns_per_tick) : INT64_MAX;
    s->time_due = s->t0 + s->max_time_ticks + 1; /* limited once older than max_time */
    s->due = s->stream_due < s->time_due ? s->stream_due : s->time_due;
    s->serial = ++tp_module_g.next_serial;
    if (registry_add(s) < 0)
        return NULL;
    s->state = TP_SESSION_ACTIVE;
    s->recording = true;
    tp_module_g.nrecording++;
    if (s->threads)
        tp_module_g.nthreads_sessions++;
    if (s->track_memory)
        tp_module_g.nmemory_sessions++;
    /* The Python code run below (thread name, threading hooks) is ours, not
     * the program's: other sessions recording this thread must not see it. */
    tls->busy++;
    int r = tp_scope_bind(s, tls, false) < 0 || tp_scope_enter(s) < 0 || tp_hooks_start(tls) < 0 ||
            (s->threads && tp_threads_on() < 0);
    tls->busy--;
    /* Only now, with the context variable set, may the threads recompute
     * their scope. */
    tp_module_g.gen++;
    if (r) {
#if TP_PY312
        PyObject *exc = PyErr_GetRaisedException();
        session_end(s);
        PyErr_SetRaisedException(exc);
#else
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        session_end(s);
        PyErr_Restore(t, v, tb);
#endif
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *session_stop(PyObject *self, PyObject *unused)
{
    tp_session *s = (tp_session *)self;
    if (s->state == TP_SESSION_ACTIVE)
        session_end(s);
    Py_RETURN_NONE;
}

/* ---- deallocation ----------------------------------------------------------- */

static void session_dealloc(PyObject *self)
{
    tp_session *s = (tp_session *)self;
    PyTypeObject *tp = Py_TYPE(self);
    /* An active session is in the registry, which holds a reference: only a
     * stopped or never started one gets here. */
    tp_scope_unbind_all(s, true);
    for (size_t i = 0; i < s->bindings.size; i++) {
        tp_binding *b = s->bindings.items[i];
        while (b->stack.size)
            tp_fent_clear(&b->stack.items[--b->stack.size]);
        tp_fent_clear(&b->unwind_ent);
        tp_vec_free(&b->stack);
        PyMem_RawFree(b);
    }
    tp_vec_free(&s->bindings);
    for (uint32_t i = 0; i < s->funcs.size; i++) {
        Py_DECREF(s->funcs.items[i].module);
        Py_DECREF(s->funcs.items[i].qualname);
        Py_DECREF(s->funcs.items[i].file);
    }
    tp_vec_free(&s->funcs);
    tp_hmap_free(&s->funcmap);
    for (uint32_t i = 0; i < s->susp.size; i++)
        tp_fent_clear(&s->susp.items[i].ent);
    tp_vec_free(&s->susp);
    tp_hmap_free(&s->suspmap);
    tp_hmap_free(&s->spawnmap);
    /* An upload under way holds a reference to the session: only a
     * finished one (or none) is left here. */
    tp_sender_upload_unref(s->upload);
    free(s->stream_path);
    tp_evlog_free(&s->log);
    tp_tree_free(s->tree);
    free_prefixes(s->ignore);
    free_prefixes(s->include);
    Py_CLEAR(s->label);
    Py_CLEAR(s->config_json);
    Py_CLEAR(s->errors);
    Py_CLEAR(s->token);
    Py_CLEAR(s->spawnnames);
    Py_CLEAR(s->mem_probe);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* ---- properties -------------------------------------------------------------- */

static const char *limit_name(int limit)
{
    switch (limit) {
    case TP_LIMIT_DEPTH:
        return "max_depth";
    case TP_LIMIT_CALLS:
        return "max_calls";
    case TP_LIMIT_TIME:
        return "max_time";
    case TP_LIMIT_MEMORY:
        return "memory";
    case TP_LIMIT_GAP:
        return "profiler";
    default:
        return NULL;
    }
}

/** The reported limit: one that stopped recording, else a gap another
 *  profiler left, else max_depth if calls were skipped for depth. */
static int effective_limit(const tp_session *s)
{
    if (s->limit)
        return s->limit;
    return s->gaps ? TP_LIMIT_GAP : s->depth_hit ? TP_LIMIT_DEPTH : TP_LIMIT_NONE;
}

const char *tp_session_limit_reason(const tp_session *s)
{
    return limit_name(effective_limit(s));
}

int64_t tp_session_duration(const tp_session *s)
{
    if (s->state == TP_SESSION_NEW)
        return 0;
    if (s->state == TP_SESSION_STOPPED)
        return s->end_ns;
    int64_t t = s->recording ? tp_now() - s->t0 : s->end_t;
    return (int64_t)((double)t * s->ns_per_tick);
}

static PyObject *get_label(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    return Py_NewRef(s->label ? s->label : Py_None);
}

static PyObject *get_trace_id(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    if (s->upload)
        tp_sender_reap(); /* the id tphd stored the trace under, once known */
    return PyUnicode_FromString(s->trace_id);
}

static PyObject *get_active(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    return PyBool_FromLong(s->state == TP_SESSION_ACTIVE);
}

static PyObject *get_was_limited(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    return PyBool_FromLong(effective_limit(s) != TP_LIMIT_NONE);
}

static PyObject *get_limit_reason(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    const char *r = tp_session_limit_reason(s);
    return r ? PyUnicode_FromString(r) : Py_NewRef(Py_None);
}

static PyObject *get_dropped(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    return PyLong_FromUnsignedLongLong(s->dropped + tp_upload_dropped(s));
}

static PyObject *get_duration(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    return PyLong_FromLongLong(tp_session_duration(s));
}

static PyObject *get_errors(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    if (s->upload)
        tp_sender_reap(); /* a failed upload's reason */
    return PyList_GetSlice(s->errors, 0, PyList_GET_SIZE(s->errors));
}

static PyObject *get_memory(PyObject *self, void *c)
{
    tp_session *s = (tp_session *)self;
    return PyLong_FromSize_t(tp_evlog_bytes(&s->log));
}

static PyObject *get_streamed(PyObject *self, void *c)
{
    return PyBool_FromLong(tp_upload_streamed((tp_session *)self));
}

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_BOOL      T_BOOL
#define Py_T_UINT      T_UINT
#define Py_T_LONGLONG  T_LONGLONG
#define Py_T_ULONGLONG T_ULONGLONG
#define Py_READONLY    READONLY
#endif

/* Plain fields read as they are; what needs work has a getter below. */
#define MEMBER(name, type, field, doc)                                                             \
    {                                                                                              \
        name, type, offsetof(tp_session, field), Py_READONLY, doc                                  \
    }
static PyMemberDef session_members[] = {
    MEMBER("recording", Py_T_BOOL, recording,
           "True while calls are being recorded (active, no limit hit)."),
    MEMBER("call_count", Py_T_UINT, call_count,
           "Calls recorded (exact; equals max_calls when capped)."),
    MEMBER("depth_skipped", Py_T_ULONGLONG, depth_skipped,
           "Calls not recorded because of max_depth."),
    MEMBER("sample_skipped", Py_T_ULONGLONG, sample_skipped,
           "Calls left out by sample_calls (exact)."),
    MEMBER("wall_start_ns", Py_T_LONGLONG, wall_start_ns, "Unix time of start(), in ns."),
    MEMBER("event_count", Py_T_ULONGLONG, log.nrecords, "Records in the event log."),
    {NULL},
};

#define GET(name, fn, doc)                                                                         \
    {                                                                                              \
        name, fn, NULL, doc, NULL                                                                  \
    }
static PyGetSetDef session_getset[] = {
    GET("label", get_label, "The trace's label, or None."),
    GET("trace_id", get_trace_id, "32 lowercase hex characters."),
    GET("active", get_active, "True between start() and stop()."),
    GET("was_limited", get_was_limited, "True when a limit dropped calls."),
    GET("limit_reason", get_limit_reason,
        "None, 'max_depth', 'max_calls', 'max_time' or 'memory'."),
    GET("dropped", get_dropped, "Events lost (memory, failed upload)."),
    GET("duration_ns", get_duration, "start() to stop() (or to the limit), in ns."),
    GET("errors", get_errors, "Internal problems met while recording (never raised)."),
    GET("memory_bytes", get_memory, "Memory held by the event log."),
    GET("upload_state", tp_upload_get_state, "'none', 'pending', 'acked' or 'failed'."),
    GET("streamed", get_streamed, "True once the trace streams to tphd while it records."),
    GET("upload_error", tp_upload_get_error, "Why the trace was not stored by tphd, or None."),
    GET("upload_refused", tp_upload_get_refused,
        "True when tphd refused the connection: the trace never reached it."),
    GET("upload_socket", tp_upload_get_socket, "The socket of the upload, or None."),
    GET("url", tp_upload_get_url, "The report URL tphd gave when it stored the trace, or None."),
    {NULL},
};

static PyMethodDef session_methods[] = {
    {"start", session_start, METH_NOARGS,
     "start()\n--\n\nBegin recording in the calling thread and context."},
    {"stop", session_stop, METH_NOARGS,
     "stop()\n--\n\nStop recording (idempotent); open calls end at this time."},
    TP_OUTPUT_METHODS{"upload", TP_KW(tp_upload_upload), TP_UPLOAD_UPLOAD_DOC},
    {"wait_upload", TP_KW(tp_upload_wait), TP_UPLOAD_WAIT_DOC},
    {NULL},
};

static PyType_Slot session_slots[] = {
    {Py_tp_new, session_new},
    {Py_tp_init, session_init},
    {Py_tp_dealloc, session_dealloc},
    {Py_tp_members, session_members},
    {Py_tp_getset, session_getset},
    {Py_tp_methods, session_methods},
    {Py_tp_doc, "Session(*, label=None, trace_id=None, max_depth=30, max_calls=10000, "
                "max_time=60.0, max_repr=120, show_args=True, show_return=True, "
                "ignore_modules=(), include_modules=(), threads=False, config_json=None, "
                "show_asyncio=False, sample_calls=None, max_repr_args=None, "
                "max_repr_return=None, track_memory=False, stream_socket=None, "
                "stream_after=0.5, stream_memory=4)\n"
                "--\n\nOne recording: start(), stop(), then its outputs."},
    {0, NULL},
};

PyType_Spec tp_session_spec = {
    .name = "tracepatch._tracepatch.Session",
    .basicsize = sizeof(tp_session),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = session_slots,
};
