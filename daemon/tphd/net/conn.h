/* One client connection of tphd's socket (conn.c): its receive buffer and
 * framing, replies, back-pressure accounting and closing. Internal to
 * daemon/tphd/net. Every function here runs on the loop thread. */
#ifndef TP_CONN_H
#define TP_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "ingest.h"
#include "server_priv.h"
#include "wire.h"

/* Every field is the loop thread's; worker threads never touch a tp_conn
 * (a query's worker gets copies of what it needs, see dispatch.c). */
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
    uint64_t last_frame_ms;  /* when its last whole frame arrived (or it was accepted) */
    bool over_budget;        /* its receive buffer would pass the server's budget */
    bool drain;              /* closing after an ERROR: read and drop until EOF */
    uint64_t accept_ms;
    size_t inflight; /* bytes of this connection's ops in the store queue */
    /* A QUERY body arriving in several frames (PROTOCOL.md 4.9). */
    bool qasm_active, qasm_overflow;
    uint32_t qasm_id;
    char *qasm_op, *qasm_args;
    tp_buf qasm_body;
    int refs; /* handle + ops + query: freed at 0 */
    /* A large reply goes out a chunk at a time (tp_conn_send_then()): when
     * the chunk in flight was queued, 0 when none is (loop thread). */
    uint64_t reply_wait_ms;
    tp_log_budget log; /* tp__connlog's rate limit for this connection */
};

/** Accept the pending connection on listener, stamp its peer (SO_PEERCRED)
 *  and start reading. Failures are logged; the listener goes on. */
void tp_conn_accept(tp_server *s, uv_stream_t *listener);
/** Drop one reference (handle, op or query); frees c at zero. */
void tp_conn_unref(tp_conn *c);
/** Close c: its open traces become truncated, pending replies are flushed
 *  (uv_shutdown) before the handle closes. Idempotent. */
void tp_conn_close(tp_conn *c);
/** Close c's handle now, without waiting for its replies to drain. */
void tp_conn_close_now(tp_conn *c);
/** Submit store ops that mark c's open traces truncated. */
void tp_conn_truncate_open(tp_conn *c);
/** Encode and send m on c; on failure closes c. */
void tp_conn_send(tp_conn *c, const tp_msg *m);

/** Called when a frame from tp_conn_send_then() was written (status 0) or
 *  dropped (status < 0: the connection closed). Loop thread. */
typedef void (*tp_conn_sent_cb)(tp_conn *c, void *arg, int status);

/** tp_conn_send(), then done(c, arg, status) once the frame left: a reply
 *  too large to queue at once sends its next chunk from done, so it costs
 *  one chunk of memory and only a peer that stops reading is closed (after
 *  TP_CONN_REPLY_STALL_MS without progress). Returns 0 when the frame was
 *  queued (done will run exactly once), or a negative code when it was not
 *  (the connection is closing or closed; done does not run). */
int tp_conn_send_then(tp_conn *c, const tp_msg *m, tp_conn_sent_cb done, void *arg);

#define TP_CONN_REPLY_STALL_MS 30000 /* a reply chunk not taken for this long: closed */
/** Send ERROR {code, message}, then close c gracefully. */
void tp_conn_fail(tp_conn *c, int code, const char *message);
/** Start or stop reading to match the connection's state; process buffered
 *  frames when it may. */
void tp_conn_update(tp_conn *c);
/** Submit op on behalf of c: c's queued bytes grow, and reading stops while
 *  they (or all clients' together) are over their limit. */
void tp_conn_submit(tp_conn *c, tp_store_op *op);

/* connlog.c */
/** A log line about c, rate-limited per connection (a burst, then one a
 *  second) and for all connections together (a client that reconnects in
 *  a loop gets a fresh connection's budget each time); dropped lines are
 *  counted and reported as "N messages suppressed" before c's next line and
 *  when c closes, and the ones all-clients budget dropped by
 *  tp__clientlog_flush(). Loop thread. */
void tp__connlog(tp_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Report c's suppressed lines now, if any (at close). */
void tp__connlog_flush(tp_conn *c);
/** Report the lines the all-clients budget dropped, if any (each sweep,
 *  and at shutdown, so that every dropped line is counted in the log). */
void tp__clientlog_flush(tp_server *s);

#endif
