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

#include "qstream.h"
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
    w.caps = m->caps & (TP_CAP_ACK | TP_CAP_QUERY | TP_CAP_STORED);
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
    case TP_MSG_SOURCE:
        r = tp_ingest_text(c->ingest, m, &op, &is_trace_error, err, sizeof(err));
        /* A bad LINES or SOURCE is worth a line in the log even when not
         * verbose: the client's line data or source is lost (trace_error logs under --verbose). */
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

/* An answer streams: its renderer writes into res.body, whose drain
 * (stream_drain, on the worker thread) hands each REPLY_PIECE to the loop
 * and waits while more than STREAM_AHEAD bytes of it are not written yet.
 * So a query holds its buffer, STREAM_AHEAD and the piece being written,
 * about TP_SERVER_QUERY_RESERVE, however big its answer; a client that
 * stops reading stalls its worker until the connection is closed
 * (TP_CONN_REPLY_STALL_MS), which fails the drain and ends the query. */
#define REPLY_PIECE    (1u << 20)        /* body bytes per REPLY frame of a stream */
#define STREAM_AHEAD   (2 * REPLY_PIECE) /* unwritten bytes before the worker waits */
#define MAX_QUERY_BODY (256u << 20)      /* a reassembled QUERY body (import) */
#define MAX_QUERY_WAIT 64                /* queries waiting for --max-query-memory */

_Static_assert(REPLY_PIECE + STREAM_AHEAD + REPLY_PIECE <= TP_SERVER_QUERY_RESERVE,
               "a query's reservation covers its buffer, what is ahead and the piece in flight");

typedef struct query_work {
    uv_work_t req;
    tp_conn *conn;
    uint32_t id;
    char *op, *args;
    tp_buf body;
    tp_query_env env;
    tp_query_result res;          /* the worker's until query_done */
    struct query_work *wait_next; /* loop: in the server's query_wait list */
    bool reserved;                /* loop: holds TP_SERVER_QUERY_RESERVE of query_mem */
    bool async_ready;             /* loop: st is initialised */
    bool worker_done;             /* loop: query_done ran */
    bool sending;                 /* loop: a piece is being written */
    size_t sending_len;           /* loop: its bytes */
    tp_qstream st;                /* the answer's pieces, worker to loop */
} query_work;

static int stream_drain(void *ctx, const char *p, size_t n)
{
    query_work *q = ctx;
    return tp_qstream_push(&q->st, q->res.content_type, p, n);
}

static void query_run(uv_work_t *req)
{
    query_work *q = req->data;
    tp_query_run(&q->env, q->op, q->args, &q->res);
    /* What is left must fit the last frame: a reserve past a piece can
     * leave more than one behind. */
    if (q->res.code == 0 && q->res.body.len > REPLY_PIECE && tp_buf_flush(&q->res.body) < 0) {
        q->res.code = tp_buf_error(&q->res.body);
        snprintf(q->res.message, sizeof(q->res.message), "the reply could not be sent");
    }
}

/* Sends an error answer, or the last part of an answer. */
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

static void on_async_closed(uv_handle_t *h)
{
    query_work *q = h->data;
    tp_qstream_destroy(&q->st);
    query_free(q);
}

static void query_start(query_work *q);

/* Waiting queries start, in order, as long as their share fits. */
static void admit_waiting(tp_server *s)
{
    while (s->query_wait && s->query_mem + TP_SERVER_QUERY_RESERVE <= s->opts.max_query_mem) {
        query_work *q = s->query_wait;
        s->query_wait = q->wait_next;
        if (!s->query_wait)
            s->query_wait_tail = &s->query_wait;
        s->nquery_wait--;
        query_start(q);
    }
}

/* The connection is free for its next query once its answer has left. */
static void reply_finished(query_work *q)
{
    tp_conn *c = q->conn;
    tp_server *s = c->srv;
    if (q->reserved) {
        s->query_mem -= TP_SERVER_QUERY_RESERVE;
        q->reserved = false;
    }
    if (q->async_ready)
        tp_qstream_close(&q->st, on_async_closed);
    else
        query_free(q);
    c->query_busy = false;
    tp_conn_update(c);
    tp_conn_unref(c);
    admit_waiting(s);
    tp_server_poke(s);
}

/* The connection went away: the worker's next (or current) drain fails,
 * and what it had produced is dropped. Loop thread. */
static void stream_cancel(query_work *q)
{
    tp_qstream_cancel(&q->st);
}

static void stream_pump(query_work *q);

static void piece_sent(tp_conn *c, void *arg, int status)
{
    query_work *q = arg;
    q->sending = false;
    tp_qstream_sent(&q->st, q->sending_len);
    if (status < 0 || c->closing)
        stream_cancel(q);
    stream_pump(q);
}

/* Writes the next piece, one at a time (flow control: the next leaves once
 * the client took the last); once the worker is done and every piece has
 * left, sends the end of the answer. Loop thread. */
static void stream_pump(query_work *q)
{
    tp_conn *c = q->conn;
    if (q->sending)
        return;
    if (c->closing)
        stream_cancel(q);
    tp_qstream_piece *p = tp_qstream_pop(&q->st);
    if (!p) {
        if (!q->worker_done)
            return; /* the worker is still rendering */
        if (!c->closing)
            send_reply(c, q->id, &q->res);
        reply_finished(q);
        return;
    }
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_REPLY;
    m.id = q->id;
    m.ok = true;
    m.content_type = p->content_type;
    m.body = p->data;
    m.body_len = p->len;
    m.more = true;
    q->sending = true;
    q->sending_len = p->len;
    int r = tp_conn_send_then(c, &m, piece_sent, q);
    free(p); /* the frame holds its own copy */
    if (r < 0)
        piece_sent(c, q, r);
}

static void on_pieces(uv_async_t *a)
{
    stream_pump(a->data);
}

static void query_done(uv_work_t *req, int status)
{
    query_work *q = req->data;
    tp_server *s = q->conn->srv;
    if (status < 0 && q->res.code == 0) {
        q->res.code = -ECANCELED;
        snprintf(q->res.message, sizeof(q->res.message), "the query was cancelled");
    }
    if (q->res.created_rowid)
        tp_dispatch_finalize(s, q->res.created_rowid);
    s->works--;
    q->worker_done = true;
    stream_pump(q); /* the pieces still queued, then the end */
}

/* Runs q now: its share of --max-query-memory is free. Loop thread. */
static void query_start(query_work *q)
{
    tp_conn *c = q->conn;
    tp_server *s = c->srv;
    if (c->closing) {
        reply_finished(q);
        return;
    }
    s->query_mem += TP_SERVER_QUERY_RESERVE;
    q->reserved = true;
    tp_server_publish(s);
    tp_server_query_env(s, c->peer.uid, &q->env);
    q->env.pid = c->peer.pid;
    q->env.pstart = c->peer.pstart;
    q->env.body = q->body.data;
    q->env.body_len = q->body.len;
    if (uv_queue_work(s->loop, &q->req, query_run, query_done) < 0) {
        q->res.code = -ENOMEM;
        snprintf(q->res.message, sizeof(q->res.message), "cannot queue the query");
        q->worker_done = true;
        stream_pump(q);
        return;
    }
    s->works++;
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
    /* The drain first: a failed tp_qstream_init leaves no handle behind. */
    if (tp_buf_set_drain(&q->res.body, REPLY_PIECE, stream_drain, q) < 0 ||
        tp_qstream_init(&q->st, s->loop, STREAM_AHEAD, on_pieces, q) < 0) {
        query_free(q);
        tp_conn_fail(c, -ENOMEM, "out of memory");
        return;
    }
    q->async_ready = true;
    if (!s->query_wait && s->query_mem + TP_SERVER_QUERY_RESERVE <= s->opts.max_query_mem) {
        c->query_busy = true;
        c->refs++;
        query_start(q);
        return;
    }
    if (s->nquery_wait >= MAX_QUERY_WAIT) {
        /* Answered here, not through reply_finished(): this runs inside the
         * connection's frame loop, which must not be re-entered. */
        q->res.code = TP_ERR_LIMIT;
        snprintf(q->res.message, sizeof(q->res.message),
                 "tphd's queries use all of --max-query-memory (%zu MiB) and %d more wait: try "
                 "again later",
                 s->opts.max_query_mem >> 20, MAX_QUERY_WAIT);
        send_reply(c, q->id, &q->res);
        tp_qstream_close(&q->st, on_async_closed);
        return;
    }
    /* Its turn comes when a running query ends (admit_waiting). */
    c->query_busy = true;
    c->refs++;
    q->wait_next = NULL;
    *s->query_wait_tail = q;
    s->query_wait_tail = &q->wait_next;
    s->nquery_wait++;
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
    case TP_MSG_SOURCE:
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
    case TP_MSG_STORED:
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

/* What the store said about a failed op, with an errno named as tp_err
 * names it ("database or disk is full (ENOSPC)"): SQLite's message alone
 * does not say which errno a log reader or a client should look for. */
static const char *op_error(const tp_store_op *op, char *buf, size_t size)
{
    const char *text = op->errmsg[0] ? op->errmsg : tp_strerror(op->result);
    if (op->result < 0 && op->result > TP_ERR_BASE)
        snprintf(buf, size, "%s (%s)", text, tp_errname(op->result));
    else
        snprintf(buf, size, "%s", text);
    return buf;
}

/* A batch the store could not take (ENOSPC: the disk, or the database at
 * --max-db-size): the trace is ended truncated; said once, with its id,
 * and in the log. Later batches of it fail the same way and are silent. */
static void refused_batch(tp_conn *c, tp_store_op *op)
{
    tp_store_op *abort_op = NULL;
    if (!c->ingest || !tp_ingest_refused(c->ingest, op, &abort_op))
        return;
    char msg[256], why[200];
    snprintf(msg, sizeof(msg), "trace %s was not stored in full: %s", tp_ingest_op_client_id(op),
             op_error(op, why, sizeof(why)));
    tp__connlog(c, "client %llu: %s: %s", (unsigned long long)c->serial, tp_errname(op->result),
                msg);
    trace_error(c, tp_ingest_op_client_id(op), op->result, msg);
    if (abort_op)
        tp_conn_submit(c, abort_op); /* frees the trace; the store has ended it */
    if (op->rowid)
        tp_dispatch_finalize(c->srv, op->rowid); /* statistics of what was kept */
}

static void complete_op(tp_server *s, tp_store_op *op)
{
    char why[200];
    tp_conn *c = op->owner;
    c->inflight -= op->bytes;
    s->ops_inflight--;
    switch (op->kind) {
    case TP_STORE_EVENTS:
        if (op->result == 0) {
            s->events_total += op->nrecords;
            s->rate_current += op->nrecords;
            tp_server_count_events(s, c->peer.uid, op->nrecords);
            if (c->caps & TP_CAP_STORED) {
                /* The batch is committed: a streaming client may let go
                 * of it (PROTOCOL.md 4.7a). */
                tp_msg m;
                memset(&m, 0, sizeof(m));
                m.type = TP_MSG_STORED;
                m.trace = op->id;
                m.seq = op->seq;
                tp_conn_send(c, &m);
            }
        } else {
            refused_batch(c, op);
        }
        break;
    case TP_STORE_LINES:
    case TP_STORE_SOURCE:
        if (op->result < 0)
            refused_batch(c, op);
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
                     op_error(op, why, sizeof(why)));
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
            tp__connlog(c, "client %llu: %s", (unsigned long long)c->serial,
                        op_error(op, why, sizeof(why)));
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
