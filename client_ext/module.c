/* The _tracepatch module: multi-phase init, module state (the heap types),
 * module functions, and the process-wide hook state. */
#include "ext.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "codeinfo.h"
#include "hooks.h"
#include "record.h"
#include "render.h"
#include "upload.h"

tp_global tp_module_g = {.tool_id = -1};

typedef struct modstate {
    PyTypeObject *session_type;
    PyTypeObject *tls_type;
} modstate;

static modstate *get_state(PyObject *m)
{
    return (modstate *)PyModule_GetState(m);
}

/* ---- module functions ------------------------------------------------------- */

static PyObject *safe_repr(PyObject *mod, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"obj", "max_repr", NULL};
    PyObject *obj;
    int max_repr = 120;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|i:safe_repr", kw, &obj, &max_repr))
        return NULL;
    if (max_repr < TP_MIN_REPR)
        return PyErr_Format(PyExc_ValueError, "max_repr must be at least %d", TP_MIN_REPR);
    tp_buf b = TP_BUF_INIT;
    tp_tls *tls = tp_scope_tls_get(false);
    if (tls)
        tls->busy++;
    int r = tp_capture_repr(&b, obj, (uint32_t)max_repr);
    if (tls)
        tls->busy--;
    PyObject *res =
        r ? PyErr_NoMemory() : PyUnicode_DecodeUTF8(b.data ? b.data : "", (Py_ssize_t)b.len, NULL);
    tp_buf_free(&b);
    return res;
}

/* os.register_at_fork(after_in_child=...): in the child, the sessions that
 * were recording stop recording (their threads did not follow the fork);
 * what they recorded before stays readable. */
/* pthread_atfork child handler: runs in the child before any Python code
 * (the at-fork handlers of other modules included), when only plain C state
 * may be touched. It freezes every session; after_fork_child() then stops
 * them properly. */
static void atfork_child(void)
{
    atomic_store(&tp_module_g.fork_frozen, true);
    tp_module_g.gen++;
}

static PyObject *after_fork_child(PyObject *mod, PyObject *unused)
{
    bool any = false;
    atomic_store(&tp_module_g.fork_frozen, false);
    tp_module_g.gen++;
    for (size_t i = 0; i < tp_module_g.active.size; i++) {
        tp_session *s = tp_module_g.active.items[i];
        if (!s->recording)
            continue;
        any = true;
        tp_session_recording_off(s);
        tp_scope_unbind_all(s, false);
        tp_session_error(s, "the process forked; recording stopped in the child (pid %d)",
                         (int)getpid());
    }
    if (any)
        tp_hooks_after_fork();
    Py_RETURN_NONE;
}

PyObject *tp_module_after_fork_child(void)
{
    return after_fork_child(NULL, NULL);
}

/* escape(text): the one escaper of client text for terminals (render.h). */
static PyObject *escape(PyObject *mod, PyObject *arg)
{
    if (!PyUnicode_Check(arg))
        return PyErr_Format(PyExc_TypeError, "escape() takes a str, not %.100s",
                            Py_TYPE(arg)->tp_name);
    /* Lone surrogates (JSON allows them) become invalid UTF-8, shown \xNN. */
    PyObject *bytes = PyUnicode_AsEncodedString(arg, "utf-8", "surrogatepass");
    if (!bytes)
        return NULL;
    tp_buf b = TP_BUF_INIT;
    tp_render_escape(&b, PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes));
    Py_DECREF(bytes);
    PyObject *r = tp_buf_error(&b)
                      ? PyErr_NoMemory()
                      : PyUnicode_DecodeUTF8(b.data ? b.data : "", (Py_ssize_t)b.len, "strict");
    tp_buf_free(&b);
    return r;
}

static PyObject *fail_allocations(PyObject *mod, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    tp_evlog_fail_after = n < 0 ? -1 : n;
    Py_RETURN_NONE;
}

/* _sources_stamp(env, keys, paths): the working directory, the values of
 * env's keys (os.environ's dict of bytes) and what stat() says of each path,
 * as bytes that compare equal only while none of them changed (a file
 * created, removed, replaced, written or chmod-ed). trace() checks its
 * cached settings with it in one call (a Python lookup of each variable and
 * an os.stat() of each config file candidate cost more than recording a
 * small request). None when a path is not a str stat() can take, or the
 * working directory is gone. */
static PyObject *sources_stamp(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_Check(args[0]) || !PyTuple_Check(args[1]) || !PyTuple_Check(args[2]))
        return PyErr_Format(PyExc_TypeError, "_sources_stamp(env, keys, paths) takes a dict "
                                             "and two tuples");
    PyObject *env = args[0], *keys = args[1], *paths = args[2];
    if (PyTuple_GET_SIZE(keys) > 256 || PyTuple_GET_SIZE(paths) > 4096)
        return PyErr_Format(PyExc_ValueError, "_sources_stamp(): too many keys or paths");
    tp_buf b = TP_BUF_INIT;
    PyObject *out = NULL;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        goto none;
    tp_buf_append(&b, cwd, strlen(cwd) + 1); /* with its NUL: the end of the directory */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(keys); i++) {
        PyObject *value = PyDict_GetItemWithError(env, PyTuple_GET_ITEM(keys, i)); /* borrowed */
        if (!value && PyErr_Occurred())
            goto done;
        int64_t len = value && PyBytes_Check(value) ? (int64_t)PyBytes_GET_SIZE(value) : -1;
        tp_buf_append(&b, &len, sizeof len);
        if (len > 0)
            tp_buf_append(&b, PyBytes_AS_STRING(value), (size_t)len);
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(paths); i++) {
        PyObject *item = PyTuple_GET_ITEM(paths, i); /* borrowed */
        Py_ssize_t len;
        const char *path = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &len) : NULL;
        if (!path || (size_t)len != strlen(path)) {
            /* A lone surrogate, a NUL: the caller does not cache. */
            if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_UnicodeError))
                goto done;
            PyErr_Clear();
            goto none;
        }
        struct stat st;
        int64_t f[8] = {0};
        if (stat(path, &st) != 0) {
            f[0] = -(int64_t)errno; /* absent (or unreadable) is a state too */
        } else {
            f[0] = (int64_t)st.st_mode;
            f[1] = (int64_t)st.st_dev;
            f[2] = (int64_t)st.st_ino;
            f[3] = (int64_t)st.st_size;
            f[4] = (int64_t)st.st_mtim.tv_sec;
            f[5] = (int64_t)st.st_mtim.tv_nsec;
            f[6] = (int64_t)st.st_ctim.tv_sec;
            f[7] = (int64_t)st.st_ctim.tv_nsec;
        }
        tp_buf_append(&b, f, sizeof f);
    }
    if (tp_buf_error(&b)) {
        PyErr_NoMemory();
        goto done;
    }
    out = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    goto done;
none:
    out = Py_NewRef(Py_None);
done:
    tp_buf_free(&b);
    return out;
}

static PyMethodDef module_methods[] = {
    {"safe_repr", (PyCFunction)(void (*)(void))safe_repr, METH_VARARGS | METH_KEYWORDS,
     "safe_repr(obj, max_repr=120)\n--\n\n"
     "The extension's bounded repr: never raises, at most max_repr characters."},
    {"_fail_allocations", fail_allocations, METH_O,
     "_fail_allocations(n)\n--\n\nTest hook: the event log's next n allocations succeed, "
     "the following fail (-1: off)."},
    {"_after_fork_child", after_fork_child, METH_NOARGS,
     "_after_fork_child()\n--\n\nCalled in a forked child: stop recording (internal)."},
    {"_repr_failures", tp_capture_repr_failures, METH_NOARGS,
     "_repr_failures()\n--\n\nTypes whose __repr__ raised since the last call: "
     "[(type name, exception name)] (internal)."},
    {"_sources_stamp", (PyCFunction)(void (*)(void))sources_stamp, METH_FASTCALL,
     "_sources_stamp(env, keys, paths)\n--\n\nThe working directory, env[key] of each key "
     "and stat() of each path as bytes,\nequal only while none changed; None when that "
     "cannot be told (internal)."},
    {"escape", escape, METH_O,
     "escape(text)\n--\n\n"
     "text escaped for a terminal as tph and the text tree escape client text: control\n"
     "characters, line separators and bidi overrides become visible escapes."},
    {"default_socket", tp_upload_default_socket, METH_NOARGS, TP_UPLOAD_DEFAULT_SOCKET_DOC},
    {"_flush_uploads", tp_upload_flush, METH_VARARGS, TP_UPLOAD_FLUSH_DOC},
    {"_sender_info", tp_upload_sender_info, METH_NOARGS, TP_UPLOAD_SENDER_INFO_DOC},
    {"_foreign_eval_hook", tp_hooks_foreign, METH_O,
     "_foreign_eval_hook(on)\n--\n\nTest hook: put another tool's pass-through "
     "eval-frame hook in the slot (on) or take it out."},
    {"_hook_in_use", tp_hooks_in_use, METH_NOARGS,
     "_hook_in_use()\n--\n\nThe hook the calling thread records with: 'eval_frame', "
     "'profile', 'sys.monitoring' or None (internal)."},
    {NULL},
};

/* ---- process-wide setup (once) ------------------------------------------------- */

static int register_fork_handler(PyObject *m)
{
    PyObject *fn = PyObject_GetAttrString(m, "_after_fork_child");
    PyObject *os = PyImport_ImportModule("os");
    PyObject *reg = os ? PyObject_GetAttrString(os, "register_at_fork") : NULL;
    PyObject *kw = fn ? Py_BuildValue("{sO}", "after_in_child", fn) : NULL;
    PyObject *args = PyTuple_New(0);
    PyObject *r = reg && kw && args ? PyObject_Call(reg, args, kw) : NULL;
    Py_XDECREF(fn);
    Py_XDECREF(os);
    Py_XDECREF(reg);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int global_setup(PyObject *m, modstate *st)
{
    if (tp_module_g.ctxvar)
        return 0;
    tp_module_g.ctxvar = PyContextVar_New("tracepatch_scope", NULL);
    tp_module_g.tls_key = PyUnicode_InternFromString("tracepatch._tracepatch.thread_state");
    if (!tp_module_g.ctxvar || !tp_module_g.tls_key)
        return -1;
    tp_module_g.tls_type = (PyTypeObject *)Py_NewRef(st->tls_type);
    tp_module_g.session_type = (PyTypeObject *)Py_NewRef(st->session_type);
    const char *clk = getenv("TRACEPATCH_CLOCK");
    tp_clock_init(clk && strcmp(clk, "monotonic") == 0);
    if (tp_codeinfo_setup() < 0 || tp_hooks_init(m) < 0 || tp_threads_init() < 0)
        return -1;
    if (pthread_atfork(NULL, NULL, atfork_child) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "tracepatch: pthread_atfork failed");
        return -1;
    }
    return register_fork_handler(m);
}

static int add_int(PyObject *m, const char *name, long v)
{
    return PyModule_AddIntConstant(m, name, v);
}

static int module_exec(PyObject *m)
{
#if !TP_PY312
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        PyErr_SetString(PyExc_ImportError,
                        "tracepatch._tracepatch cannot be loaded in a subinterpreter");
        return -1;
    }
#endif
    modstate *st = get_state(m);
    st->session_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &tp_session_spec, NULL);
    if (!st->session_type || PyModule_AddType(m, st->session_type) < 0)
        return -1;
    st->tls_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &tp_scope_tls_spec, NULL);
    if (!st->tls_type)
        return -1;
    if (add_int(m, "NODE_EXC", TP_NODE_EXC) < 0 || add_int(m, "NODE_CAUGHT", TP_NODE_CAUGHT) < 0 ||
        add_int(m, "NODE_OPEN", TP_NODE_OPEN) < 0 || add_int(m, "NODE_GEN", TP_NODE_GEN) < 0 ||
        add_int(m, "NODE_SPAWNED", TP_NODE_SPAWNED) < 0 ||
        add_int(m, "MIN_REPR", TP_MIN_REPR) < 0 || tp_session_add_limits(m) < 0 ||
        PyModule_AddStringConstant(m, "HOOK", tp_hooks_name()) < 0)
        return -1;
    return global_setup(m, st);
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    modstate *st = get_state(m);
    Py_VISIT(st->session_type);
    Py_VISIT(st->tls_type);
    return 0;
}

static int module_clear(PyObject *m)
{
    modstate *st = get_state(m);
    Py_CLEAR(st->session_type);
    Py_CLEAR(st->tls_type);
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if TP_PY312
    /* The hooks and their state are process-wide. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_tracepatch",
    .m_doc = "tracepatch's recorder: call hooks, bounded capture, event log, outputs.",
    .m_size = sizeof(modstate),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__tracepatch(void);
PyMODINIT_FUNC PyInit__tracepatch(void)
{
    return PyModuleDef_Init(&moddef);
}
