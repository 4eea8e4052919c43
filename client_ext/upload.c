/* Session.upload() and friends; see upload.h. Everything here runs with the
 * GIL held and never waits on a socket (wait_upload() waits with the GIL
 * released, and only when asked to). */
#include "upload.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "paths.h"
#include "sender.h"
#include "tp_err.h"
#include "tp_version.h"
#include "wire.h"

#define FUNCS_PER_FRAME 8192u      /* descriptors in one FUNCS frame */
#define FUNCS_BYTES     (4u << 20) /* and about this many bytes of names */

static tp_session *S(PyObject *o)
{
    return (tp_session *)o;
}

static bool atexit_registered;

/* ---- frames (they need the Python objects) ----------------------------------------- */

/* The UTF-8 of a str, or NULL (error cleared) when it has none. */
static const char *utf8(PyObject *o, Py_ssize_t *ret_len)
{
    Py_ssize_t n = 0;
    const char *s = o && PyUnicode_Check(o) ? PyUnicode_AsUTF8AndSize(o, &n) : NULL;
    if (!s)
        PyErr_Clear();
    if (ret_len)
        *ret_len = s ? n : 0;
    return s;
}

/* HELLO: who we are, asking for caps. argv comes from sys.argv (str items
 * only). */
static int frame_hello(tp_buf *out, uint32_t caps)
{
    char host[256] = "", py[32];
    const char *ver = Py_GetVersion();
    size_t vn = strcspn(ver, " ");
    snprintf(py, sizeof(py), "%.*s", (int)(vn < sizeof(py) ? vn : sizeof(py) - 1), ver);
    if (gethostname(host, sizeof(host) - 1) < 0)
        host[0] = '\0';
    PyObject *argv = PySys_GetObject("argv"); /* borrowed */
    Py_ssize_t argc = argv && PyList_Check(argv) ? PyList_GET_SIZE(argv) : 0;
    const char **av = PyMem_RawCalloc((size_t)argc + 1, sizeof(char *));
    if (!av)
        return -ENOMEM;
    size_t n = 0;
    for (Py_ssize_t i = 0; i < argc; i++) {
        const char *a = utf8(PyList_GET_ITEM(argv, i), NULL);
        if (a)
            av[n++] = a;
    }
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_HELLO;
    m.caps = caps;
    m.pid = (int64_t)getpid();
    m.client = "tracepatch/" TP_VERSION;
    m.python = py;
    m.hostname = host[0] ? host : NULL;
    /* Where the trace was recorded, as trace files say (output.c set_env). */
    char cwd[4096];
    m.platform = Py_GetPlatform();
    m.cwd = getcwd(cwd, sizeof(cwd));
    m.argv = av;
    m.argc = n;
    int r = tp_wire_encode(&m, out);
    if (r == TP_ERR_LIMIT || r == TP_ERR_FRAME_TOO_LARGE) {
        /* An argv beyond the wire's limits: the trace matters more. */
        m.argv = NULL;
        m.argc = 0;
        r = tp_wire_encode(&m, out);
    }
    PyMem_RawFree(av);
    return r;
}

/* FUNCS: the functions the trace names from id `from` on, in frames of
 * bounded size. Names without UTF-8 (lone surrogates) read "?" as in the
 * session's own tree. */
static int frame_funcs(tp_session *s, uint32_t from, tp_buf *out)
{
    uint32_t left = s->funcs.size > from ? s->funcs.size - from : 0;
    if (!left)
        return 0;
    uint32_t chunk = left < FUNCS_PER_FRAME ? left : FUNCS_PER_FRAME;
    tp_wire_func *f = PyMem_RawCalloc(chunk, sizeof(*f));
    if (!f)
        return -ENOMEM;
    int r = 0;
    for (uint32_t i = from; !r && i < s->funcs.size;) {
        size_t n = 0, bytes = 0;
        while (i < s->funcs.size && n < chunk && bytes < FUNCS_BYTES) {
            const tp_funcent *e = &s->funcs.items[i];
            Py_ssize_t lm, lq, lf;
            const char *m = utf8(e->module, &lm), *q = utf8(e->qualname, &lq);
            const char *file = utf8(e->file, &lf);
            if (!m || !q || !file) {
                m = m ? m : "?";
                q = q ? q : "?";
                file = file ? file : "";
            }
            f[n++] = (tp_wire_func){i, m, q, file, e->lineno};
            bytes += (size_t)(lm + lq + lf) + 16;
            i++;
        }
        tp_msg msg;
        memset(&msg, 0, sizeof(msg));
        msg.type = TP_MSG_FUNCS;
        msg.funcs = f;
        msg.nfuncs = n;
        r = tp_wire_encode(&msg, out);
    }
    PyMem_RawFree(f);
    return r;
}

static int frame_begin(tp_session *s, tp_buf *out)
{
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_BEGIN;
    m.trace = s->trace_id;
    m.label = s->label ? utf8(s->label, NULL) : NULL;
    m.wall_start_ns = s->wall_start_ns;
    m.config_json = s->config_json ? utf8(s->config_json, NULL) : NULL;
    return tp_wire_encode(&m, out);
}

/* Why lines= data did not go: PROTOCOL.md 4.6a names it in END's drop. */
#define LINES_DROPPED "lines over 8 MiB"

/* The JSON texts that go before END: lines= data and source, each a bytes
 * object or NULL. */
typedef struct end_texts {
    PyObject *lines, *source; /* borrowed */
} end_texts;

/* LINES or SOURCE before END, when there is such text (bytes: the JSON of
 * the trace file's "lines" or "source" key). Text over the wire's limit is
 * not sent: the trace goes without it, and *ret_dropped says so (END names
 * lost lines, PROTOCOL.md 4.6a; lost source goes unnamed, 4.6b). */
static int frame_text(tp_session *s, int type, PyObject *bytes, tp_buf *out, bool *ret_dropped)
{
    *ret_dropped = false;
    size_t len = bytes ? (size_t)PyBytes_GET_SIZE(bytes) : 0;
    if (len == 0)
        return 0;
    if (len > (type == TP_MSG_LINES ? TP_WIRE_MAX_LINES : TP_WIRE_MAX_SOURCE)) {
        *ret_dropped = true;
        return 0;
    }
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.trace = s->trace_id;
    if (type == TP_MSG_LINES) {
        m.lines_json = PyBytes_AS_STRING(bytes);
        m.lines_len = len;
    } else {
        m.source_json = PyBytes_AS_STRING(bytes);
        m.source_len = len;
    }
    return tp_wire_encode(&m, out);
}

static int frame_end(tp_session *s, bool lines_dropped, tp_buf *out);

/* LINES, SOURCE, END into out. */
static int end_frames(tp_session *s, const end_texts *tx, tp_buf *out)
{
    bool lines_dropped, source_dropped;
    int r = frame_text(s, TP_MSG_LINES, tx->lines, out, &lines_dropped);
    if (!r)
        r = frame_text(s, TP_MSG_SOURCE, tx->source, out, &source_dropped);
    if (!r)
        r = frame_end(s, lines_dropped, out);
    return r;
}

static int frame_end(tp_session *s, bool lines_dropped, tp_buf *out)
{
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_END;
    m.trace = s->trace_id;
    m.end_ns = (uint64_t)(s->end_ns > 0 ? s->end_ns : 0);
    m.call_count = s->call_count;
    m.limit_reason = tp_session_limit_reason(s);
    m.dropped = s->dropped;
    if (s->dropped)
        m.drop_reason = lines_dropped ? "out of memory; " LINES_DROPPED : "out of memory";
    else
        m.drop_reason = lines_dropped ? LINES_DROPPED : NULL;
    return tp_wire_encode(&m, out);
}

/* ---- upload() ------------------------------------------------------------------------- */

static void register_atexit(void)
{
    if (atexit_registered)
        return;
    PyObject *mod = PyImport_ImportModule("tracepatch._tracepatch");
    PyObject *fn = mod ? PyObject_GetAttrString(mod, "_flush_uploads") : NULL;
    PyObject *ae = fn ? PyImport_ImportModule("atexit") : NULL;
    PyObject *r = ae ? PyObject_CallMethod(ae, "register", "O", fn) : NULL;
    atexit_registered = r != NULL;
    Py_XDECREF(r);
    Py_XDECREF(ae);
    Py_XDECREF(fn);
    Py_XDECREF(mod);
    PyErr_Clear();
}

/* The socket path: the argument (str or path-like), else the default. */
static int socket_path(PyObject *arg, char *buf, size_t size)
{
    if (!arg || arg == Py_None) {
        int r = tp_paths_client_socket(buf, size);
        if (r)
            PyErr_SetString(PyExc_ValueError, "the tphd socket path is too long");
        return r ? -1 : 0;
    }
    PyObject *p = PyOS_FSPath(arg);
    if (!p)
        return -1;
    PyObject *b = NULL;
    int ok = PyUnicode_FSConverter(p, &b);
    Py_DECREF(p);
    if (!ok)
        return -1;
    int r = 0;
    if ((size_t)PyBytes_GET_SIZE(b) >= size || PyBytes_GET_SIZE(b) == 0) {
        PyErr_Format(PyExc_ValueError,
                     "socket_path must be a non-empty path shorter than %zu "
                     "bytes, got %R",
                     size, arg);
        r = -1;
    } else {
        memcpy(buf, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b) + 1);
    }
    Py_DECREF(b);
    return r;
}

/* Settle u without the sender; FAILED counts the trace's events dropped and
 * says why through the session's errors. Returns False. */
static PyObject *not_sent(tp_session *s, tp_upload *u, int state, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    uint64_t dropped = state == TP_UPLOAD_FAILED ? s->log.nrecords : 0;
    tp_sender_upload_settle(u, state, dropped, msg);
    if (state == TP_UPLOAD_FAILED)
        tp_session_error(s, "%s", msg);
    Py_RETURN_FALSE;
}

static int build_frames(tp_session *s, const end_texts *tx, tp_buf *hello, tp_buf *pre, tp_buf *end)
{
    int r = frame_hello(hello, TP_CAP_ACK);
    if (!r)
        r = frame_funcs(s, 0, pre);
    if (!r)
        r = frame_begin(s, pre);
    if (!r)
        r = end_frames(s, tx, end);
    return r;
}

static PyObject *hand_over(tp_session *s, tp_upload *u, tp_client_fd *probe, bool required,
                           const end_texts *tx)
{
    const char *path = tp_sender_upload_path(u);
    tp_buf hello = TP_BUF_INIT, pre = TP_BUF_INIT, end = TP_BUF_INIT;
    int r = build_frames(s, tx, &hello, &pre, &end);
    if (r) {
        tp_buf_free(&hello);
        tp_buf_free(&pre);
        tp_buf_free(&end);
        tp_client_fd_close(probe);
        return not_sent(s, u, TP_UPLOAD_FAILED, "upload to tphd at %s failed: %s", path,
                        tp_strerror(r));
    }
    register_atexit();
    r = tp_sender_submit(u, s, probe, &hello, &pre, &end);
    if (r == -ESHUTDOWN)
        return not_sent(s, u, required ? TP_UPLOAD_FAILED : TP_UPLOAD_NONE,
                        "not uploaded to tphd at %s: the interpreter is exiting", path);
    if (r == -EAGAIN)
        return not_sent(s, u, TP_UPLOAD_FAILED,
                        "upload to tphd at %s failed: %d traces are already waiting to be sent",
                        path, TP_SENDER_QUEUE_MAX);
    if (r)
        return not_sent(s, u, TP_UPLOAD_FAILED, "upload to tphd at %s failed: %s", path,
                        tp_strerror(r));
    Py_RETURN_TRUE;
}

/* ---- streaming while recording ----------------------------------------------------- */

/* How often a streaming trace publishes what it recorded: the bound on how
 * late a call shows in tphd while the program keeps running. */
#define STREAM_TICK_NS (50 * 1000000LL)

int tp_upload_stream_socket(tp_session *s, PyObject *arg)
{
    free(s->stream_path);
    s->stream_path = NULL;
    if (arg == Py_None)
        return 0;
    char path[TP_PATHS_SOCKET_MAX];
    if (socket_path(arg, path, sizeof(path)) < 0)
        return -1;
    if (!(s->stream_path = strdup(path))) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

bool tp_upload_streamed(tp_session *s)
{
    return s->streamed;
}

/* ---- publishing while the program is idle ----------------------------------------- */

/* A tick is due at the first call after stream_due, so calls recorded
 * before the program goes idle (a sleep, a blocking read, a long C call)
 * would wait for its next call. Once a stream is open, a thread of the
 * extension's own looks every IDLE_LOOK_NS: a stream overdue by more than
 * that, it ticks itself, with the GIL, as a call would (a hook never leaves
 * the log half-written where the GIL can change hands). It ends once no
 * session may stream for IDLE_QUIT_S, so a program whose uploads are done
 * runs with one thread again; it takes nothing the sender needs, so when
 * the interpreter finalises and stops it at the GIL, nothing waits for it. */
#define IDLE_LOOK_NS (50 * 1000000LL)
#define IDLE_QUIT_S  1

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool wanted; /* a stream opened since the thread last looked (mu) */
    long pid;    /* the process the thread runs in; 0: none runs (mu) */
} idle = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};

/* Tick every recording session's stream that no call ticked for a while.
 * True when a session may still stream. */
static bool idle_tick_all(void)
{
    int64_t now = tp_now();
    bool any = false;
    for (size_t i = 0; i < tp_module_g.active.size; i++) {
        tp_session *s = tp_module_g.active.items[i];
        if (!s->recording || s->stream_due == INT64_MAX || s->start_pid != (long)getpid())
            continue;
        any = true;
        if (now - s->stream_due >= (int64_t)((double)IDLE_LOOK_NS / s->ns_per_tick))
            tp_upload_stream_tick(s, now);
    }
    return any;
}

static void *idle_main(void *arg)
{
    PyGILState_STATE gs = PyGILState_Ensure();
    const struct timespec pause = {0, IDLE_LOOK_NS};
    bool quit = false;
    while (!quit) {
        bool any = idle_tick_all();
        Py_BEGIN_ALLOW_THREADS;
        pthread_mutex_lock(&idle.mu);
        if (!any && !idle.wanted) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_QUIT_S;
            while (!idle.wanted &&
                   pthread_cond_timedwait(&idle.wake, &idle.mu, &until) != ETIMEDOUT)
                ;
            if (!idle.wanted) {
                quit = true;
                idle.pid = 0; /* the next stream starts a new thread */
            }
        }
        idle.wanted = false;
        pthread_mutex_unlock(&idle.mu);
        if (!quit)
            nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS;
    }
    PyGILState_Release(gs);
    return NULL;
}

/* A stream opened (GIL held): make sure the idle thread looks at it. */
static void idle_watch(void)
{
    long pid = (long)getpid();
    if (idle.pid && idle.pid != pid) {
        /* A forked child (one thread): the parent's thread is not here, and
         * its lock and condition may have been copied mid-use. */
        pthread_mutex_init(&idle.mu, NULL);
        pthread_cond_init(&idle.wake, NULL);
        idle.pid = 0;
    }
    pthread_mutex_lock(&idle.mu);
    idle.wanted = true;
    if (!idle.pid) {
        if (!tp_sender_spawn(idle_main))
            idle.pid = pid; /* else calls alone tick the stream */
    } else {
        pthread_cond_signal(&idle.wake);
    }
    pthread_mutex_unlock(&idle.mu);
}

/* Open the stream: HELLO and BEGIN to the sender, which connects. */
static int stream_open(tp_session *s)
{
    tp_upload *u;
    int r = tp_sender_upload_new(&u, s->stream_path);
    if (r)
        return r;
    tp_buf hello = TP_BUF_INIT, pre = TP_BUF_INIT;
    r = frame_hello(&hello, TP_CAP_ACK | TP_CAP_STORED);
    if (!r)
        r = frame_begin(s, &pre);
    if (!r) {
        register_atexit();
        r = tp_sender_stream_open(u, s, &hello, &pre, tp_evlog_mult(s->ns_per_tick));
    }
    tp_buf_free(&hello);
    tp_buf_free(&pre);
    if (r) {
        tp_sender_upload_unref(u);
        return r;
    }
    s->upload = u;
    s->funcs_sent = 0;
    s->streamed = true;
    idle_watch();
    return 0;
}

/* Publish the log and the functions not described yet; end (the LINES and
 * END frames) closes the stream. */
static int stream_publish(tp_session *s, tp_buf *end)
{
    tp_buf funcs = TP_BUF_INIT;
    int r = frame_funcs(s, s->funcs_sent, &funcs);
    if (!r)
        r = end ? tp_sender_stream_close(s->upload, &s->log, &funcs, end)
                : tp_sender_stream_publish(s->upload, &s->log, &funcs);
    if (!r)
        s->funcs_sent = s->funcs.size;
    tp_buf_free(&funcs);
    return r;
}

/* The log holds more than stream_memory: free what tphd has stored (whole
 * blocks and text chunks, oldest first). Views of the trace read it back
 * from tphd (output.c). */
static void stream_release(tp_session *s)
{
    tp_evlog_pos at;
    char id[33];
    if (tp_evlog_bytes(&s->log) <= s->stream_memory ||
        !tp_sender_stream_stored(s->upload, &at, id) || at.records <= s->released.records)
        return;
    tp_evlog_release(&s->log, &s->released, &at);
    s->released = at;
    memcpy(s->released_id, id, sizeof(s->released_id));
}

void tp_upload_stream_tick(tp_session *s, int64_t now)
{
    s->stream_due = now + (int64_t)((double)STREAM_TICK_NS / s->ns_per_tick);
    /* A hook event: whatever exception is being raised stays as it was. */
#if TP_PY312
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
#endif
    int r = 0;
    if (!s->upload)
        r = s->start_pid == (long)getpid() ? stream_open(s) : -ECANCELED;
    if (!r)
        r = stream_publish(s, NULL);
    if (!r)
        stream_release(s);
    if (r)
        s->stream_due = INT64_MAX; /* failed (upload() sends the trace anew) or forked */
    s->due = s->stream_due < s->time_due ? s->stream_due : s->time_due;
#if TP_PY312
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(et, ev, tb);
#endif
}

/* ---- reading back what was released ---------------------------------------------- */

#define READ_BACK_NS  (60 * 1000000000LL) /* the whole read-back of a big trace */
#define READ_STALL_NS (10 * 1000000000LL) /* tphd silent this long: give up */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The text bytes that the first n records of a batch own, or SIZE_MAX when
 * the text ends first. */
static size_t text_of(const uint8_t *rec, size_t n, const uint8_t *text, size_t tlen)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = rec + i * sizeof(tp_event);
        if (!(e[1] & TP_EVF_TEXT))
            continue;
        for (unsigned k = tp_event_text_entries(e[0]); k; k--) {
            if (tlen - off < 4 || le32(text + off) > tlen - off - 4)
                return SIZE_MAX;
            off += 4 + le32(text + off);
        }
    }
    return off;
}

/* Feed the whole batches at the front of acc (the events op's body) to t,
 * at most *left records more; what was used leaves acc. */
static int feed_batches(tp_buf *acc, tp_tree *t, uint64_t *left)
{
    size_t used = 0;
    int r = 0;
    while (!r && *left && acc->len - used >= 8) {
        const uint8_t *p = (const uint8_t *)acc->data + used;
        uint64_t nrec = le32(p), tlen = le32(p + 4);
        uint64_t size = 8 + nrec * sizeof(tp_event) + tlen;
        if (acc->len - used < size)
            break;
        size_t n = nrec < *left ? (size_t)nrec : (size_t)*left;
        size_t tl = text_of(p + 8, n, p + 8 + nrec * sizeof(tp_event), (size_t)tlen);
        r = tl == SIZE_MAX ? TP_ERR_MALFORMED
                           : tp_tree_feed(t, p + 8, n, p + 8 + nrec * sizeof(tp_event), tl);
        *left -= n;
        used += (size_t)size;
    }
    if (used) {
        memmove(acc->data, (uint8_t *)acc->data + used, acc->len - used);
        acc->len -= used;
    }
    return r;
}

/* The events op on a connection of our own (no GIL: only t and the
 * frames are touched). */
static int read_back(const char *path, const tp_buf *hello, const tp_buf *query, tp_tree *t,
                     uint64_t records, char *why, size_t whysz)
{
    tp_client c = {.fd = -1};
    tp_msg m;
    bool sent;
    int64_t deadline = tp_client_now() + READ_BACK_NS;
    int r = tp_client_open(&c, path, NULL, 0, NULL);
    if (!r)
        r = tp_client_handshake(&c, hello->data, hello->len, READ_STALL_NS, &m, &sent);
    if (!r && m.type == TP_MSG_ERROR) {
        snprintf(why, whysz, "tphd refused the connection: %s", m.message);
        r = m.code ? m.code : TP_ERR_SEQUENCE;
    }
    if (!r)
        r = tp_client_write(&c, query->data, query->len, READ_STALL_NS);
    tp_buf acc = TP_BUF_INIT;
    uint64_t left = records;
    bool more = !r;
    while (!r && more) {
        r = tp_client_read_reply(&c, deadline, &m);
        if (r)
            break;
        if (m.type != TP_MSG_REPLY)
            continue;
        if (!m.ok) {
            snprintf(why, whysz, "tphd: %s", m.message ? m.message : tp_strerror(m.code));
            r = m.code ? m.code : TP_ERR_DB;
            break;
        }
        more = m.more;
        if (left && m.body_len && tp_buf_append(&acc, m.body, m.body_len) < 0)
            r = -ENOMEM;
        if (!r)
            r = feed_batches(&acc, t, &left);
    }
    if (!r && left) {
        snprintf(why, whysz, "tphd sent %llu records fewer than it stored",
                 (unsigned long long)left);
        r = TP_ERR_TRUNCATED;
    }
    if (r && !why[0])
        snprintf(why, whysz, "%s", tp_strerror(r));
    tp_buf_free(&acc);
    tp_client_close(&c);
    return r;
}

int tp_upload_read_back(tp_session *s, tp_tree *t, char *why, size_t whysz)
{
    why[0] = '\0';
    if (!s->stream_path)
        return -EINVAL;
    tp_buf hello = TP_BUF_INIT, query = TP_BUF_INIT;
    char args[96];
    snprintf(args, sizeof(args), "{\"id\":\"%s\",\"records\":%llu}", s->released_id,
             (unsigned long long)s->released.records);
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_QUERY;
    m.id = 1;
    m.op = "events";
    m.args_json = args;
    int r = frame_hello(&hello, TP_CAP_QUERY);
    if (!r)
        r = tp_wire_encode(&m, &query);
    if (!r) {
        const char *path = s->stream_path;
        uint64_t records = s->released.records;
        Py_BEGIN_ALLOW_THREADS r = read_back(path, &hello, &query, t, records, why, whysz);
        Py_END_ALLOW_THREADS
    } else {
        snprintf(why, whysz, "%s", tp_strerror(r));
    }
    tp_buf_free(&hello);
    tp_buf_free(&query);
    return r;
}

/* upload() of a trace that streamed: the end frames close the stream. False
 * when the stream is over already (it failed; upload() then starts anew). */
static bool stream_close(tp_session *s, const end_texts *tx)
{
    tp_buf end = TP_BUF_INIT;
    int r = end_frames(s, tx, &end);
    if (!r)
        r = stream_publish(s, &end);
    tp_buf_free(&end);
    return r == 0;
}

PyObject *tp_upload_upload(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"socket_path", "required", "lines", "source", NULL};
    tp_session *s = S(self);
    PyObject *arg = Py_None, *lines = Py_None, *source = Py_None; /* borrowed */
    int required = 0;
    char path[TP_PATHS_SOCKET_MAX];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$pOO:upload", kw, &arg, &required, &lines,
                                     &source))
        return NULL;
    if ((lines != Py_None && !PyBytes_Check(lines)) ||
        (source != Py_None && !PyBytes_Check(source))) {
        PyObject *bad = lines != Py_None && !PyBytes_Check(lines) ? lines : source;
        PyErr_Format(PyExc_TypeError, "%s must be bytes (JSON text) or None, got %.100s",
                     bad == lines ? "lines" : "source", Py_TYPE(bad)->tp_name);
        return NULL;
    }
    end_texts tx = {lines == Py_None ? NULL : lines, source == Py_None ? NULL : source};
    if (s->state != TP_SESSION_STOPPED) {
        PyErr_SetString(PyExc_RuntimeError,
                        s->state == TP_SESSION_ACTIVE
                            ? "the Session is still recording; call stop() first"
                            : "the Session was never started");
        return NULL;
    }
    tp_sender_reap();
    if (s->upload && tp_sender_upload_is_stream(s->upload) &&
        tp_sender_upload_state(s->upload) == TP_UPLOAD_PENDING && !s->stream_closed) {
        s->stream_closed = true;
        if (stream_close(s, &tx))
            Py_RETURN_TRUE;
    }
    if (s->upload) {
        int st = tp_sender_upload_state(s->upload);
        if (st == TP_UPLOAD_PENDING || st == TP_UPLOAD_ACKED)
            Py_RETURN_TRUE; /* once is enough */
        if (s->released.records)
            /* Its start is only in tphd now (a truncated trace there): it
             * cannot be sent anew. The views still read it back. */
            Py_RETURN_FALSE;
    }
    if (socket_path(arg, path, sizeof(path)) < 0)
        return NULL;
    tp_upload *u;
    if (tp_sender_upload_new(&u, path) < 0)
        return PyErr_NoMemory();
    tp_sender_upload_unref(s->upload);
    s->upload = u;
    if (s->start_pid != (long)getpid())
        return not_sent(s, u, TP_UPLOAD_NONE,
                        "recorded before a fork, in process %ld, which uploads it", s->start_pid);
    tp_client_fd probe = {-1, 0, 0};
    char why[192] = "";
    int r = 0;
    if (!tp_sender_recently_reached(path))
        r = tp_client_dial(path, &probe, why, sizeof(why));
    if (r == TP_ERR_PERM)
        return not_sent(s, u, TP_UPLOAD_FAILED, "refused to upload: %s", why);
    if (r && r != -EAGAIN)
        return not_sent(s, u, required ? TP_UPLOAD_FAILED : TP_UPLOAD_NONE,
                        "no tphd listening at %s (%s)", path, tp_strerror(r));
    return hand_over(s, u, &probe, required, &tx);
}

/* ---- results ----------------------------------------------------------------------------- */

PyObject *tp_upload_wait(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"timeout", NULL};
    tp_session *s = S(self);
    double timeout = 2.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|d:wait_upload", kw, &timeout))
        return NULL;
    if (!isfinite(timeout) || timeout < 0 || timeout > 1e6) {
        PyErr_Format(PyExc_ValueError, "timeout must be a number of seconds >= 0, got %R",
                     PyTuple_Size(args) ? PyTuple_GET_ITEM(args, 0) : Py_None);
        return NULL;
    }
    tp_sender_reap();
    if (!s->upload)
        Py_RETURN_FALSE;
    int st = tp_sender_upload_state(s->upload);
    if (st == TP_UPLOAD_PENDING)
        st = tp_sender_wait(s->upload, (int64_t)(timeout * 1e9));
    return PyBool_FromLong(st == TP_UPLOAD_ACKED);
}

PyObject *tp_upload_get_state(PyObject *self, void *closure)
{
    static const char *names[] = {"none", "pending", "acked", "failed"};
    tp_session *s = S(self);
    tp_sender_reap();
    int st = s->upload ? tp_sender_upload_state(s->upload) : TP_UPLOAD_NONE;
    return PyUnicode_FromString(names[st]);
}

static PyObject *str_or_none(const char *v)
{
    return v ? PyUnicode_DecodeFSDefault(v) : Py_NewRef(Py_None);
}

PyObject *tp_upload_get_error(PyObject *self, void *closure)
{
    tp_session *s = S(self);
    tp_sender_reap();
    return str_or_none(s->upload ? tp_sender_upload_error(s->upload) : NULL);
}

PyObject *tp_upload_get_refused(PyObject *self, void *closure)
{
    tp_session *s = S(self);
    tp_sender_reap();
    return PyBool_FromLong(s->upload && tp_sender_upload_refused(s->upload));
}

PyObject *tp_upload_get_socket(PyObject *self, void *closure)
{
    tp_session *s = S(self);
    return str_or_none(s->upload ? tp_sender_upload_path(s->upload) : NULL);
}

PyObject *tp_upload_get_url(PyObject *self, void *closure)
{
    tp_session *s = S(self);
    tp_sender_reap();
    const char *url = s->upload ? tp_sender_upload_url(s->upload) : NULL;
    return url ? PyUnicode_FromString(url) : Py_NewRef(Py_None);
}

uint64_t tp_upload_dropped(tp_session *s)
{
    return s->upload ? tp_sender_upload_dropped(s->upload) : 0;
}

/* ---- module functions ---------------------------------------------------------------------- */

PyObject *tp_upload_default_socket(PyObject *mod, PyObject *unused)
{
    char path[TP_PATHS_SOCKET_MAX];
    if (tp_paths_client_socket(path, sizeof(path)) < 0) {
        PyErr_SetString(PyExc_ValueError, "the tphd socket path is too long");
        return NULL;
    }
    return PyUnicode_DecodeFSDefault(path);
}

PyObject *tp_upload_flush(PyObject *mod, PyObject *args)
{
    PyObject *arg = Py_None;
    if (!PyArg_ParseTuple(args, "|O:_flush_uploads", &arg))
        return NULL;
    if (arg == Py_None) /* the bound scales with what is left */
        return PyBool_FromLong(tp_sender_flush(-1));
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred())
        return NULL;
    if (!isfinite(timeout) || timeout < 0)
        timeout = 0;
    return PyBool_FromLong(tp_sender_flush((int64_t)(timeout * 1e9)));
}

PyObject *tp_upload_sender_info(PyObject *mod, PyObject *unused)
{
    return Py_BuildValue("{sNsn}", "running", PyBool_FromLong(tp_sender_running()), "pending",
                         (Py_ssize_t)tp_sender_pending());
}
