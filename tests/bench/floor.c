/* _tpfloor: what bench_callgrind.py needs inside the measured process.
 *
 * measure(label, fn) calls fn() between callgrind client requests (zero the
 * counters, call, dump them under label), so a dump holds exactly the
 * instructions of that one call and nothing of the process around it.
 *
 * start()/stop() install the floor: the cheapest hook of its kind. 3.12+:
 * empty C sys.monitoring callbacks (objects with a vectorcall slot, as
 * tracepatch's are) for the events tracepatch asks for. 3.10/3.11: an empty
 * PyEval_SetProfile function (tracepatch records with the cheaper PEP 523
 * eval-frame hook there, whose floor floor523.c measures). Both count the
 * calls they see (PY_START; a profile "call" event, which a generator's
 * resume is too), so the benchmark can check that every tool saw the same
 * calls. An increment is all the callback does.
 *
 * Built by bench_callgrind.py for each interpreter; not part of the package. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <valgrind/callgrind.h>

static unsigned long long ncalls;

static PyObject *measure(PyObject *self, PyObject *args)
{
    const char *label;
    PyObject *fn;
    if (!PyArg_ParseTuple(args, "sO:measure", &label, &fn))
        return NULL;
    /* The process runs uninstrumented (--instr-atstart=no) but for these
     * calls, which keeps the interpreter's start-up out of the run time. */
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
    PyObject *r = PyObject_CallNoArgs(fn);
    CALLGRIND_DUMP_STATS_AT(label);
    CALLGRIND_STOP_INSTRUMENTATION;
    return r;
}

#if PY_VERSION_HEX >= 0x030C0000
typedef struct hookobj {
    PyObject ob_base;
    vectorcallfunc vectorcall;
} hookobj;

static PyObject *cb_count(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    ncalls++;
    Py_RETURN_NONE;
}

static PyObject *cb_empty(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw)
{
    Py_RETURN_NONE;
}

static PyMemberDef hook_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(hookobj, vectorcall), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot hook_slots[] = {
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, hook_members},
    {0, NULL},
};

static PyType_Spec hook_spec = {
    .name = "_tpfloor.Hook",
    .basicsize = sizeof(hookobj),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = hook_slots,
};

/* callbacks() -> (start_callback, other_callback): the Python side
 * registers them with sys.monitoring (the same events tracepatch uses). */
static PyObject *callbacks(PyObject *self, PyObject *unused)
{
    PyTypeObject *tp = (PyTypeObject *)PyType_FromSpec(&hook_spec);
    if (!tp)
        return NULL;
    hookobj *a = (hookobj *)tp->tp_alloc(tp, 0);
    hookobj *b = (hookobj *)tp->tp_alloc(tp, 0);
    Py_DECREF(tp);
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    a->vectorcall = cb_count;
    b->vectorcall = cb_empty;
    return Py_BuildValue("(NN)", a, b);
}
#else
static int profile_fn(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    /* A generator's resume is a call event too: this counts those as well. */
    if (what == PyTrace_CALL)
        ncalls++;
    return 0;
}
#endif

static PyObject *start(PyObject *self, PyObject *unused)
{
    ncalls = 0;
#if PY_VERSION_HEX < 0x030C0000
    PyEval_SetProfile(profile_fn, NULL);
#endif
    Py_RETURN_NONE;
}

static PyObject *stop(PyObject *self, PyObject *unused)
{
#if PY_VERSION_HEX < 0x030C0000
    PyEval_SetProfile(NULL, NULL);
#endif
    return PyLong_FromUnsignedLongLong(ncalls);
}

static PyMethodDef methods[] = {
    {"measure", measure, METH_VARARGS, "measure(label, fn): fn() between callgrind dumps."},
    {"start", start, METH_NOARGS, "Install the floor hook (3.10/3.11) and zero the count."},
    {"stop", stop, METH_NOARGS, "Remove the floor hook; the number of calls it saw."},
#if PY_VERSION_HEX >= 0x030C0000
    {"callbacks", callbacks, METH_NOARGS, "(counting, empty) sys.monitoring callbacks."},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_tpfloor", NULL, -1, methods};

PyMODINIT_FUNC PyInit__tpfloor(void);
PyMODINIT_FUNC PyInit__tpfloor(void)
{
    return PyModule_Create(&moddef);
}
