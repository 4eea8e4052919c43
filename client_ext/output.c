/* Session outputs: the event log becomes a proto tree (tree.h) once, after
 * stop(), and every output renders that tree with proto's renderers, so a
 * trace reads the same here, in tph and in tphd. */
#include "ext.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "render_web.h"
#include "assets.h"
#include "tp_err.h"
#include "upload.h"

static tp_session *S(PyObject *o)
{
    return (tp_session *)o;
}

/* The log's records from `from` on (its start, or where what was freed
 * ends). */
static int feed_log(tp_session *s, tp_tree *t, const tp_evlog_pos *from)
{
    tp_evlog_iter it;
    tp_evlog_iter_init_at(&it, &s->log, from);
    const tp_event *ev;
    uint64_t bad = 0;
    int first_err = 0;
    while (tp_evlog_next(&it, &ev)) {
        const char *s1 = NULL, *s2 = NULL;
        size_t l1 = 0, l2 = 0;
        if (ev->flags & TP_EVF_TEXT) {
            if (!tp_evlog_next_text(&it, &s1, &l1) ||
                (tp_event_text_entries(ev->kind) == 2 && !tp_evlog_next_text(&it, &s2, &l2)))
                return TP_ERR_MALFORMED; /* cannot happen: reserve() keeps them in step */
        }
        int r = tp_tree_event(t, ev->kind, ev->flags, ev->rsv, ev->arg, tp_evlog_ns(&s->log, ev),
                              s1, l1, s2, l2);
        if (r == -ENOMEM)
            return r;
        if (r) {
            /* An inconsistency of ours: keep building, say so once. */
            if (!bad++)
                first_err = r;
        }
    }
    if (bad)
        tp_session_error(s, "tree: %llu events did not fit the call structure (first: %s)",
                         (unsigned long long)bad, tp_strerror(first_err));
    return 0;
}

/* Where the trace was recorded, as tracepatch 1.0.0's files say: host,
 * Python version, sys.platform, working directory. Read when the tree is
 * built (the trace has just ended), not on the hot path. */
static int set_env(tp_tree *t)
{
    char host[256] = "", cwd[4096], ver[32];
    if (gethostname(host, sizeof(host) - 1) < 0)
        host[0] = '\0';
    const char *dir = getcwd(cwd, sizeof(cwd));
    /* The running interpreter's (the headers may be another patch level):
     * Py_GetVersion() starts "3.12.1 (main, ...". */
    snprintf(ver, sizeof(ver), "%.*s", (int)strcspn(Py_GetVersion(), " "), Py_GetVersion());
    return tp_tree_set_env(t, host[0] ? host : NULL, ver, Py_GetPlatform(), dir);
}

static int set_meta(tp_session *s, tp_tree *t)
{
    memcpy(t->meta.trace_id, s->trace_id, sizeof(t->meta.trace_id));
    t->meta.wall_start_ns = s->wall_start_ns;
    t->meta.call_count = s->call_count;
    t->meta.dropped = s->dropped;
    const char *reason = tp_session_limit_reason(s);
    if (reason && tp_tree_set_limit_reason(t, reason))
        return -ENOMEM;
    if (s->label) {
        const char *l = PyUnicode_AsUTF8(s->label);
        if (!l || tp_tree_set_label(t, l))
            return -ENOMEM;
    }
    if (s->config_json) {
        const char *c = PyUnicode_AsUTF8(s->config_json);
        if (!c || tp_tree_set_config_json(t, c))
            return -ENOMEM;
    }
    if (set_env(t) < 0)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->funcs.size; i++) {
        const tp_funcent *f = &s->funcs.items[i];
        const char *m = PyUnicode_AsUTF8(f->module), *q = PyUnicode_AsUTF8(f->qualname);
        const char *file = PyUnicode_AsUTF8(f->file);
        if (!m || !q || !file) {
            PyErr_Clear(); /* a name that is not valid UTF-8 (lone surrogates) */
            m = m ? m : "?";
            q = q ? q : "?";
            file = file ? file : "";
        }
        int r = tp_tree_def_func(t, i, m, q, file, f->lineno);
        if (r)
            return r;
    }
    return 0;
}

int tp_output_build(tp_session *s)
{
    if (s->tree)
        return 0;
    if (s->state != TP_SESSION_STOPPED) {
        PyErr_SetString(PyExc_RuntimeError,
                        s->state == TP_SESSION_ACTIVE
                            ? "the Session is still recording; call stop() first"
                            : "the Session was never started");
        return -1;
    }
    tp_tree *t = NULL;
    int r = tp_tree_new(&t);
    if (!r)
        r = set_meta(s, t);
    static const tp_evlog_pos start;
    const tp_evlog_pos *from = &start;
    if (!r && s->released.records) {
        /* A streamed trace let go of what tphd stored: read it back. */
        char why[256];
        from = &s->released;
        r = tp_upload_read_back(s, t, why, sizeof(why));
        if (r && r != -ENOMEM) {
            /* Only the rest is here: the tree shows that, and says so. */
            tp_session_error(s,
                             "the first %llu events, freed once tphd stored them, could not be "
                             "read back from tphd at %s: %s",
                             (unsigned long long)s->released.records,
                             s->stream_path ? s->stream_path : "?", why);
            tp_tree_free(t);
            t = NULL;
            r = tp_tree_new(&t);
            if (!r)
                r = set_meta(s, t);
            if (!r)
                t->meta.dropped += s->released.records;
        }
    }
    if (!r)
        r = feed_log(s, t, from);
    if (!r)
        r = tp_tree_finish(t, (uint64_t)(s->end_ns > 0 ? s->end_ns : 0));
    if (r) {
        tp_tree_free(t);
        if (!PyErr_Occurred()) {
            if (r == -ENOMEM)
                PyErr_NoMemory();
            else
                PyErr_Format(PyExc_RuntimeError, "tracepatch: building the tree failed: %s",
                             tp_strerror(r));
        }
        return -1;
    }
    /* The builder counts nodes; the session knows the exact count. */
    t->meta.call_count = s->call_count;
    s->tree = t;
    return 0;
}

/* The text in b as a str, then b freed. */
static PyObject *buf_result(tp_buf *b, int r)
{
    PyObject *res = NULL;
    if (r == -ENOMEM || tp_buf_error(b))
        PyErr_NoMemory();
    else if (r)
        PyErr_Format(PyExc_RuntimeError, "tracepatch: rendering failed: %s", tp_strerror(r));
    else
        res = PyUnicode_DecodeUTF8(b->data ? b->data : "", (Py_ssize_t)b->len, "replace");
    tp_buf_free(b);
    return res;
}

PyObject *tp_output_tree(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"style",          "color", "args",   "returns", "self_time",
                         "source",         "depth", "filter", "fold",    "header",
                         "fold_threshold", "units", NULL};
    const char *style = "unicode", *units = "auto";
    int color = 0, sargs = 1, rets = 1, self_time = 0, source = 0, fold = 1, header = 1;
    int depth = -1;
    unsigned int threshold = 0;
    PyObject *filter = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$spppppiOppIs:tree", kw, &style, &color, &sargs,
                                     &rets, &self_time, &source, &depth, &filter, &fold, &header,
                                     &threshold, &units))
        return NULL;
    tp_render_opts o;
    tp_render_opts_init(&o);
    if (!strcmp(style, "unicode"))
        o.style = TP_STYLE_UNICODE;
    else if (!strcmp(style, "ascii"))
        o.style = TP_STYLE_ASCII;
    else
        return PyErr_Format(PyExc_ValueError, "style must be 'unicode' or 'ascii', not %R",
                            PyTuple_Size(args) ? PyTuple_GET_ITEM(args, 0) : Py_None);
    if (!strcmp(units, "ms"))
        o.ms_units = true;
    else if (strcmp(units, "auto"))
        return PyErr_Format(PyExc_ValueError, "units must be 'auto' or 'ms', not '%s'", units);
    o.color = color;
    o.args = sargs;
    o.returns = rets;
    o.self_time = self_time;
    o.source = source;
    o.fold = fold;
    o.header = header;
    o.fold_threshold = threshold;
    o.max_depth = depth < 0 ? -1 : depth;
    if (tp_output_build(S(self)) < 0)
        return NULL;
    PyObject *seq = NULL;
    const char **pats = NULL;
    if (filter && filter != Py_None) {
        if (PyUnicode_Check(filter)) {
            PyErr_SetString(PyExc_TypeError, "filter must be a sequence of patterns, not a str");
            return NULL;
        }
        seq = PySequence_Fast(filter, "filter must be a sequence of str patterns");
        if (!seq)
            return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        pats = PyMem_Calloc((size_t)n + 1, sizeof(*pats));
        if (!pats) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
            pats[i] = PyUnicode_Check(p) ? PyUnicode_AsUTF8(p) : NULL;
            if (!pats[i]) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "filter patterns must be str");
                PyMem_Free(pats);
                Py_DECREF(seq);
                return NULL;
            }
        }
        o.filters = pats;
    }
    tp_buf b = TP_BUF_INIT;
    int r = tp_render_text(S(self)->tree, &o, &b);
    PyMem_Free(pats);
    Py_XDECREF(seq);
    return buf_result(&b, r);
}

PyObject *tp_output_summary(PyObject *self, PyObject *unused)
{
    if (tp_output_build(S(self)) < 0)
        return NULL;
    tp_stats *st = NULL;
    int r = tp_tree_stats(S(self)->tree, &st);
    if (r)
        return r == -ENOMEM ? PyErr_NoMemory()
                            : PyErr_Format(PyExc_RuntimeError, "tracepatch: %s", tp_strerror(r));
    tp_buf b = TP_BUF_INIT;
    r = tp_render_stats_header(S(self)->tree, st, &b);
    tp_tree_stats_free(st);
    return buf_result(&b, r);
}

/* The statistics `tph stats --json` prints (tp_render_stats_json(), one
 * renderer for every view), as a dict. */
PyObject *tp_output_stats(PyObject *self, PyObject *unused)
{
    if (tp_output_build(S(self)) < 0)
        return NULL;
    const tp_tree *t = S(self)->tree;
    tp_stats *st = NULL;
    int r = tp_tree_stats(t, &st);
    if (r)
        return r == -ENOMEM ? PyErr_NoMemory()
                            : PyErr_Format(PyExc_RuntimeError, "tracepatch: %s", tp_strerror(r));
    tp_buf b = TP_BUF_INIT;
    r = tp_render_stats_json(t, st, true, &b);
    tp_tree_stats_free(st);
    PyObject *text = buf_result(&b, r);
    if (!text)
        return NULL;
    PyObject *json = PyImport_ImportModule("json");
    PyObject *res = json ? PyObject_CallMethod(json, "loads", "O", text) : NULL;
    Py_XDECREF(json);
    Py_DECREF(text);
    return res;
}

/* Pieces of a streamed JSON file: big enough that write() calls cost
 * nothing next to rendering, small next to a trace of millions of calls. */
#define JSON_CHUNK ((size_t)1 << 20)

typedef struct json_file {
    PyObject *write; /* the file's bound write method */
    bool binary;     /* bytes (a file opened "wb") or str */
} json_file;

static int write_piece(void *ctx, const char *p, size_t n)
{
    json_file *f = ctx;
    PyObject *piece = f->binary ? PyBytes_FromStringAndSize(p, (Py_ssize_t)n)
                                : PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace");
    PyObject *r = piece ? PyObject_CallOneArg(f->write, piece) : NULL;
    Py_XDECREF(piece);
    if (!r)
        return -EIO; /* the exception stays set for the caller */
    Py_DECREF(r);
    return 0;
}

/* to_json() as a str, written piece by piece into the str itself while the
 * text is ASCII (nearly always: arguments are repr()s), so a 390 MB document
 * is not built in a buffer first and then decoded into a second copy. Past
 * the first piece holding other bytes, the rest goes to a buffer and is
 * decoded once at the end. */
typedef struct json_str {
    PyObject *str; /* a compact ASCII str being filled; NULL until the first piece */
    size_t len;    /* bytes written into str */
    size_t cap;    /* its length as allocated */
    tp_buf rest;   /* from the first non-ASCII piece on */
    bool utf8;     /* a non-ASCII piece was seen: everything goes to rest */
} json_str;

static bool is_ascii(const char *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)p[i];
    return !(acc & UINT64_C(0x8080808080808080));
}

static int str_piece(void *ctx, const char *p, size_t n)
{
    json_str *j = ctx;
    if (j->utf8 || !is_ascii(p, n)) {
        j->utf8 = true;
        return tp_buf_append(&j->rest, p, n);
    }
    if (j->len + n > j->cap) {
        size_t cap = j->cap ? j->cap : 4 * JSON_CHUNK;
        while (cap < j->len + n)
            cap *= 2;
        if (cap > PY_SSIZE_T_MAX)
            return -ENOMEM;
        /* Resizing a fresh str reallocates it in place when it can (large
         * blocks are remapped, not copied). */
        if (!j->str)
            j->str = PyUnicode_New((Py_ssize_t)cap, 127);
        else if (PyUnicode_Resize(&j->str, (Py_ssize_t)cap) < 0)
            j->str = NULL; /* PyUnicode_Resize released it */
        if (!j->str) {
            PyErr_Clear();
            return -ENOMEM;
        }
        j->cap = cap;
    }
    memcpy((char *)PyUnicode_DATA(j->str) + j->len, p, n);
    j->len += n;
    return 0;
}

static PyObject *json_text(const tp_tree *t, bool pretty, const tp_render_section *sec, size_t nsec)
{
    json_str j = {.rest = TP_BUF_INIT};
    int r = tp_render_json_stream(t, pretty, sec, nsec, JSON_CHUNK, str_piece, &j);
    PyObject *res = NULL;
    if (r) {
        if (r == -ENOMEM)
            PyErr_NoMemory();
        else
            PyErr_Format(PyExc_RuntimeError, "tracepatch: rendering failed: %s", tp_strerror(r));
        goto out;
    }
    if (!j.str) {
        res =
            PyUnicode_DecodeUTF8(j.rest.data ? j.rest.data : "", (Py_ssize_t)j.rest.len, "replace");
        goto out;
    }
    /* The text is a whole str now: shrink it to its length (sets the NUL). */
    if (PyUnicode_Resize(&j.str, (Py_ssize_t)j.len) < 0) {
        j.str = NULL;
        goto out;
    }
    if (!j.utf8) {
        res = j.str;
        j.str = NULL;
        goto out;
    }
    PyObject *tail = PyUnicode_DecodeUTF8(j.rest.data, (Py_ssize_t)j.rest.len, "replace");
    if (tail) {
        res = PyUnicode_Concat(j.str, tail);
        Py_DECREF(tail);
    }
out:
    Py_XDECREF(j.str);
    tp_buf_free(&j.rest);
    return res;
}

/* The trace file's last keys ("lines", "source"): to_json()'s sections, a
 * tuple of (key, JSON text as bytes) pairs the caller made; at most
 * MAX_SECTIONS. The entries borrow from the tuple. */
#define MAX_SECTIONS 4
static int sections_of(PyObject *seq, tp_render_section *sec, size_t *ret_n)
{
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) > MAX_SECTIONS) {
        PyErr_SetString(PyExc_TypeError, "sections must be a tuple of at most 4 (str, bytes)");
        return -1;
    }
    size_t n = (size_t)PyTuple_GET_SIZE(seq);
    for (size_t i = 0; i < n; i++) {
        PyObject *it = PyTuple_GET_ITEM(seq, (Py_ssize_t)i); /* borrowed */
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(it, 0)) || !PyBytes_Check(PyTuple_GET_ITEM(it, 1))) {
            PyErr_SetString(PyExc_TypeError, "a section must be a (str, bytes) pair");
            return -1;
        }
        const char *key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(it, 0));
        if (!key)
            return -1;
        PyObject *v = PyTuple_GET_ITEM(it, 1);
        sec[i] = (tp_render_section){key, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v)};
    }
    *ret_n = n;
    return 0;
}

PyObject *tp_output_json(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"pretty", "file", "binary", "sections", NULL};
    int pretty = 1, binary = 0;
    PyObject *file = Py_None, *sections = NULL; /* borrowed */
    tp_render_section sec[MAX_SECTIONS];
    size_t nsec = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p$OpO:to_json", kw, &pretty, &file, &binary,
                                     &sections))
        return NULL;
    if (sections && sections_of(sections, sec, &nsec) < 0)
        return NULL;
    if (tp_output_build(S(self)) < 0)
        return NULL;
    if (file == Py_None)
        return json_text(S(self)->tree, pretty, sec, nsec);
    /* A file: the text goes out in pieces, never whole in memory. */
    json_file f = {PyObject_GetAttrString(file, "write"), binary};
    if (!f.write)
        return NULL;
    int r = tp_render_json_stream(S(self)->tree, pretty, sec, nsec, JSON_CHUNK, write_piece, &f);
    Py_DECREF(f.write);
    if (r) {
        if (!PyErr_Occurred()) {
            if (r == -ENOMEM)
                PyErr_NoMemory();
            else
                PyErr_Format(PyExc_RuntimeError, "tracepatch: rendering failed: %s",
                             tp_strerror(r));
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

#define SIMPLE_OUTPUT(fn, render)                                                                  \
    PyObject *fn(PyObject *self, PyObject *unused)                                                 \
    {                                                                                              \
        if (tp_output_build(S(self)) < 0)                                                          \
            return NULL;                                                                           \
        tp_buf b = TP_BUF_INIT;                                                                    \
        return buf_result(&b, render(S(self)->tree, &b));                                          \
    }

SIMPLE_OUTPUT(tp_output_csv, tp_render_csv)
SIMPLE_OUTPUT(tp_output_chrome, tp_render_chrome)
SIMPLE_OUTPUT(tp_output_folded, tp_render_folded)

static int render_svg(const tp_tree *t, tp_buf *out)
{
    return tp_render_svg(t, NULL, out);
}

SIMPLE_OUTPUT(tp_output_svg, render_svg)

/* The self-contained report: the web UI of tphd with this trace inlined, so
 * the file opens anywhere with no daemon and no network. */
static int render_report(const tp_tree *t, tp_buf *out)
{
    tp_web_assets assets;
    tp_assets_report(&assets);
    return tp_render_html(t, NULL, &assets, out);
}

SIMPLE_OUTPUT(tp_output_html, render_report)

static PyObject *opt_str(const char *s)
{
    return s ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace") : Py_NewRef(Py_None);
}

/* One node as nodes() and node() give it; with times, active and self
 * time are added (node()). */
static PyObject *node_tuple(const tp_tree *t, size_t i, bool times)
{
    const tp_node *n = &t->nodes[i];
    const tp_func *f = &t->funcs[n->func];
    long long parent = n->parent == TP_NONE ? -1LL : (long long)n->parent;
    if (times) {
        /* track_memory: the delta in bytes, None when not measured. */
        PyObject *mem = (n->flags & TP_NODE_MEM) ? PyLong_FromLongLong((long long)n->mem_delta)
                                                 : Py_NewRef(Py_None);
        if (!mem)
            return NULL;
        return Py_BuildValue("(LNNNiNNNNLLIIILLN)", parent, opt_str(f->module),
                             opt_str(f->qualname), opt_str(f->file), (int)f->lineno,
                             opt_str(n->args), opt_str(n->ret), opt_str(n->exc_type),
                             opt_str(n->exc_msg), (long long)n->start_ns, (long long)n->end_ns,
                             (unsigned)n->flags, (unsigned)n->suspends, (unsigned)n->thread,
                             (long long)n->total_ns, (long long)n->self_ns, mem);
    }
    return Py_BuildValue("(LNNNiNNNNLLIII)", parent, opt_str(f->module), opt_str(f->qualname),
                         opt_str(f->file), (int)f->lineno, opt_str(n->args), opt_str(n->ret),
                         opt_str(n->exc_type), opt_str(n->exc_msg), (long long)n->start_ns,
                         (long long)n->end_ns, (unsigned)n->flags, (unsigned)n->suspends,
                         (unsigned)n->thread);
}

PyObject *tp_output_nodes(PyObject *self, PyObject *unused)
{
    if (tp_output_build(S(self)) < 0)
        return NULL;
    const tp_tree *t = S(self)->tree;
    PyObject *list = PyList_New((Py_ssize_t)t->nnodes);
    for (size_t i = 0; list && i < t->nnodes; i++) {
        PyObject *tup = node_tuple(t, i, false);
        if (!tup)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, tup);
    }
    return list;
}

/* The session's function table, as interned (once per code object), in id
 * order: what the trace file's "source" key is captured from. */
PyObject *tp_output_functions(PyObject *self, PyObject *unused)
{
    tp_session *s = S(self);
    PyObject *list = PyList_New((Py_ssize_t)s->funcs.size);
    for (uint32_t i = 0; list && i < s->funcs.size; i++) {
        const tp_funcent *f = &s->funcs.items[i];
        PyObject *tup = Py_BuildValue("(OOOi)", f->module, f->qualname, f->file, (int)f->lineno);
        if (!tup)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, tup);
    }
    return list;
}

/* Node index i from a Python int, checked against the tree (-1: allowed
 * when roots is true, for "the roots"). */
static int node_index(const tp_tree *t, PyObject *arg, bool roots, long long *ret)
{
    long long i = PyLong_AsLongLong(arg);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i < (roots ? -1 : 0) || (i >= 0 && (unsigned long long)i >= t->nnodes)) {
        PyErr_Format(PyExc_IndexError, "no node %lld in a tree of %zu", i, t->nnodes);
        return -1;
    }
    *ret = i;
    return 0;
}

PyObject *tp_output_node(PyObject *self, PyObject *arg)
{
    if (tp_output_build(S(self)) < 0)
        return NULL;
    long long i;
    if (node_index(S(self)->tree, arg, false, &i) < 0)
        return NULL;
    return node_tuple(S(self)->tree, (size_t)i, true);
}

PyObject *tp_output_children(PyObject *self, PyObject *arg)
{
    if (tp_output_build(S(self)) < 0)
        return NULL;
    const tp_tree *t = S(self)->tree;
    long long i;
    if (node_index(t, arg, true, &i) < 0)
        return NULL;
    uint32_t first = i < 0 ? t->first_root : t->nodes[i].first_child;
    Py_ssize_t n = 0;
    for (uint32_t c = first; c != TP_NONE; c = t->nodes[c].next)
        n++;
    PyObject *list = PyList_New(n);
    Py_ssize_t k = 0;
    for (uint32_t c = first; list && c != TP_NONE; c = t->nodes[c].next) {
        PyObject *v = PyLong_FromUnsignedLong(c);
        if (!v)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, k++, v);
    }
    return list;
}

/* "module.qualname" of func (the qualname alone without a module). */
static PyObject *func_name(const tp_tree *t, uint32_t func)
{
    const tp_func *f = &t->funcs[func];
    if (f->module[0])
        return PyUnicode_FromFormat("%s.%s", f->module, f->qualname);
    return PyUnicode_FromString(f->qualname);
}

PyObject *tp_output_events(PyObject *self, PyObject *unused)
{
    if (tp_output_build(S(self)) < 0)
        return NULL;
    const tp_tree *t = S(self)->tree;
    PyObject *list = PyList_New((Py_ssize_t)t->nnodes);
    for (size_t i = 0; list && i < t->nnodes; i++) {
        const tp_node *n = &t->nodes[i];
        PyObject *parent =
            n->parent == TP_NONE ? Py_NewRef(Py_None) : PyLong_FromUnsignedLong(n->parent);
        PyObject *name = func_name(t, n->func);
        PyObject *tup = parent && name ? Py_BuildValue("(ksONNNd)", (unsigned long)i, "call", name,
                                                       parent, opt_str(n->args), opt_str(n->ret),
                                                       (double)n->total_ns / 1e9)
                                       : NULL;
        Py_XDECREF(name);
        if (!tup) {
            Py_XDECREF(parent);
            Py_CLEAR(list);
        } else {
            PyList_SET_ITEM(list, (Py_ssize_t)i, tup);
        }
    }
    return list;
}

PyObject *tp_output_raw_events(PyObject *self, PyObject *unused)
{
    tp_session *s = S(self);
    PyObject *list = PyList_New(0);
    if (!list || !s->log.blocks.size)
        return list;
    tp_evlog_iter it;
    tp_evlog_iter_init_at(&it, &s->log, &s->released); /* what is still here */
    const tp_event *ev;
    while (tp_evlog_next(&it, &ev)) {
        unsigned nt = ev->flags & TP_EVF_TEXT ? tp_event_text_entries(ev->kind) : 0;
        PyObject *tup = PyTuple_New(4 + nt);
        if (!tup)
            goto fail;
        PyTuple_SET_ITEM(tup, 0, PyLong_FromLong(ev->kind));
        PyTuple_SET_ITEM(tup, 1, PyLong_FromLong(ev->flags));
        PyTuple_SET_ITEM(tup, 2, PyLong_FromUnsignedLong(ev->arg));
        PyTuple_SET_ITEM(tup, 3, PyLong_FromUnsignedLongLong(tp_evlog_ns(&s->log, ev)));
        for (unsigned k = 0; k < nt; k++) {
            const char *p = "";
            size_t n = 0;
            tp_evlog_next_text(&it, &p, &n);
            PyTuple_SET_ITEM(tup, 4 + k, PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace"));
        }
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(tup); k++) {
            if (!PyTuple_GET_ITEM(tup, k)) {
                Py_DECREF(tup);
                goto fail;
            }
        }
        int r = PyList_Append(list, tup);
        Py_DECREF(tup);
        if (r < 0)
            goto fail;
    }
    return list;
fail:
    Py_DECREF(list);
    return NULL;
}
