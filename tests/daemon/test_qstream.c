/* The piece queue from a query's worker to the loop (query/qstream.c): the
 * worker waits while more than the limit is unsent, pieces arrive in
 * order with their content type, and a cancel releases the worker. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qstream.h"

typedef struct rig {
    tp_qstream st;
    char got[64];
    size_t got_len;
    int pieces;
    int most_ahead; /* the most bytes ever queued or in flight */
    const char *ctype;
    int rc[3];
    bool done;
} rig;

static void *worker(void *arg)
{
    rig *g = arg;
    g->rc[0] = tp_qstream_push(&g->st, "text/plain", "abc", 3);
    g->rc[1] = tp_qstream_push(&g->st, "text/plain", "def", 3);
    g->rc[2] = tp_qstream_push(&g->st, "text/plain", "gh", 2);
    __atomic_store_n(&g->done, true, __ATOMIC_RELEASE);
    return NULL;
}

/* The loop's side: take every queued piece, note it, say it has left. */
static void on_piece(uv_async_t *a)
{
    rig *g = a->data;
    pthread_mutex_lock(&g->st.mu);
    if ((int)g->st.ahead > g->most_ahead)
        g->most_ahead = (int)g->st.ahead;
    pthread_mutex_unlock(&g->st.mu);
    tp_qstream_piece *p;
    while ((p = tp_qstream_pop(&g->st))) {
        memcpy(g->got + g->got_len, p->data, p->len);
        g->got_len += p->len;
        g->pieces++;
        g->ctype = p->content_type;
        tp_qstream_sent(&g->st, p->len);
        free(p);
    }
}

/* Runs the loop until the worker is done (it may still be inside
 * uv_async_send until then, so the handle closes only after), then closes
 * the stream's handle. */
static void run_until_done(uv_loop_t *loop, rig *g, pthread_t th)
{
    while (!__atomic_load_n(&g->done, __ATOMIC_ACQUIRE)) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    pthread_join(th, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    tp_qstream_close(&g->st, NULL);
    cr_assert_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
}

Test(qstream, pieces_arrive_in_order_and_the_worker_waits_past_the_limit)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    rig g = {0};
    cr_assert_eq(tp_qstream_init(&g.st, &loop, 4, on_piece, &g), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, worker, &g), 0);
    run_until_done(&loop, &g, th);
    g.got[g.got_len] = '\0';
    cr_assert_str_eq(g.got, "abcdefgh");
    cr_assert_str_eq(g.ctype, "text/plain");
    cr_assert_eq(g.rc[0] | g.rc[1] | g.rc[2], 0);
    /* A push waits while more than 4 bytes are unsent, so at most one
     * 3-byte piece plus one more were ever ahead of the loop. */
    cr_assert_leq(g.most_ahead, 6);
    tp_qstream_destroy(&g.st);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

static void *blocked_worker(void *arg)
{
    rig *g = arg;
    g->rc[0] = tp_qstream_push(&g->st, "a/b", "0123456789", 10); /* past the limit: waits */
    g->rc[1] = tp_qstream_push(&g->st, "a/b", "x", 1);
    __atomic_store_n(&g->done, true, __ATOMIC_RELEASE);
    return NULL;
}

static void cancel_on_piece(uv_async_t *a)
{
    rig *g = a->data;
    /* Nobody reads: the receiver goes away instead. */
    tp_qstream_cancel(&g->st);
}

Test(qstream, cancel_releases_a_waiting_worker_and_drops_the_pieces)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    rig g = {0};
    cr_assert_eq(tp_qstream_init(&g.st, &loop, 4, cancel_on_piece, &g), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, blocked_worker, &g), 0);
    run_until_done(&loop, &g, th);
    cr_assert_eq(g.rc[0], -EPIPE);
    cr_assert_eq(g.rc[1], -EPIPE);
    cr_assert_null(tp_qstream_pop(&g.st));
    tp_qstream_destroy(&g.st);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
