/* What a connection's frames do: the handshake, uploads handed to the store,
 * queries run on worker threads; and what comes back: store completions
 * (ACKs, throttling), trace finalization and retention in the background. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "query.h"
#include "finalize.h"
#include "conn.h"
#include "dispatch.h"
#include "server_priv.h"
#include "tp_err.h"
#include "tp_version.h"
#include "util.h"

#define FINALIZE_BATCH 64

/* ---- Handshake and uploads -------------------------------------------------------- */

static void on_hello(tp_conn *c, const tp_msg *m)
{
    char err[256];
    if (m->version != TP_WIRE_VERSION) {
        snprintf(err, sizeof(err), "client speaks protocol %u, tphd speaks %u", m->version,
                 TP_WIRE_VERSION);
        tp_conn_fail(c, TP_ERR_VERSION, err);
        return;
    }
    int r = tp_ingest_hello(c->ingest, m, err, sizeof(err));
    if (r < 0) {
        tp_conn_fail(c, r, err);
        return;
    }
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    tp_msg w;
    memset(&w, 0, sizeof(w));
    w.type = TP_MSG_WELCOME;
    w.version = TP_WIRE_VERSION;
    w.caps = m->caps & (TP_CAP_ACK | TP_CAP_QUERY);
    w.pid = getpid();
    w.hostname = host;
    w.client = "tphd/" TP_VERSION;
    c->caps = m->caps;
    c->hello = true;
    tp_conn_send(c, &w);
}

/* A trace error: reported with the trace's id; the connection goes on. */
static void trace_error(tp_conn *c, const char *trace, int code, const char *message)
{
    tp_server *s = c->srv;
    s->protocol_errors++;
    if (s->opts.verbose)
        tp__connlog(c, "client %llu: trace %.32s: %s: %s", (unsigned long long)c->serial,
                    trace ? trace : "?", tp_errname(code), message);
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_ERROR;
    m.code = code;
    m.message = message;
    m.trace = trace;
    tp_conn_send(c, &m);
}

static void on_upload(tp_conn *c, const tp_msg *m)
{
    char err[256];
    tp_store_op *op = NULL;
    bool is_trace_error = false;
    int r;
    switch (m->type) {
    case TP_MSG_FUNCS:
        r = tp_ingest_funcs(c->ingest, m, err, sizeof(err));
        break;
    case TP_MSG_BEGIN:
        r = tp_ingest_begin(c->ingest, m, &op, &is_trace_error, err, sizeof(err));
        break;
    case TP_MSG_EVENTS:
        r = tp_ingest_events(c->ingest, m, &op, &is_trace_error, err, sizeof(err));
        break;
    case TP_MSG_LINES:
        r = tp_ingest_lines(c->ingest, m, &op, &is_trace_error, err, sizeof(err));
        /* A bad LINES is worth a line in the log even when not verbose: the
         * client's line data is lost (trace_error logs under --verbose). */
        if (r < 0 && is_trace_error && !c->srv->opts.verbose)
            tp__connlog(c, "client %llu: trace %.32s: %s: %s", (unsigned long long)c->serial,
                        m->trace ? m->trace : "?", tp_errname(r), err);
        break;
    default:
        r = tp_ingest_end(c->ingest, m, &op, &is_trace_error, err, sizeof(err));
        break;
    }
    if (op)
        tp_conn_submit(c, op);
    if (r < 0) {
        if (is_trace_error)
            trace_error(c, m->trace, r, err);
        else
            tp_conn_fail(c, r, err);
    }
}

/* ---- Queries ------------------------------------------------------------------------- */

#define REPLY_CHUNK    (8u << 20)   /* body bytes per REPLY frame */
#define MAX_QUERY_BODY (256u << 20) /* a reassembled QUERY body (import) */

typedef struct query_work {
    uv_work_t req;
    tp_conn *conn;
    uint32_t id;
    char *op, *args;
    tp_buf body;
    tp_query_env env;
    tp_query_result res;
    size_t reply_off; /* of res.body, sent so far (send_chunk) */
} query_work;

static void query_run(uv_work_t *req)
{
    query_work *q = req->data;
    tp_query_run(&q->env, q->op, q->args, &q->res);
}

/* Sends an error answer, or one that fits in a REPLY frame. */
static void send_reply(tp_conn *c, uint32_t id, tp_query_result *res)
{
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_REPLY;
    m.id = id;
    if (res->code < 0) {
        m.ok = false;
        m.code = res->code;
        m.message = res->message;
    } else {
        m.ok = true;
        m.content_type = res->content_type;
        m.body = res->body.len ? res->body.data : NULL;
        m.body_len = res->body.len;
    }
    tp_conn_send(c, &m);
}

static void query_free(query_work *q)
{
    tp_query_result_free(&q->res);
    tp_buf_free(&q->body);
    free(q->op);
    free(q->args);
    free(q);
}

/* The connection is free for its next query once its answer has left. */
static void reply_finished(query_work *q)
{
    tp_conn *c = q->conn;
    query_free(q);
    c->query_busy = false;
    tp_conn_update(c);
    tp_conn_unref(c);
    tp_server_poke(c->srv);
}

/* A large answer, one REPLY_CHUNK at a time: the next chunk is encoded only
 * once the previous one was written (flow control), so a client that reads
 * slowly costs one chunk of memory, and only one that stops reading is closed
 * (TP_CONN_REPLY_STALL_MS). */
static void send_chunk(query_work *q);

static void chunk_sent(tp_conn *c, void *arg, int status)
{
    query_work *q = arg;
    if (status < 0 || c->closing)
        reply_finished(q);
    else
        send_chunk(q);
}

static void send_chunk(query_work *q)
{
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_REPLY;
    m.id = q->id;
    m.ok = true;
    m.content_type = q->res.content_type;
    size_t len = q->res.body.len, off = q->reply_off;
    size_t n = len - off > REPLY_CHUNK ? REPLY_CHUNK : len - off;
    m.body = q->res.body.data + off;
    m.body_len = n;
    q->reply_off = off + n;
    m.more = q->reply_off < len;
    if (!m.more) {
        tp_conn_send(q->conn, &m);
        reply_finished(q);
    } else if (tp_conn_send_then(q->conn, &m, chunk_sent, q) < 0) {
        reply_finished(q);
    }
}

static void query_done(uv_work_t *req, int status)
{
    query_work *q = req->data;
    tp_conn *c = q->conn;
    tp_server *s = c->srv;
    if (status < 0 && q->res.code == 0) {
        q->res.code = -ECANCELED;
        snprintf(q->res.message, sizeof(q->res.message), "the query was cancelled");
    }
    if (q->res.created_rowid)
        tp_dispatch_finalize(s, q->res.created_rowid);
    s->works--;
    if (q->res.code >= 0 && q->res.body.len > REPLY_CHUNK && !c->closing) {
        send_chunk(q); /* finishes as the client reads */
        return;
    }
    send_reply(c, q->id, &q->res);
    reply_finished(q);
}

static void qasm_reset(tp_conn *c)
{
    free(c->qasm_op);
    free(c->qasm_args);
    c->qasm_op = c->qasm_args = NULL;
    tp_buf_free(&c->qasm_body);
    c->qasm_active = c->qasm_overflow = false;
}

/* Collects the body of a QUERY sent in several frames. Returns true when the
 * query is complete and should run (with c->qasm_* holding it). */
static bool qasm_add(tp_conn *c, const tp_msg *m)
{
    if (!c->qasm_active) {
        c->qasm_active = true;
        c->qasm_id = m->id;
        c->qasm_op = strdup(m->op ? m->op : "");
        c->qasm_args = strdup(m->args_json ? m->args_json : "{}");
        if (!c->qasm_op || !c->qasm_args)
            c->qasm_overflow = true;
    }
    if (!c->qasm_overflow && m->body_len) {
        if (c->qasm_body.len + m->body_len > MAX_QUERY_BODY ||
            tp_buf_append(&c->qasm_body, m->body, m->body_len) < 0) {
            c->qasm_overflow = true;
            tp_buf_free(&c->qasm_body);
        }
    }
    return !m->more;
}

static void on_query(tp_conn *c, const tp_msg *m)
{
    tp_server *s = c->srv;
    if (c->qasm_active && m->id != c->qasm_id) {
        tp_conn_fail(c, TP_ERR_SEQUENCE, "a QUERY arrived in the middle of another one's body");
        return;
    }
    if (m->more || c->qasm_active) {
        if (!qasm_add(c, m))
            return; /* more frames follow */
    }
    query_work *q = calloc(1, sizeof(*q));
    if (!q) {
        qasm_reset(c);
        tp_conn_fail(c, -ENOMEM, "out of memory");
        return;
    }
    q->req.data = q;
    q->conn = c;
    q->id = m->id;
    if (c->qasm_active) {
        bool overflow = c->qasm_overflow;
        q->op = c->qasm_op;
        q->args = c->qasm_args;
        q->body = c->qasm_body;
        c->qasm_op = c->qasm_args = NULL;
        c->qasm_body = (tp_buf)TP_BUF_INIT;
        qasm_reset(c);
        if (overflow) {
            q->res.code = TP_ERR_LIMIT;
            snprintf(q->res.message, sizeof(q->res.message),
                     "the query body is over %u MiB (or tphd ran out of memory)",
                     MAX_QUERY_BODY >> 20);
            send_reply(c, q->id, &q->res);
            query_free(q);
            return;
        }
    } else {
        q->op = strdup(m->op ? m->op : "");
        q->args = strdup(m->args_json ? m->args_json : "{}");
        if (m->body_len)
            tp_buf_append(&q->body, m->body, m->body_len);
        if (!q->op || !q->args || tp_buf_error(&q->body) < 0) {
            query_free(q);
            tp_conn_fail(c, -ENOMEM, "out of memory");
            return;
        }
    }
    tp_server_publish(s);
    tp_server_query_env(s, c->peer.uid, &q->env);
    q->env.pid = c->peer.pid;
    q->env.pstart = c->peer.pstart;
    q->env.body = q->body.data;
    q->env.body_len = q->body.len;
    if (uv_queue_work(s->loop, &q->req, query_run, query_done) < 0) {
        query_free(q);
        tp_conn_fail(c, -ENOMEM, "cannot queue the query");
        return;
    }
    c->query_busy = true;
    c->refs++;
    s->works++;
}

/* ---- Frames -------------------------------------------------------------------------- */

void tp_dispatch_frame(tp_conn *c, const uint8_t *payload, size_t len)
{
    tp_msg m;
    char err[256] = "";
    int r = tp_wire_decode(payload, len, &m, err, sizeof(err));
    if (r < 0) {
        tp_conn_fail(c, r, err[0] ? err : tp_strerror(r));
        return;
    }
    if (!c->hello) {
        if (m.type == TP_MSG_HELLO)
            on_hello(c, &m);
        else
            tp_conn_fail(c, TP_ERR_SEQUENCE, "the first message must be HELLO");
        tp_wire_msg_free(&m);
        return;
    }
    switch (m.type) {
    case TP_MSG_FUNCS:
    case TP_MSG_BEGIN:
    case TP_MSG_EVENTS:
    case TP_MSG_LINES:
    case TP_MSG_END:
        on_upload(c, &m);
        break;
    case TP_MSG_QUERY:
        on_query(c, &m);
        break;
    case TP_MSG_ERROR:
        /* Never answered (PROTOCOL.md 5.4); worth a line in the log. */
        tp__connlog(c, "client %llu reports %s: %s", (unsigned long long)c->serial,
                    tp_errname(m.code), m.message ? m.message : "");
        break;
    case TP_MSG_HELLO:
        tp_conn_fail(c, TP_ERR_SEQUENCE, "HELLO was already received");
        break;
    case TP_MSG_WELCOME:
    case TP_MSG_ACK:
    case TP_MSG_REPLY:
        snprintf(err, sizeof(err), "message type %d goes from tphd to clients, not back", m.type);
        tp_conn_fail(c, TP_ERR_SEQUENCE, err);
        break;
    default:
        break; /* an unknown type: ignored without a reply (PROTOCOL.md 5.5) */
    }
    tp_wire_msg_free(&m);
}

/* ---- Store completions ------------------------------------------------------------- */

static void complete_op(tp_server *s, tp_store_op *op)
{
    tp_conn *c = op->owner;
    c->inflight -= op->bytes;
    s->ops_inflight--;
    switch (op->kind) {
    case TP_STORE_EVENTS:
        if (op->result == 0) {
            s->events_total += op->nrecords;
            s->rate_current += op->nrecords;
            tp_server_count_events(s, c->peer.uid, op->nrecords);
        }
        break;
    case TP_STORE_END:
        if (op->result == 0) {
            s->traces_acked++;
            tp_dispatch_finalize(s, op->rowid);
            if (c->caps & TP_CAP_ACK) {
                tp_msg m;
                memset(&m, 0, sizeof(m));
                m.type = TP_MSG_ACK;
                char url[512];
                m.trace = op->id;
                m.url = NULL;
                if (s->trace_url &&
                    s->trace_url(s->trace_url_ud, c->peer.uid, op->id, url, sizeof(url)) == 0)
                    m.url = url;
                tp_conn_send(c, &m);
            }
        } else {
            char msg[256];
            snprintf(msg, sizeof(msg), "trace %s was not stored: %s", tp_ingest_op_client_id(op),
                     op->errmsg[0] ? op->errmsg : tp_strerror(op->result));
            tp__connlog(c, "client %llu: %s", (unsigned long long)c->serial, msg);
            trace_error(c, tp_ingest_op_client_id(op), op->result, msg);
        }
        break;
    case TP_STORE_ABORT:
        if (op->result == 0)
            tp_dispatch_finalize(s, op->rowid);
        break;
    case TP_STORE_BEGIN:
        if (op->result < 0)
            tp__connlog(c, "client %llu: %s", (unsigned long long)c->serial, op->errmsg);
        break;
    default:
        break;
    }
    tp_ingest_op_free(op);
    tp_conn_unref(c);
}

void tp_dispatch_completions(uv_async_t *a)
{
    tp_server *s = a->data;
    pthread_mutex_lock(&s->done_mu);
    tp_store_op *list = s->done_head;
    s->done_head = NULL;
    s->done_tail = &s->done_head;
    pthread_mutex_unlock(&s->done_mu);
    while (list) {
        tp_store_op *op = list;
        list = op->next;
        complete_op(s, op);
    }
    /* Resume connections whose backlog has drained below the low-water marks. */
    bool global_ok = tp_store_queued_bytes(s->store) < s->opts.max_queue / 2;
    for (tp_conn **p = &s->throttled; *p;) {
        tp_conn *c = *p;
        if (global_ok && c->inflight < TP_SERVER_CONN_HIGH_WATER / 4) {
            *p = c->throttle_next;
            c->in_throttle_list = false;
            c->throttled = false;
            tp_conn_update(c);
        } else {
            p = &c->throttle_next;
        }
    }
    tp_server_publish(s);
    tp_server_poke(s);
}

/* ---- Finalization: one background thread at a time drains the pending list --------
 * Rebuilding a big trace takes a core for a while; the finalizer runs on its
 * own thread at a lower priority (nice 10), so ingest and queries come
 * first, and it never occupies a threadpool slot that queries need. */

typedef struct fin_work {
    tp_server *srv;
    int64_t *rowids;
    size_t n;
    bool scan; /* first run: look for traces left unfinalized by an earlier run */
} fin_work;

static void fin_start(tp_server *s);

/* Whether a seccomp filter is installed (systemd's SystemCallFilter=): a
 * filtered system call may kill the process instead of failing, so
 * optional calls like setpriority() are skipped then. */
static bool under_seccomp_filter(void)
{
    char line[128];
    bool filtered = false;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return true;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "Seccomp:", 8) == 0)
            filtered = atoi(line + 8) != 0;
    fclose(f);
    return filtered;
}

static void *fin_thread(void *arg)
{
    fin_work *w = arg;
    tp_server *s = w->srv;
    if (!under_seccomp_filter())
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    if (w->scan) {
        int64_t *ids = NULL;
        size_t n = 0;
        /* Whatever is left over is picked up at the next start. */
        while (tp_finalize_pending(s->store, FINALIZE_BATCH, &ids, &n) == 0 && n > 0) {
            int r = tp_finalize_traces(s->store, ids, n, &s->fin_cancel);
            free(ids);
            ids = NULL;
            if (r < 0)
                break;
        }
        free(ids);
    }
    if (w->n)
        tp_finalize_traces(s->store, w->rowids, w->n, &s->fin_cancel);
    uv_async_send(&s->fin_async);
    return NULL;
}

/* On the loop once the finalizer thread is done. */
void tp_dispatch_finalized(uv_async_t *a)
{
    tp_server *s = a->data;
    fin_work *w = s->fin_work;
    if (!w)
        return;
    pthread_join(s->fin_thread, NULL);
    if (w->scan)
        s->fin_startup_done = true;
    free(w->rowids);
    free(w);
    s->fin_work = NULL;
    s->fin_running = false;
    s->works--;
    fin_start(s);
    tp_server_poke(s);
}

static void fin_start(tp_server *s)
{
    if (s->fin_running || s->shutting_down || !s->store)
        return;
    bool scan = !s->fin_startup_done;
    if (!scan && s->fin_pending.size == 0)
        return;
    fin_work *w = calloc(1, sizeof(*w));
    if (!w)
        return;
    w->srv = s;
    w->scan = scan;
    /* The work takes the array; the loop starts a new one. */
    w->rowids = s->fin_pending.items;
    w->n = s->fin_pending.size;
    s->fin_pending.items = NULL;
    s->fin_pending.size = s->fin_pending.capacity = 0;
    s->fin_work = w;
    if (pthread_create(&s->fin_thread, NULL, fin_thread, w) != 0) {
        /* Left for the next start, which scans for unfinalized traces. */
        free(w->rowids);
        free(w);
        s->fin_work = NULL;
        return;
    }
    s->fin_running = true;
    s->works++;
}

void tp_dispatch_finalize(tp_server *s, int64_t rowid)
{
    if (tp_vec_grow1(&s->fin_pending) < 0)
        return; /* finalized at the next start */
    s->fin_pending.items[s->fin_pending.size++] = rowid;
    fin_start(s);
}

/* ---- Retention --------------------------------------------------------------------- */

typedef struct ret_work {
    uv_work_t req;
    tp_server *srv;
    int64_t deleted;
    int result;
} ret_work;

static void ret_run(uv_work_t *req)
{
    ret_work *w = req->data;
    w->result = tp_store_retention(w->srv->store, w->srv->opts.retention_s,
                                   w->srv->opts.max_db_bytes, &w->deleted);
}

static void ret_done(uv_work_t *req, int status)
{
    ret_work *w = req->data;
    tp_server *s = w->srv;
    if (w->result < 0)
        tp_server_log(s, "retention failed: %s", tp_strerror(w->result));
    else if (w->deleted > 0 && s->opts.verbose)
        tp_server_log(s, "retention deleted %lld traces", (long long)w->deleted);
    free(w);
    s->retention_running = false;
    s->works--;
    tp_server_poke(s);
}

static void retention_start(tp_server *s)
{
    if (s->retention_running || s->shutting_down || !s->store)
        return;
    if (s->opts.retention_s <= 0 && s->opts.max_db_bytes == 0)
        return;
    ret_work *w = calloc(1, sizeof(*w));
    if (!w)
        return;
    w->req.data = w;
    w->srv = s;
    if (uv_queue_work(s->loop, &w->req, ret_run, ret_done) < 0) {
        free(w);
        return;
    }
    s->retention_running = true;
    s->works++;
}

void tp_dispatch_retention_tick(uv_timer_t *t)
{
    retention_start(t->data);
}

void tp_dispatch_start_background(tp_server *s)
{
    fin_start(s);
    retention_start(s);
}
