/* tphd's top level: the configuration from the command line and the object
 * that ties the loop, the store, the socket server and the HTTP server
 * together. The HTTP server hooks in through tphd_http_start() and
 * tphd_http_stop().
 *
 * Threads
 * -------
 * tphd runs six kinds of threads. Each struct field shared between them
 * says, where it is declared, which thread owns it or which lock guards it;
 * a field with no such note belongs to the loop thread. Counters and flags
 * that cross threads are C11 <stdatomic.h> atomics, never volatile.
 *
 * - loop (main): the libuv loop. Owns tphd, tp_server (net/server_priv.h),
 *   every tp_conn (net/conn.h), tp_http and its h2o context (http/
 *   http_priv.h), all handles, timers and sockets. Only it calls uv_* and
 *   h2o_* on them, sends replies and submits store ops. In builds without
 *   NDEBUG, tp_conn_send(), tp_conn_submit(), tp_server_publish() and
 *   tp_http_send_ref() assert that they run on it: a reply written from
 *   another thread would corrupt libuv's write queue without a crash.
 * - writer (store/store.c, one): owns the writer's SQLite connection and
 *   prepared statements; takes ops from the queue under tp_store.mu and
 *   hands completions back through tp_server_store_done() (done_mu plus a
 *   uv_async_t wakes the loop). tp_store_call_sync() callers block on a
 *   per-call mutex and condition.
 * - checkpointer (store/store_ckpt.c, one): checkpoints the WAL on its own
 *   connection when the writer, under tp_store_ckpt.mu, asks it to;
 *   wal_pages is atomic.
 * - finalizer (net/dispatch.c, at most one at a time): folds finished
 *   traces and stores their statistics through the store's reader
 *   connections and tp_store_call_sync(). It reads only the store and the
 *   atomic fin_cancel of tp_server; its job (fin_work) is the loop's again
 *   once it signals fin_async and the loop joins it.
 * - libuv pool (uv_queue_work): tph queries (net/dispatch.c), HTTP API jobs
 *   (http/http.c) and retention. A job gets copies of what it needs
 *   (tp_query_env from tp_server_query_env(), which reads the counters
 *   under snap_mu) and never touches a connection; its after-work callback
 *   runs on the loop. The pool shares the store's reader pool (rmu), the
 *   tree cache (query/tcache.c: cache_mu, then an entry's mu) and the HTTP
 *   tokens (tok_mu, through tp_http_link()). A tph query streams its answer:
 *   its body's drain queues pieces under the query's own mu, wakes the loop
 *   through the query's uv_async_t and waits on its cond while the loop's
 *   writes lag; the loop cancels it under the same mu when the connection
 *   goes. A waiting query holds its tree cache entry: a client that stops
 *   reading keeps that trace's other queries (and a pool thread) waiting
 *   until it is closed.
 * - exporter (otlp/otlp_export.c, one, with --otlp-endpoint): reads pending
 *   traces through the store's readers, encodes and POSTs them with
 *   libcurl, marks them through tp_store_call_sync(). It never touches the
 *   loop; the finalizer wakes it (tp_otlp.mu, cond) and status reads its
 *   counters under the same lock.
 *
 * Lock order, where two are held: a tree cache entry's mu may be held
 * while taking cache_mu (inserting it, counting its folded tree), never
 * the other way round. */
#ifndef TPHD_H
#define TPHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "otlp_export.h"
#include "server.h"
#include "store.h"

#define TPHD_DEFAULT_HTTP_PORT 7345

/** What the command line asked for (strings point into argv/environ). */
typedef struct tphd_config {
    const char *socket_path; /* NULL with listen_fd >= 0 */
    int listen_fd;           /* socket from systemd, or -1 */
    const char *db_path;
    bool http;              /* serve HTTP */
    const char *http_spec;  /* "HOST:PORT" from --http, or NULL for the default */
    bool http_allow_remote; /* --http-allow-remote: a non-loopback --http address */
    double retention_s;     /* 0 = keep */
    uint64_t max_db_bytes;  /* 0 = no limit */
    size_t max_queue;       /* 0 = default */
    double frame_timeout_s; /* 0 = default */
    double idle_timeout_s;  /* 0 = default */
    size_t max_buffered;    /* 0 = default */
    size_t max_query_mem;   /* 0 = default */
    int64_t max_conns;      /* 0 = from the descriptor limit */
    bool verbose;
    tp_otlp_config otlp;          /* otlp.endpoint NULL: no export */
    const char *otlp_headers[32]; /* --otlp-header values */
} tphd_config;

/** How many signals tphd may handle: its list and SIGRTMIN..SIGRTMAX
 *  (tphd_run.c lists them and what each does). */
#define TPHD_NSIGNALS 48

/** The running daemon: what the HTTP server needs to reach (loop, store,
 *  server) and its own handle. Loop thread only, except where noted. */
typedef struct tphd {
    uv_loop_t loop;
    const tphd_config *cfg;
    tp_store *store;
    tp_server *server;
    void *http;                      /* the HTTP server (tp_http *) when running */
    tp_otlp *otlp;                   /* the exporter with --otlp-endpoint */
    uv_signal_t sigs[TPHD_NSIGNALS]; /* handled signals, in tphd_signals order */
    int nsigs;                       /* how many of sigs are in use */
    bool stopping;
    int pending_stops; /* server and HTTP shutdowns still running */
    int exit_code;
} tphd;

/** Open everything, serve until SIGTERM/SIGINT, shut down cleanly. Returns
 *  the process exit status (0 after a clean shutdown, 1 when start-up failed). */
int tphd_run(const tphd_config *cfg);

/** Start the HTTP server on d->loop per d->cfg (called once the socket
 *  server listens). Returns 0 or a code after printing the reason. */
int tphd_http_start(tphd *d);
/** Check an --http value ("HOST:PORT", "[V6]:PORT", "HOST", ":PORT").
 *  Returns 0 or -EINVAL. */
int tphd_http_parse(const char *spec, char *host, size_t hostsz, uint16_t *ret_port);
/** Stop it; calls done(d) on the loop when it has stopped. */
void tphd_http_stop(tphd *d, void (*done)(void *d));

#endif
