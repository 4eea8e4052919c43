/* 3.10/3.11: a C profile function (PyEval_SetProfile), per thread: the
 * recorder on 3.11.0-3.11.3 and with TRACEPATCH_HOOK=profile, and the
 * fallback of the eval-frame hook (hooks_eval.c) for a thread that starts
 * recording while another tool holds the eval-frame slot. The hook entry
 * points below choose between the two.
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
 * reported as CAUGHT.
 *
 * Another profiler. A thread has one profile slot: cProfile's enable() or
 * sys.setprofile(f) in the traced code replaces ours, and nothing tells us.
 * So a call of a builtin that may install one (setprofile, enable) starts a
 * watch: trace_cb stays installed and looks at the slot at each Python
 * event. While another profiler holds it, nothing is recorded (a gap: the
 * sessions report limit "profiler" and say when it began); once the slot is
 * empty again, ours goes back in, the calls that ended meanwhile are closed,
 * and recording resumes with the event at hand. The program's profiler
 * sees every event it would have seen, and sys.getprofile() what it set. */
#include "hooks.h"

#if !TP_PY312

#include <string.h>

#include "codeinfo.h"
#include "frame.h"
#include "record.h"

static int profile_cb(PyObject *obj, PyFrameObject *f, int what, PyObject *arg);
static int trace_cb(PyObject *obj, PyFrameObject *f, int what, PyObject *arg);
static void watch_off(tp_tls *tls);

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
    /* The eval-frame hook unless this thread records with the profile
     * function already, or another tool holds the slot. */
    if (!tls->profile_on && tp_hooks_eval_wanted() && tp_hooks_eval_attach(tls) == 0)
        return 0;
    return tp_hooks_profile_attach(tls);
}

int tp_hooks_profile_attach(tp_tls *tls)
{
    PyThreadState *ts = tls->tstate;
    if (ts->c_profilefunc == profile_cb && ts->c_profileobj == (PyObject *)tls)
        return 0;
    Py_tracefunc prev = ts->c_profilefunc;
    PyObject *prev_obj = Py_XNewRef(ts->c_profileobj);
    /* Keep a reference to tls across the swap: setting the profile
     * function releases the previous object first. The thread may be
     * another one (hooks_eval.c moves them all at once). */
    Py_INCREF(tls);
    (void)_PyEval_SetProfile(ts, profile_cb, (PyObject *)tls);
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
    /* Each thread drops its own profile function (tp_hooks_thread_idle);
     * the eval-frame hook is one pointer, swapped from anywhere. */
    (void)in_callback;
    tp_hooks_eval_update();
}

void tp_hooks_check(tp_session *s)
{
    tp_hooks_eval_check(s);
}

void tp_hooks_thread_idle(tp_tls *tls)
{
    if (tls->eval_on)
        tp_hooks_eval_idle(tls);
    if (tls->watch)
        watch_off(tls);
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

/* ---- the trace function: one event, or watching ---------------------------- */

static void trace_uninstall(tp_tls *tls)
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

/* The exception trace is done; the function stays while watching. */
static void trace_off(tp_tls *tls)
{
    tls->trace_once = false;
    if (!tls->watch)
        trace_uninstall(tls);
}

static bool trace_install(tp_tls *tls)
{
    if (tls->trace_on)
        return true;
    PyThreadState *ts = tls->tstate;
    Py_tracefunc prev = ts->c_tracefunc;
    PyObject *prev_obj = Py_XNewRef(ts->c_traceobj);
    /* Installing with the previous object keeps sys.gettrace() unchanged. */
    PyEval_SetTrace(trace_cb, prev_obj ? prev_obj : (PyObject *)tls);
    if (ts->c_tracefunc != trace_cb) {
        PyErr_Clear(); /* an audit hook refused: the exception stays unknown */
        Py_XDECREF(prev_obj);
        return false;
    }
    tls->prev_trace = prev;
    tls->prev_trace_obj = prev_obj;
    tls->trace_on = true;
    return true;
}

static void trace_on(tp_tls *tls)
{
    if (trace_install(tls))
        tls->trace_once = true;
}

static void watch_on(tp_tls *tls)
{
    if (!tls->watch && trace_install(tls))
        tls->watch = true;
}

static void watch_off(tp_tls *tls)
{
    tls->watch = false;
    tls->gap_start = 0;
    if (!tls->trace_once)
        trace_uninstall(tls);
}

/* A builtin that may put another profile function in our slot. */
static bool installs_profiler(PyObject *fn)
{
    if (!fn || !PyCFunction_Check(fn))
        return false;
    const char *n = ((PyCFunctionObject *)fn)->m_ml->ml_name;
    return (n[0] == 's' && strcmp(n, "setprofile") == 0) ||
           (n[0] == 'e' && strcmp(n, "enable") == 0);
}

static void gap_begin(tp_tls *tls)
{
    tls->gap_start = tp_now();
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_session *s = tls->active[i]->s;
        if (tls->active[i]->dead)
            continue;
        s->gaps++;
        double ms = (double)(tls->gap_start - s->t0) * s->ns_per_tick / 1e6;
        tp_session_error(s,
                         "another profiler replaced tracepatch's at %d.%03d ms "
                         "(sys.setprofile, cProfile): the calls made while it ran are not "
                         "recorded",
                         (int)ms, (int)((ms - (int)ms) * 1000));
    }
}

/* Whether frame key is frame or one of its callers (ctx: the frame). */
static bool on_stack(void *key, void *ctx)
{
    PyFrameObject *f = ctx;
    Py_XINCREF(f);
    while (f) {
        if (tp_frame_key(f) == key) {
            Py_DECREF(f);
            return true;
        }
        PyFrameObject *up = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = up;
    }
    return false;
}

static void on_event(tp_tls *tls, PyFrameObject *f, int what, PyObject *arg);

/* A Python event while watching: is the slot still taken, empty again, or
 * was it ours all along (the builtin installed nothing)? */
static void watch_event(tp_tls *tls, PyFrameObject *f, int what, PyObject *arg)
{
    PyThreadState *ts = tls->tstate;
    if (ts->c_profilefunc == profile_cb && ts->c_profileobj == (PyObject *)tls) {
        watch_off(tls);
        return;
    }
    tp_scope_check(tls);
    if (!tls->nactive) {
        watch_off(tls); /* the sessions stopped during the gap */
        return;
    }
    if (ts->c_profilefunc != NULL) {
        /* Another profiler gets this event, not us: the gap starts. */
        if (!tls->gap_start)
            gap_begin(tls);
        return;
    }
    /* The slot is empty (sys.setprofile(None), disable()): take it back.
     * Emptied before any Python event was missed, it left no gap. */
    watch_off(tls);
    tls->profile_on = false;
    if (tp_hooks_attach_thread(tls) < 0) {
        PyErr_Clear();
        return;
    }
    /* A returning frame still runs; a calling one is not recorded yet. */
    PyFrameObject *live = what == PyTrace_CALL ? PyFrame_GetBack(f) : (Py_XINCREF(f), f);
    tp_record_end_gone(tls, on_stack, live);
    Py_XDECREF(live);
    if (what == PyTrace_CALL || what == PyTrace_RETURN)
        on_event(tls, f, what, arg);
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
    bool once = tls->trace_once;
    trace_off(tls);
    int r = prev ? prev(prev_obj, f, what, arg) : 0;
    Py_XDECREF(prev_obj);
    if (tls->watch) {
        PyObject *wt, *wv, *wtb;
        PyErr_Fetch(&wt, &wv, &wtb);
        watch_event(tls, f, what, arg);
        PyErr_Restore(wt, wv, wtb);
    }
    if (!once)
        return r;
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
            tp_record_exception(tls, tp_frame_key(f), exc);
    }
    PyErr_Restore(saved_t, saved_v, saved_tb);
    return r;
}

/* ---- the profile function ------------------------------------------------- */

static void on_call(tp_tls *tls, PyFrameObject *f)
{
    void *key = tp_frame_key(f);
    tp_codeinfo *ci = tp_codeinfo_cached(tls, tp_frame_code(f), key);
    if (!ci) {
        tp_record_out_of_memory(tls);
        return;
    }
    if (ci->flags & TP_CI_GEN) {
        if (!tp_frame_first_start(f)) {
            tp_record_resume(tls, key);
            return;
        }
        tp_record_forget(tls, key);
    }
    tp_record_start(tls, ci, key, tp_frame_locals(key));
}

static void on_event(tp_tls *tls, PyFrameObject *f, int what, PyObject *arg)
{
    if (TP_UNLIKELY(tls->watch))
        watch_off(tls); /* a profile event: the slot is still ours */
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
    case PyTrace_C_CALL:
        if (TP_UNLIKELY(installs_profiler(arg)))
            watch_on(tls);
        break;
    case PyTrace_RETURN:
        if (!arg) {
            /* Ended by an exception we cannot see yet. */
            tp_record_unwind_defer(tls, tp_frame_key(f));
            trace_on(tls);
        } else if (tp_frame_suspending(f)) {
            tp_record_yield(tls, tp_frame_key(f));
        } else {
            tp_record_return(tls, tp_frame_key(f), arg);
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
    if (tls->eval_on) {
        tp_hooks_eval_bootstrap_call(tls, frame);
        return;
    }
    on_event(tls, frame, PyTrace_CALL, NULL);
    tls->boot_key = tp_frame_key(frame); /* the hook may see this frame's start too */
}

void tp_hooks_after_fork(void)
{
    tp_hooks_eval_after_fork();
    tp_tls *tls = tp_scope_cur_tls;
    if (!tls)
        return;
    tls->watch = false;
    trace_off(tls);
    tp_hooks_thread_idle(tls);
}

#endif /* !TP_PY312 */
