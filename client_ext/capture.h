/* Capture: bounded repr of values, call arguments by parameter name, and
 * exception type and message.
 *
 * None, bool, int, float, str, bytes, tuple, list, dict, set and frozenset
 * (exact types) are rendered here in C, exactly as repr() would, and the
 * rendering stops as soon as the limit is passed, so a 10M-element list costs
 * what a short one does. Other objects go through their __repr__; a failing
 * one gives "<unprintable TypeName>" (the exception is cleared, nothing is
 * printed), a container met again inside itself gives "<circular reference>".
 * Text longer than max_repr characters is cut to max_repr - 3 characters plus
 * "...".
 *
 * These functions may run Python code (__repr__, __str__): the caller must
 * have suspended its own hooks for the thread, and must have no exception
 * set (the hooks run with the program's exception put aside by the
 * interpreter). They never leave an exception set. They return 0, or -ENOMEM
 * when the output buffer could not grow. */
#ifndef TP_CAPTURE_H
#define TP_CAPTURE_H

#include "ext.h"

struct tp_codeinfo;

/** Smallest accepted max_repr: room for one character and "...". */
#define TP_MIN_REPR 4

/** Append the bounded repr of o to out. */
int tp_capture_repr(tp_buf *out, PyObject *o, uint32_t max_repr);

/** Append "a=1, b='x', *args=(2,), k=3, **kwargs={'z': 1}" for the arguments
 *  in locals (the frame's fast locals at its start), each value bounded. */
int tp_capture_args(tp_buf *out, const struct tp_codeinfo *ci, PyObject *const *locals,
                    uint32_t max_repr);

/** Append the exception's type name to type_out and its bounded str() to
 *  msg_out. */
int tp_capture_exc(tp_buf *type_out, tp_buf *msg_out, PyObject *exc, uint32_t max_repr);

/** The types whose __repr__ raised since the last call, each once, as a list
 *  of (type name, exception type name); the record is cleared. The
 *  extension never prints: the Python layer turns these into tracepatch
 *  1.0.0's "[tracepatch] repr failed: RuntimeError" notes. With the GIL. */
PyObject *tp_capture_repr_failures(PyObject *mod, PyObject *unused);

/** Whether exc ends an iteration (StopIteration, StopAsyncIteration): the
 *  protocol, not an error, so never reported as caught. */
bool tp_capture_exc_is_iteration_end(PyObject *exc);

#endif
