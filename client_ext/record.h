/* Scope and recording: which sessions an event belongs to, and what they
 * write for it. The hook files (hooks_legacy.c for 3.10/3.11, hooks_monitor.c
 * for 3.12+) translate interpreter events into these calls; everything here is
 * the same on every version.
 *
 * Scope. A session records the thread and context that called start(): the
 * context variable tp_g.ctxvar holds the serials of the sessions whose scope
 * the running context is in (asyncio tasks copy it when created), and a
 * thread's `active` list caches, per (context, context version, tp_g.gen),
 * which of its bindings are in scope. Threads followed with threads=True are
 * in scope whatever their context. */
#ifndef TP_RECORD_H
#define TP_RECORD_H

#include "codeinfo.h"
#include "ext.h"
#include "frame.h"

/* ---- scope.c ------------------------------------------------------------ */

/** The calling thread's state, created when create is true and it has none
 *  (NULL on failure, with an exception set). */
tp_tls *tp_tls_get(bool create);

/** The type spec of the thread-state object (module.c creates the type). */
extern PyType_Spec tp_tls_spec;

/** Recompute tls->active for the running context (and drop this thread's
 *  hook when nothing is left for it to record). */
void tp_scope_refresh(tp_tls *tls);

/** Keep tls->active current: cheap unless the context or a session changed. */
static inline void tp_scope_check(tp_tls *tls)
{
    PyThreadState *ts = tls->tstate;
    if (TP_UNLIKELY(tls->gen != tp_g.gen || ts->context != tls->ctx ||
                    ts->context_ver != tls->ctx_ver))
        tp_scope_refresh(tls);
}

/** The code info of co for a frame named key: the thread's last one when it
 *  is the same code object (and no code info was freed since), else
 *  tp_codeinfo_get(). NULL on failure. */
static inline tp_codeinfo *tp_codeinfo_cached(tp_tls *tls, PyCodeObject *co, void *key)
{
    if (TP_LIKELY(co == tls->ci_code && tls->ci_frees == tp_codeinfo_frees))
        return tls->ci_last;
    tp_codeinfo *ci = tp_codeinfo_get(co, tp_frame_globals(key));
    if (ci) {
        tls->ci_code = co;
        tls->ci_last = ci;
        tls->ci_frees = tp_codeinfo_frees;
    }
    return ci;
}

/** Bind session s to the thread of tls (by_thread: the whole thread is in
 *  scope). Writes the THREAD record naming it. Returns 0 or -1 with an
 *  exception set. */
int tp_bind(tp_session *s, tp_tls *tls, bool by_thread);

/** Unbind every binding of s (stop or limit): they are marked dead; with
 *  unlink, they are also removed from their threads' lists. */
void tp_unbind_all(tp_session *s, bool unlink);

/** Add the session's serial to the running context's value (start()).
 *  Returns 0 or -1 with an exception set. */
int tp_scope_enter(tp_session *s);
/** Take the session's serial out of the running context's value (stop()).
 *  Never fails. */
void tp_scope_leave(tp_session *s);

/* ---- record.c ----------------------------------------------------------- */

/** A hook could not describe a call (no memory for its code info): the
 *  sessions in scope stop recording with limit "memory". */
void tp_rec_out_of_memory(tp_tls *tls);

/** A call starts in the frame named key (locals: its fast locals). */
void tp_rec_start(tp_tls *tls, tp_codeinfo *ci, void *key, PyObject *const *locals);
/** The call of frame key returns retval. Returns whether some session had
 *  recorded it. */
bool tp_rec_return(tp_tls *tls, void *key, PyObject *retval);
/** The call of frame key ends by exception exc (NULL: not known; a
 *  generator is then taken as closed). */
void tp_rec_unwind(tp_tls *tls, void *key, PyObject *exc);
/** The generator/coroutine call of frame key suspends. */
void tp_rec_yield(tp_tls *tls, void *key);
/** The suspended call of frame key resumes (also gen.throw()). Returns
 *  whether some session knew it. */
bool tp_rec_resume(tp_tls *tls, void *key);
/** Frame key handled (3.12+) or received (3.10/3.11) exception exc. */
void tp_rec_exception(tp_tls *tls, void *key, PyObject *exc);
/** A first start of generator frame key: forget a stale suspension under the
 *  same key (its generator died without an event). */
void tp_rec_forget(tp_tls *tls, void *key);

/** BaseEventLoop.call_soon(self, callback, ...) starts with locals: when
 *  callback is a task's first step, note the task's coroutine and the call
 *  creating it (the innermost recorded one) in each session, so that its
 *  first start is recorded as that call's child (TP_EV_SPAWN). */
void tp_rec_task_soon(tp_tls *tls, PyObject *const *locals);

/** Record the end of suspended call e, whose generator is gone although no
 *  event said so (3.13 closes a generator suspended outside a try block
 *  without running it): it ends where it last suspended, so its time is
 *  what it really ran. Written on a thread index of its own, where that
 *  earlier time does not disturb the order of the thread being recorded.
 *  Returns false (the session counts a drop) when memory runs out. */
bool tp_rec_close_unseen(tp_session *s, const tp_fent *e);

/** 3.10/3.11: the call of frame key ends by an exception not visible yet;
 *  its UNWIND waits in the binding until tp_rec_unwind_resolve(). Returns
 *  whether anything waits. */
bool tp_rec_unwind_defer(tp_tls *tls, void *key);
/** Write the waiting UNWINDs of this thread with exc (NULL: unknown). */
void tp_rec_unwind_resolve(tp_tls *tls, PyObject *exc);

/** threads=True: the thread about to start (a threading.Thread, borrowed) is
 *  followed by the sessions in scope that asked for it. */
void tp_rec_thread_start(tp_tls *tls, PyObject *thread);

#endif
