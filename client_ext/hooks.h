/* The interpreter hooks: PyEval_SetProfile on 3.10/3.11 (hooks_legacy.c),
 * sys.monitoring with C callbacks on 3.12+ (hooks_monitor.c). Both feed
 * record.h. Every function here is called with the GIL held and never leaves
 * an exception set unless it says so. */
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
