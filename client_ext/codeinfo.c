/* Function identity interned per code object; see codeinfo.h. */
#include "codeinfo.h"

#include <string.h>

#include "frame.h"

static Py_ssize_t extra_index = -1;
static uint32_t next_gid = 1;
static PyObject *unknown_module; /* "<unknown>" */
static PyObject *name_key;       /* "__name__" */

#if TP_PY312
#define get_extra     PyUnstable_Code_GetExtra
#define set_extra     PyUnstable_Code_SetExtra
#define request_extra PyUnstable_Eval_RequestCodeExtraIndex
#else
#define get_extra     _PyCode_GetExtra
#define set_extra     _PyCode_SetExtra
#define request_extra _PyEval_RequestCodeExtraIndex
#endif

uint64_t tp_codeinfo_frees;

static void ci_free(void *p)
{
    tp_codeinfo *ci = p;
    if (!ci)
        return;
    tp_codeinfo_frees++;
    Py_XDECREF(ci->module);
    Py_XDECREF(ci->qualname);
    Py_XDECREF(ci->file);
    Py_XDECREF(ci->names);
    PyMem_RawFree(ci->params);
    PyMem_RawFree(ci);
}

int tp_codeinfo_setup(void)
{
    if (extra_index >= 0)
        return 0;
    unknown_module = PyUnicode_InternFromString("<unknown>");
    name_key = PyUnicode_InternFromString("__name__");
    if (!unknown_module || !name_key)
        return -1;
    extra_index = request_extra(ci_free);
    if (extra_index < 0) {
        PyErr_SetString(PyExc_RuntimeError, "tracepatch: no code object extra slot is left");
        return -1;
    }
    return 0;
}

tp_codeinfo *tp_codeinfo_peek(PyCodeObject *co)
{
    void *p = NULL;
    if (TP_UNLIKELY(get_extra((PyObject *)co, extra_index, &p) < 0)) {
        PyErr_Clear();
        return NULL;
    }
    return p;
}

bool tp_codeinfo_module_matches(const char *m, size_t mlen, const char *prefix)
{
    size_t n = strlen(prefix);
    if (mlen < n || memcmp(m, prefix, n) != 0)
        return false;
    return mlen == n || m[n] == '.';
}

static PyObject *module_name(PyObject *globals)
{
    if (globals && PyDict_Check(globals)) {
        PyObject *n = PyDict_GetItemWithError(globals, name_key); /* borrowed */
        if (n && PyUnicode_Check(n))
            return Py_NewRef(n);
        PyErr_Clear();
    }
    return Py_NewRef(unknown_module);
}

/* The parameters in display order: positional, *args, keyword-only, **kwargs. */
static int build_params(tp_codeinfo *ci, PyCodeObject *co)
{
    int npos = co->co_argcount, nkw = co->co_kwonlyargcount;
    bool va = (co->co_flags & CO_VARARGS) != 0, vk = (co->co_flags & CO_VARKEYWORDS) != 0;
    int total = npos + nkw + va + vk;
#if TP_PY311
    ci->names = PyCode_GetVarnames(co);
#else
    ci->names = Py_XNewRef(co->co_varnames);
#endif
    if (!ci->names || !PyTuple_Check(ci->names) || PyTuple_GET_SIZE(ci->names) < total)
        return -1;
    if (!total)
        return 0;
    ci->params = PyMem_RawCalloc((size_t)total, sizeof(tp_param));
    if (!ci->params)
        return -1;
    tp_untrack_own(ci->params);
    int order[4] = {npos, va, nkw, vk};
    int first[4] = {0, npos + nkw, npos, npos + nkw + va};
    uint32_t k = 0;
    for (int g = 0; g < 4; g++) {
        for (int j = 0; j < order[g]; j++) {
            tp_param *p = &ci->params[k++];
            p->slot = first[g] + j;
            p->name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(ci->names, p->slot), &p->len);
            if (!p->name)
                return -1;
            p->stars = g == 1 ? 1 : g == 3 ? 2 : 0;
            p->cell = tp_frame_arg_is_cell(co, p->slot);
            p->cell_slot = tp_frame_arg_cell_slot(co, p->slot);
            ci->names_room += (size_t)p->len + 6;
        }
    }
    ci->nparams = k;
    return 0;
}

static tp_codeinfo *build(PyCodeObject *co, PyObject *globals)
{
    tp_codeinfo *ci = PyMem_RawCalloc(1, sizeof(*ci));
    if (!ci)
        return NULL;
    tp_untrack_own(ci);
    ci->gid = next_gid++;
    ci->module = module_name(globals);
#if TP_PY311
    ci->qualname = Py_NewRef(co->co_qualname);
#else
    ci->qualname = Py_NewRef(co->co_name);
#endif
    ci->file = Py_NewRef(co->co_filename);
    ci->lineno = co->co_firstlineno;
    if (build_params(ci, co) < 0) {
        ci_free(ci);
        return NULL;
    }
    if (co->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR))
        ci->flags |= TP_CI_GEN;
    if (co->co_flags & CO_VARARGS)
        ci->flags |= TP_CI_VARARGS;
    if (co->co_flags & CO_VARKEYWORDS)
        ci->flags |= TP_CI_VARKW;
    Py_ssize_t mlen;
    const char *m = PyUnicode_AsUTF8AndSize(ci->module, &mlen);
    if (!m) {
        ci_free(ci);
        return NULL;
    }
    if (tp_codeinfo_module_matches(m, (size_t)mlen, "tracepatch"))
        ci->flags |= TP_CI_INTERNAL;
    if ((PyObject *)co == tp_module_g.thread_start_code)
        ci->flags |= TP_CI_THREAD_START;
    /* The event loop's machinery is hidden by default, as tracepatch's own
     * code is; call_soon is watched even so: a task created in a trace
     * schedules its first step there (tp_record_task_soon()). */
    if (tp_codeinfo_module_matches(m, (size_t)mlen, "asyncio") ||
        tp_codeinfo_module_matches(m, (size_t)mlen, "selectors"))
        ci->flags |= TP_CI_ASYNCIO;
#if TP_PY311
    const char *soon = "BaseEventLoop.call_soon";
#else
    const char *soon = "call_soon"; /* 3.10 code objects have no qualified name */
#endif
    if (mlen == 19 && memcmp(m, "asyncio.base_events", 19) == 0 &&
        PyUnicode_CompareWithASCIIString(ci->qualname, soon) == 0)
        ci->flags |= TP_CI_TASK_SOON;
    return ci;
}

tp_codeinfo *tp_codeinfo_get(PyCodeObject *co, PyObject *globals)
{
    tp_codeinfo *ci = tp_codeinfo_peek(co);
    if (TP_LIKELY(ci != NULL))
        return ci;
    ci = build(co, globals);
    if (!ci) {
        PyErr_Clear();
        return NULL;
    }
    if (set_extra((PyObject *)co, extra_index, ci) < 0) {
        PyErr_Clear();
        ci_free(ci);
        return NULL;
    }
    return ci;
}
