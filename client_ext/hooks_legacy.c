/* 3.10/3.11: a C profile function (PyEval_SetProfile), per thread.
 *
 * The profile function a thread had before (cProfile, another profiler) is
 * kept and called first for every event, then given back when the thread has
 * nothing left to record, if ours is still the one installed.
 *
 * Exceptions. A profile function sees a call end by exception as a RETURN
 * with no value, and at that moment the interpreter has put the exception
 * aside, out of reach. So the UNWIND waits in the binding, and a C trace
 * function is installed for exactly one event: the interpreter reports the
 * exception to trace functions in the next Python frame it reaches (the
 * caller, or whoever gets it through C code), with the exception as
 * argument. That event writes the waiting UNWIND with the exception's type
 * and message and records, for a CAUGHT, that the frame received it; any
 * other event first means C code swallowed the exception (close() of a
 * generator, hasattr()...), and the UNWIND is written with what is known.
 * A trace function that was already installed (a debugger, coverage) is
 * wrapped, not replaced: it gets every event it would have got. The same
 * short-lived trace follows a builtin function raising (C_EXCEPTION), so that
 * a frame catching an exception from a call is reported as CAUGHT. An
 * exception raised and handled by bytecode inside one frame, with no call
 * involved, produces no profile event at all: on these versions it is not
 * reported as CAUGHT. */
#include "hooks.h"

#if !TP_PY312

#include "codeinfo.h"
#include "frame.h"
#include "record.h"

static int profile_cb(PyObject *obj, PyFrameObject *f, int what, PyObject *arg);
static int trace_cb(PyObject *obj, PyFrameObject *f, int what, PyObject *arg);

int tp_hooks_init(PyObject *module)
{
    (void)module;
    return 0;
}

int tp_hooks_attach_thread(tp_tls *tls)
{
    PyThreadState *ts = tls->tstate;
    if (ts->c_profilefunc == profile_cb && ts->c_profileobj == (PyObject *)tls)
        return 0;
    Py_tracefunc prev = ts->c_profilefunc;
    PyObject *prev_obj = Py_XNewRef(ts->c_profileobj);
    /* Keep a reference to tls across the swap: PyEval_SetProfile releases
     * the previous object first. */
    Py_INCREF(tls);
    PyEval_SetProfile(profile_cb, (PyObject *)tls);
    Py_DECREF(tls);
    if (ts->c_profilefunc != profile_cb) {
        Py_XDECREF(prev_obj);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "tracepatch: could not set the profile function");
        return -1;
    }
    Py_XSETREF(tls->prev_profile_obj, prev_obj);
    tls->prev_profile = prev;
    tls->profile_on = true;
    return 0;
}

int tp_hooks_start(tp_tls *tls)
{
    return tp_hooks_attach_thread(tls);
}

void tp_hooks_update(bool in_callback)
{
    (void)in_callback; /* each thread drops its own hook (tp_hooks_thread_idle) */
}

void tp_hooks_thread_idle(tp_tls *tls)
{
    if (!tls->profile_on)
        return;
    PyThreadState *ts = tls->tstate;
    tls->profile_on = false;
    Py_tracefunc prev = tls->prev_profile;
    PyObject *prev_obj = tls->prev_profile_obj;
    tls->prev_profile = NULL;
    tls->prev_profile_obj = NULL;
    if (ts->c_profilefunc == profile_cb && ts->c_profileobj == (PyObject *)tls) {
        /* Someone else's profile function installed after ours is left alone. */
        Py_INCREF(tls);
        PyEval_SetProfile(prev, prev_obj);
        PyErr_Clear();
        Py_DECREF(tls);
    }
    Py_XDECREF(prev_obj);
}

/* ---- the one-event trace function ----------------------------------------- */

static void trace_off(tp_tls *tls)
{
    if (!tls->trace_on)
        return;
    tls->trace_on = false;
    Py_tracefunc prev = tls->prev_trace;
    PyObject *prev_obj = tls->prev_trace_obj;
    tls->prev_trace = NULL;
    tls->prev_trace_obj = NULL;
    PyThreadState *ts = tls->tstate;
    if (ts->c_tracefunc == trace_cb) {
        PyEval_SetTrace(prev, prev_obj);
        PyErr_Clear();
    }
    Py_XDECREF(prev_obj);
}

static void trace_on(tp_tls *tls)
{
    if (tls->trace_on)
        return;
    PyThreadState *ts = tls->tstate;
    Py_tracefunc prev = ts->c_tracefunc;
    PyObject *prev_obj = Py_XNewRef(ts->c_traceobj);
    /* Installing with the previous object keeps sys.gettrace() unchanged. */
    PyEval_SetTrace(trace_cb, prev_obj ? prev_obj : (PyObject *)tls);
    if (ts->c_tracefunc != trace_cb) {
        PyErr_Clear(); /* an audit hook refused: the exception stays unknown */
        Py_XDECREF(prev_obj);
        return;
    }
    tls->prev_trace = prev;
    tls->prev_trace_obj = prev_obj;
    tls->trace_on = true;
}

static int trace_cb(PyObject *obj, PyFrameObject *f, int what, PyObject *arg)
{
    tp_tls *tls = tp_scope_cur_tls;
    if (!tls || !tls->trace_on) {
        PyEval_SetTrace(NULL, NULL); /* not ours to keep */
        PyErr_Clear();
        return 0;
    }
    Py_tracefunc prev = tls->prev_trace;
    PyObject *prev_obj = Py_XNewRef(tls->prev_trace_obj);
    trace_off(tls);
    int r = prev ? prev(prev_obj, f, what, arg) : 0;
    Py_XDECREF(prev_obj);
    PyObject *exc = NULL;
    if (what == PyTrace_EXCEPTION && arg && PyTuple_Check(arg) && PyTuple_GET_SIZE(arg) >= 2)
        exc = PyTuple_GET_ITEM(arg, 1);
    if (exc && !PyExceptionInstance_Check(exc))
        exc = NULL;
    PyObject *saved_t, *saved_v, *saved_tb;
    PyErr_Fetch(&saved_t, &saved_v, &saved_tb);
    if (tls->unwind_pending)
        tp_record_unwind_resolve(tls, exc);
    if (exc) {
        tp_scope_check(tls);
        if (tls->nactive)
            tp_record_exception(tls, f, exc);
    }
    PyErr_Restore(saved_t, saved_v, saved_tb);
    return r;
}

/* ---- the profile function ------------------------------------------------- */

static void on_call(tp_tls *tls, PyFrameObject *f)
{
    tp_codeinfo *ci = tp_codeinfo_cached(tls, tp_frame_code(f), f);
    if (!ci) {
        tp_record_out_of_memory(tls);
        return;
    }
    if (ci->flags & TP_CI_GEN) {
        if (!tp_frame_first_start(f)) {
            tp_record_resume(tls, f);
            return;
        }
        tp_record_forget(tls, f);
    }
    tp_record_start(tls, ci, f, tp_frame_locals(f));
}

static void on_event(tp_tls *tls, PyFrameObject *f, int what, PyObject *arg)
{
    if (what == PyTrace_C_EXCEPTION) {
        /* A builtin is raising (perhaps passing on what a waiting UNWIND
         * needs): the exception is on its way to this frame, where the trace
         * function sees it. */
        tp_scope_check(tls);
        if (tls->unwind_pending || tls->nactive)
            trace_on(tls);
        return;
    }
    if (tls->trace_on)
        trace_off(tls);
    if (tls->unwind_pending)
        tp_record_unwind_resolve(tls, NULL);
    tp_scope_check(tls);
    if (!tls->nactive)
        return;
    switch (what) {
    case PyTrace_CALL:
        on_call(tls, f);
        break;
    case PyTrace_RETURN:
        if (!arg) {
            /* Ended by an exception we cannot see yet. */
            tp_record_unwind_defer(tls, f);
            trace_on(tls);
        } else if (tp_frame_suspending(f)) {
            tp_record_yield(tls, f);
        } else {
            tp_record_return(tls, f, arg);
        }
        break;
    default:
        break;
    }
}

static int profile_cb(PyObject *obj, PyFrameObject *f, int what, PyObject *arg)
{
    tp_tls *tls = (tp_tls *)obj;
    int r = 0;
    if (tls->prev_profile)
        r = tls->prev_profile(tls->prev_profile_obj, f, what, arg);
    if (tls->busy)
        return r;
    /* The interpreter puts an exception in flight aside before calling a
     * profile function; one set now was raised by the previous function and
     * must stay. (tls itself stays alive: the thread state dict holds it.) */
    if (TP_UNLIKELY(tls->tstate->curexc_type != NULL)) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        on_event(tls, f, what, arg);
        PyErr_Restore(t, v, tb);
        return r;
    }
    on_event(tls, f, what, arg);
    return r;
}

void tp_hooks_bootstrap_call(tp_tls *tls, PyFrameObject *frame)
{
    on_event(tls, frame, PyTrace_CALL, NULL);
}

void tp_hooks_after_fork(void)
{
    tp_tls *tls = tp_scope_cur_tls;
    if (!tls)
        return;
    trace_off(tls);
    tp_hooks_thread_idle(tls);
}

#endif /* !TP_PY312 */
