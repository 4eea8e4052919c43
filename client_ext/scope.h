/* Scope: which sessions an event belongs to. A session records the thread
 * and context that called start(): the context variable tp_module_g.ctxvar
 * holds the serials of the sessions whose scope the running context is in
 * (asyncio tasks copy it when created), and a thread's `active` list caches,
 * per (context, context version, tp_module_g.gen), which of its bindings are
 * in scope. Threads followed with threads=True are in scope whatever their
 * context. */
#ifndef TP_SCOPE_H
#define TP_SCOPE_H

#include <string.h>

#include "codeinfo.h"
#include "ext.h"
#include "frame.h"

/** The calling thread's state, created when create is true and it has none
 *  (NULL on failure, with an exception set). */
tp_tls *tp_scope_tls_get(bool create);

/** The type spec of the thread-state object (module.c creates the type). */
extern PyType_Spec tp_scope_tls_spec;

/** Recompute tls->active for the running context (and drop this thread's
 *  hook when nothing is left for it to record). */
void tp_scope_refresh(tp_tls *tls);

/** Keep tls->active current: cheap unless the context or a session changed. */
static inline void tp_scope_check(tp_tls *tls)
{
    PyThreadState *ts = tls->tstate;
    if (TP_UNLIKELY(tls->gen != tp_module_g.gen || ts->context != tls->ctx ||
                    ts->context_ver != tls->ctx_ver))
        tp_scope_refresh(tls);
}

/** The code info of co when the thread's cache holds it, else NULL. Only
 *  code objects are cached, so co is then one: no type check is needed. */
static inline tp_codeinfo *tp_codeinfo_cache_hit(tp_tls *tls, PyObject *co)
{
    if (TP_UNLIKELY(tls->ci_frees != tp_codeinfo_frees))
        return NULL;
    if (TP_LIKELY((PyCodeObject *)co == tls->ci_code))
        return tls->ci_last;
    uintptr_t a = (uintptr_t)co;
    size_t slot = (size_t)((a >> 4) ^ (a >> 10)) & (TP_CI_CACHE - 1);
    if ((PyCodeObject *)co != tls->ci_cache[slot].code)
        return NULL;
    tls->ci_code = (PyCodeObject *)co;
    tls->ci_last = tls->ci_cache[slot].ci;
    return tls->ci_last;
}

/** The code info of co for a frame named key: the thread's last one when it
 *  is the same code object (and no code info was freed since), else
 *  tp_codeinfo_get(). NULL on failure. */
static inline tp_codeinfo *tp_codeinfo_cached(tp_tls *tls, PyCodeObject *co, void *key)
{
    if (TP_LIKELY(co == tls->ci_code && tls->ci_frees == tp_codeinfo_frees))
        return tls->ci_last;
    uintptr_t a = (uintptr_t)co;
    size_t slot = (size_t)((a >> 4) ^ (a >> 10)) & (TP_CI_CACHE - 1);
    tp_codeinfo *ci;
    if (co == tls->ci_cache[slot].code && tls->ci_frees == tp_codeinfo_frees) {
        ci = tls->ci_cache[slot].ci;
    } else {
        ci = tp_codeinfo_get(co, tp_frame_globals(key));
        if (!ci)
            return NULL;
        if (tls->ci_frees != tp_codeinfo_frees) {
            /* Some code info was freed: any entry may name a dead one. */
            memset(tls->ci_cache, 0, sizeof(tls->ci_cache));
            tls->ci_frees = tp_codeinfo_frees;
        }
        tls->ci_cache[slot].code = co;
        tls->ci_cache[slot].ci = ci;
    }
    tls->ci_code = co;
    tls->ci_last = ci;
    return ci;
}

/** Bind session s to the thread of tls (by_thread: the whole thread is in
 *  scope). Writes the THREAD record naming it. Returns 0 or -1 with an
 *  exception set. */
int tp_scope_bind(tp_session *s, tp_tls *tls, bool by_thread);

/** Unbind every binding of s (stop or limit): they are marked dead; with
 *  unlink, they are also removed from their threads' lists. */
void tp_scope_unbind_all(tp_session *s, bool unlink);

/** Add the session's serial to the running context's value (start()).
 *  Returns 0 or -1 with an exception set. */
int tp_scope_enter(tp_session *s);
/** Take the session's serial out of the running context's value (stop()).
 *  Never fails. */
void tp_scope_leave(tp_session *s);

#endif
