/* Internals shared by server.c (sockets, reading, writing, closing, timers)
 * and dispatch.c (messages, queries, store completions, background work).
 * Not a contract. */
#ifndef TP_SERVER_PRIV_H
#define TP_SERVER_PRIV_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "ingest.h"
#include "server.h"
#include "wire.h"

#define TP_RATE_WINDOW 10 /* seconds of the events/s moving window */

typedef struct tp_conn tp_conn;
struct tp_conn {
    uv_pipe_t pipe; /* first: handle->data is the conn too */
    tp_server *srv;
    tp_conn *prev, *next; /* the server's list of connections (or of closing ones) */
    uint64_t closing_ms;  /* when tp_conn_close() ran */
    uint64_t serial;      /* for log lines */
    tp_ingest_peer peer;
    tp_ingest *ingest;
    uint32_t caps;   /* HELLO caps */
    bool hello;      /* HELLO received and answered */
    bool closing;    /* conn_close() ran */
    bool reading;    /* uv_read_start is active */
    bool throttled;  /* too much of its data queued */
    bool query_busy; /* a query runs for it */
    bool in_throttle_list;
    tp_conn *throttle_next;
    uint8_t *rbuf; /* receive buffer: rlen bytes of unprocessed frames */
    size_t rlen, rcap;
    uint64_t frame_start_ms; /* when the pending partial frame began; 0 = none */
    uint64_t accept_ms;
    size_t inflight; /* bytes of this connection's ops in the store queue */
    /* A QUERY body arriving in several frames (PROTOCOL.md 4.9). */
    bool qasm_active, qasm_overflow;
    uint32_t qasm_id;
    char *qasm_op, *qasm_args;
    tp_buf qasm_body;
    int refs; /* handle + ops + query: freed at 0 */
    /* tp_conn_log's rate limit (loop thread). */
    uint64_t log_ms;         /* when log_used was last reduced; 0 = never */
    uint32_t log_used;       /* lines of the burst used */
    uint64_t log_suppressed; /* lines dropped since the last one written */
};

/* One uid's open connections and events committed since start. */
typedef struct tp_uid_count {
    uint32_t uid;
    int64_t conns;
    uint64_t events;
} tp_uid_count;

struct tp_server {
    uv_loop_t *loop;
    tp_store *store;
    tp_server_opts opts;
    char *socket_path;
    char *http_url;
    bool bound_path; /* we created the socket file: unlink it at exit */
    bool listening, shutting_down;
    uv_pipe_t listener;
    uv_timer_t sweep; /* 1 s: frame timeouts, event rate */
    uv_timer_t retention;
    uv_async_t async; /* store completions */
    pthread_mutex_t done_mu;
    tp_store_op *done_head, **done_tail;
    tp_conn *conns;
    tp_conn *closing; /* closed, handle not closed yet */
    tp_conn *throttled;
    int64_t nconns;
    uint64_t next_serial;
    uint64_t start_ms;
    int64_t start_mono_ms;
    int64_t ops_inflight;
    int64_t works; /* uv_queue_work items running */
    /* events/s: committed events per second over the last TP_RATE_WINDOW s */
    uint64_t events_total, rate_buckets[TP_RATE_WINDOW], rate_current;
    unsigned rate_pos, rate_filled;
    uint64_t traces_acked, protocol_errors;
    /* Per uid, for a non-root "status": written on the loop thread, read
     * by query threads (tp_server_query_env); both under snap_mu. */
    tp_uid_count *uid_counts;
    size_t nuid_counts, uid_counts_cap;
    uint64_t sweeps;
    /* What other threads may read (tp_server_query_env), under snap_mu. */
    pthread_mutex_t snap_mu;
    tp_server_counters snap;
    int (*trace_url)(void *ud, uint32_t uid, const char *trace_id, char *buf, size_t size);
    void *trace_url_ud;
    /* finalization: one worker at a time drains the pending list */
    int64_t *fin_pending;
    size_t fin_n, fin_cap;
    bool fin_running, fin_startup_done;
    pthread_t fin_thread;
    void *fin_work;         /* the finalizer thread's job while it runs */
    uv_async_t fin_async;   /* the finalizer thread is done */
    atomic_bool fin_cancel; /* set at shutdown: the finalizer stops between traces */
    bool retention_running;
    void (*shutdown_cb)(void *ud);
    void *shutdown_ud;
    bool shutdown_done;
};

/* server.c */
void tp_conn_close(tp_conn *c);
void tp_conn_unref(tp_conn *c);
/** Encode and send m on c; on failure closes c. */
void tp_conn_send(tp_conn *c, const tp_msg *m);
/** Send ERROR {code, message}, then close c gracefully. */
void tp_conn_fail(tp_conn *c, int code, const char *message);
/** Start or stop reading to match the connection's state; process buffered
 *  frames when it may. */
void tp_conn_update(tp_conn *c);
/** Publish the live counters for other threads. */
void tp_server_publish(tp_server *s);
/** Whether the shutdown can finish, and finish it. */
void tp_server_check_shutdown(tp_server *s);
uint64_t tp_server_now_ms(const tp_server *s);
/** Count n committed events for uid (a non-root "status" shows its own). */
void tp_server_count_events(tp_server *s, uint32_t uid, uint64_t n);
/** One "tphd: " line on stderr, escaped by tp_render_escape() (a message
 *  can quote client text; it must not end the line or drive a terminal). */
void tp_server_log(const tp_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** tp_server_log() with a va_list. */
void tp_server_vlog(const tp_server *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* connlog.c */
/** A log line about c, rate-limited per connection (a burst, then one a
 *  second); dropped lines are counted and reported as "N messages
 *  suppressed" before c's next line and when c closes. Loop thread. */
void tp_conn_log(tp_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Report c's suppressed lines now, if any (at close). */
void tp_conn_log_flush(tp_conn *c);

/* dispatch.c */
/** Handle one whole frame's payload. */
void tp_dispatch_frame(tp_conn *c, const uint8_t *payload, size_t len);
/** Submit an op on behalf of c (accounting, throttling). */
void tp_dispatch_submit(tp_conn *c, tp_store_op *op);
/** Drain the store's completions (async callback). */
void tp_dispatch_completions(uv_async_t *a);
/** Queue finalization of a trace (and start the worker). */
void tp_dispatch_finalize(tp_server *s, int64_t rowid);
/** Start the startup finalization scan and a retention pass. */
void tp_dispatch_start_background(tp_server *s);
/** The finalizer thread finished (async callback). */
void tp_dispatch_finalized(uv_async_t *a);
/** Retention timer. */
void tp_dispatch_retention_tick(uv_timer_t *t);

#endif
