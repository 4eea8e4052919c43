/* The HTTP API's queries as jobs on libuv's thread pool: the query runs
 * off the loop (job_work), its answer is sent back on the loop (job_done)
 * unless the request went away meanwhile. At most TP_HTTP_MAX_JOBS run at
 * once. A stopping server learns through its finish_if_idle hook that the
 * last job ended. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_priv.h"
#include "tp_err.h"

typedef struct job_guard {
    struct job *job; /* NULL once the job answered */
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
    tp_http_reply reply;
} job;

/* The request's memory is being released: the job must not answer it. */
static void on_guard_dispose(void *p)
{
    job_guard *g = p;
    if (g->job)
        g->job->req = NULL;
}

static void on_body_dispose(void *p)
{
    free(*(char **)p);
}

static void job_work(uv_work_t *w)
{
    job *j = w->data;
    j->h->backend.query(j->h->backend.ctx, j->uid, j->op, j->args, &j->reply);
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

static void job_done(uv_work_t *w, int status)
{
    job *j = w->data;
    tp_http *h = j->h;
    h2o_req_t *req = j->req;
    if (req) {
        j->guard->job = NULL;
        tp_http_reply *rp = &j->reply;
        if (status != 0 && rp->code == 0)
            rp->code = status;
        if (rp->code == 0 && tp_buf_error(&rp->body))
            rp->code = -ENOMEM;
        if (rp->code) {
            const char *name;
            int st = status_of(rp->code, &name);
            tp_http_send_error(req, st, name,
                               rp->body.len && !tp_buf_error(&rp->body) ? tp_buf_cstr(&rp->body)
                                                                        : tp_strerror(rp->code));
        } else {
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
    }
    tp_buf_free(&j->reply.body);
    free(j->args);
    free(j);
    h->njobs--;
    h->finish_if_idle(h);
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
    if (!j) {
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
    j->guard->job = j;
    j->work.data = j;
    int r = uv_queue_work(h->loop, &j->work, job_work, job_done);
    if (r) {
        j->guard->job = NULL;
        free(j->args);
        free(j);
        tp_http_send_error(req, 503, "unavailable", uv_strerror(r));
        return;
    }
    h->njobs++;
}
