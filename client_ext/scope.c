/* Per-thread state, bindings and the context scope; see record.h. */
#include "record.h"

#include <string.h>

#include "hooks.h"

_Thread_local tp_tls *tp_scope_cur_tls TP_TLS_MODEL;

/* ---- thread state object ---------------------------------------------- */

static void tls_dealloc(PyObject *self)
{
    tp_tls *tls = (tp_tls *)self;
    PyTypeObject *tp = Py_TYPE(self);
    if (tp_scope_cur_tls == tls)
        tp_scope_cur_tls = NULL;
    /* The thread is gone (or its state cleared): its bindings stop here. */
    for (size_t i = 0; i < tls->bindings.size; i++) {
        tls->bindings.items[i]->tls = NULL;
        tls->bindings.items[i]->dead = true;
    }
    tp_vec_free(&tls->bindings);
    tp_binding **act = tls->active;
    size_t nact = tls->nactive;
    tls->active = NULL;
    tls->nactive = 0;
    for (size_t i = 0; i < nact; i++)
        Py_DECREF((PyObject *)act[i]->s);
    PyMem_RawFree(act);
    Py_CLEAR(tls->prev_profile_obj);
    Py_CLEAR(tls->prev_trace_obj);
    tp_buf_free(&tls->scratch);
    tp_buf_free(&tls->scratch2);
    tp_buf_free(&tls->scratch3);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot tls_slots[] = {
    {Py_tp_dealloc, tls_dealloc},
    {Py_tp_doc, "tracepatch's state for one thread (internal)."},
    {0, NULL},
};

PyType_Spec tp_scope_tls_spec = {
    .name = "tracepatch._tracepatch._ThreadState",
    .basicsize = sizeof(tp_tls),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = tls_slots,
};

tp_tls *tp_scope_tls_get(bool create)
{
    PyThreadState *ts = PyThreadState_Get();
    tp_tls *tls = tp_scope_cur_tls;
    if (tls && tls->tstate == ts)
        return tls;
    if (!create)
        return NULL;
    PyObject *dict = PyThreadState_GetDict(); /* borrowed */
    if (!dict) {
        PyErr_SetString(PyExc_RuntimeError, "tracepatch: no thread state dict");
        return NULL;
    }
    tls = PyObject_New(tp_tls, tp_module_g.tls_type);
    if (!tls)
        return NULL;
    memset((char *)tls + sizeof(PyObject), 0, sizeof(tp_tls) - sizeof(PyObject));
    tls->tstate = ts;
    tls->gen = (uint64_t)-1;
    /* The dict owns the object: clearing the thread state deallocates it. */
    if (PyDict_SetItem(dict, tp_module_g.tls_key, (PyObject *)tls) < 0) {
        Py_DECREF(tls);
        return NULL;
    }
    Py_DECREF(tls);
    tp_scope_cur_tls = tls;
    return tls;
}

/* ---- scope ------------------------------------------------------------ */

static bool serial_in(PyObject *val, uint64_t serial)
{
    if (!val || !PyTuple_Check(val))
        return false;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(val); i++) {
        unsigned long long v = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(val, i));
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            PyErr_Clear();
        else if (v == serial)
            return true;
    }
    return false;
}

void tp_scope_refresh(tp_tls *tls)
{
    PyObject *val = NULL;
    if (PyContextVar_Get(tp_module_g.ctxvar, NULL, &val) < 0) {
        PyErr_Clear();
        val = NULL;
    }
    tp_binding **old = tls->active;
    size_t nold = tls->nactive;
    tp_binding **act = NULL;
    size_t nact = 0, nlive = 0;
    if (tls->bindings.size && !atomic_load(&tp_module_g.fork_frozen)) {
        act = PyMem_RawMalloc(tls->bindings.size * sizeof(*act));
        for (size_t i = 0; i < tls->bindings.size; i++) {
            tp_binding *b = tls->bindings.items[i];
            if (b->dead || !b->s->recording)
                continue;
            nlive++;
            if (act && (b->by_thread || serial_in(val, b->s->serial))) {
                Py_INCREF((PyObject *)b->s);
                act[nact++] = b;
            }
        }
    }
    Py_XDECREF(val);
    tls->active = act;
    tls->nactive = nact;
    tls->quick = nact == 1 ? act[0]->s->quick : 0;
    tls->nlive = nlive;
    tls->gen = tp_module_g.gen;
    tls->ctx = tls->tstate->context;
    tls->ctx_ver = tls->tstate->context_ver;
    /* Release the previous sessions last: one may be deallocated, which
     * unlinks its bindings from tls->bindings. */
    for (size_t i = 0; i < nold; i++)
        Py_DECREF((PyObject *)old[i]->s);
    PyMem_RawFree(old);
    if (!tls->nlive && tls == tp_scope_cur_tls)
        tp_hooks_thread_idle(tls);
}

static int tls_add(tp_tls *tls, tp_binding *b)
{
    if (tp_vec_grow1(&tls->bindings) < 0)
        return -1;
    tls->bindings.items[tls->bindings.size++] = b;
    return 0;
}

static void tls_remove(tp_tls *tls, tp_binding *b)
{
    for (size_t i = 0; i < tls->bindings.size; i++) {
        if (tls->bindings.items[i] == b) {
            memmove(&tls->bindings.items[i], &tls->bindings.items[i + 1],
                    (tls->bindings.size - i - 1) * sizeof(*tls->bindings.items));
            tls->bindings.size--;
            return;
        }
    }
}

/* The name of the running thread, or NULL. */
static PyObject *thread_name(void)
{
    PyObject *mod = PyImport_ImportModule("threading");
    if (!mod)
        goto fail;
    PyObject *cur = PyObject_CallMethod(mod, "current_thread", NULL);
    Py_DECREF(mod);
    if (!cur)
        goto fail;
    PyObject *name = PyObject_GetAttrString(cur, "name");
    Py_DECREF(cur);
    if (name && PyUnicode_Check(name))
        return name;
    Py_XDECREF(name);
fail:
    PyErr_Clear();
    return NULL;
}

int tp_scope_bind(tp_session *s, tp_tls *tls, bool by_thread)
{
    int rc = -1;
    tp_binding *b = PyMem_RawCalloc(1, sizeof(*b));
    if (!b)
        goto nomem;
    /* Allocate the stack now so that the first calls never grow it. */
    if (tp_vec_reserve(&b->stack, s->max_depth < 64 ? s->max_depth + 1 : 64) < 0)
        goto nomem;
    if (tp_vec_grow1(&s->bindings) < 0)
        goto nomem;
    if (tls_add(tls, b) < 0)
        goto nomem;
    s->bindings.items[s->bindings.size++] = b;
    b->s = s;
    b->tls = tls;
    b->by_thread = by_thread;
    b->thread = s->nthreads++;
    /* Name the thread in the log; a missing name costs nothing but the name. */
    PyObject *name = thread_name();
    Py_ssize_t nlen = 0;
    const char *n = name ? PyUnicode_AsUTF8AndSize(name, &nlen) : NULL;
    if (!n)
        PyErr_Clear();
    if (tp_evlog_reserve(&s->log, n ? (size_t)nlen : 0, 1) == 0) {
        int64_t t = tp_now() - s->t0;
        tp_evlog_put(&s->log, TP_EV_THREAD, n ? TP_EVF_TEXT : 0, b->thread, (uint64_t)t);
        if (n)
            tp_evlog_text(&s->log, n, (size_t)nlen);
        s->log_thread = b->thread;
    }
    Py_XDECREF(name);
    return 0;
nomem:
    if (b)
        tp_vec_free(&b->stack);
    PyMem_RawFree(b);
    PyErr_NoMemory();
    return rc;
}

void tp_scope_unbind_all(tp_session *s, bool unlink)
{
    for (size_t i = 0; i < s->bindings.size; i++) {
        tp_binding *b = s->bindings.items[i];
        b->dead = true;
        if (unlink && b->tls) {
            tls_remove(b->tls, b);
            b->tls = NULL;
        }
    }
    tp_module_g.gen++;
}

/* ---- the context variable --------------------------------------------- */

int tp_scope_enter(tp_session *s)
{
    PyObject *cur = NULL, *val = NULL, *ser = NULL;
    int rc = -1;
    if (PyContextVar_Get(tp_module_g.ctxvar, NULL, &cur) < 0)
        goto out;
    Py_ssize_t n = cur && PyTuple_Check(cur) ? PyTuple_GET_SIZE(cur) : 0;
    val = PyTuple_New(n + 1);
    ser = PyLong_FromUnsignedLongLong(s->serial);
    if (!val || !ser)
        goto out;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(val, i, Py_NewRef(PyTuple_GET_ITEM(cur, i)));
    PyTuple_SET_ITEM(val, n, ser);
    ser = NULL;
    s->token = PyContextVar_Set(tp_module_g.ctxvar, val);
    if (!s->token)
        goto out;
    rc = 0;
out:
    Py_XDECREF(cur);
    Py_XDECREF(val);
    Py_XDECREF(ser);
    return rc;
}

/* Take the session's serial out of the running context's value. Not the
 * token's reset: with sessions stopped out of order, it would also drop the
 * serials of sessions started later. In another context than start()'s (a
 * stop() from another task), the start context keeps the serial of a dead
 * session, which the scope check ignores. */
void tp_scope_leave(tp_session *s)
{
    PyObject *cur = NULL, *val = NULL;
    if (!s->token)
        return;
    Py_CLEAR(s->token);
    if (PyContextVar_Get(tp_module_g.ctxvar, NULL, &cur) < 0 || !cur || !PyTuple_Check(cur))
        goto out;
    Py_ssize_t n = PyTuple_GET_SIZE(cur), k = 0;
    val = PyTuple_New(n);
    if (!val)
        goto out;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyTuple_GET_ITEM(cur, i);
        unsigned long long v = PyLong_AsUnsignedLongLong(it);
        if (v == s->serial)
            continue;
        PyTuple_SET_ITEM(val, k++, Py_NewRef(it));
    }
    PyErr_Clear();
    if (k == n)
        goto out; /* not in this context */
    if (_PyTuple_Resize(&val, k) < 0)
        goto out;
    PyObject *tok = PyContextVar_Set(tp_module_g.ctxvar, val);
    Py_XDECREF(tok);
out:
    PyErr_Clear();
    Py_XDECREF(cur);
    Py_XDECREF(val);
    tp_module_g.gen++;
}
