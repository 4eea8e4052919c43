/* Bounded repr, arguments and exceptions; see capture.h. */
#include "capture.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codeinfo.h"

#if !TP_PY311
#include <longintrepr.h> /* 3.10: ob_digit */
#endif

/* Containers nested deeper than this are cut: the text would be truncated
 * long before in any realistic limit, and it bounds the C recursion. */
#define MAX_NEST 64

/* A bounded writer over a tp_buf: counts characters (code points) and keeps
 * the byte offset where limit - 3 characters end, so that an overlong result
 * can be cut there and given "...". It reserves, once, room for the longest
 * text it may write (4 bytes per character, then "..."), and then writes
 * through a plain pointer: no call and no check per piece. */
typedef struct rw {
    tp_buf *out;
    char *p;       /* next byte to write in out->data */
    size_t limit;  /* max characters */
    size_t nchars; /* characters written */
    char *cut;     /* where limit - 3 characters end */
    bool cut_set;
    bool full; /* the text is longer than limit: stop rendering */
    int ncont;
    PyObject *cont[MAX_NEST]; /* containers being rendered (cycle check) */
} rw;

/* The most bytes one bounded text takes in its buffer. */
static inline size_t rw_room(uint32_t max_repr)
{
    return tp_capture_repr_room(max_repr);
}

/* Start writing at the end of out, where rw_room(max_repr) bytes are
 * reserved already. */
static void rw_start(rw *w, tp_buf *out, uint32_t max_repr)
{
    /* Not memset: cont[] is only read below ncont. */
    w->limit = max_repr < TP_MIN_REPR ? TP_MIN_REPR : max_repr;
    w->out = out;
    w->p = out->data + out->len;
    w->nchars = 0;
    w->cut_set = false;
    w->full = false;
    w->ncont = 0;
    w->cut = w->p;
}

/* Returns 0, or -ENOMEM when the room cannot be reserved. */
static int rw_init(rw *w, tp_buf *out, uint32_t max_repr)
{
    if (tp_buf_reserve(out, rw_room(max_repr)) < 0)
        return -ENOMEM;
    rw_start(w, out, max_repr);
    return 0;
}

/* n ASCII characters. */
static inline void put_ascii(rw *w, const char *s, size_t n)
{
    if (w->full || !n)
        return;
    size_t lim3 = w->limit - 3;
    if (!w->cut_set && w->nchars + n >= lim3) {
        w->cut = w->p + (lim3 - w->nchars);
        w->cut_set = true;
    }
    size_t room = w->limit - w->nchars;
    if (n > room) {
        memcpy(w->p, s, room);
        w->p += room;
        w->nchars = w->limit;
        w->full = true;
        return;
    }
    if (n <= 8) {
        /* Most pieces are a few bytes: a loop beats a call to memcpy. */
        for (size_t i = 0; i < n; i++)
            w->p[i] = s[i];
    } else {
        memcpy(w->p, s, n);
    }
    w->p += n;
    w->nchars += n;
}

static void put_lit(rw *w, const char *s)
{
    put_ascii(w, s, strlen(s));
}

/* One code point, UTF-8 encoded (surrogates, which UTF-8 cannot carry, as
 * their \u escape). */
static void put_cp(rw *w, Py_UCS4 c)
{
    if (c < 0x80) {
        char b = (char)c;
        put_ascii(w, &b, 1);
        return;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
        char b[12];
        int n = snprintf(b, sizeof(b), "\\u%04x", (unsigned)c);
        put_ascii(w, b, (size_t)n);
        return;
    }
    if (w->full)
        return;
    if (!w->cut_set && w->nchars == w->limit - 3) {
        w->cut = w->p;
        w->cut_set = true;
    }
    if (w->nchars == w->limit) {
        w->full = true;
        return;
    }
    char *b = w->p;
    if (c < 0x800) {
        b[0] = (char)(0xc0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3f));
        w->p += 2;
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        w->p += 3;
    } else {
        b[0] = (char)(0xf0 | (c >> 18));
        b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[3] = (char)(0x80 | (c & 0x3f));
        w->p += 4;
    }
    w->nchars++;
}

/* Close the text: cut an overlong one and mark it, set the buffer's length.
 * tp_buf has no call for writing in place; the room was reserved, and len
 * and the terminator are set here as tp_buf_append would. */
static void rw_finish(rw *w)
{
    if (w->full) {
        w->p = w->cut;
        memcpy(w->p, "...", 3);
        w->p += 3;
    }
    w->out->len = (size_t)(w->p - w->out->data);
    *w->p = '\0';
}

static void put_hex_escape(rw *w, Py_UCS4 c)
{
    char b[12];
    int n;
    if (c <= 0xff)
        n = snprintf(b, sizeof(b), "\\x%02x", (unsigned)c);
    else if (c <= 0xffff)
        n = snprintf(b, sizeof(b), "\\u%04x", (unsigned)c);
    else
        n = snprintf(b, sizeof(b), "\\U%08x", (unsigned)c);
    put_ascii(w, b, (size_t)n);
}

/* The escapes str and bytes reprs share: the quote in use, backslash, tab,
 * newline and carriage return. Returns whether c was one (and written). */
static bool put_repr_escape(rw *w, Py_UCS4 c, char q)
{
    if (c == (Py_UCS4)q || c == '\\') {
        char b[2] = {'\\', (char)c};
        put_ascii(w, b, 2);
    } else if (c == '\t') {
        put_lit(w, "\\t");
    } else if (c == '\n') {
        put_lit(w, "\\n");
    } else if (c == '\r') {
        put_lit(w, "\\r");
    } else {
        return false;
    }
    return true;
}

/* Whether the ASCII text needs no escape and no double quotes. */
static bool plain_ascii(const unsigned char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c < ' ' || c >= 0x7f || c == '\'' || c == '\\')
            return false;
    }
    return true;
}

/* repr() of an exact str. The quote is chosen as repr() does, from the part
 * of the text that can be shown, so a huge string is never scanned whole. */
static void render_str(rw *w, PyObject *s)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (PyUnicode_IS_ASCII(s) && len <= (Py_ssize_t)w->limit && plain_ascii(data, len)) {
        /* The common case: short text, nothing to escape, single quotes. */
        put_ascii(w, "'", 1);
        put_ascii(w, data, (size_t)len);
        put_ascii(w, "'", 1);
        return;
    }
    Py_ssize_t scan = len < (Py_ssize_t)w->limit + 1 ? len : (Py_ssize_t)w->limit + 1;
    bool sq = false, dq = false;
    for (Py_ssize_t i = 0; i < scan; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        sq |= c == '\'';
        dq |= c == '"';
    }
    char q = sq && !dq ? '"' : '\'';
    put_ascii(w, &q, 1);
    for (Py_ssize_t i = 0; i < len && !w->full; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= ' ' && c < 0x7f && c != (Py_UCS4)q && c != '\\') {
            if (kind == PyUnicode_1BYTE_KIND) {
                /* Emit the whole run of plain ASCII at once. */
                const unsigned char *p = data;
                Py_ssize_t j = i + 1;
                while (j < len && p[j] >= ' ' && p[j] < 0x7f && p[j] != (unsigned char)q &&
                       p[j] != '\\')
                    j++;
                put_ascii(w, (const char *)p + i, (size_t)(j - i));
                i = j - 1;
            } else {
                put_cp(w, c);
            }
        } else if (put_repr_escape(w, c, q)) {
            continue;
        } else if (c < ' ' || c == 0x7f) {
            put_hex_escape(w, c);
        } else if (Py_UNICODE_ISPRINTABLE(c)) {
            put_cp(w, c);
        } else {
            put_hex_escape(w, c);
        }
    }
    put_ascii(w, &q, 1);
}

/* A str shown as is (the result of a __repr__ or __str__). */
static void render_raw_str(rw *w, PyObject *s)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (kind == PyUnicode_1BYTE_KIND && PyUnicode_IS_ASCII(s)) {
        put_ascii(w, data, (size_t)len);
        return;
    }
    for (Py_ssize_t i = 0; i < len && !w->full; i++)
        put_cp(w, PyUnicode_READ(kind, data, i));
}

/* repr() of an exact bytes object. */
static void render_bytes(rw *w, PyObject *o)
{
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(o);
    Py_ssize_t len = PyBytes_GET_SIZE(o);
    Py_ssize_t scan = len < (Py_ssize_t)w->limit + 1 ? len : (Py_ssize_t)w->limit + 1;
    bool sq = memchr(p, '\'', (size_t)scan) != NULL, dq = memchr(p, '"', (size_t)scan) != NULL;
    char q = sq && !dq ? '"' : '\'';
    put_ascii(w, "b", 1);
    put_ascii(w, &q, 1);
    for (Py_ssize_t i = 0; i < len && !w->full; i++) {
        unsigned char c = p[i];
        if (put_repr_escape(w, c, q)) {
            continue;
        } else if (c < ' ' || c >= 0x7f) {
            put_hex_escape(w, c);
        } else {
            put_ascii(w, (const char *)&c, 1);
        }
    }
    put_ascii(w, &q, 1);
}

static void put_unprintable(rw *w, PyObject *o)
{
    put_lit(w, "<unprintable ");
    put_lit(w, _PyType_Name(Py_TYPE(o)));
    put_lit(w, ">");
}

/* Clear the exception a __repr__ or __str__ raised. A KeyboardInterrupt is
 * not ours to swallow: it is raised again in this thread at its next
 * bytecode, as an asynchronous exception. Not PyErr_SetInterrupt(): that
 * simulates a SIGINT, which is dropped when SIGINT is ignored (a program
 * started in the background), runs a custom handler a second time, and
 * lands in the main thread whichever thread was interrupted. */
static void drop_error(void)
{
    bool interrupt = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
    PyErr_Clear();
    if (interrupt)
        PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), PyExc_KeyboardInterrupt);
}

/* An attribute from an instance's __dict__ (borrowed), without running a
 * property or __getattr__; NULL when absent. */
static PyObject *field(PyObject *dict, const char *name)
{
    return dict ? PyDict_GetItemString(dict, name) : NULL;
}

/* Thread.__repr__ calls is_alive(), which may run _stop() (3.10-3.12), and
 * Event.is_set(): capturing a thread argument would change what join()
 * does and add calls to the trace. The same text is built from the fields
 * instead; "stopped" is what the thread already knows (on 3.10-3.12 a
 * finished thread nobody joined yet reads "started"). Returns a new
 * reference, or NULL when o is not a thread with the standard __repr__ or
 * a field is not what threading puts there (then repr() is used). */
static PyObject *thread_repr(PyObject *o)
{
    static PyObject *repr_name; /* interned "__repr__", made once (under the GIL) */
    if (!tp_module_g.thread_type ||
        PyObject_TypeCheck(o, (PyTypeObject *)tp_module_g.thread_type) == 0)
        return NULL;
    if (!repr_name && !(repr_name = PyUnicode_InternFromString("__repr__"))) {
        PyErr_Clear();
        return NULL;
    }
    /* Borrowed; a lookup in the type's MRO, which runs no Python code. */
    if (_PyType_Lookup(Py_TYPE(o), repr_name) != tp_module_g.thread_repr)
        return NULL;
    PyObject *res = NULL, *dict = PyObject_GenericGetDict(o, NULL);
    if (!dict) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *name = field(dict, "_name"), *started = field(dict, "_started");
    PyObject *daemonic = field(dict, "_daemonic"), *ident = field(dict, "_ident");
    PyObject *edict = started ? PyObject_GenericGetDict(started, NULL) : NULL;
    PyObject *flag = field(edict, "_flag");
    if (!name || !PyUnicode_CheckExact(name) || !flag || !PyBool_Check(flag) || !daemonic ||
        !PyBool_Check(daemonic) || !ident || (ident != Py_None && !PyLong_CheckExact(ident)))
        goto done;
    bool stopped = false;
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13: the handle knows; is_done() is a C method without side effects. */
    PyObject *handle = field(dict, "_handle");
    PyObject *d = handle ? PyObject_CallMethod(handle, "is_done", NULL) : NULL;
    if (!d)
        goto done;
    stopped = d == Py_True;
    Py_DECREF(d);
#else
    PyObject *is_stopped = field(dict, "_is_stopped");
    if (!is_stopped || !PyBool_Check(is_stopped))
        goto done;
    stopped = is_stopped == Py_True;
#endif
    const char *status = stopped ? "stopped" : flag == Py_True ? "started" : "initial";
    const char *dmn = daemonic == Py_True ? " daemon" : "";
    if (ident == Py_None)
        res = PyUnicode_FromFormat("<%s(%U, %s%s)>", _PyType_Name(Py_TYPE(o)), name, status, dmn);
    else
        res = PyUnicode_FromFormat("<%s(%U, %s%s %S)>", _PyType_Name(Py_TYPE(o)), name, status, dmn,
                                   ident);
done:
    if (!res)
        PyErr_Clear();
    Py_XDECREF(edict);
    Py_DECREF(dict);
    return res;
}

/* Anything else: through its __repr__ (Python code may run), except for
 * objects whose standard repr has side effects (thread_repr()). */
/* Types whose __repr__ raised, for the 1.0.0-style note (capture.h). A
 * fixed table under the GIL: a failing type is noted once until it is read,
 * and past the table's size the rest go unnoted, never allocated for. */
#define REPR_FAIL_MAX 32
static struct {
    char type[64];
    char exc[64];
} repr_fail[REPR_FAIL_MAX];
static size_t repr_fail_n;

static void note_repr_failure(PyObject *o)
{
    const char *type = _PyType_Name(Py_TYPE(o));
    PyObject *et = PyErr_Occurred();
    const char *exc = et && PyType_Check(et) ? _PyType_Name((PyTypeObject *)et) : "Exception";
    for (size_t i = 0; i < repr_fail_n; i++)
        if (strcmp(repr_fail[i].type, type) == 0)
            return;
    if (repr_fail_n == REPR_FAIL_MAX)
        return;
    snprintf(repr_fail[repr_fail_n].type, sizeof(repr_fail[0].type), "%s", type);
    snprintf(repr_fail[repr_fail_n].exc, sizeof(repr_fail[0].exc), "%s", exc);
    repr_fail_n++;
}

PyObject *tp_capture_repr_failures(PyObject *mod, PyObject *unused)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < repr_fail_n; i++) {
        PyObject *item = Py_BuildValue("(ss)", repr_fail[i].type, repr_fail[i].exc);
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
    }
    if (list)
        repr_fail_n = 0;
    return list;
}

/* Anything else: through its __repr__ (Python code may run). */
static void render_other(rw *w, PyObject *o)
{
    PyObject *r = thread_repr(o);
    if (!r)
        r = PyObject_Repr(o);
    if (!r) {
        note_repr_failure(o);
        drop_error();
        put_unprintable(w, o);
        return;
    }
    render_raw_str(w, r);
    Py_DECREF(r);
}

/* ---- object's own __repr__ ------------------------------------------------
 *
 * "<module.Qualname object at 0x7f...>" is what most user classes show, and
 * object_repr() builds it with PyUnicode_FromFormat(), whose %p goes through
 * vfprintf: thousands of instructions per object. It is rendered here with
 * the same rules (Objects/typeobject.c, object_repr, 3.10-3.13): a heap type
 * shows its __module__ (when a str other than "builtins") and __qualname__,
 * anything else its tp_name; the address as "0x" and lowercase hex. The
 * name is cached per type and version tag: setting __module__, __qualname__
 * or __name__ goes through type_setattro, which calls PyType_Modified, which
 * invalidates the tag, and a tag is never given to two types. Only ASCII
 * names are cached; others take the general path. */

#define NAME_CACHE   64  /* entries, direct-mapped by type address */
#define NAME_MAX_LEN 110 /* longer names are not cached */

typedef struct name_ent {
    PyTypeObject *type;
    unsigned int tag;
    uint8_t len;
    char name[NAME_MAX_LEN];
} name_ent;

/* Written and read with the GIL held, by the thread capturing. */
static name_ent name_cache[NAME_CACHE];

/* Fill e with the name object_repr() shows for tp. False when it cannot be
 * cached (not ASCII, too long, or an error, which is cleared). */
static bool object_name(PyTypeObject *tp, name_ent *e)
{
    const char *mod = NULL, *qual = NULL;
    Py_ssize_t nmod = 0, nqual = 0;
    static PyObject *module_str; /* "__module__", interned once, kept */
    if (!module_str && !(module_str = PyUnicode_InternFromString("__module__")))
        return false;
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        PyObject *m = tp->tp_dict ? PyDict_GetItemWithError(tp->tp_dict, module_str) : NULL;
        if (!m && PyErr_Occurred())
            return false;
        if (m && PyUnicode_Check(m) && PyUnicode_CompareWithASCIIString(m, "builtins") != 0) {
            PyObject *q = ((PyHeapTypeObject *)tp)->ht_qualname;
            if (!PyUnicode_IS_ASCII(m) || !q || !PyUnicode_Check(q) || !PyUnicode_IS_ASCII(q))
                return false;
            mod = (const char *)PyUnicode_DATA(m);
            nmod = PyUnicode_GET_LENGTH(m);
            qual = (const char *)PyUnicode_DATA(q);
            nqual = PyUnicode_GET_LENGTH(q);
        }
    }
    if (!mod) {
        qual = tp->tp_name;
        nqual = (Py_ssize_t)strlen(qual);
        for (Py_ssize_t i = 0; i < nqual; i++)
            if ((unsigned char)qual[i] >= 0x80)
                return false;
    }
    if (nmod + 1 + nqual > NAME_MAX_LEN)
        return false;
    char *d = e->name;
    if (mod) {
        memcpy(d, mod, (size_t)nmod);
        d += nmod;
        *d++ = '.';
    }
    memcpy(d, qual, (size_t)nqual);
    e->len = (uint8_t)(d + nqual - e->name);
    return true;
}

/* Whether o's repr is object_repr() and was rendered here. */
static bool render_default_object(rw *w, PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    name_ent *e = &name_cache[((uintptr_t)tp >> 4) % NAME_CACHE];
    bool tagged = (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) && tp->tp_version_tag;
    name_ent fresh; /* e may point here until the end: not scoped to the if */
    if (!tagged || e->type != tp || e->tag != tp->tp_version_tag) {
        if (!object_name(tp, &fresh)) {
            PyErr_Clear();
            return false;
        }
        if (!tagged) {
            e = &fresh;
        } else {
            fresh.type = tp;
            fresh.tag = tp->tp_version_tag;
            memcpy(e, &fresh, offsetof(name_ent, name) + fresh.len);
        }
    }
    put_ascii(w, "<", 1);
    put_ascii(w, e->name, e->len);
    char b[32], *end = b + sizeof(b), *p = end;
    uintptr_t a = (uintptr_t)o;
    do {
        *--p = "0123456789abcdef"[a & 15];
        a >>= 4;
    } while (a);
    *--p = 'x';
    *--p = '0';
    put_ascii(w, " object at ", 11);
    put_ascii(w, p, (size_t)(end - p));
    put_ascii(w, ">", 1);
    return true;
}

/* A small int's value without a call: one digit of the internal form. */
static inline bool small_int(PyObject *o, long long *ret)
{
#if TP_PY312
    if (!PyUnstable_Long_IsCompact((PyLongObject *)o))
        return false;
    *ret = (long long)PyUnstable_Long_CompactValue((PyLongObject *)o);
    return true;
#else
    Py_ssize_t n = Py_SIZE(o);
    if (n < -1 || n > 1)
        return false;
    *ret = (long long)n * (long long)((PyLongObject *)o)->ob_digit[0];
    return true;
#endif
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

static void render_int(rw *w, PyObject *o)
{
    long long v;
    if (!small_int(o, &v)) {
        int overflow = 0;
        v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            render_other(w, o); /* a big int: repr() (it may refuse past 4300 digits) */
            return;
        }
    }
    char b[24], *e = b + sizeof(b), *p = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = digit_pairs[d + 1];
        *--p = digit_pairs[d];
    }
    if (u >= 10) {
        *--p = digit_pairs[u * 2 + 1];
        *--p = digit_pairs[u * 2];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    put_ascii(w, p, (size_t)(e - p));
}

/* Digits of c with k of them after the point (at least one before it: the
 * zeros 0.000123 needs are added), signed as x; returns the length. */
static size_t put_fixed(char *out, double x, uint64_t c, int k)
{
    char digits[24], *e = digits + sizeof(digits), *p = e;
    while (c >= 100) {
        unsigned d = (unsigned)(c % 100) * 2;
        c /= 100;
        *--p = digit_pairs[d + 1];
        *--p = digit_pairs[d];
    }
    if (c >= 10) {
        *--p = digit_pairs[c * 2 + 1];
        *--p = digit_pairs[c * 2];
    } else {
        *--p = (char)('0' + c);
    }
    while (e - p <= k)
        *--p = '0';
    int n = (int)(e - p);
    char *d = out;
    if (x < 0)
        *d++ = '-';
    memcpy(d, p, (size_t)(n - k));
    d += n - k;
    *d++ = '.';
    if (!k) {
        *d++ = '0';
    } else {
        memcpy(d, p + n - k, (size_t)k);
        d += k;
    }
    return (size_t)(d - out);
}

/* repr() of a float in the fixed-notation range 1e-4 <= |x| < 1e16 (its
 * other forms, inf and nan return false and take PyOS_double_to_string()).
 *
 * repr(x) is the shortest decimal that reads back as x, and of those the
 * nearest to x. Integral values below 2^53 (all doubles from 2^53 to 1e16
 * are integral) are their integer. Otherwise x = m / 2^s exactly (m < 2^53,
 * 1 <= s <= 66 here), and in units of 10^-K, with K = 17 - floor(log10 x)
 * (about 18 significant digits), x is N = m 10^K / 2^s and the decimals
 * that read back as x are the integers strictly inside (N - h, N + h):
 * h = 10^K / 2^(s+1) is half an ulp in those units (a quarter below a power
 * of two, where the ulp below is half as wide), 11 to 222 units wide. With
 * everything times 2^(s+2), the bounds are exact 128-bit integers
 * (4m 10^K < 2^125). The fewest digits: strip one trailing digit while
 * some multiple of 10^(j+1) is still inside; of the multiples of 10^j
 * inside, the nearest to N. A bound that is itself an integer, or a tie for
 * nearest, is left to PyOS_double_to_string(), whose rules for them it
 * would need; a wrong guess of log10 only ever leads there too. */
static bool fixed_float(double x, char *out, size_t *ret_len)
{
    double a = x < 0 ? -x : x;
    if (x == 0) {
        memcpy(out, "-0.0", 4);
        *ret_len = signbit(x) ? 4 : 3;
        if (!signbit(x))
            memcpy(out, "0.0", 3);
        return true;
    }
    if (!(a >= 1e-4 && a < 1e16))
        return false;
    if (a < 9007199254740992.0 && a == (double)(uint64_t)a) {
        *ret_len = put_fixed(out, x, (uint64_t)a, 0);
        return true;
    }
    static const double p10d[] = {1e-4, 1e-3, 1e-2, 1e-1, 1e0,  1e1,  1e2,  1e3,  1e4,  1e5, 1e6,
                                  1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16};
    int e10 = -4;
    while (e10 < 15 && a >= p10d[e10 + 5])
        e10++;
    int K = 17 - e10; /* 2 .. 21 */
    int e2;
    double fr = frexp(a, &e2);
    uint64_t m = (uint64_t)ldexp(fr, 53);
    int s = 53 - e2;
    if (s < 1 || s > 66)
        return false;
    typedef unsigned __int128 u128;
    // clang-format off
    static const uint64_t P10[20] = {
        1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
        1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
        100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
        1000000000000000000ull, 10000000000000000000ull};
    // clang-format on
    u128 pk = K < 20 ? (u128)P10[K] : (u128)P10[19] * (K == 20 ? 10u : 100u);
    int sh = s + 2;
    u128 mask = ((u128)1 << sh) - 1;
    u128 c4 = (u128)m * pk * 4;
    u128 hi4 = c4 + 2 * pk, lo4 = c4 - (m == (1ull << 52) ? 1 : 2) * pk;
    if (!(lo4 & mask) || !(hi4 & mask))
        return false;
    if ((hi4 >> sh) >> 63)
        return false; /* past 64 bits: a wrong log10 guess */
    uint64_t cl = (uint64_t)(lo4 >> sh) + 1, fh = (uint64_t)(hi4 >> sh);
    if (cl > fh)
        return false;
    uint64_t n0 = (uint64_t)(c4 >> sh), r0 = (uint64_t)(c4 & mask);
    /* Whether some multiple of 10^(j+n) is inside only gets less likely as
     * n grows: strip 8 digits while that holds, then 4, 2 and 1 once. */
    int j = 0;
    uint64_t pj = 1;
#define STRIP(P, N)                                                                                \
    if ((cl + (P)-1) / (P) <= fh / (P)) {                                                          \
        cl = (cl + (P)-1) / (P);                                                                   \
        fh /= (P);                                                                                 \
        pj *= (P);                                                                                 \
        j += (N);                                                                                  \
    }
    for (int i = 0; i < 2; i++)
        STRIP(100000000u, 8)
    STRIP(10000u, 4)
    STRIP(100u, 2)
    STRIP(10u, 1)
#undef STRIP
    uint64_t q = cl;
    if (cl < fh) {
        /* N / 10^j rounded: up when twice its remainder passes 10^j. */
        uint64_t t = n0 / pj, rem = n0 % pj;
        uint64_t twice = 2 * rem;
        bool up;
        if (twice > pj) {
            up = true;
        } else if (pj - twice >= 2) {
            up = false;
        } else if (pj == twice) {
            if (!r0)
                return false; /* exactly halfway */
            up = true;
        } else { /* 10^j = 2 rem + 1: the fraction of N decides */
            u128 half = (u128)1 << (sh - 1);
            if ((u128)r0 == half)
                return false;
            up = (u128)r0 > half;
        }
        q = t + up;
        if (q < cl)
            q = cl;
        if (q > fh)
            q = fh;
    }
    *ret_len = put_fixed(out, x, q, K - j);
    return true;
}

static void render_float(rw *w, PyObject *o)
{
    char b[48];
    size_t n;
    if (fixed_float(PyFloat_AS_DOUBLE(o), b, &n)) {
        put_ascii(w, b, n);
        return;
    }
    char *s = PyOS_double_to_string(PyFloat_AS_DOUBLE(o), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!s) {
        PyErr_Clear();
        put_unprintable(w, o);
        return;
    }
    put_lit(w, s);
    PyMem_Free(s);
}

static void render(rw *w, PyObject *o);

static bool enter(rw *w, PyObject *o)
{
    for (int i = 0; i < w->ncont; i++) {
        if (w->cont[i] == o) {
            put_lit(w, "<circular reference>");
            return false;
        }
    }
    if (w->ncont == MAX_NEST) {
        /* Cut here: "..." marks it. */
        if (!w->cut_set) {
            w->cut = w->p;
            w->cut_set = true;
        }
        w->full = true;
        return false;
    }
    w->cont[w->ncont++] = o;
    return true;
}

static void leave(rw *w)
{
    w->ncont--;
}

/* A list or tuple. A __repr__ run for an element may change a list: every
 * element is held while rendered and the length re-read each time. */
static void render_seq(rw *w, PyObject *o, bool tuple)
{
    if (!enter(w, o))
        return;
    put_ascii(w, tuple ? "(" : "[", 1);
    Py_ssize_t n = tuple ? PyTuple_GET_SIZE(o) : PyList_GET_SIZE(o);
    for (Py_ssize_t i = 0; i < n && !w->full; i++) {
        if (!tuple && i >= PyList_GET_SIZE(o))
            break;
        PyObject *it = tuple ? PyTuple_GET_ITEM(o, i) : PyList_GET_ITEM(o, i);
        if (i)
            put_ascii(w, ", ", 2);
        Py_INCREF(it);
        render(w, it);
        Py_DECREF(it);
    }
    if (tuple && n == 1)
        put_ascii(w, ",", 1);
    put_ascii(w, tuple ? ")" : "]", 1);
    leave(w);
}

static void render_dict(rw *w, PyObject *o)
{
    if (!enter(w, o))
        return;
    put_ascii(w, "{", 1);
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    bool first = true;
    while (!w->full && PyDict_Next(o, &pos, &k, &v)) {
        if (!first)
            put_ascii(w, ", ", 2);
        first = false;
        Py_INCREF(k);
        Py_INCREF(v);
        render(w, k);
        put_ascii(w, ": ", 2);
        render(w, v);
        Py_DECREF(k);
        Py_DECREF(v);
    }
    put_ascii(w, "}", 1);
    leave(w);
}

static void render_set(rw *w, PyObject *o)
{
    bool frozen = PyFrozenSet_CheckExact(o);
    if (PySet_GET_SIZE(o) == 0) {
        put_lit(w, frozen ? "frozenset()" : "set()");
        return;
    }
    PyObject *iter = PyObject_GetIter(o);
    if (!iter) {
        PyErr_Clear();
        put_unprintable(w, o);
        return;
    }
    if (!enter(w, o)) {
        Py_DECREF(iter);
        return;
    }
    put_lit(w, frozen ? "frozenset({" : "{");
    PyObject *it;
    bool first = true;
    while (!w->full && (it = PyIter_Next(iter)) != NULL) {
        if (!first)
            put_ascii(w, ", ", 2);
        first = false;
        render(w, it);
        Py_DECREF(it);
    }
    if (PyErr_Occurred())
        PyErr_Clear(); /* the set changed size while a __repr__ ran */
    put_lit(w, frozen ? "})" : "}");
    leave(w);
    Py_DECREF(iter);
}

static void render(rw *w, PyObject *o)
{
    if (w->full)
        return;
    if (o == Py_None)
        put_ascii(w, "None", 4);
    else if (o == Py_True)
        put_ascii(w, "True", 4);
    else if (o == Py_False)
        put_ascii(w, "False", 5);
    else if (PyLong_CheckExact(o))
        render_int(w, o);
    else if (PyUnicode_CheckExact(o))
        render_str(w, o);
    else if (PyFloat_CheckExact(o))
        render_float(w, o);
    else if (PyTuple_CheckExact(o))
        render_seq(w, o, true);
    else if (PyList_CheckExact(o))
        render_seq(w, o, false);
    else if (PyDict_CheckExact(o))
        render_dict(w, o);
    else if (PyBytes_CheckExact(o))
        render_bytes(w, o);
    else if (PySet_CheckExact(o) || PyFrozenSet_CheckExact(o))
        render_set(w, o);
    else if (Py_TYPE(o)->tp_repr == PyBaseObject_Type.tp_repr && render_default_object(w, o))
        return;
    else
        render_other(w, o);
}

int tp_capture_repr(tp_buf *out, PyObject *o, uint32_t max_repr)
{
    rw w;
    if (rw_init(&w, out, max_repr) < 0)
        return -ENOMEM;
    render(&w, o);
    rw_finish(&w);
    return 0;
}

/* tp_capture_args() into out, where tp_capture_args_room() bytes are
 * reserved already. */
static void write_args(tp_buf *out, const tp_codeinfo *ci, PyObject *const *locals,
                       uint32_t max_repr)
{
    for (uint32_t i = 0; i < ci->nparams; i++) {
        const tp_param *p = &ci->params[i];
        char *d = out->data + out->len;
        if (i) {
            *d++ = ',';
            *d++ = ' ';
        }
        for (int k = 0; k < p->stars; k++)
            *d++ = '*';
        memcpy(d, p->name, (size_t)p->len);
        d += p->len;
        *d++ = '=';
        *d = '\0';
        out->len = (size_t)(d - out->data);
        PyObject *v = tp_capture_param(p, locals);
        if (!v) {
            memcpy(d, "<unbound>", 10);
            out->len += 9;
            continue;
        }
        rw w;
        rw_start(&w, out, max_repr);
        Py_INCREF(v);
        render(&w, v);
        rw_finish(&w);
        Py_DECREF(v);
    }
}

int tp_capture_args(tp_buf *out, const tp_codeinfo *ci, PyObject *const *locals, uint32_t max_repr)
{
    /* One reservation for the whole text. */
    if (tp_buf_reserve(out, tp_capture_args_room(ci, max_repr)) < 0)
        return -ENOMEM;
    write_args(out, ci, locals, max_repr);
    return 0;
}

/* A tp_buf over dst's room bytes, which is never grown (the writers stay
 * inside the room they were given). */
static tp_buf view_of(char *dst, size_t room)
{
    tp_buf b = TP_BUF_INIT;
    b.data = dst;
    b.cap = room + 1;
    return b;
}

size_t tp_capture_args_into(char *dst, const tp_codeinfo *ci, PyObject *const *locals,
                            uint32_t max_repr)
{
    tp_buf b = view_of(dst, tp_capture_args_room(ci, max_repr));
    write_args(&b, ci, locals, max_repr);
    return b.len;
}

size_t tp_capture_repr_into(char *dst, PyObject *o, uint32_t max_repr)
{
    tp_buf b = view_of(dst, rw_room(max_repr));
    rw w;
    rw_start(&w, &b, max_repr);
    render(&w, o);
    rw_finish(&w);
    return b.len;
}

int tp_capture_exc(tp_buf *type_out, tp_buf *msg_out, PyObject *exc, uint32_t max_repr)
{
    if (tp_buf_puts(type_out, _PyType_Name(Py_TYPE(exc))) < 0)
        return -ENOMEM;
    rw w;
    if (rw_init(&w, msg_out, max_repr) < 0)
        return -ENOMEM;
    PyObject *s = PyObject_Str(exc);
    if (s) {
        render_raw_str(&w, s);
        Py_DECREF(s);
    } else {
        drop_error();
        put_unprintable(&w, exc);
    }
    rw_finish(&w);
    return 0;
}

bool tp_capture_exc_is_iteration_end(PyObject *exc)
{
    return PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_StopIteration) ||
           PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_StopAsyncIteration);
}
