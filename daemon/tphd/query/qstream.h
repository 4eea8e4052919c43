/* A query answer on its way from a worker thread to the loop: the worker's
 * body drain (tp_buf_set_drain) queues each piece and waits while more than
 * a limit of queued or in-flight bytes are not sent yet; the loop, woken by
 * the stream's uv_async, takes pieces one at a time and says when each has
 * left. Used by the socket queries (net/dispatch.c) and the HTTP API's jobs
 * (http/http_jobs.c), which differ only in how a piece is sent.
 *
 * Threads: tp_qstream_push() runs on the worker; everything else on the
 * loop. Fields are private; mu guards head, tail, ahead and cancelled. */
#ifndef TP_QSTREAM_H
#define TP_QSTREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

/** One piece of an answer; the loop owns it once popped (free() it). */
typedef struct tp_qstream_piece {
    struct tp_qstream_piece *next;
    const char *content_type; /* static */
    size_t len;
    char data[];
} tp_qstream_piece;

typedef struct tp_qstream {
    uv_async_t async; /* wakes the loop when a piece is queued; async.data is the owner's */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled as pieces leave, or at cancel */
    tp_qstream_piece *head, **tail;
    size_t ahead; /* bytes queued or being sent */
    size_t limit; /* the worker waits while ahead passes this */
    bool cancelled;
} tp_qstream;

/** Initialise s on loop; on_piece(async) runs on the loop after pieces are
 *  queued, with async->data = data. Returns 0 or a negative errno; on
 *  failure nothing needs closing. */
int tp_qstream_init(tp_qstream *s, uv_loop_t *loop, size_t limit, uv_async_cb on_piece, void *data);

/** Worker: queue a copy of n bytes at p, wake the loop, then wait while more
 *  than the limit is unsent. Returns 0, -ENOMEM, or -EPIPE once cancelled
 *  (the answer's receiver went away). The signature suits a tp_buf drain
 *  through a one-line wrapper. */
int tp_qstream_push(tp_qstream *s, const char *content_type, const char *p, size_t n);

/** Loop: the oldest queued piece, or NULL. */
tp_qstream_piece *tp_qstream_pop(tp_qstream *s);

/** Loop: n bytes of a popped piece have left; the worker may go on. */
void tp_qstream_sent(tp_qstream *s, size_t n);

/** Loop: the receiver went away. Queued pieces are dropped, and the
 *  worker's current or next push fails with -EPIPE. */
void tp_qstream_cancel(tp_qstream *s);

/** Loop: close the async handle; on_closed(handle) runs once it is closed
 *  and must call tp_qstream_destroy() before freeing s. */
void tp_qstream_close(tp_qstream *s, uv_close_cb on_closed);

/** After the close: free queued pieces and the lock. */
void tp_qstream_destroy(tp_qstream *s);

#endif
