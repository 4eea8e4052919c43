/* The HTTP API's queries as jobs on libuv's thread pool: the query runs
 * off the loop (job_work); its answer streams (as dispatch.c's do for tph):
 * the reply body's drain hands each PIECE to the loop (job_async) and waits
 * while more than AHEAD bytes of it are unsent, and the loop starts the
 * response with the first piece and sends the next whenever h2o asks
 * (proceed). An answer that fails after its first piece ends the response
 * abruptly (H2O_SEND_STATE_ERROR): its status was sent already. A request
 * that goes away cancels its job. At most TP_HTTP_MAX_JOBS run at once. A
 * stopping server learns through its finish_if_idle hook that the last job
 * ended. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_priv.h"
#include "qstream.h"
#include "tp_err.h"

#define PIECE (1u << 20)  /* body bytes per h2o_send() of a stream */
#define AHEAD (2 * PIECE) /* unsent bytes before the worker waits */

/* In the request's pool: h2o calls the generator as long as the request
 * lives, the job may be gone by then. */
typedef struct job_guard {
    h2o_generator_t gen; /* first: proceed and stop get the guard */
    struct job *job;     /* NULL once the job is done with the request */
} job_guard;

typedef struct job {
    uv_work_t work;
    tp_http *h;
    h2o_req_t *req; /* NULL when the request went away first */
    job_guard *guard;
    uint32_t uid;
    int how;
    char op[16];
    char *args;
    char filename[96];
    tp_http_reply reply; /* the worker's until job_done */
    /* Loop thread. */
    bool started;              /* the response began */
    bool worker_done;          /* job_done ran */
    tp_qstream_piece *sending; /* given to h2o_send(), freed when h2o asks for more */
    tp_qstream st;             /* the answer's pieces, worker to loop */
} job;

static int job_drain(void *ctx, const char *p, size_t n)
{
    job *j = ctx;
    return tp_qstream_push(&j->st,
                           j->reply.live_type && *j->reply.live_type ? *j->reply.live_type
                                                                     : "application/octet-stream",
                           p, n);
}

static void job_cancel(job *j)
{
    tp_qstream_cancel(&j->st);
}

static void job_finish(job *j);

/* The request's memory is being released: the job must not answer it. */
static void on_guard_dispose(void *p)
{
    job_guard *g = p;
    job *j = g->job;
    if (!j)
        return;
    j->req = NULL;
    g->job = NULL;
    j->guard = NULL; /* freed with the pool */
    job_cancel(j);
    free(j->sending); /* h2o is done with it */
    j->sending = NULL;
    if (j->worker_done)
        job_finish(j);
}

static void on_body_dispose(void *p)
{
    free(*(char **)p);
}

static void job_work(uv_work_t *w)
{
    job *j = w->data;
    j->h->backend.query(j->h->backend.ctx, j->uid, j->op, j->args, &j->reply);
    /* What is left must be one piece at most: a reserve past a piece can
     * leave more behind. */
    if (j->reply.code == 0 && j->reply.body.len > PIECE && tp_buf_flush(&j->reply.body) < 0)
        j->reply.code = tp_buf_error(&j->reply.body);
}

static int status_of(int code, const char **name)
{
    switch (code) {
    case TP_ERR_NOT_FOUND:
        *name = "not_found";
        return 404;
    case TP_ERR_AMBIGUOUS:
        *name = "ambiguous";
        return 409;
    case TP_ERR_PERM:
    case -EPERM:
    case -EACCES:
        *name = "forbidden";
        return 403;
    case TP_ERR_LIMIT:
        *name = "too_large";
        return 413;
    case TP_ERR_MALFORMED:
    case TP_ERR_TYPE:
    case TP_ERR_MISSING:
    case TP_ERR_JSON:
    case -EINVAL:
    case -ERANGE:
        *name = "bad_request";
        return 400;
    case -ENOMEM:
    case -EAGAIN:
    case -EBUSY:
        *name = "unavailable";
        return 503;
    default:
        *name = "internal";
        return 500;
    }
}

static void on_async_closed(uv_handle_t *hd)
{
    job *j = hd->data;
    tp_http *h = j->h;
    tp_qstream_destroy(&j->st);
    free(j->sending);
    tp_buf_free(&j->reply.body);
    free(j->args);
    free(j);
    h->njobs--;
    h->finish_if_idle(h);
}

static void job_finish(job *j)
{
    if (j->guard)
        j->guard->job = NULL;
    tp_qstream_close(&j->st, on_async_closed);
}

/* A whole answer, or an error before anything was sent. */
static void answer(job *j)
{
    h2o_req_t *req = j->req;
    tp_http_reply *rp = &j->reply;
    if (rp->code == 0 && tp_buf_error(&rp->body))
        rp->code = tp_buf_error(&rp->body);
    if (rp->code) {
        const char *name;
        int st = status_of(rp->code, &name);
        tp_http_send_error(req, st, name,
                           rp->body.len && !tp_buf_error(&rp->body) ? tp_buf_cstr(&rp->body)
                                                                    : tp_strerror(rp->code));
        return;
    }
    size_t len = 0;
    char *body = tp_buf_steal(&rp->body, &len);
    char **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_body_dispose);
    *slot = body;
    if (j->how == TP_HTTP_AS_DOWNLOAD) {
        char cd[160];
        snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", j->filename);
        tp_http_add_header(req, H2O_TOKEN_CONTENT_DISPOSITION, cd);
    }
    const char *ct = rp->content_type[0] ? rp->content_type : "application/octet-stream";
    tp_http_send_ref(req, 200, "OK", h2o_strdup(&req->pool, ct, SIZE_MAX).base, "no-store",
                     h2o_iovec_init(body ? body : "", len));
}

/* Sends the next piece when h2o is ready for it; once the worker is done
 * and every piece has gone, the end. Loop thread. */
static void job_pump(job *j)
{
    h2o_req_t *req = j->req;
    if (j->sending)
        return; /* h2o has not asked for more yet */
    if (!req) {
        if (j->worker_done)
            job_finish(j);
        return;
    }
    tp_qstream_piece *p = tp_qstream_pop(&j->st);
    if (!p) {
        if (!j->worker_done)
            return;
        if (!j->started) {
            answer(j);
        } else if (j->reply.code == 0 && !tp_buf_error(&j->reply.body)) {
            h2o_iovec_t last = h2o_iovec_init(NULL, 0);
            if (j->reply.body.len) {
                last.base = h2o_mem_alloc_pool(&req->pool, j->reply.body.len);
                memcpy(last.base, j->reply.body.data, j->reply.body.len);
                last.len = j->reply.body.len;
            }
            h2o_send(req, &last, 1, H2O_SEND_STATE_FINAL);
        } else {
            h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        }
        job_finish(j);
        return;
    }
    if (!j->started) {
        j->started = true;
        if (j->how == TP_HTTP_AS_DOWNLOAD) {
            char cd[160];
            snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", j->filename);
            tp_http_add_header(req, H2O_TOKEN_CONTENT_DISPOSITION, cd);
        }
        tp_http_start_stream(req, h2o_strdup(&req->pool, p->content_type, SIZE_MAX).base,
                             "no-store", &j->guard->gen);
    }
    j->sending = p;
    h2o_iovec_t buf = h2o_iovec_init(p->data, p->len);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* h2o sent the last piece and wants the next. */
static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    job *j = ((job_guard *)gen)->job;
    if (!j)
        return;
    tp_qstream_piece *p = j->sending;
    j->sending = NULL;
    if (p) {
        tp_qstream_sent(&j->st, p->len);
        free(p);
    }
    job_pump(j);
}

/* The client went away in the middle of the answer. */
static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    job *j = ((job_guard *)gen)->job;
    if (!j)
        return;
    j->req = NULL;
    j->guard->job = NULL;
    j->guard = NULL;
    job_cancel(j);
    free(j->sending);
    j->sending = NULL;
    if (j->worker_done)
        job_finish(j);
}

static void on_job_pieces(uv_async_t *a)
{
    job_pump(a->data);
}

static void job_done(uv_work_t *w, int status)
{
    job *j = w->data;
    if (status != 0 && j->reply.code == 0)
        j->reply.code = status;
    j->worker_done = true;
    job_pump(j);
}

void tp_http_run_query(tp_http *h, h2o_req_t *req, uint32_t uid, const char *op, char *args,
                       int how, const char *filename)
{
    if (h->njobs >= TP_HTTP_MAX_JOBS) {
        free(args);
        tp_http_send_error(req, 503, "busy", "too many queries in progress; retry");
        return;
    }
    job *j = calloc(1, sizeof(*j));
    if (!j || tp_buf_set_drain(&j->reply.body, PIECE, job_drain, j) < 0 ||
        tp_qstream_init(&j->st, h->loop, AHEAD, on_job_pieces, j) < 0) {
        if (j)
            tp_buf_free(&j->reply.body);
        free(j);
        free(args);
        tp_http_send_error(req, 503, "no_memory", "out of memory");
        return;
    }
    j->h = h;
    j->req = req;
    j->uid = uid;
    j->how = how;
    j->args = args;
    snprintf(j->op, sizeof(j->op), "%s", op);
    snprintf(j->filename, sizeof(j->filename), "%s", filename ? filename : "download");
    snprintf(j->reply.content_type, sizeof(j->reply.content_type), "application/json");
    j->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*j->guard), on_guard_dispose);
    j->guard->gen = (h2o_generator_t){on_proceed, on_stop};
    j->guard->job = j;
    j->work.data = j;
    h->njobs++; /* given back when the job's handle has closed */
    int r = uv_queue_work(h->loop, &j->work, job_work, job_done);
    if (r) {
        tp_http_send_error(req, 503, "unavailable", uv_strerror(r));
        job_finish(j);
    }
}
