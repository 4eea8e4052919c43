/* The background sender: queue, thread, fork and exit handling (the
 * delivery of one trace is in deliver.c). See sender.h for the design.
 *
 * Locking: one mutex guards the queue, the finished list, and every
 * upload's state and results. The thread holds it only to take a job and to
 * publish a result, never during I/O, so the traced program (which takes it
 * to submit, and at fork) never waits for the socket. */
#include "sender.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sender_priv.h"

/* The thread ends when it has had nothing to do for this long. */
#define LINGER_NS (50 * 1000000LL)
#define GRAVES    64 /* sockets waiting to be closed */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work; /* the thread waits for jobs */
    pthread_cond_t done; /* waiters for results */
    bool setup, running, exiting, py_ok, reap_scheduled;
    tp_upload *head, *tail; /* queue */
    size_t nqueued;
    tp_upload *inflight;
    tp_upload *streams;          /* open streams (sender.h), linked by next */
    size_t nclosing;             /* streams whose trace ended, not delivered yet */
    tp_upload *finished;         /* finished, not reaped yet */
    atomic_bool has_finished;    /* hint: finished != NULL */
    tp_client_fd graves[GRAVES]; /* sockets to close with the GIL held */
    size_t ngraves;
    tp_client_fd live; /* the socket being used, closed in a forked child */
    char *ok_path;     /* where the last delivery was acknowledged, and when */
    int64_t ok_ns;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .py_ok = true, .live = {.fd = -1}};

atomic_bool tp__sender_abandon; /* see sender_priv.h */

/* ---- uploads ------------------------------------------------------------------ */

int tp_sender_upload_new(tp_upload **ret, const char *path)
{
    tp_upload *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->path = strdup(path);
    if (!u->path) {
        free(u);
        return -ENOMEM;
    }
    atomic_init(&u->refs, 1);
    u->probe.fd = -1;
    u->state = TP_UPLOAD_NONE;
    *ret = u;
    return 0;
}

static void release_frames(tp_upload *u)
{
    tp_buf_free(&u->hello);
    tp_buf_free(&u->pre);
    tp_buf_free(&u->end);
    tp_buf_free(&u->pub_funcs);
    tp_vec_free(&u->pub_blocks);
    tp_vec_free(&u->pub_chunks);
    tp_vec_free(&u->marks);
    tp_client_fd_close(&u->probe); /* GIL held, or the only thread of a child */
}

void tp_sender_upload_unref(tp_upload *u)
{
    if (!u || atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) > 1)
        return;
    release_frames(u);
    free(u->path);
    free(u->url);
    free(u->error);
    free(u);
}

void tp_sender_upload_settle(tp_upload *u, int state, uint64_t dropped, const char *reason)
{
    pthread_mutex_lock(&g.mu);
    u->state = state;
    u->dropped = dropped;
    free(u->error);
    u->error = reason ? strdup(reason) : NULL;
    pthread_mutex_unlock(&g.mu);
}

int tp_sender_upload_state(tp_upload *u)
{
    pthread_mutex_lock(&g.mu);
    int st = u->state;
    pthread_mutex_unlock(&g.mu);
    return st;
}

uint64_t tp_sender_upload_dropped(tp_upload *u)
{
    return tp_sender_upload_state(u) == TP_UPLOAD_PENDING ? 0 : u->dropped;
}

const char *tp_sender_upload_stored_id(tp_upload *u)
{
    return tp_sender_upload_state(u) == TP_UPLOAD_ACKED ? u->stored_id : NULL;
}

const char *tp_sender_upload_url(tp_upload *u)
{
    return tp_sender_upload_state(u) == TP_UPLOAD_ACKED ? u->url : NULL;
}

const char *tp_sender_upload_error(tp_upload *u)
{
    return tp_sender_upload_state(u) == TP_UPLOAD_PENDING ? NULL : u->error;
}

bool tp_sender_upload_refused(tp_upload *u)
{
    return tp_sender_upload_state(u) == TP_UPLOAD_FAILED && u->refused;
}

const char *tp_sender_upload_path(const tp_upload *u)
{
    return u->path;
}

/* ---- the thread ---------------------------------------------------------------- */

static void deadline_ts(struct timespec *ts, int64_t at)
{
    ts->tv_sec = (time_t)(at / 1000000000);
    ts->tv_nsec = (long)(at % 1000000000);
}

static int reap_pending(void *unused)
{
    tp_sender_reap();
    return 0;
}

/* Move u to the finished list and let the interpreter fold it soon. mu held. */
static void finish_locked(tp_upload *u)
{
    u->next = g.finished;
    g.finished = u;
    atomic_store_explicit(&g.has_finished, true, memory_order_release);
    pthread_cond_broadcast(&g.done);
    /* Under mu, so that tp_sender_flush() (which clears py_ok under mu
     * before the interpreter finalizes) never races with this call. */
    if (g.py_ok && !g.reap_scheduled && Py_AddPendingCall(reap_pending, NULL) == 0)
        g.reap_scheduled = true;
}

/* Remember (or forget) that a daemon answers at u's path. mu held. */
static void note_reached_locked(tp_upload *u, bool ok)
{
    bool same = g.ok_path && strcmp(g.ok_path, u->path) == 0;
    if (!ok) {
        if (same)
            g.ok_ns = 0;
        return;
    }
    if (!same) {
        char *p = strdup(u->path);
        if (!p)
            return;
        free(g.ok_path);
        g.ok_path = p;
    }
    g.ok_ns = tp_client_now();
}

static void publish_locked(tp_upload *u, tp_delivery *res)
{
    char full[sizeof(res->error) + 256];
    u->state = res->state;
    note_reached_locked(u, res->state == TP_UPLOAD_ACKED);
    if (res->state == TP_UPLOAD_ACKED) {
        memcpy(u->stored_id, res->stored_id, sizeof(u->stored_id));
        u->url = res->url;
        res->url = NULL;
    } else {
        u->dropped = u->nrecords;
        if (u->stream && !u->closing)
            /* The trace goes on recording: upload() sends it anew at its end. */
            snprintf(full, sizeof(full), "streaming to tphd at %s stopped after %llu events: %s",
                     u->path, (unsigned long long)u->dropped, res->error);
        else
            snprintf(full, sizeof(full), "upload to tphd at %s failed, %llu events dropped: %s",
                     u->path, (unsigned long long)u->dropped, res->error);
        u->error = strdup(full);
        u->refused = res->refused;
    }
    finish_locked(u);
}

/* Wait for a job, at most LINGER_NS once the queue is empty. mu held.
 * Returns false when the thread should end. */
static bool stream_work_locked(void)
{
    for (tp_upload *u = g.streams; u; u = u->next)
        if (u->work)
            return true;
    return false;
}

static bool await_job(void)
{
    struct timespec ts;
    deadline_ts(&ts, tp_client_now() + LINGER_NS);
    while (!g.head && !stream_work_locked() && !atomic_load(&tp__sender_abandon)) {
        /* An open stream keeps the thread: its next batch is coming. */
        if (pthread_cond_timedwait(&g.work, &g.mu, &ts) == ETIMEDOUT && !g.streams) {
            if (!g.head)
                return false;
        } else if (g.streams) {
            deadline_ts(&ts, tp_client_now() + LINGER_NS);
        }
    }
    return !atomic_load(&tp__sender_abandon);
}

void tp__sender_link_opened(const tp_client *l)
{
    pthread_mutex_lock(&g.mu);
    g.live = (tp_client_fd){l->fd, l->dev, l->ino};
    pthread_mutex_unlock(&g.mu);
}

/* A socket the sender is done with goes to the graveyard, closed later by
 * tp_sender_reap() with the GIL held: closing it here could race with a
 * program closing every descriptor and opening others under the same
 * numbers (we would then close one of its files). */
void tp__sender_link_release(tp_client *l)
{
    tp_client_fd f;
    tp_client_release(l, &f);
    if (f.fd < 0)
        return;
    pthread_mutex_lock(&g.mu);
    if (g.live.fd == f.fd) /* a stream's link may have been opened after it */
        g.live.fd = -1;
    if (g.ngraves < GRAVES) {
        g.graves[g.ngraves++] = f;
        atomic_store_explicit(&g.has_finished, true, memory_order_release);
    } else {
        tp_client_fd_close(&f); /* not expected: reap empties it after each upload */
    }
    pthread_mutex_unlock(&g.mu);
}

/* The thread ends when it has had nothing to do for LINGER_NS (a submit
 * after that starts a new one): a process that forks after its uploads
 * finished forks with one thread, as it would without tracepatch (Python
 * 3.12+ warns about fork() in a multi-threaded process). */
static void *sender_main(void *unused)
{
    pthread_mutex_lock(&g.mu);
    for (;;) {
        if (!await_job())
            break;
        tp_upload *u = g.head, **link = NULL;
        if (u) {
            g.head = u->next;
            if (!g.head)
                g.tail = NULL;
            g.nqueued--;
            u->next = NULL;
        } else {
            for (link = &g.streams; !(*link)->work; link = &(*link)->next)
                ;
            u = *link;
        }
        g.inflight = u;
        pthread_mutex_unlock(&g.mu);

        tp_delivery res;
        memset(&res, 0, sizeof(res));
        bool over;
        do
            over = tp_deliver_step(u, &res);
        while (!over && !link); /* a queued upload is closing: it ends in one step */

        pthread_mutex_lock(&g.mu);
        g.inflight = NULL;
        if (over) {
            if (link) {
                /* The list may have changed while unlocked: find u again. */
                for (link = &g.streams; *link != u; link = &(*link)->next)
                    ;
                *link = u->next;
                u->next = NULL;
                if (u->closing)
                    g.nclosing--;
            }
            publish_locked(u, &res);
        }
        free(res.url);
    }
    g.running = false;
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

int tp_sender_spawn(void *(*fn)(void *))
{
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t t;
    int r = pthread_attr_init(&attr);
    if (r)
        return -r;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&t, &attr, fn, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -r;
}

/* mu held. */
static int start_thread_locked(void)
{
    int r = tp_sender_spawn(sender_main);
    if (r)
        return r;
    g.running = true;
    return 0;
}

/* ---- setup and fork ---------------------------------------------------------------- */

static void init_conds(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.work, &ca);
    pthread_cond_init(&g.done, &ca);
    pthread_condattr_destroy(&ca);
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&g.mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&g.mu);
}

/* An upload of the parent's, seen from the child: the parent sends it. */
static void inherited(tp_upload *u)
{
    tp_client_fd_close(&u->probe);
    u->state = TP_UPLOAD_NONE;
    u->quiet = true;
    u->next = g.finished;
    g.finished = u;
}

/* The child has one thread (the one that forked, holding mu since
 * atfork_prepare): no sender, and the parent's queue is not ours to send. */
static void atfork_child(void)
{
    pthread_mutex_init(&g.mu, NULL);
    init_conds();
    g.running = false;
    atomic_store(&tp__sender_abandon, false);
    g.reap_scheduled = false;
    /* The parent's connection: tphd must see it close when the parent's
     * sender closes it, not when this child exits. */
    tp_client_fd_close(&g.live);
    for (tp_upload *u = g.streams, *next; u; u = next) {
        next = u->next;
        /* Its socket: tphd must see the stream end with the parent. */
        if (u->link.fd >= 0)
            close(u->link.fd);
        u->link.fd = -1;
        if (u != g.inflight)
            inherited(u);
    }
    if (g.inflight)
        inherited(g.inflight);
    g.inflight = NULL;
    for (tp_upload *u = g.head, *next; u; u = next) {
        next = u->next;
        inherited(u);
    }
    g.head = g.tail = g.streams = NULL;
    g.nqueued = g.nclosing = 0;
    atomic_store_explicit(&g.has_finished, g.finished != NULL, memory_order_release);
}

int tp_sender_setup(void)
{
    if (g.setup)
        return 0;
    init_conds();
    int r = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    if (r)
        return -r;
    g.setup = true;
    return 0;
}

/* ---- the interpreter's side (GIL held) ---------------------------------------------- */

/* Copy l's table entries from the last one published on into u's, with the
 * counts they have now, and append the FUNCS frames. mu held. */
static int publish_log_locked(tp_upload *u, const tp_evlog *l, tp_buf *funcs)
{
    size_t fb = u->pub_blocks.size ? u->pub_blocks.size - 1 : 0;
    size_t fc = u->pub_chunks.size ? u->pub_chunks.size - 1 : 0;
    if (tp_vec_reserve(&u->pub_blocks, l->blocks.size) < 0 ||
        tp_vec_reserve(&u->pub_chunks, l->chunks.size) < 0)
        return -ENOMEM;
    for (size_t i = fb; i < l->blocks.size; i++) {
        u->pub_blocks.items[i] = l->blocks.items[i];
        if (i + 1 == l->blocks.size)
            u->pub_blocks.items[i].n = l->n; /* the block being filled */
    }
    u->pub_blocks.size = l->blocks.size;
    for (size_t i = fc; i < l->chunks.size; i++)
        u->pub_chunks.items[i] = l->chunks.items[i];
    u->pub_chunks.size = l->chunks.size;
    if (funcs && funcs->len) {
        tp_buf_append(&u->pub_funcs, funcs->data, funcs->len);
        tp_buf_reset(funcs);
        if (tp_buf_error(&u->pub_funcs))
            return -ENOMEM;
    }
    u->nrecords = l->nrecords;
    u->work = true;
    return 0;
}

int tp__sender_take(tp_upload *u, tp_logview *v)
{
    int r = 0;
    pthread_mutex_lock(&g.mu);
    size_t nb = u->pub_blocks.size > u->pos.block ? u->pub_blocks.size - u->pos.block : 0;
    size_t nc = u->pub_chunks.size > u->pos.chunk ? u->pub_chunks.size - u->pos.chunk : 0;
    if (tp_vec_reserve(&v->blocks, nb) < 0 || tp_vec_reserve(&v->chunks, nc) < 0) {
        r = -ENOMEM;
    } else {
        if (nb)
            memcpy(v->blocks.items, u->pub_blocks.items + u->pos.block, nb * sizeof(tp_evblock));
        if (nc)
            memcpy(v->chunks.items, u->pub_chunks.items + u->pos.chunk, nc * sizeof(tp_evchunk));
        v->blocks.size = nb;
        v->chunks.size = nc;
        tp_buf_free(&v->funcs);
        v->funcs = u->pub_funcs;
        u->pub_funcs = (tp_buf)TP_BUF_INIT;
        v->closing = u->closing;
        u->work = false;
    }
    pthread_mutex_unlock(&g.mu);
    return r;
}

/* The interpreter's side of submit and stream_open: the thread runs, u is
 * the sender's (a reference and the session's). mu held. */
static int take_locked(tp_upload *u, tp_session *s, bool queue)
{
    int r = g.exiting ? -ESHUTDOWN : queue && g.nqueued >= TP_SENDER_QUEUE_MAX ? -EAGAIN : 0;
    if (!r && !g.running)
        r = start_thread_locked();
    if (r)
        return r;
    u->owner = Py_NewRef((PyObject *)s);
    memcpy(u->trace_id, s->trace_id, sizeof(u->trace_id));
    u->state = TP_UPLOAD_PENDING;
    atomic_fetch_add_explicit(&u->refs, 1, memory_order_acq_rel); /* the sender's */
    return 0;
}

int tp_sender_submit(tp_upload *u, tp_session *s, const tp_client_fd *probe, tp_buf *hello,
                     tp_buf *pre, tp_buf *end)
{
    u->probe = *probe;
    u->hello = *hello;
    u->pre = *pre;
    u->end = *end;
    *hello = *pre = *end = (tp_buf)TP_BUF_INIT;
    u->ns_mult = s->log.ns_mult;
    tp_sender_reap();
    int r = tp_sender_setup();
    if (r)
        goto fail;
    pthread_mutex_lock(&g.mu);
    r = publish_log_locked(u, &s->log, NULL);
    if (!r)
        r = take_locked(u, s, true);
    if (r) {
        pthread_mutex_unlock(&g.mu);
        goto fail;
    }
    u->closing = true;
    if (g.tail)
        g.tail->next = u;
    else
        g.head = u;
    g.tail = u;
    g.nqueued++;
    pthread_cond_signal(&g.work);
    pthread_mutex_unlock(&g.mu);
    return 0;
fail:
    release_frames(u);
    return r;
}

int tp_sender_stream_open(tp_upload *u, tp_session *s, tp_buf *hello, tp_buf *pre, uint64_t ns_mult)
{
    u->hello = *hello;
    u->pre = *pre;
    *hello = *pre = (tp_buf)TP_BUF_INIT;
    u->ns_mult = ns_mult;
    tp_sender_reap();
    int r = tp_sender_setup();
    if (r)
        goto fail;
    pthread_mutex_lock(&g.mu);
    r = take_locked(u, s, false);
    if (r) {
        pthread_mutex_unlock(&g.mu);
        goto fail;
    }
    u->stream = true;
    u->next = g.streams;
    g.streams = u;
    pthread_mutex_unlock(&g.mu);
    return 0;
fail:
    release_frames(u);
    return r;
}

int tp_sender_stream_publish(tp_upload *u, const tp_evlog *l, tp_buf *funcs)
{
    pthread_mutex_lock(&g.mu);
    int r =
        u->state != TP_UPLOAD_PENDING || u->closing ? -ECANCELED : publish_log_locked(u, l, funcs);
    if (!r)
        pthread_cond_signal(&g.work);
    pthread_mutex_unlock(&g.mu);
    return r;
}

bool tp_sender_stream_stored(tp_upload *u, tp_evlog_pos *ret, char id[33])
{
    pthread_mutex_lock(&g.mu);
    bool any = u->stored.records > 0;
    if (any) {
        *ret = u->stored;
        memcpy(id, u->stored_stream_id, 33);
    }
    pthread_mutex_unlock(&g.mu);
    return any;
}

void tp__sender_stored(tp_upload *u, const tp_evlog_pos *pos, const char *id)
{
    pthread_mutex_lock(&g.mu);
    u->stored = *pos;
    snprintf(u->stored_stream_id, sizeof(u->stored_stream_id), "%s", id);
    pthread_mutex_unlock(&g.mu);
}

int tp_sender_stream_close(tp_upload *u, const tp_evlog *l, tp_buf *funcs, tp_buf *end)
{
    pthread_mutex_lock(&g.mu);
    int r =
        u->state != TP_UPLOAD_PENDING || u->closing ? -ECANCELED : publish_log_locked(u, l, funcs);
    if (!r) {
        u->end = *end;
        *end = (tp_buf)TP_BUF_INIT;
        u->closing = true;
        g.nclosing++;
        pthread_cond_signal(&g.work);
    }
    pthread_mutex_unlock(&g.mu);
    return r;
}

bool tp_sender_upload_is_stream(tp_upload *u)
{
    pthread_mutex_lock(&g.mu);
    bool r = u->stream;
    pthread_mutex_unlock(&g.mu);
    return r;
}

void tp_sender_reap(void)
{
    if (!atomic_load_explicit(&g.has_finished, memory_order_acquire))
        return;
    tp_client_fd graves[GRAVES];
    pthread_mutex_lock(&g.mu);
    tp_upload *list = g.finished;
    size_t ngraves = g.ngraves;
    memcpy(graves, g.graves, ngraves * sizeof(*graves));
    g.finished = NULL;
    g.ngraves = 0;
    g.reap_scheduled = false;
    atomic_store_explicit(&g.has_finished, false, memory_order_release);
    pthread_mutex_unlock(&g.mu);
    for (size_t i = 0; i < ngraves; i++)
        tp_client_fd_close(&graves[i]);
    while (list) {
        tp_upload *u = list;
        list = u->next;
        u->next = NULL;
        PyObject *owner = u->owner;
        u->owner = NULL;
        tp_session *s = (tp_session *)owner;
        if (s && !u->quiet) {
            if (u->state == TP_UPLOAD_ACKED && strcmp(s->trace_id, u->stored_id) != 0)
                memcpy(s->trace_id, u->stored_id, sizeof(s->trace_id));
            if (u->state == TP_UPLOAD_FAILED && u->error)
                tp_session_error(s, "%s", u->error);
        }
        release_frames(u);
        /* The sender's reference first: dropping the session may drop the
         * last one of the session's. */
        tp_sender_upload_unref(u);
        Py_XDECREF(owner);
    }
}

int tp_sender_wait(tp_upload *u, int64_t timeout_ns)
{
    int st;
    Py_BEGIN_ALLOW_THREADS struct timespec ts;
    deadline_ts(&ts, tp_client_now() + (timeout_ns > 0 ? timeout_ns : 0));
    pthread_mutex_lock(&g.mu);
    while (u->state == TP_UPLOAD_PENDING &&
           pthread_cond_timedwait(&g.done, &g.mu, &ts) != ETIMEDOUT)
        ;
    st = u->state;
    pthread_mutex_unlock(&g.mu);
    Py_END_ALLOW_THREADS tp_sender_reap();
    return st;
}

/* Records not yet written by the queue and the upload in flight. mu held. */
static uint64_t records_left_locked(void)
{
    uint64_t left = 0;
    for (tp_upload *u = g.head; u; u = u->next)
        left += u->nrecords;
    for (tp_upload *u = g.streams; u; u = u->next) {
        uint64_t sent = atomic_load_explicit(&u->sent, memory_order_relaxed);
        if (u->closing)
            left += u->nrecords > sent ? u->nrecords - sent : 0;
    }
    if (g.inflight && !g.inflight->stream) {
        uint64_t sent = atomic_load_explicit(&g.inflight->sent, memory_order_relaxed);
        left += g.inflight->nrecords > sent ? g.inflight->nrecords - sent : 0;
    }
    return left;
}

/* The exit deadline for a flush that scales (sender.h). A trace whose END
 * is written gets its ACK wait on top, so a big trace tphd is committing is
 * not cut at the last moment. mu held. */
static int64_t scaled_deadline_locked(int64_t start)
{
    uint64_t left = records_left_locked();
    int64_t per = TP_SENDER_EXIT_EVENT_NS;
    int64_t at = start + TP_SENDER_EXIT_FLUSH_NS +
                 (left > (uint64_t)(INT64_MAX / 4 / per) ? INT64_MAX / 4 : (int64_t)left * per);
    int64_t ended =
        g.inflight ? atomic_load_explicit(&g.inflight->ended_ns, memory_order_relaxed) : 0;
    if (ended && !g.head && ended + TP_SENDER_ACK_NS > at)
        at = ended + TP_SENDER_ACK_NS;
    return at;
}

bool tp_sender_flush(int64_t timeout_ns)
{
    bool ok;
    if (!g.setup)
        return true;
    Py_BEGIN_ALLOW_THREADS struct timespec ts;
    int64_t start = tp_client_now();
    pthread_mutex_lock(&g.mu);
    int64_t deadline = timeout_ns >= 0 ? start + timeout_ns : scaled_deadline_locked(start);
    /* Open streams whose trace has not ended are not waited for: nothing
     * more comes for them (tphd keeps what it got, as truncated). */
    while (g.head || g.nclosing || (g.inflight && !g.inflight->stream)) {
        /* Wake at least every 50 ms: the scaled deadline moves when END is
         * written, which signals nothing. */
        int64_t now = tp_client_now(), wake = now + 50 * 1000000LL;
        if (now >= deadline)
            break;
        deadline_ts(&ts, wake < deadline ? wake : deadline);
        pthread_cond_timedwait(&g.done, &g.mu, &ts);
        if (timeout_ns < 0) {
            int64_t d = scaled_deadline_locked(start);
            /* Only the ACK allowance extends it; records sent never shrink it. */
            if (d > deadline && g.inflight &&
                atomic_load_explicit(&g.inflight->ended_ns, memory_order_relaxed))
                deadline = d;
        }
    }
    ok = !g.head && !g.nclosing && !(g.inflight && !g.inflight->stream);
    g.exiting = true;
    g.py_ok = false;
    atomic_store(&tp__sender_abandon, true);
    pthread_cond_broadcast(&g.work);
    /* The abandoned upload settles (FAILED) at its next I/O step, within a
     * few tens of ms: wait for that, so that the caller sees final states. */
    deadline_ts(&ts, tp_client_now() + 200 * 1000000LL);
    while (g.inflight && pthread_cond_timedwait(&g.done, &g.mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&g.mu);
    Py_END_ALLOW_THREADS tp_sender_reap();
    return ok;
}

bool tp_sender_recently_reached(const char *path)
{
    pthread_mutex_lock(&g.mu);
    bool r = g.ok_ns && g.ok_path && strcmp(g.ok_path, path) == 0 &&
             tp_client_now() - g.ok_ns < TP_SENDER_RECENT_NS;
    pthread_mutex_unlock(&g.mu);
    return r;
}

size_t tp_sender_pending(void)
{
    pthread_mutex_lock(&g.mu);
    size_t n = g.nqueued + (g.inflight != NULL);
    pthread_mutex_unlock(&g.mu);
    return n;
}

bool tp_sender_running(void)
{
    pthread_mutex_lock(&g.mu);
    bool r = g.running;
    pthread_mutex_unlock(&g.mu);
    return r;
}
