/* _tpfloor523: the PEP 523 frame-evaluation hook's floor on 3.10/3.11, for
 * bench_floor523.py (floor.c's measure() does the callgrind requests).
 *
 * start(mode) installs, through _PyInterpreterState_SetEvalFrameFunc, one
 * of two hooks; stop() puts the previous one back and returns how many
 * frame evaluations the hook saw (a generator's every resume is one).
 *
 *   mode 1, "hook":   count, then _PyEval_EvalFrameDefault: the cost of
 *                     having any hook at all (on 3.11 it includes the calls
 *                     CPython no longer inlines, see bench_floor523.py).
 *   mode 2, "record": what structure-only recording needs at the least: a
 *                     thread-local test (is this thread recorded?), the code
 *                     object, whether the frame is a generator's, a clock
 *                     read and a 16-byte record before the call; a clock read,
 *                     a 16-byte record and, for a generator, its state
 *                     (suspended or finished) after it.
 *
 * Built by bench_floor523.py for each interpreter; not part of the package. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#if PY_VERSION_HEX >= 0x030B0000
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#else
#include <frameobject.h>
#endif
#include <x86intrin.h>

#if PY_VERSION_HEX >= 0x030C0000
#error "3.12+ has sys.monitoring: floor.c measures it"
#endif

#if PY_VERSION_HEX >= 0x030B0000
typedef struct _PyInterpreterFrame evframe;
#else
typedef PyFrameObject evframe;
#endif

/* One record as the event log writes it: kind and function id, a time. */
typedef struct rec {
    uint32_t kind;
    uint32_t id;
    uint64_t t;
} rec;

#define NREC 65536 /* a block of the log; writing wraps around */

static unsigned long long ncalls;
static rec recs[NREC];
static size_t nrec;
static uint64_t t0;
static _Thread_local int recorded; /* the thread's "is it recorded" flag */
static _PyFrameEvalFunction prev_hook;
static unsigned long long nyield, nfinish;

static PyObject *hook_pass(PyThreadState *ts, evframe *f, int throwflag)
{
    ncalls++;
    return _PyEval_EvalFrameDefault(ts, f, throwflag);
}

static inline rec *rec_room(void)
{
    if (__builtin_expect(nrec >= NREC, 0))
        nrec = 0;
    return &recs[nrec++];
}

static PyObject *hook_record(PyThreadState *ts, evframe *f, int throwflag)
{
    if (__builtin_expect(!recorded, 0))
        return _PyEval_EvalFrameDefault(ts, f, throwflag);
    ncalls++;
#if PY_VERSION_HEX >= 0x030B0000
    PyCodeObject *co = f->f_code;
    PyGenObject *gen = f->owner == FRAME_OWNED_BY_GENERATOR ? _PyFrame_GetGenerator(f) : NULL;
#else
    PyCodeObject *co = f->f_code;
    PyObject *gen = f->f_gen;
#endif
    rec *r = rec_room();
    r->kind = 1;
    r->id = (uint32_t)((uintptr_t)co >> 4);
    r->t = __rdtsc() - t0;
    PyObject *res = _PyEval_EvalFrameDefault(ts, f, throwflag);
    r = rec_room();
    r->kind = 2;
    r->id = 0;
    if (__builtin_expect(gen != NULL, 0)) {
        /* f stays valid for a generator: the generator holds its frame. */
#if PY_VERSION_HEX >= 0x030B0000
        if (res && gen->gi_frame_state == FRAME_SUSPENDED) {
#else
        if (res && f->f_state == FRAME_SUSPENDED) {
#endif
            r->kind = 3;
            nyield++;
        } else {
            nfinish++;
        }
    }
    r->t = __rdtsc() - t0;
    return res;
}

static PyObject *start(PyObject *self, PyObject *arg)
{
    long mode = PyLong_AsLong(arg);
    if (mode == -1 && PyErr_Occurred())
        return NULL;
    PyInterpreterState *interp = PyInterpreterState_Get();
    prev_hook = _PyInterpreterState_GetEvalFrameFunc(interp);
    if (prev_hook != _PyEval_EvalFrameDefault) {
        PyErr_SetString(PyExc_RuntimeError, "the eval-frame slot is taken");
        return NULL;
    }
    ncalls = nrec = nyield = nfinish = 0;
    recorded = 1;
    t0 = __rdtsc();
    _PyInterpreterState_SetEvalFrameFunc(interp, mode == 1 ? hook_pass : hook_record);
    Py_RETURN_NONE;
}

static PyObject *stop(PyObject *self, PyObject *unused)
{
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), prev_hook);
    recorded = 0;
    return Py_BuildValue("(KKK)", ncalls, nyield, nfinish);
}

/* taken(): whether the slot holds a hook other than CPython's own. */
static PyObject *taken(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(_PyInterpreterState_GetEvalFrameFunc(PyInterpreterState_Get()) !=
                           _PyEval_EvalFrameDefault);
}

static PyMethodDef methods[] = {
    {"start", start, METH_O, "start(mode): install the hook (1 pass-through, 2 record)."},
    {"stop", stop, METH_NOARGS, "Remove it: (evaluations, yields, generator ends) it saw."},
    {"taken", taken, METH_NOARGS, "Whether another eval-frame hook is installed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_tpfloor523", NULL, -1, methods};

PyMODINIT_FUNC PyInit__tpfloor523(void);
PyMODINIT_FUNC PyInit__tpfloor523(void)
{
    return PyModule_Create(&moddef);
}
