/* The server's state (struct tp_server), which server.c (listening,
 * timers, shutdown), conn.c (one connection's I/O), dispatch.c (what frames
 * do, store completions, background work) and server_state.c (log, clock,
 * counters) share. Calls go one way: server.c -> dispatch.c -> conn.c ->
 * server_state.c (server.c also calls conn.c); the two that go back up (a
 * whole frame arrived; something finished that shutdown may wait for) are
 * the on_frame and check_shutdown hooks of struct tp_server, set by
 * tp_server_new(). Not a contract. */
#ifndef TP_SERVER_PRIV_H
#define TP_SERVER_PRIV_H

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "ingest.h"
#include "vec.h"
#include "server.h"
#include "wire.h"

#define TP_RATE_WINDOW 10 /* seconds of the events/s moving window */

typedef struct tp_conn tp_conn; /* conn.h */

/* A budget of log lines (connlog.c): a burst, then one line per refill
 * period; what it refuses is counted for a "suppressed" line. */
typedef struct tp_log_budget {
    uint64_t ms;         /* when used was last reduced; 0 = never */
    uint32_t used;       /* lines of the burst used */
    uint64_t suppressed; /* lines dropped since the last summary */
} tp_log_budget;

/* One uid's open connections and events committed since start. */
typedef struct tp_uid_count {
    uint32_t uid;
    int64_t conns;
    uint64_t events;
} tp_uid_count;

/* Fields belong to the loop thread unless their comment names a lock or
 * another thread (tphd.h, "Threads"). */

struct tp_server {
    uv_loop_t *loop;
    uv_thread_t loop_thread; /* the thread tp_server_new() ran on: the loop's */
    tp_store *store;         /* set before serving; thread-safe itself (read by every thread) */
    tp_server_opts opts;     /* set at creation, then read-only (read by pool jobs) */
    char *socket_path;       /* set at creation, then read-only (read by pool jobs) */
    char *http_url;          /* set before uv_run serves, then read-only (read by pool jobs) */
    bool bound_path;         /* we created the socket file: unlink it at exit */
    bool listening, shutting_down;
    uv_pipe_t listener;
    uv_timer_t sweep; /* 1 s: frame timeouts, event rate */
    uv_timer_t retention;
    uv_async_t async; /* store completions; uv_async_send from the writer thread */
    pthread_mutex_t done_mu;
    tp_store_op *done_head, **done_tail; /* under done_mu: the writer appends, the loop drains */
    tp_conn *conns;
    tp_conn *closing; /* closed, handle not closed yet */
    tp_conn *throttled;
    int64_t nconns;
    int64_t nclosing;  /* on the closing list: descriptors still open */
    size_t rbuf_bytes; /* receive buffers of all connections (rcap), against max_buffered */
    uint64_t refused_conns;
    uint64_t closed_at_once;  /* refused past TP_SERVER_MAX_DRAINING */
    tp_log_budget client_log; /* lines all clients together may cause (connlog.c) */
    uint64_t next_serial;
    uint64_t start_ms;
    int64_t start_mono_ms;
    int64_t ops_inflight;
    int64_t works; /* uv_queue_work items running */
    /* Socket queries (dispatch.c): what the running ones hold of
     * --max-query-memory, and those waiting for their share, in order. */
    size_t query_mem;
    struct query_work *query_wait, **query_wait_tail;
    size_t nquery_wait;
    /* events/s: committed events per second over the last TP_RATE_WINDOW s */
    uint64_t events_total, rate_buckets[TP_RATE_WINDOW], rate_current;
    unsigned rate_pos, rate_filled;
    uint64_t traces_acked, protocol_errors;
    /* Per uid, for a non-root "status": written on the loop thread, read
     * by query threads (tp_server_query_env); both under snap_mu. */
    TP_VEC(tp_uid_count) uid_counts;
    uint64_t sweeps;
    /* What other threads may read (tp_server_query_env), under snap_mu. */
    pthread_mutex_t snap_mu;
    tp_server_counters snap; /* under snap_mu: the loop writes, pool jobs read */
    /* Set before uv_run serves, then read-only; called from pool jobs. */
    int (*trace_url)(void *ud, uint32_t uid, const char *trace_id, char *buf, size_t size);
    void *trace_url_ud;
    struct tp_otlp *otlp; /* set before serving, cleared after the loop ended */
    /* finalization: one worker at a time drains the pending list */
    TP_VEC(int64_t) fin_pending;
    bool fin_running, fin_startup_done;
    pthread_t fin_thread;
    void *fin_work;         /* the finalizer thread's while it runs; the loop's after the join */
    uv_async_t fin_async;   /* the finalizer thread is done (uv_async_send from it) */
    atomic_bool fin_cancel; /* atomic: the loop sets it at shutdown, the finalizer polls it */
    bool retention_running;
    void (*shutdown_cb)(void *ud);
    void *shutdown_ud;
    bool shutdown_done;
    /* Hooks into the layers above conn.c and dispatch.c (set once by
     * tp_server_new(), loop thread). */
    void (*on_frame)(tp_conn *c, const uint8_t *payload, size_t len); /* tp_dispatch_frame */
    void (*check_shutdown)(tp_server *s); /* whether the shutdown can finish, and finish it */
};

/* Whether the calling thread is the loop's (for assertions). */
static inline bool tp_server_on_loop(const tp_server *s)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&s->loop_thread, &self);
}

/* Debug builds check that loop-only code runs on the loop thread, where a
 * mistake would otherwise corrupt libuv state without a crash. */
#ifndef NDEBUG
#define TP_ASSERT_LOOP(s) assert(tp_server_on_loop(s))
#else
#define TP_ASSERT_LOOP(s) ((void)(s))
#endif

/* server_state.c */
/** Publish the live counters for other threads (under snap_mu). Loop thread. */
void tp_server_publish(tp_server *s);

uint64_t tp_server_now_ms(const tp_server *s);

/** Count n committed events for uid (a non-root "status" shows its own). */
void tp_server_count_events(tp_server *s, uint32_t uid, uint64_t n);

/** One "tphd: " line on stderr, escaped by tp_render_escape() (a message
 *  can quote client text; it must not end the line or drive a terminal). */
void tp_server_log(const tp_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** tp_server_log() with a va_list. */
void tp_server_vlog(const tp_server *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/** A connection of uid opened (+1) or closed (-1): a non-root "status"
 *  counts its own. Loop thread. */
void tp_server_count_conn(tp_server *s, uint32_t uid, int delta);

/** Something that shutdown may wait for finished (a connection closed, an
 *  op or query completed): let the server finish its shutdown if it can. */
static inline void tp_server_poke(tp_server *s)
{
    s->check_shutdown(s);
}

#endif
