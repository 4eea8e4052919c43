/* Frame access through CPython internals (see frame.h). This file and
 * hooks_eval.c (whose hook is handed interpreter frames) are the only ones
 * built with Py_BUILD_CORE: the interpreter frame layout and the generator
 * state are not public API on any supported version, and reading arguments
 * through public calls (PyFrame_GetLocals) would build a dict per call. */
#include "frame.h"

#if TP_PY311
#define Py_BUILD_CORE 1
#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#endif
#if !TP_PY312
#include <opcode.h>
#endif

void *tp_frame_key(PyFrameObject *f)
{
#if TP_PY311
    return f->f_frame;
#else
    return f;
#endif
}

#if TP_PY312
PyObject *tp_frame_generator(void *key)
{
    _PyInterpreterFrame *f = key;
    if (f->owner != FRAME_OWNED_BY_GENERATOR)
        return NULL;
    return (PyObject *)_PyFrame_GetGenerator(f);
}

bool tp_frame_generator_finished(PyObject *gen)
{
    return FRAME_STATE_FINISHED(((PyGenObject *)gen)->gi_frame_state);
}

PyObject *tp_frame_globals(void *key)
{
    return ((_PyInterpreterFrame *)key)->f_globals;
}

PyObject **tp_frame_locals(void *key)
{
    return ((_PyInterpreterFrame *)key)->localsplus;
}
#else
PyObject *tp_frame_generator(void *key)
{
#if TP_PY311
    _PyInterpreterFrame *f = key;
    if (f->owner != FRAME_OWNED_BY_GENERATOR)
        return NULL;
    return (PyObject *)_PyFrame_GetGenerator(f);
#else
    return ((PyFrameObject *)key)->f_gen;
#endif
}

bool tp_frame_generator_finished(PyObject *gen)
{
    (void)gen;
    return false;
}
#endif

#if TP_PY312
#elif TP_PY311
PyObject *tp_frame_globals(void *key)
{
    return ((_PyInterpreterFrame *)key)->f_globals;
}

PyObject **tp_frame_locals(void *key)
{
    return ((_PyInterpreterFrame *)key)->localsplus;
}

PyCodeObject *tp_frame_code(PyFrameObject *f)
{
    return f->f_frame->f_code;
}

bool tp_frame_first_start(PyFrameObject *f)
{
    /* The profile CALL event fires at RESUME; its argument is 0 only for the
     * RESUME that starts the function (1-3 follow a yield or await). */
    _Py_CODEUNIT *ip = f->f_frame->prev_instr;
    _Py_CODEUNIT *first = _PyCode_CODE(f->f_frame->f_code);
    if (ip < first)
        return true;
    /* RESUME_QUICK is the specialised RESUME, once the code has warmed up. */
    int op = _Py_OPCODE(*ip);
    return (op == RESUME || op == RESUME_QUICK) && _Py_OPARG(*ip) == 0;
}

bool tp_frame_suspending(PyFrameObject *f)
{
    _PyInterpreterFrame *fr = f->f_frame;
    if (fr->owner != FRAME_OWNED_BY_GENERATOR)
        return false;
    return _PyFrame_GetGenerator(fr)->gi_frame_state == FRAME_SUSPENDED;
}
#else /* 3.10 */
PyObject *tp_frame_globals(void *key)
{
    return ((PyFrameObject *)key)->f_globals;
}

PyObject **tp_frame_locals(void *key)
{
    return ((PyFrameObject *)key)->f_localsplus;
}

PyCodeObject *tp_frame_code(PyFrameObject *f)
{
    return f->f_code;
}

bool tp_frame_first_start(PyFrameObject *f)
{
    return f->f_lasti < 0;
}

bool tp_frame_suspending(PyFrameObject *f)
{
    return f->f_state == FRAME_SUSPENDED;
}
#endif

bool tp_frame_arg_is_cell(PyCodeObject *co, int i)
{
#if TP_PY311
    if (i < 0 || i >= PyBytes_GET_SIZE(co->co_localspluskinds))
        return false;
    return (PyBytes_AS_STRING(co->co_localspluskinds)[i] & CO_FAST_CELL) != 0;
#else
    (void)co;
    (void)i;
    return false;
#endif
}

int tp_frame_arg_cell_slot(PyCodeObject *co, int i)
{
#if !TP_PY311
    /* 3.10 moves a captured argument into a cell stored after the locals
     * when the frame is created, leaving its own slot NULL. */
    if (!co->co_cell2arg)
        return -1;
    Py_ssize_t ncells = PyTuple_GET_SIZE(co->co_cellvars);
    for (Py_ssize_t c = 0; c < ncells; c++) {
        if (co->co_cell2arg[c] == i)
            return co->co_nlocals + (int)c;
    }
    return -1;
#else
    (void)co;
    (void)i;
    return -1;
#endif
}
