/* Version-specific access to the running frame. Only frame.c (and
 * hooks_eval.c, whose hook is handed interpreter frames) include CPython's
 * internal headers; everything else goes through these calls.
 *
 * Frame identity ("key"): on 3.11+ the address of the _PyInterpreterFrame,
 * stable for the life of a call and, for a generator, embedded in the
 * generator object so that it names the same call across suspensions; on
 * 3.10 the PyFrameObject, which plays the same role. Both 3.10/3.11 hooks
 * (the profile function and the frame-evaluation hook) name a call the
 * same way, so a thread may record with either. */
#ifndef TP_FRAME_H
#define TP_FRAME_H

#include "ext.h"

#include <frameobject.h>

#if TP_PY312
/** The innermost running frame's key (sys.monitoring callbacks run in the
 *  frame the event is about). */
static inline void *tp_frame_current(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030D0000
    return ts->current_frame;
#else
    return ts->cframe->current_frame;
#endif
}
#endif

/** The key of a frame object (3.11+: its interpreter frame; 3.10: itself). */
void *tp_frame_key(PyFrameObject *f);

/** Borrowed globals of the frame named by key, or NULL. */
PyObject *tp_frame_globals(void *key);

/** The frame's "fast locals" array (arguments first), borrowed. */
PyObject **tp_frame_locals(void *key);

#if !TP_PY312
/** 3.10/3.11: borrowed code of a frame object. */
PyCodeObject *tp_frame_code(PyFrameObject *f);
/** 3.10/3.11: whether a PyTrace_CALL is the first start of this frame (not
 *  a generator resuming). */
bool tp_frame_first_start(PyFrameObject *f);
/** 3.10/3.11: whether a PyTrace_RETURN is a generator suspending (yield or
 *  await), not the end of the call. */
bool tp_frame_suspending(PyFrameObject *f);
#endif

/** The generator, coroutine or async generator owning the frame named by
 *  key (borrowed), or NULL when it is not a generator's frame. */
PyObject *tp_frame_generator(void *key);

/** Whether a generator (from tp_frame_generator) has finished. */
bool tp_frame_generator_finished(PyObject *gen);

/** Whether the argument slot i of code co holds a cell wrapping the value
 *  (a parameter captured by an inner function). */
bool tp_frame_arg_is_cell(PyCodeObject *co, int i);

/** 3.10: the index in the locals array of the cell holding argument i, or
 *  -1. Other versions: -1. */
int tp_frame_arg_cell_slot(PyCodeObject *co, int i);

#endif
