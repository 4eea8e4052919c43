/* Internals shared by http.c (server, tokens, responses, query jobs) and
 * http_api.c (the JSON API's routes). Not a contract. */
#ifndef TP_HTTP_PRIV_H
#define TP_HTTP_PRIV_H

#include <h2o.h>

#include "http.h"

#define TP_HTTP_MAX_JOBS 64 /* queries in flight; more get 503 */

/** Presentation of a query's answer. */
enum {
    TP_HTTP_AS_BODY = 0, /* the body with its content type */
    TP_HTTP_AS_DOWNLOAD, /* the same, with Content-Disposition: attachment */
};

/** Send a complete response: status, content type, Cache-Control and the
 *  security headers every answer carries; body is copied. */
void tp_http_send(h2o_req_t *req, int status, const char *reason, const char *ctype,
                  const char *cache, const void *body, size_t len);

/** Send {"error": code, "message": message} with status. */
void tp_http_send_error(h2o_req_t *req, int status, const char *code, const char *message);

/** Run op(args) on the threadpool for uid and answer req with the result.
 *  Takes args (malloc'd JSON text) in every case. filename names the
 *  download for TP_HTTP_AS_DOWNLOAD. Answers 503 itself when too many
 *  queries are in flight. */
void tp_http_run_query(tp_http *h, h2o_req_t *req, uint32_t uid, const char *op, char *args,
                       int how, const char *filename);

/** The decoded value of query-string parameter name of req into buf (NUL
 *  terminated). Returns 0, -ENOENT (absent), -ENOSPC (too long) or -EINVAL
 *  (bad escape or a NUL byte). */
int tp_http_param(h2o_req_t *req, const char *name, char *buf, size_t size);

/** Answer a request for /api/... (path is the normalized path). */
void tp_http_api(tp_http *h, h2o_req_t *req, uint32_t uid, const char *path, size_t len);

#endif
