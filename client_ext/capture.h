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

#include "codeinfo.h"
#include "ext.h"

/** Smallest accepted max_repr: room for one character and "...". */
#define TP_MIN_REPR 4

/** Append the bounded repr of o to out. */
int tp_capture_repr(tp_buf *out, PyObject *o, uint32_t max_repr);

/** Append "a=1, b='x', *args=(2,), k=3, **kwargs={'z': 1}" for the arguments
 *  in locals (the frame's fast locals at its start), each value bounded. */
int tp_capture_args(tp_buf *out, const tp_codeinfo *ci, PyObject *const *locals, uint32_t max_repr);

/* Rendering in place. When every value to render is of a type rendered in
 * C without running Python code (None, bool, int, float, str: see
 * tp_capture_pure()), nothing can release the GIL, so the text may go
 * straight into its final place (the event log) instead of a scratch buffer
 * that is then copied: the caller reserves the *_room() bytes there first,
 * and the *_into() functions write at most that and return the length. */

/** The most room one text rendered in place may reserve in the log: past
 *  it (a large max_repr), the unused part of each reservation would waste
 *  too much of a text chunk (TP_EVLOG_CHUNK), and the scratch path is
 *  taken. */
#define TP_CAPTURE_IN_PLACE_MAX (4096u)

/** Whether tp_capture_repr() of o runs no Python code. */
static inline bool tp_capture_pure(PyObject *o)
{
    return o == Py_None || o == Py_True || o == Py_False || PyLong_CheckExact(o) ||
           PyUnicode_CheckExact(o) || PyFloat_CheckExact(o);
}

/** The value of parameter p in a frame's fast locals (a cell's contents
 *  where the parameter is a cell), or NULL when unbound. */
static inline PyObject *tp_capture_param(const tp_param *p, PyObject *const *locals)
{
    PyObject *v = locals[p->slot];
    if (!v && p->cell_slot >= 0) {
        PyObject *cell = locals[p->cell_slot];
        v = cell && PyCell_Check(cell) ? PyCell_GET(cell) : NULL;
    } else if (v && p->cell && PyCell_Check(v)) {
        v = PyCell_GET(v);
    }
    return v;
}

/** Whether tp_capture_args() of these locals runs no Python code. */
static inline bool tp_capture_args_pure(const tp_codeinfo *ci, PyObject *const *locals)
{
    for (uint32_t i = 0; i < ci->nparams; i++) {
        PyObject *v = tp_capture_param(&ci->params[i], locals);
        if (v && !tp_capture_pure(v))
            return false;
    }
    return true;
}

/** The most bytes tp_capture_repr_into() writes (a NUL included). */
static inline size_t tp_capture_repr_room(uint32_t max_repr)
{
    return 4 * (size_t)(max_repr < TP_MIN_REPR ? TP_MIN_REPR : max_repr) + 8;
}

/** The most bytes tp_capture_args_into() writes (a NUL included). */
static inline size_t tp_capture_args_room(const tp_codeinfo *ci, uint32_t max_repr)
{
    return ci->names_room + ci->nparams * tp_capture_repr_room(max_repr);
}

/** tp_capture_repr() of a pure o into dst; returns its length. */
size_t tp_capture_repr_into(char *dst, PyObject *o, uint32_t max_repr);
/** tp_capture_args() of pure locals into dst; returns its length. */
size_t tp_capture_args_into(char *dst, const tp_codeinfo *ci, PyObject *const *locals,
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
