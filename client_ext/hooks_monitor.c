/* 3.12+: sys.monitoring with C callbacks.
 *
 * One tool id serves every session of the process: it is taken (the first
 * free one) when recording starts and given back when the last session
 * stops. The callbacks are builtin functions with the vectorcall (FASTCALL)
 * convention, so an event costs a C call. Events are global to the
 * interpreter; a callback first checks that its thread has something in
 * scope, which is a thread-local read and three compares.
 *
 * DISABLE: a local event (start, resume, return, yield) of code that every
 * recording session filters out returns sys.monitoring.DISABLE, so that
 * ignored modules cost nothing after their first call. DISABLE is per code
 * location for the tool, that is for all sessions at once, hence "every";
 * a session started later with other filters calls restart_events() first. */
#include "hooks.h"

#if TP_PY312

#include "codeinfo.h"
#include "frame.h"
#include "record.h"

/* sys.monitoring event bits (stable since 3.12). */
#define EV_PY_START          (1 << 0)
#define EV_PY_RESUME         (1 << 1)
#define EV_PY_RETURN         (1 << 2)
#define EV_PY_YIELD          (1 << 3)
#define EV_EXCEPTION_HANDLED (1 << 11)
#define EV_PY_UNWIND         (1 << 12)
#define EV_PY_THROW          (1 << 13)

#define EVENTS                                                                                     \
    (EV_PY_START | EV_PY_RESUME | EV_PY_RETURN | EV_PY_YIELD | EV_PY_UNWIND | EV_PY_THROW |        \
     EV_EXCEPTION_HANDLED)

/* Whether every recording session filters ci out (cached per tp_module_g.gen). */
static bool ignored_by_all(tp_codeinfo *ci)
{
    if (TP_LIKELY(ci->ign_gen == tp_module_g.gen))
        return ci->ign_all;
    bool all = tp_module_g.nrecording > 0;
    if (ci->flags & TP_CI_THREAD_START && tp_module_g.nthreads_sessions)
        all = false;
    if (ci->flags & TP_CI_TASK_SOON)
        all = false; /* never DISABLEd: tasks are seen being created there */
    for (size_t i = 0; all && i < tp_module_g.active.size; i++) {
        tp_session *s = tp_module_g.active.items[i];
        if (!s->recording)
            continue;
        uint32_t id = ci->last_serial == s->serial ? ci->last_id : tp_session_func_slow(s, ci);
        if (id != TP_FUNC_FILTERED)
            all = false;
    }
    ci->ign_gen = tp_module_g.gen;
    ci->ign_all = all;
    return all;
}

/* What a local event of code co returns: DISABLE for code no one wants. */
static PyObject *local_result(PyCodeObject *co)
{
    tp_codeinfo *ci = tp_codeinfo_peek(co);
    if (ci && ignored_by_all(ci)) {
        tp_module_g.disabled_any = true;
        return Py_NewRef(tp_module_g.disable);
    }
    Py_RETURN_NONE;
}

/* The thread state if this thread has sessions in scope, else NULL. */
static inline tp_tls *in_scope(void)
{
    tp_tls *tls = tp_scope_cur_tls;
    if (!tls || tls->busy)
        return NULL;
    tp_scope_check(tls);
    return tls->nactive ? tls : NULL;
}

/* Each callback tries its quick path (record.h) first, inline; the rest
 * of the work is out of line. */
static PyObject *start_slow(PyObject *const *args, size_t nargsf)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1 || !PyCode_Check(args[0]))
        Py_RETURN_NONE;
    PyCodeObject *co = (PyCodeObject *)args[0];
    tp_tls *tls = in_scope();
    if (!tls)
        return local_result(co);
    void *key = tp_frame_current(tls->tstate);
    tp_codeinfo *ci = tp_codeinfo_cached(tls, co, key);
    if (!ci) {
        tp_record_out_of_memory(tls);
        Py_RETURN_NONE;
    }
    if (ignored_by_all(ci)) {
        tp_module_g.disabled_any = true;
        return Py_NewRef(tp_module_g.disable);
    }
    if (ci->flags & TP_CI_GEN)
        tp_record_forget(tls, key);
    tp_record_start(tls, ci, key, NULL);
    Py_RETURN_NONE;
}

static PyObject *cb_start(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    tp_tls *tls = tp_scope_cur_tls;
    if (TP_LIKELY(tls && (tls->quick & TP_QUICK_CALL) && PyVectorcall_NARGS(nargsf) >= 1)) {
        tp_codeinfo *ci = tp_codeinfo_cache_hit(tls, args[0]);
        if (ci && tp_record_start_quick(tls, ci, tp_frame_current(tls->tstate)))
            Py_RETURN_NONE;
    } else if (tls && (tls->quick & TP_QUICK_CALL_ARGS) && PyVectorcall_NARGS(nargsf) >= 1) {
        tp_codeinfo *ci = tp_codeinfo_cache_hit(tls, args[0]);
        if (ci && tp_record_start_quick_args(tls, ci, tp_frame_current(tls->tstate)))
            Py_RETURN_NONE;
    }
    return start_slow(args, nargsf);
}

static PyObject *resume_slow(PyObject *const *args, size_t nargsf)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1 || !PyCode_Check(args[0]))
        Py_RETURN_NONE;
    tp_tls *tls = in_scope();
    /* A call some session recorded is wanted: no code-info lookup. */
    if (tls && tp_record_resume(tls, tp_frame_current(tls->tstate)))
        Py_RETURN_NONE;
    return local_result((PyCodeObject *)args[0]);
}

static PyObject *cb_resume(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    /* A call suspended in the park resumes: its code is wanted. */
    tp_tls *tls = tp_scope_cur_tls;
    if (TP_LIKELY(tls && (tls->quick & TP_QUICK_SUSPEND) && PyVectorcall_NARGS(nargsf) >= 1) &&
        tp_record_resume_quick(tls, tp_frame_current(tls->tstate)))
        Py_RETURN_NONE;
    return resume_slow(args, nargsf);
}

static PyObject *cb_throw(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    tp_tls *tls = in_scope();
    if (tls)
        tp_record_resume(tls, tp_frame_current(tls->tstate));
    Py_RETURN_NONE; /* not a local event: DISABLE is not allowed */
}

static PyObject *return_slow(PyObject *const *args, size_t nargsf)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 3 || !PyCode_Check(args[0]))
        Py_RETURN_NONE;
    tp_tls *tls = in_scope();
    if (tls && tp_record_return(tls, tp_frame_current(tls->tstate), args[2]))
        Py_RETURN_NONE; /* a recorded call: its code is wanted */
    return local_result((PyCodeObject *)args[0]);
}

static PyObject *cb_return(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    /* A recorded call returns: its code is wanted, whatever args[0] is. */
    tp_tls *tls = tp_scope_cur_tls;
    if (TP_LIKELY(tls && (tls->quick & TP_QUICK_RETURN) && PyVectorcall_NARGS(nargsf) >= 3)) {
        if (tp_record_return_quick(tls, tp_frame_current(tls->tstate)))
            Py_RETURN_NONE;
    } else if (tls && (tls->quick & TP_QUICK_RETURN_VALUE) && PyVectorcall_NARGS(nargsf) >= 3) {
        if (tp_record_return_quick_value(tls, tp_frame_current(tls->tstate), args[2]))
            Py_RETURN_NONE;
    }
    return return_slow(args, nargsf);
}

static PyObject *yield_slow(PyObject *const *args, size_t nargsf)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1 || !PyCode_Check(args[0]))
        Py_RETURN_NONE;
    tp_tls *tls = in_scope();
    if (tls && tp_record_yield(tls, tp_frame_current(tls->tstate)))
        Py_RETURN_NONE; /* a recorded call: its code is wanted */
    return local_result((PyCodeObject *)args[0]);
}

static PyObject *cb_yield(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    /* A recorded call suspends: its code is wanted. */
    tp_tls *tls = tp_scope_cur_tls;
    if (TP_LIKELY(tls && (tls->quick & TP_QUICK_SUSPEND) && PyVectorcall_NARGS(nargsf) >= 1) &&
        tp_record_yield_quick(tls, tp_frame_current(tls->tstate)))
        Py_RETURN_NONE;
    return yield_slow(args, nargsf);
}

static PyObject *cb_unwind(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    tp_tls *tls = in_scope();
    if (tls && nargs >= 3)
        tp_record_unwind(tls, tp_frame_current(tls->tstate), args[2]);
    Py_RETURN_NONE;
}

static PyObject *cb_handled(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    tp_tls *tls = in_scope();
    if (tls && nargs >= 3)
        tp_record_exception(tls, tp_frame_current(tls->tstate), args[2]);
    Py_RETURN_NONE;
}

/* The callbacks are instances of a small type of our own with a vectorcall
 * slot: the interpreter calls our C function directly, without the checks
 * and bookkeeping a builtin function's call goes through. */
typedef struct hookobj {
    PyObject ob_base;
    vectorcallfunc vectorcall;
} hookobj;

static PyMemberDef hook_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(hookobj, vectorcall), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static void hook_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot hook_slots[] = {
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, hook_members},
    {Py_tp_dealloc, hook_dealloc},
    {Py_tp_doc, "A sys.monitoring callback of tracepatch (internal)."},
    {0, NULL},
};

static PyType_Spec hook_spec = {
    .name = "tracepatch._tracepatch._Hook",
    .basicsize = sizeof(hookobj),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = hook_slots,
};

typedef struct cbdef {
    vectorcallfunc fn;
    int event;
} cbdef;

static const cbdef cbdefs[] = {
    {cb_start, EV_PY_START},
    {cb_resume, EV_PY_RESUME},
    {cb_return, EV_PY_RETURN},
    {cb_yield, EV_PY_YIELD},
    {cb_unwind, EV_PY_UNWIND},
    {cb_throw, EV_PY_THROW},
    {cb_handled, EV_EXCEPTION_HANDLED},
};
#define NCB (sizeof(cbdefs) / sizeof(cbdefs[0]))

int tp_hooks_init(PyObject *module)
{
    if (tp_module_g.monitoring)
        return 0;
    PyObject *sys = PyImport_ImportModule("sys");
    if (!sys)
        return -1;
    tp_module_g.monitoring = PyObject_GetAttrString(sys, "monitoring");
    Py_DECREF(sys);
    if (!tp_module_g.monitoring)
        return -1;
    tp_module_g.disable = PyObject_GetAttrString(tp_module_g.monitoring, "DISABLE");
    if (!tp_module_g.disable)
        return -1;
    PyTypeObject *tp = (PyTypeObject *)PyType_FromSpec(&hook_spec);
    if (!tp)
        return -1;
    /* The callbacks live as long as the process: one must never be freed
     * while the interpreter is calling it. */
    for (size_t i = 0; i < NCB; i++) {
        hookobj *h = (hookobj *)tp->tp_alloc(tp, 0);
        if (!h) {
            Py_DECREF(tp);
            return -1;
        }
        h->vectorcall = cbdefs[i].fn;
        tp_module_g.callbacks[i] = (PyObject *)h;
    }
    Py_DECREF(tp);
    tp_module_g.tool_id = -1;
    return 0;
}

static int call_mon(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *args = Py_VaBuildValue(fmt, ap);
    va_end(ap);
    if (!args)
        return -1;
    PyObject *fn = PyObject_GetAttrString(tp_module_g.monitoring, name);
    PyObject *r = fn ? PyObject_Call(fn, args, NULL) : NULL;
    Py_XDECREF(fn);
    Py_DECREF(args);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Take the first free tool id, preferring the ones PEP 669 leaves unassigned. */
static int acquire_tool(void)
{
    static const int order[] = {4, 3, 5, 1, 0, 2};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        PyObject *fn = PyObject_GetAttrString(tp_module_g.monitoring, "get_tool");
        PyObject *owner = fn ? PyObject_CallFunction(fn, "i", order[i]) : NULL;
        Py_XDECREF(fn);
        if (!owner)
            return -1;
        bool free_id = owner == Py_None;
        Py_DECREF(owner);
        if (!free_id)
            continue;
        if (call_mon("use_tool_id", "(is)", order[i], "tracepatch") < 0)
            return -1;
        tp_module_g.tool_id = order[i];
        for (size_t k = 0; k < NCB; k++) {
            PyObject *fnr = PyObject_GetAttrString(tp_module_g.monitoring, "register_callback");
            PyObject *old = fnr ? PyObject_CallFunction(fnr, "iiO", tp_module_g.tool_id,
                                                        cbdefs[k].event, tp_module_g.callbacks[k])
                                : NULL;
            Py_XDECREF(fnr);
            if (!old)
                return -1;
            Py_DECREF(old);
        }
        return 0;
    }
    PyErr_SetString(PyExc_RuntimeError, "tracepatch: every sys.monitoring tool id (0-5) is in use");
    return -1;
}

static void release_tool(void)
{
    if (tp_module_g.tool_id < 0)
        return;
    call_mon("set_events", "(ii)", tp_module_g.tool_id, 0);
    for (size_t k = 0; k < NCB; k++)
        call_mon("register_callback", "(iiO)", tp_module_g.tool_id, cbdefs[k].event, Py_None);
    call_mon("free_tool_id", "(i)", tp_module_g.tool_id);
    PyErr_Clear();
    tp_module_g.tool_id = -1;
}

int tp_hooks_start(tp_tls *tls)
{
    if (tp_module_g.tool_id < 0 && acquire_tool() < 0) {
        release_tool();
        return -1;
    }
    if (tp_module_g.disabled_any) {
        /* Code disabled for earlier sessions may be wanted by this one. */
        if (call_mon("restart_events", "()") < 0)
            return -1;
        tp_module_g.disabled_any = false;
    }
    return call_mon("set_events", "(ii)", tp_module_g.tool_id, EVENTS);
}

void tp_hooks_update(bool in_callback)
{
    if (tp_module_g.nrecording || tp_module_g.tool_id < 0)
        return;
    if (in_callback) {
        call_mon("set_events", "(ii)", tp_module_g.tool_id, 0);
        PyErr_Clear();
        return;
    }
    release_tool();
}

void tp_hooks_thread_idle(tp_tls *tls)
{
    (void)tls; /* events are per interpreter, not per thread */
}

int tp_hooks_attach_thread(tp_tls *tls)
{
    (void)tls;
    return 0;
}

void tp_hooks_bootstrap_call(tp_tls *tls, PyFrameObject *frame)
{
    tp_scope_check(tls);
    if (!tls->nactive)
        return;
    PyCodeObject *co = PyFrame_GetCode(frame);
    void *key = tp_frame_key(frame);
    tp_codeinfo *ci = tp_codeinfo_get(co, tp_frame_globals(key));
    Py_DECREF(co);
    if (ci)
        tp_record_start(tls, ci, key, tp_frame_locals(key));
    else
        tp_record_out_of_memory(tls);
    tls->boot_key = key; /* the hook's own START of this frame follows */
}

const char *tp_hooks_name(void)
{
    return "sys.monitoring";
}

void tp_hooks_check(tp_session *s)
{
    (void)s; /* nothing takes the tool id from us */
}

PyObject *tp_hooks_foreign(PyObject *self, PyObject *on)
{
    (void)self;
    (void)on;
    PyErr_SetString(PyExc_RuntimeError, "3.12+ records with sys.monitoring");
    return NULL;
}

PyObject *tp_hooks_in_use(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    tp_tls *tls = tp_scope_cur_tls;
    if (tls && tls->nlive && tp_module_g.tool_id >= 0)
        return PyUnicode_FromString("sys.monitoring");
    Py_RETURN_NONE;
}

void tp_hooks_after_fork(void)
{
    if (tp_module_g.tool_id >= 0) {
        call_mon("set_events", "(ii)", tp_module_g.tool_id, 0);
        PyErr_Clear();
    }
}

#endif /* TP_PY312 */
