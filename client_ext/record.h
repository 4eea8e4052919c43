/* Recording: what the sessions in scope (scope.h) write for an event. The
 * hook files (hooks_legacy.c for 3.10/3.11, hooks_monitor.c for 3.12+)
 * translate interpreter events into these calls; everything here is the same
 * on every version. */
#ifndef TP_RECORD_H
#define TP_RECORD_H

#include "capture.h"
#include "codeinfo.h"
#include "ext.h"
#include "frame.h"
#include "scope.h"
#include "threads.h"

/** A hook could not describe a call (no memory for its code info): the
 *  sessions in scope stop recording with limit "memory". */
void tp_record_out_of_memory(tp_tls *tls);

/** A call starts in the frame named key (locals: its fast locals, or NULL
 *  to have them read from key only when something needs them: structure-only
 *  recording does not). */
void tp_record_start(tp_tls *tls, tp_codeinfo *ci, void *key, PyObject *const *locals);
/** The call of frame key returns retval. Returns whether some session had
 *  recorded it. */
bool tp_record_return(tp_tls *tls, void *key, PyObject *retval);
/* ---- quick paths -------------------------------------------------------
 * The common case written inline in the hooks: one binding in scope, of a
 * session recording structure only, nothing unusual about the call. Each
 * returns false, having changed nothing, whenever anything is unusual; the
 * hook then takes the general path above, which decides everything again. */

/** The binding a quick path may serve: scope current, one binding in
 *  scope, not stopped, and with with_boot no bootstrap START pending (a
 *  yield or a resume passes false: the general path of neither looks at
 *  it); else NULL. The hook has checked tls->quick for its event already. */
static inline __attribute__((always_inline)) tp_binding *tp_record_quick_binding_as(tp_tls *tls,
                                                                                    bool with_boot)
{
    PyThreadState *ts = tls->tstate;
    if (TP_UNLIKELY(tls->busy || (with_boot && tls->boot_key) || tls->gen != tp_module_g.gen ||
                    ts->context != tls->ctx || ts->context_ver != tls->ctx_ver))
        return NULL;
    tp_binding *b = tls->active[0];
    return TP_LIKELY(!b->dead) ? b : NULL;
}

static inline tp_binding *tp_record_quick_binding(tp_tls *tls)
{
    return tp_record_quick_binding_as(tls, true);
}

/** Log room for one record with no text, on b's thread. */
static inline bool tp_record_quick_log(tp_binding *b)
{
    tp_session *s = b->s;
    return s->log.n + TP_EVLOG_MAX_PUT <= TP_EVLOG_BLOCK && s->log_thread == b->thread;
}

/** The checks every quick start makes: b may record a call of ci now,
 *  and its stack has room for it. */
static inline __attribute__((always_inline)) bool tp__record_quick_start_ok(tp_binding *b,
                                                                            tp_codeinfo *ci)
{
    tp_session *s = b->s;
    return !(ci->flags & (TP_CI_GEN | TP_CI_INTERNAL | TP_CI_THREAD_START | TP_CI_TASK_SOON)) &&
           TP_LIKELY(ci->last_serial == s->serial && ci->last_id < TP_FUNC_FILTERED &&
                     b->stack.size < s->max_depth && s->call_count < s->max_calls &&
                     tp_record_quick_log(b) && tp_vec_grow1(&b->stack) >= 0);
}

/** tp_record_start() of a call of a plain function (not a generator, not
 *  one of the watched ones) by a session recording structure only; the
 *  hook calls it when tls->quick has TP_QUICK_CALL. */
static inline bool tp_record_start_quick(tp_tls *tls, tp_codeinfo *ci, void *key)
{
    tp_binding *b = tp_record_quick_binding(tls);
    if (!b || !tp__record_quick_start_ok(b, ci))
        return false;
    tp_session *s = b->s;
    int64_t now = tp_now();
    if (TP_UNLIKELY(now >= s->due))
        return false;
    size_t n = b->stack.size;
    tp_evlog_put(&s->log, TP_EV_CALL, 0, ci->last_id, (uint64_t)(now - s->t0));
    b->stack.items[n] = (tp_fent){key, s->call_count++, 0, NULL, NULL, 0, 0};
    b->stack.size = n + 1;
    return true;
}

/** The same for a session showing arguments (TP_QUICK_CALL_ARGS), when they
 *  are of the types rendered in C without Python code (capture.h): their
 *  text goes straight into the log. */
static inline bool tp_record_start_quick_args(tp_tls *tls, tp_codeinfo *ci, void *key)
{
    tp_binding *b = tp_record_quick_binding(tls);
    if (!b || !tp__record_quick_start_ok(b, ci))
        return false;
    tp_session *s = b->s;
    size_t room = tp_capture_args_room(ci, s->max_repr_args);
    PyObject *const *locals = tp_frame_locals(key);
    if (room > TP_CAPTURE_IN_PLACE_MAX || !tp_capture_args_pure(ci, locals) ||
        tp_evlog_reserve(&s->log, room, 1) < 0)
        return false;
    int64_t now = tp_now();
    if (TP_UNLIKELY(now >= s->due))
        return false;
    size_t n = b->stack.size;
    tp_evlog_put(&s->log, TP_EV_CALL, TP_EVF_TEXT, ci->last_id, (uint64_t)(now - s->t0));
    tp_evlog_text_end(
        &s->log, tp_capture_args_into(tp_evlog_text_begin(&s->log), ci, locals, s->max_repr_args));
    b->stack.items[n] = (tp_fent){key, s->call_count++, 0, NULL, NULL, 0, 0};
    b->stack.size = n + 1;
    return true;
}

/** b's top call if a quick return may end it (frame key, nothing caught,
 *  no weak reference), else NULL. */
static inline __attribute__((always_inline)) tp_binding *
tp__record_quick_return_binding(tp_tls *tls, void *key)
{
    tp_binding *b = tp_record_quick_binding(tls);
    if (!b)
        return NULL;
    size_t n = b->stack.size;
    if (TP_UNLIKELY(!n || !tp_record_quick_log(b)))
        return NULL;
    tp_fent *top = &b->stack.items[n - 1];
    if (TP_UNLIKELY(top->key != key || top->exc || top->wref))
        return NULL;
    return b;
}

/** tp_record_return() of a call with nothing caught, by a session that
 *  does not show return values; the hook calls it when tls->quick has
 *  TP_QUICK_RETURN. */
static inline bool tp_record_return_quick(tp_tls *tls, void *key)
{
    tp_binding *b = tp__record_quick_return_binding(tls, key);
    if (!b)
        return false;
    tp_session *s = b->s;
    tp_evlog_put(&s->log, TP_EV_RETURN, 0, 0, (uint64_t)(tp_now() - s->t0));
    b->stack.size--;
    return true;
}

/** The same for a session showing return values (TP_QUICK_RETURN_VALUE),
 *  when retval is of a type rendered in C without Python code (its text
 *  goes straight into the log). */
static inline bool tp_record_return_quick_value(tp_tls *tls, void *key, PyObject *retval)
{
    tp_binding *b = tp__record_quick_return_binding(tls, key);
    if (!b)
        return false;
    tp_session *s = b->s;
    size_t room = tp_capture_repr_room(s->max_repr_return);
    if (room > TP_CAPTURE_IN_PLACE_MAX || !tp_capture_pure(retval) ||
        tp_evlog_reserve(&s->log, room, 1) < 0)
        return false;
    tp_evlog_put(&s->log, TP_EV_RETURN, TP_EVF_TEXT, 0, (uint64_t)(tp_now() - s->t0));
    tp_evlog_text_end(
        &s->log, tp_capture_repr_into(tp_evlog_text_begin(&s->log), retval, s->max_repr_return));
    b->stack.size--;
    return true;
}

/** Whether frame key is in the park of s (ext.h). */
static inline bool tp_record_parked(const tp_session *s, void *key)
{
    for (uint32_t i = 0; i < s->npark; i++)
        if (s->park[i].key == key)
            return true;
    return false;
}

/** tp_record_yield() of the binding's top call, into the park; the hook
 *  calls it when tls->quick has TP_QUICK_SUSPEND. */
static inline bool tp_record_yield_quick(tp_tls *tls, void *key)
{
    tp_binding *b = tp_record_quick_binding_as(tls, false);
    if (!b)
        return false;
    tp_session *s = b->s;
    size_t n = b->stack.size;
    uint32_t idx = s->susp_free, np = s->npark;
    if (TP_UNLIKELY(!n || idx == UINT32_MAX || np >= TP_PARK || !tp_record_quick_log(b)))
        return false;
    tp_fent *top = &b->stack.items[n - 1];
    if (TP_UNLIKELY(top->key != key))
        return false;
#if PY_VERSION_HEX >= 0x030D0000
    if (TP_UNLIKELY(!top->wref))
        return false; /* its first yield: the general path takes the reference */
#endif
    /* A suspension already under this key is stale: the general path
     * closes it. */
    if (TP_UNLIKELY(tp_record_parked(s, key) ||
                    (tp_hmap_size(&s->suspmap) &&
                     tp_hmap_get(&s->suspmap, (uint64_t)(uintptr_t)key, NULL))))
        return false;
    int64_t t = tp_now() - s->t0;
    tp_susp *sp = &s->susp.items[idx];
    s->susp_free = sp->next_free;
    sp->ent = *top;
    sp->ent.t_susp = t;
    s->park[np].key = key;
    s->park[np].idx = idx;
    s->npark = np + 1;
    b->stack.size = n - 1;
    tp_evlog_put(&s->log, TP_EV_YIELD, 0, sp->ent.seq, (uint64_t)t);
    return true;
}

/** tp_record_resume() of a call suspended in the park; the hook calls it
 *  when tls->quick has TP_QUICK_SUSPEND. */
static inline bool tp_record_resume_quick(tp_tls *tls, void *key)
{
    tp_binding *b = tp_record_quick_binding_as(tls, false);
    if (!b)
        return false;
    tp_session *s = b->s;
    uint32_t np = s->npark;
    if (TP_UNLIKELY(!np || !tp_record_quick_log(b)))
        return false;
    uint32_t i = np - 1; /* the last suspended, most often */
    while (s->park[i].key != key) {
        if (!i)
            return false;
        i--;
    }
    if (TP_UNLIKELY(tp_vec_grow1(&b->stack) < 0))
        return false;
    uint32_t idx = s->park[i].idx;
    for (; i + 1 < np; i++)
        s->park[i] = s->park[i + 1];
    s->npark = np - 1;
    tp_susp *sp = &s->susp.items[idx];
    tp_fent *ent = &b->stack.items[b->stack.size++];
    *ent = sp->ent;
    sp->ent.exc = NULL;
    sp->ent.wref = NULL;
    sp->next_free = s->susp_free;
    s->susp_free = idx;
    tp_evlog_put(&s->log, TP_EV_RESUME, 0, ent->seq, (uint64_t)(tp_now() - s->t0));
    return true;
}

/** The call of frame key ends by exception exc (NULL: not known; a
 *  generator is then taken as closed). */
void tp_record_unwind(tp_tls *tls, void *key, PyObject *exc);
/** The generator/coroutine call of frame key suspends. Returns whether some
 *  session had recorded it. */
bool tp_record_yield(tp_tls *tls, void *key);
/** The suspended call of frame key resumes (also gen.throw()). Returns
 *  whether some session knew it. */
bool tp_record_resume(tp_tls *tls, void *key);
/** Frame key handled (3.12+) or received (3.10/3.11) exception exc. */
void tp_record_exception(tp_tls *tls, void *key, PyObject *exc);
/** A first start of generator frame key: forget a stale suspension under the
 *  same key (its generator died without an event). */
void tp_record_forget(tp_tls *tls, void *key);

/** BaseEventLoop.call_soon(self, callback, ...) starts with locals: when
 *  callback is a task's first step, note the task's coroutine and the call
 *  creating it (the innermost recorded one) in each session, so that its
 *  first start is recorded as that call's child (TP_EV_SPAWN). */
void tp_record_task_soon(tp_tls *tls, PyObject *const *locals);

/** Record the end of suspended call e, whose generator is gone although no
 *  event said so (3.13 closes a generator suspended outside a try block
 *  without running it): it ends where it last suspended, so its time is
 *  what it really ran. Written on a thread index of its own, where that
 *  earlier time does not disturb the order of the thread being recorded.
 *  Returns false (the session counts a drop) when memory runs out. */
bool tp_record_close_unseen(tp_session *s, const tp_fent *e);

/** 3.10/3.11: the call of frame key ends by an exception not visible yet;
 *  its UNWIND waits in the binding until tp_record_unwind_resolve(). Returns
 *  whether anything waits. */
bool tp_record_unwind_defer(tp_tls *tls, void *key);
/** Write the waiting UNWINDs of this thread with exc (NULL: unknown). */
void tp_record_unwind_resolve(tp_tls *tls, PyObject *exc);

/** 3.10/3.11, after a gap (another profiler held the slot): the recorded
 *  calls of this thread whose frames are not on the stack any more (live:
 *  whether a frame key still runs) ended unseen; they end now, with no
 *  return value. */
void tp_record_end_gone(tp_tls *tls, bool (*live)(void *key, void *ctx), void *ctx);

#endif
