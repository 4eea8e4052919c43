/* threads=True: following threads started inside the scope.
 *
 * While a session with threads=True records, threading's profile hook
 * (threading.setprofile) is a builtin function of ours, so that each thread
 * started through threading calls it before running its target. Meanwhile
 * the recording hooks notice calls of threading.Thread.start in scope and
 * note the Thread object with the sessions that asked to follow it. In the
 * new thread, the bootstrap finds its Thread object among those, binds the
 * thread to the sessions (the whole thread is then in scope), installs the
 * recording hook for the thread and records the call it was invoked for. A
 * thread started elsewhere in the process finds nothing and just removes the
 * bootstrap. */
#include "hooks.h"
#include "record.h"

#include <frameobject.h>

static PyObject *threading(void)
{
    return PyImport_ImportModule("threading");
}

/* threading.getprofile(), or NULL with an exception set. */
static PyObject *get_hook(PyObject *th)
{
    return PyObject_CallMethod(th, "getprofile", NULL);
}

int tp_threads_on(void)
{
    if (tp_module_g.thread_hook_on)
        return 0;
    PyObject *th = threading();
    if (!th)
        return -1;
    int rc = -1;
    PyObject *prev = get_hook(th);
    if (!prev)
        goto out;
    PyObject *r = PyObject_CallMethod(th, "setprofile", "O", tp_module_g.bootstrap);
    if (!r) {
        Py_DECREF(prev);
        goto out;
    }
    Py_DECREF(r);
    if (prev == Py_None)
        Py_CLEAR(prev);
    Py_XSETREF(tp_module_g.prev_thread_hook, prev);
    tp_module_g.thread_hook_on = true;
    rc = 0;
out:
    Py_DECREF(th);
    return rc;
}

void tp_threads_off(void)
{
    if (!tp_module_g.thread_hook_on)
        return;
    tp_module_g.thread_hook_on = false;
    PyDict_Clear(tp_module_g.pending);
    PyObject *th = threading();
    PyObject *cur = th ? get_hook(th) : NULL;
    if (cur == tp_module_g.bootstrap) {
        PyObject *prev = tp_module_g.prev_thread_hook ? tp_module_g.prev_thread_hook : Py_None;
        PyObject *r = PyObject_CallMethod(th, "setprofile", "O", prev);
        Py_XDECREF(r);
    }
    Py_XDECREF(cur);
    Py_XDECREF(th);
    Py_CLEAR(tp_module_g.prev_thread_hook);
    PyErr_Clear();
}

void tp_threads_start(tp_tls *tls, PyObject *thread)
{
    PyObject *serials = PyList_New(0);
    if (!serials)
        goto fail;
    for (size_t i = 0; i < tls->nactive; i++) {
        tp_session *s = tls->active[i]->s;
        if (!s->threads || !s->recording || tls->active[i]->dead)
            continue;
        PyObject *v = PyLong_FromUnsignedLongLong(s->serial);
        if (!v || PyList_Append(serials, v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(v);
    }
    if (PyList_GET_SIZE(serials)) {
        PyObject *key = PyLong_FromVoidPtr(thread);
        PyObject *val = Py_BuildValue("(OO)", thread, serials);
        if (!key || !val || PyDict_SetItem(tp_module_g.pending, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            goto fail;
        }
        Py_DECREF(key);
        Py_DECREF(val);
    }
    Py_DECREF(serials);
    return;
fail:
    Py_XDECREF(serials);
    PyErr_Clear();
}

static tp_session *find_session(PyObject *serial)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(serial);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    for (size_t i = 0; i < tp_module_g.active.size; i++) {
        if (tp_module_g.active.items[i]->serial == v)
            return tp_module_g.active.items[i];
    }
    return NULL;
}

/* Bind the calling thread to the sessions that follow it. Returns how many. */
static int bind_followed(tp_tls *tls)
{
    PyObject *th = threading();
    PyObject *cur = th ? PyObject_CallMethod(th, "current_thread", NULL) : NULL;
    Py_XDECREF(th);
    PyObject *key = cur ? PyLong_FromVoidPtr(cur) : NULL;
    PyObject *entry = NULL;
    int n = 0;
    if (!key)
        goto out;
    entry = PyDict_GetItemWithError(tp_module_g.pending, key); /* borrowed */
    if (!entry || !PyTuple_Check(entry) || PyTuple_GET_ITEM(entry, 0) != cur)
        goto out;
    Py_INCREF(entry);
    PyDict_DelItem(tp_module_g.pending, key);
    PyObject *serials = PyTuple_GET_ITEM(entry, 1);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(serials); i++) {
        tp_session *s = find_session(PyList_GET_ITEM(serials, i));
        if (s && s->recording && s->threads && tp_scope_bind(s, tls, true) == 0)
            n++;
        PyErr_Clear();
    }
out:
    Py_XDECREF(entry);
    Py_XDECREF(key);
    Py_XDECREF(cur);
    PyErr_Clear();
    return n;
}

/* threading's profile hook in a new thread: bootstrap(frame, event, arg). */
static PyObject *bootstrap(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    /* Remove ourselves first; a hook threading had before ours takes over. */
    PyEval_SetProfile(NULL, NULL);
    PyErr_Clear();
    if (tp_module_g.prev_thread_hook) {
        PyObject *r = PyObject_CallMethod(PyImport_AddModule("sys"), "setprofile", "O",
                                          tp_module_g.prev_thread_hook);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    if (!tp_module_g.thread_hook_on)
        Py_RETURN_NONE;
    tp_tls *tls = tp_scope_tls_get(true);
    if (!tls) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    tls->busy++;
    int n = bind_followed(tls);
    tls->busy--;
    if (!n)
        Py_RETURN_NONE;
    tp_module_g.gen++;
    if (tp_hooks_attach_thread(tls) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (nargs >= 2 && PyFrame_Check(args[0]) && PyUnicode_Check(args[1]) &&
        PyUnicode_CompareWithASCIIString(args[1], "call") == 0)
        tp_hooks_bootstrap_call(tls, (PyFrameObject *)args[0]);
    PyErr_Clear();
    Py_RETURN_NONE;
}

static PyMethodDef bootstrap_def = {"_thread_bootstrap", (PyCFunction)(void (*)(void))bootstrap,
                                    METH_FASTCALL,
                                    "threads=True: binds a new thread to the sessions following "
                                    "it (internal)."};

int tp_threads_init(void)
{
    if (tp_module_g.bootstrap)
        return 0;
    tp_module_g.pending = PyDict_New();
    tp_module_g.bootstrap = PyCFunction_New(&bootstrap_def, NULL);
    if (!tp_module_g.pending || !tp_module_g.bootstrap)
        return -1;
    /* Thread.start is recognised by its code object (its qualified name is
     * not available on 3.10). */
    PyObject *th = threading();
    PyObject *cls = th ? PyObject_GetAttrString(th, "Thread") : NULL;
    PyObject *fn = cls ? PyObject_GetAttrString(cls, "start") : NULL;
    tp_module_g.thread_start_code = fn ? PyObject_GetAttrString(fn, "__code__") : NULL;
    tp_module_g.thread_repr = cls ? PyObject_GetAttrString(cls, "__repr__") : NULL;
    tp_module_g.thread_type = cls && tp_module_g.thread_repr ? Py_NewRef(cls) : NULL;
    Py_XDECREF(th);
    Py_XDECREF(cls);
    Py_XDECREF(fn);
    return tp_module_g.thread_start_code && tp_module_g.thread_type ? 0 : -1;
}
