/* tphd's socket server: one libuv loop, one listening Unix socket, one
 * connection object per client.
 *
 * Every connection is stamped at accept with SO_PEERCRED (uid, pid) and the
 * process start time, must open with HELLO (answered by WELCOME), and then
 * sends trace uploads (FUNCS/BEGIN/EVENTS/END, acknowledged with ACK once
 * committed) and/or QUERY messages (answered with REPLY from a worker thread).
 * A frame that does not decode, or breaks the protocol, gets an ERROR reply
 * and closes that connection only. Reading stops while a connection's queued
 * batches (or all connections' together) are over their limit, and resumes
 * when the writer has drained them; a frame that does not complete within
 * the frame timeout closes its connection. */
#ifndef TP_SERVER_H
#define TP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "query.h"
#include "store.h"

#define TP_SERVER_DEFAULT_MAX_QUEUE     (256u << 20) /* bytes of queued batches, all clients */
#define TP_SERVER_CONN_HIGH_WATER       (32u << 20)  /* bytes of queued batches, one client */
#define TP_SERVER_DEFAULT_FRAME_TIMEOUT 30.0         /* seconds a frame may take to arrive */
#define TP_SERVER_DEFAULT_IDLE_TIMEOUT  600.0        /* seconds without a frame after HELLO */
#define TP_SERVER_DEFAULT_MAX_BUFFERED  (256u << 20) /* bytes of receive buffers, all clients */
#define TP_SERVER_DEFAULT_MAX_QUERY_MEM (256u << 20) /* bytes of running queries' replies */
/* What one running query's reply may hold (dispatch.c): the least
 * --max-query-memory that lets one query run. */
#define TP_SERVER_QUERY_RESERVE (4u << 20)
#define TP_SERVER_FD_RESERVE    256 /* descriptors kept for SQLite, logs and HTTP (at most 128) */
#define TP_SERVER_MAX_DRAINING  64  /* refused connections waiting for their client to hang up */

typedef struct tp_server_opts {
    const char *socket_path;     /* bound unless listen_fd >= 0; reported by status */
    int listen_fd;               /* an already listening socket (systemd), or -1 */
    size_t max_queue;            /* 0 = TP_SERVER_DEFAULT_MAX_QUEUE */
    double frame_timeout_s;      /* 0 = TP_SERVER_DEFAULT_FRAME_TIMEOUT */
    double idle_timeout_s;       /* 0 = TP_SERVER_DEFAULT_IDLE_TIMEOUT */
    size_t max_buffered;         /* 0 = TP_SERVER_DEFAULT_MAX_BUFFERED */
    size_t max_query_mem;        /* 0 = TP_SERVER_DEFAULT_MAX_QUERY_MEM */
    int64_t max_conns;           /* 0 = RLIMIT_NOFILE less TP_SERVER_FD_RESERVE */
    double retention_s;          /* 0 = keep traces forever */
    uint64_t max_db_bytes;       /* 0 = no size limit */
    double retention_interval_s; /* 0 = 60 */
    bool verbose;                /* log connections and protocol errors to stderr */
} tp_server_opts;

typedef struct tp_server tp_server;
struct tp_otlp;

/** Create a server on loop. Nothing listens yet. Returns 0 or -ENOMEM. */
int tp_server_new(uv_loop_t *loop, const tp_server_opts *opts, tp_server **ret);

/** The store completion callback to pass in tp_store_opts (done, done_ud =
 *  the server): hands completed ops back to the loop thread. */
void tp_server_store_done(tp_store_op *op, void *server);

/** Give the server its store (opened with tp_server_store_done). */
void tp_server_set_store(tp_server *s, tp_store *store);

/** Bind (replacing a stale socket file; refusing when a live tphd answers on
 *  it) or adopt opts->listen_fd, and start accepting. Also starts the
 *  periodic work (frame timeouts, retention, finalizing unfinished traces).
 *  Returns 0, -EADDRINUSE when another tphd is listening, or another code;
 *  err gets a message for the user. */
int tp_server_listen(tp_server *s, char *err, size_t errsz);

/** The report URL base for status ("http://127.0.0.1:PORT"), set by the HTTP
 *  server when it runs. The string is copied. */
int tp_server_set_http_url(tp_server *s, const char *url);

/** The report URL hook (see tp_query_env.trace_url) for ACKs and trace
 *  summaries; NULL turns URLs off. Loop thread, before or while serving. */
void tp_server_set_trace_url(tp_server *s,
                             int (*fn)(void *ud, uint32_t uid, const char *trace_id, char *buf,
                                       size_t size),
                             void *ud);

/** The OTLP exporter whose counters "status" reports (NULL: none). Main
 *  thread, before serving and after the loop ended. */
void tp_server_set_otlp(tp_server *s, struct tp_otlp *otlp);

/** Fill the server-facts part of a query environment (store, version, uptime,
 *  pid, socket, clients, events, rate, http URL, trace_url hook) for a query
 *  run on behalf of uid. Thread-safe: the HTTP server calls it from worker
 *  threads. String fields point into the server and stay valid until
 *  tp_server_free(). */
void tp_server_query_env(tp_server *s, uint32_t uid, tp_query_env *env);

/** Graceful stop: stop accepting and reading, mark open traces truncated,
 *  let the writer commit everything queued, send the ACKs that produced, wait
 *  for running queries, close every connection, then call cb(ud) on the loop.
 *  Loop thread only. */
void tp_server_shutdown(tp_server *s, void (*cb)(void *ud), void *ud);

/** Free the server after shutdown completed (or if it never listened). */
void tp_server_free(tp_server *s);

/** Live counters (loop thread). */
typedef struct tp_server_counters {
    int64_t clients;
    uint64_t events_total;
    double events_per_s;
    uint64_t traces_acked;
    uint64_t protocol_errors;
} tp_server_counters;
void tp_server_counters_get(const tp_server *s, tp_server_counters *ret);

#endif
