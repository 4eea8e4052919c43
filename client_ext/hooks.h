/* The interpreter hooks: on 3.10/3.11 the PEP 523 eval-frame hook
 * (hooks_eval.c) where it is safe, with PyEval_SetProfile (hooks_legacy.c)
 * as the fallback; sys.monitoring with C callbacks on 3.12+
 * (hooks_monitor.c). All feed record.h. Every function here is called with
 * the GIL held and never leaves an exception set unless it says so. */
#ifndef TP_HOOKS_H
#define TP_HOOKS_H

#include "ext.h"

/** Module exec: build the callbacks. Returns 0 or -1 with an exception set. */
int tp_hooks_init(PyObject *module);

/** A session started recording in the thread of tls (the calling thread):
 *  make sure events flow. Returns 0 or -1 with an exception set. */
int tp_hooks_start(tp_tls *tls);

/** Sessions stopped or were limited: turn the hooks off when no session
 *  records any more. in_callback: called from inside a hook, where only
 *  cheap changes are made (the rest happens at the next stop()). */
void tp_hooks_update(bool in_callback);

/** The thread of tls (the calling thread) has nothing left to record: on
 *  3.10/3.11, give its profile function back. */
void tp_hooks_thread_idle(tp_tls *tls);

/** A thread followed with threads=True starts recording: install the hook in
 *  the calling thread. Returns 0 or -1 with an exception set. */
int tp_hooks_attach_thread(tp_tls *tls);

/** Feed the first event of a followed thread (its bootstrap caught it). */
void tp_hooks_bootstrap_call(tp_tls *tls, PyFrameObject *frame);

/** In the child of a fork: stop every hook without touching other threads. */
void tp_hooks_after_fork(void);

/** The hook 3.10/3.11 record with ("eval_frame" or "profile"; a thread
 *  falls back to "profile" while another tool holds the eval-frame slot),
 *  or "sys.monitoring" (3.12+). A static string. */
const char *tp_hooks_name(void);

/** s is about to stop: note in its errors anything that kept calls from
 *  it (3.10/3.11: another tool replaced the eval-frame hook). */
void tp_hooks_check(struct tp_session *s);

#if !TP_PY312
/* ---- hooks_eval.c: the PEP 523 eval-frame hook (3.10/3.11) --------------
 * hooks_legacy.c calls these; the profile function is the fallback. */

/** hooks_legacy.c: the thread of tls (any thread, the GIL held) records
 *  with the profile function. Returns 0 or -1 with an exception set. */
int tp_hooks_profile_attach(tp_tls *tls);
/** Whether the eval-frame hook is chosen: unless TRACEPATCH_HOOK=profile,
 *  on 3.10 and 3.11.4+. */
bool tp_hooks_eval_wanted(void);
/** The thread of tls records through the eval-frame hook, installing it
 *  when the slot holds CPython's evaluator. Returns 0, or -1 (no exception
 *  set) when another tool holds the slot. */
int tp_hooks_eval_attach(tp_tls *tls);
/** The thread of tls records nothing through the hook any more. */
void tp_hooks_eval_idle(tp_tls *tls);
/** Remove the hook when no session records. */
void tp_hooks_eval_update(void);
/** The tp_hooks_check() of the eval-frame hook. */
void tp_hooks_eval_check(struct tp_session *s);
/** tp_hooks_bootstrap_call() for a thread recording through the hook. */
void tp_hooks_eval_bootstrap_call(tp_tls *tls, PyFrameObject *frame);
/** tp_hooks_after_fork() of the hook. */
void tp_hooks_eval_after_fork(void);
#endif

/** _tracepatch._foreign_eval_hook(on), for tests: put another tool's
 *  (pass-through) eval-frame hook in the slot whatever holds it, or, when
 *  it is there, take it out. Returns None, or NULL with RuntimeError (3.12+,
 *  or the slot does not hold that hook). */
PyObject *tp_hooks_foreign(PyObject *self, PyObject *on);
/** _tracepatch._hook_in_use(): "eval_frame", "profile", "sys.monitoring"
 *  or None, the hook the calling thread records with. */
PyObject *tp_hooks_in_use(PyObject *self, PyObject *unused);

/* ---- threads.c: threads=True -------------------------------------------- */

/** Module exec: build the bootstrap function. Returns 0 or -1 with an
 *  exception set. */
int tp_threads_init(void);
/** Install the threading profile hook that follows new threads (once for
 *  all threads=True sessions). Returns 0 or -1 with an exception set. */
int tp_threads_on(void);
/** Give threading its previous profile hook back and forget the threads
 *  waiting to be followed. Never fails. */
void tp_threads_off(void);

#endif
