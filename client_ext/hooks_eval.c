/* 3.10/3.11: the PEP 523 frame-evaluation hook (_PyInterpreterState_SetEvalFrameFunc).
 *
 * Why. Any profile function makes 3.11 run de-specialised bytecode and build
 * a frame object per call; the empty one costs 0.77x cProfile in
 * instructions per call (0.56x on 3.10). A frame-evaluation hook is one C
 * call around each frame the interpreter evaluates and keeps specialised
 * bytecode: with the least structure-only recording needs on top, 0.06x
 * (3.10) and 0.12-0.18x (3.11) cProfile (tests/bench/bench_floor523.py).
 * On 3.11 most of that is CPython no longer inlining Python-to-Python calls
 * while any hook is installed (CALL checks interp->eval_frame), which every
 * thread of the process pays, recorded or not, for as long as a session
 * records.
 *
 * What the hook sees. One call per frame evaluation: a function's call, and
 * each start or resume of a generator or coroutine (gen.send(), next(),
 * throw(), close(), await). On 3.11 a generator function's call is an
 * evaluation of its own that only creates the generator (RETURN_GENERATOR)
 * and is not a call of it; the frame then lives in the generator, and
 * starts for the first time when it still stands at that instruction. After
 * the evaluation the generator's state tells a suspension (yield, await)
 * from its end; a NULL result is an end by exception, which is then in
 * flight and readable at once (no deferred UNWIND as with a profile
 * function), and the frame the exception reaches, the one that was
 * running when the call began, is marked as having received it: reported
 * CAUGHT if it returns normally. Exceptions raised by builtins and handled
 * in the same frame produce nothing here, as with the profile function;
 * unlike it, an exception a builtin between the two frames swallows
 * (hasattr() over a Python __getattr__) counts as received.
 *
 * Not recorded: frames evaluated while the thread runs a trace or profile
 * function (tstate->tracing: a debugger's or coverage's own Python code,
 * which a profile function never saw either), and while the extension runs
 * Python code of its own (tls->busy).
 *
 * One slot per interpreter. The hook is installed when a thread starts
 * recording and the slot holds CPython's own evaluator; when another tool
 * holds it (a JIT, another tracer), the thread records with the profile
 * function instead (hooks_legacy.c). The hook is removed when no session
 * records; a tool that replaces it meanwhile is reported to the sessions
 * (their calls after that are not seen). cProfile, sys.setprofile and
 * sys.settrace (pdb, coverage) use other slots and run beside it.
 *
 * Which interpreters. 3.11.0-3.11.3 evaluate a specialised
 * BINARY_SUBSCR_GETITEM (a Python __getitem__) without calling the hook
 * (CPython gh-104405, fixed in 3.11.4), so those calls would be missing:
 * there the profile function stays. The version is read at run time, since
 * one build serves every 3.11. TRACEPATCH_HOOK=profile chooses the profile
 * function everywhere (read once, when the extension loads). */
#include "hooks.h"

#if !TP_PY312

#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "codeinfo.h"
#include "record.h"

#if TP_PY311
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#include <opcode.h>
typedef _PyInterpreterFrame evframe;
typedef PyGenObject evgen;
#define GEN_CODE_FLAGS (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)
#else
typedef PyFrameObject evframe;
typedef PyObject evgen;
#endif

/* Whether the eval-frame hook may be used (decided once, by eval_choose()). */
static int eval_choice = -1;
static bool installed; /* eval_cb is (or was, until replaced) in the slot */

static PyObject *eval_cb(PyThreadState *ts, evframe *f, int throwflag);

static void eval_choose(void)
{
    if (eval_choice >= 0)
        return;
    const char *env = getenv("TRACEPATCH_HOOK");
    eval_choice = !(env && strcmp(env, "profile") == 0);
#if TP_PY311
    /* 3.11.0-3.11.3 skip the hook for a specialised Python __getitem__. */
    if (Py_Version < 0x030B0400)
        eval_choice = 0;
#endif
}

bool tp_hooks_eval_wanted(void)
{
    eval_choose();
    return eval_choice == 1;
}

const char *tp_hooks_name(void)
{
    return tp_hooks_eval_wanted() ? "eval_frame" : "profile";
}

/* ---- the frame ------------------------------------------------------------ */

/* The generator owning f, or NULL (3.11: an evaluation that only creates
 * one has a frame of the thread and returns the generator). */
static inline evgen *frame_gen(evframe *f)
{
#if TP_PY311
    return f->owner == FRAME_OWNED_BY_GENERATOR ? _PyFrame_GetGenerator(f) : NULL;
#else
    return f->f_gen;
#endif
}

static inline bool gen_first_start(evframe *f, evgen *g)
{
#if TP_PY311
    /* The state is FRAME_EXECUTING already; the frame still stands at the
     * RETURN_GENERATOR that made the generator (later, at a yield). */
    (void)g;
    return _Py_OPCODE(*f->prev_instr) == RETURN_GENERATOR;
#else
    (void)g;
    return f->f_lasti < 0;
#endif
}

/* After the evaluation: the generator suspended (yield or await). The
 * generator holds its frame, so both are still valid. */
static inline bool gen_suspended(evframe *f, evgen *g)
{
#if TP_PY311
    (void)f;
    return g->gi_frame_state == FRAME_SUSPENDED;
#else
    (void)g;
    return f->f_state == FRAME_SUSPENDED;
#endif
}

/* The frame running when f's evaluation begins: the one an exception
 * ending f reaches. */
static inline void *frame_running(PyThreadState *ts)
{
#if TP_PY311
    return ts->cframe->current_frame;
#else
    return ts->frame;
#endif
}

static inline PyObject **frame_locals(evframe *f)
{
#if TP_PY311
    return f->localsplus;
#else
    return f->f_localsplus;
#endif
}

/* ---- events --------------------------------------------------------------- */

/* The slow paths may run Python code (a repr, a task's name). A profile
 * function runs where the interpreter hides such code from every other
 * tool (tstate->tracing); here it is hidden the same way, so that cProfile,
 * a debugger or coverage never see calls the extension makes. */
static inline void hide_begin(PyThreadState *ts)
{
#if TP_PY311
    PyThreadState_EnterTracing(ts);
#else
    ts->tracing++;
    ts->cframe->use_tracing = 0;
#endif
}

static inline void hide_end(PyThreadState *ts)
{
#if TP_PY311
    PyThreadState_LeaveTracing(ts);
#else
    ts->tracing--;
    ts->cframe->use_tracing = ts->c_tracefunc != NULL || ts->c_profilefunc != NULL;
#endif
}

static __attribute__((noinline)) void begin_slow(tp_tls *tls, PyCodeObject *co, evframe *f,
                                                 evgen *g, int throwflag)
{
    tp_scope_check(tls);
    if (!tls->nactive)
        return;
    tp_codeinfo *ci = tp_codeinfo_cached(tls, co, f);
    if (!ci) {
        tp_record_out_of_memory(tls);
        return;
    }
    if (g) {
        if (!gen_first_start(f, g)) {
            tp_record_resume(tls, f);
            return;
        }
        /* Thrown into before it ever ran (3.11 closes a generator that
         * never started this way): none of its code runs, which 3.11's
         * profile function does not report as a call either (3.10's
         * does, and so is it recorded there). */
#if TP_PY311
        if (throwflag)
            return;
#else
        (void)throwflag;
#endif
        tp_record_forget(tls, f);
    }
    tp_record_start(tls, ci, f, frame_locals(f));
}

/* The quick paths that capture text, and those of generators, out of line:
 * inlined, they would cost structure-only calls their registers. */
static __attribute__((noinline)) bool start_quick_args(tp_tls *tls, tp_codeinfo *ci, evframe *f)
{
    return tp_record_start_quick_args(tls, ci, f);
}

static __attribute__((noinline)) bool return_quick_value(tp_tls *tls, evframe *f, PyObject *res)
{
    return tp_record_return_quick_value(tls, f, res);
}

static __attribute__((noinline)) bool resume_quick(tp_tls *tls, evframe *f, evgen *g)
{
    return !gen_first_start(f, g) && tp_record_resume_quick(tls, f);
}

static __attribute__((noinline)) bool yield_quick(tp_tls *tls, evframe *f, evgen *g)
{
    return gen_suspended(f, g) && tp_record_yield_quick(tls, f);
}

static inline void begin(tp_tls *tls, PyThreadState *ts, PyCodeObject *co, evframe *f, evgen *g,
                         int throwflag)
{
    /* The quick paths (record.h) run no Python code, so an exception in
     * flight (gen.throw()) may stay where it is. */
    uint8_t quick = tls->quick;
    if (TP_LIKELY(!g)) {
        if (quick & (TP_QUICK_CALL | TP_QUICK_CALL_ARGS)) {
            tp_codeinfo *ci = tp_codeinfo_cache_hit(tls, (PyObject *)co);
            if (ci && ((quick & TP_QUICK_CALL) ? tp_record_start_quick(tls, ci, f)
                                               : start_quick_args(tls, ci, f)))
                return;
        }
    } else if ((quick & TP_QUICK_SUSPEND) && resume_quick(tls, f, g)) {
        return;
    }
    hide_begin(ts);
    if (TP_UNLIKELY(ts->curexc_type != NULL)) {
        /* gen.throw(): the exception to raise in the frame is in flight. */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        begin_slow(tls, co, f, g, throwflag);
        PyErr_Restore(t, v, tb);
    } else {
        begin_slow(tls, co, f, g, throwflag);
    }
    hide_end(ts);
}

/* The evaluation of f ended by exception: the exception is in flight. */
static __attribute__((noinline)) void end_exc(tp_tls *tls, evframe *f, evgen *g, void *running)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    tp_scope_check(tls);
    if (tls->nactive && t) {
        /* Normalised here rather than where it is caught, as the trace
         * function's exception event normalises it. Its traceback is not
         * attached: the exception, kept until the frame receiving it
         * returns, would keep every frame of the traceback alive, and
         * with them what they hold (a generator's finalisation). */
        PyErr_NormalizeException(&t, &v, &tb);
        PyObject *exc = v && PyExceptionInstance_Check(v) ? v : NULL;
        /* An iteration end leaving a generator is its closing. */
        if (g && exc && tp_capture_exc_is_iteration_end(exc))
            exc = NULL;
        tp_record_unwind(tls, f, exc);
        /* A generator closed (close(), or its finalisation) ends with
         * GeneratorExit, which close() swallows: no frame receives it. */
        if (running && exc && !(g && PyErr_GivenExceptionMatches(exc, PyExc_GeneratorExit)))
            tp_record_exception(tls, running, exc);
    }
    PyErr_Restore(t, v, tb);
}

static __attribute__((noinline)) void end_slow(tp_tls *tls, evframe *f, evgen *g, PyObject *res)
{
    tp_scope_check(tls);
    if (!tls->nactive)
        return;
    if (g && gen_suspended(f, g))
        tp_record_yield(tls, f);
    else
        tp_record_return(tls, f, res);
}

static inline void end(tp_tls *tls, PyThreadState *ts, evframe *f, evgen *g, void *running,
                       PyObject *res)
{
    uint8_t quick = tls->quick;
    if (TP_LIKELY(res && !g)) {
        if ((quick & TP_QUICK_RETURN)
                ? tp_record_return_quick(tls, f)
                : (quick & TP_QUICK_RETURN_VALUE) && return_quick_value(tls, f, res))
            return;
    } else if (res && (quick & TP_QUICK_SUSPEND) && yield_quick(tls, f, g)) {
        return;
    }
    hide_begin(ts);
    if (!res)
        end_exc(tls, f, g, running);
    else
        end_slow(tls, f, g, res);
    hide_end(ts);
}

/* A frame evaluated while its thread records nothing through this hook. A
 * followed thread's first frame began before the thread was bound (its
 * bootstrap recorded the start): its end is caught here. */
static PyObject *eval_outside(PyThreadState *ts, evframe *f, int throwflag)
{
    PyObject *res = _PyEval_EvalFrameDefault(ts, f, throwflag);
    tp_tls *tls = tp_scope_cur_tls;
    if (TP_UNLIKELY(tls && tls->boot_eval == (void *)f) && !tls->busy) {
        tls->boot_eval = NULL;
        end(tls, ts, f, NULL, NULL, res);
    }
    return res;
}

/* The Python frames running in the thread (inlined ones included). */
static inline int py_depth(PyThreadState *ts)
{
#if TP_PY311
    return ts->recursion_limit - ts->recursion_remaining;
#else
    return ts->recursion_depth;
#endif
}

/* A recursion deeper than MAX_DEPTH (a program that raised the recursion
 * limit): while the hook is installed, every Python call is a C call (3.11
 * no longer inlines them; on 3.10 the hook's frame adds to each), so the C
 * stack would overflow where the program alone does not (3.11.7: at about
 * 95,000 frames with 8 MiB; 3.10.13: 12,000-16,000, against 16,000-20,000
 * with the profile function). The hook goes and every thread recording
 * through it continues with the profile function until it has nothing left
 * to record; the frames under way end in either, whichever sees it first.
 * A thread that starts recording later installs the hook again, and goes
 * the same way if a recursion is still that deep. */
#define MAX_DEPTH 4000

static __attribute__((noinline, cold)) void too_deep(void)
{
    installed = false;
    PyInterpreterState *interp = PyInterpreterState_Get();
    if (_PyInterpreterState_GetEvalFrameFunc(interp) == eval_cb)
        _PyInterpreterState_SetEvalFrameFunc(interp, _PyEval_EvalFrameDefault);
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    for (size_t i = 0; i < tp_module_g.active.size; i++) {
        tp_session *s = tp_module_g.active.items[i];
        for (size_t k = 0; k < s->bindings.size; k++) {
            tp_tls *tls = s->bindings.items[k]->tls;
            if (!tls || !tls->eval_on)
                continue;
            tp_hooks_eval_idle(tls);
            if (tp_hooks_profile_attach(tls) < 0)
                PyErr_Clear(); /* an audit hook refused: that thread records no more */
        }
    }
    PyErr_Restore(t, v, tb);
}

static PyObject *eval_cb(PyThreadState *ts, evframe *f, int throwflag)
{
    if (TP_UNLIKELY(py_depth(ts) > MAX_DEPTH)) {
        too_deep();
        return _PyEval_EvalFrameDefault(ts, f, throwflag);
    }
    tp_tls *tls = tp_scope_cur_tls;
    if (TP_UNLIKELY(!tls || !tls->eval_on || tls->busy || ts->tracing))
        return eval_outside(ts, f, throwflag);
    PyCodeObject *co = f->f_code;
    evgen *g = frame_gen(f);
#if TP_PY311
    if (TP_UNLIKELY(!g && (co->co_flags & GEN_CODE_FLAGS)))
        return _PyEval_EvalFrameDefault(ts, f, throwflag); /* creates the generator */
#endif
    void *running = frame_running(ts);
    begin(tls, ts, co, f, g, throwflag);
    PyObject *res = _PyEval_EvalFrameDefault(ts, f, throwflag);
    /* tls lives as long as the thread state, which runs this frame. Once
     * the thread records with the profile function (too_deep()), that one
     * has seen this end. */
    if (TP_LIKELY(!tls->busy && tls->eval_on))
        end(tls, ts, f, g, running, res);
    return res;
}

/* ---- the slot ------------------------------------------------------------- */

int tp_hooks_eval_attach(tp_tls *tls)
{
    /* The slot says, not tls->eval_on: the hook may have been removed (the
     * last session stopped in another thread) while this thread ran no
     * frame that would have noticed. */
    PyInterpreterState *interp = tls->tstate->interp;
    _PyFrameEvalFunction cur = _PyInterpreterState_GetEvalFrameFunc(interp);
    if (cur != eval_cb) {
        if (cur != _PyEval_EvalFrameDefault) {
            tp_hooks_eval_idle(tls);
            return -1; /* another tool's: the caller uses the profile function */
        }
        _PyInterpreterState_SetEvalFrameFunc(interp, eval_cb);
        installed = true;
    }
    tls->eval_on = true;
    return 0;
}

void tp_hooks_eval_idle(tp_tls *tls)
{
    tls->eval_on = false;
    tls->boot_eval = NULL;
}

void tp_hooks_eval_update(void)
{
    if (!installed || tp_module_g.nrecording)
        return;
    installed = false;
    PyInterpreterState *interp = PyInterpreterState_Get();
    /* A hook installed over ours stays: taking it out would break its tool. */
    if (_PyInterpreterState_GetEvalFrameFunc(interp) == eval_cb)
        _PyInterpreterState_SetEvalFrameFunc(interp, _PyEval_EvalFrameDefault);
}

void tp_hooks_eval_check(tp_session *s)
{
    if (!installed || _PyInterpreterState_GetEvalFrameFunc(PyInterpreterState_Get()) == eval_cb)
        return;
    tp_session_error(s, "another tool replaced tracepatch's frame-evaluation hook (PEP 523) "
                        "while it recorded: the calls made after that are not recorded");
}

void tp_hooks_eval_bootstrap_call(tp_tls *tls, PyFrameObject *frame)
{
    tp_scope_check(tls);
    if (!tls->nactive)
        return;
    void *key = tp_frame_key(frame);
    tp_codeinfo *ci = tp_codeinfo_cached(tls, tp_frame_code(frame), key);
    if (!ci) {
        tp_record_out_of_memory(tls);
        return;
    }
    tp_record_start(tls, ci, key, tp_frame_locals(key));
    /* Its evaluation began before the thread was bound: eval_outside()
     * sees it end. */
    tls->boot_eval = key;
}

void tp_hooks_eval_after_fork(void)
{
    tp_tls *tls = tp_scope_cur_tls;
    if (tls)
        tp_hooks_eval_idle(tls);
    tp_hooks_eval_update();
}

/* ---- test hooks ------------------------------------------------------------ */

/* Another tool's hook, for the tests: it only evaluates. */
static PyObject *foreign_cb(PyThreadState *ts, evframe *f, int throwflag)
{
    return _PyEval_EvalFrameDefault(ts, f, throwflag);
}

PyObject *tp_hooks_foreign(PyObject *self, PyObject *on)
{
    (void)self;
    int want = PyObject_IsTrue(on);
    if (want < 0)
        return NULL;
    PyInterpreterState *interp = PyInterpreterState_Get();
    if (!want && _PyInterpreterState_GetEvalFrameFunc(interp) != foreign_cb) {
        PyErr_SetString(PyExc_RuntimeError, "the eval-frame slot does not hold the test's hook");
        return NULL;
    }
    _PyInterpreterState_SetEvalFrameFunc(interp, want ? foreign_cb : _PyEval_EvalFrameDefault);
    Py_RETURN_NONE;
}

PyObject *tp_hooks_in_use(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    tp_tls *tls = tp_scope_cur_tls;
    if (tls && tls->eval_on)
        return PyUnicode_FromString("eval_frame");
    if (tls && tls->profile_on)
        return PyUnicode_FromString("profile");
    Py_RETURN_NONE;
}

#endif /* !TP_PY312 */
