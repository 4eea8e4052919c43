/* Every answer tphd's HTTP server sends goes through here: the security
 * headers each one carries, JSON errors, the 401 page, and the static assets
 * of the report UI (compressed at build time, validated by ETag). Loop
 * thread only: h2o requests belong to the loop. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assets.h"
#include "http_priv.h"
#include "json.h"

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

/* h2o keeps the value pointer until the headers are sent: copy it into the
 * request's pool, so callers may pass stack buffers. */
void tp_http_add_header(h2o_req_t *req, const h2o_token_t *name, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header(&req->pool, &req->res.headers, name, NULL, v.base, v.len);
}

/* For static names and values only (not copied). */
static void add_header_str(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value,
                          strlen(value));
}

static h2o_mime_attributes_t compressible = {1, H2O_MIME_ATTRIBUTE_PRIORITY_NORMAL};
static h2o_mime_attributes_t as_is = {0, H2O_MIME_ATTRIBUTE_PRIORITY_NORMAL};

static void security_headers(h2o_req_t *req)
{
    add_header_str(req, "content-security-policy", csp);
    add_header_str(req, "x-content-type-options", "nosniff");
    add_header_str(req, "x-frame-options", "DENY");
    add_header_str(req, "referrer-policy", "no-referrer");
}

/* Starts a response on the loop: status, headers, then the generator. */
static void start(h2o_req_t *req, int status, const char *reason, const char *ctype,
                  const char *cache, h2o_generator_t *generator)
{
#ifndef NDEBUG
    /* h2o requests are the loop's: an answer from a pool thread would race
     * the loop inside h2o without any error. */
    tp_http *h = H2O_STRUCT_FROM_MEMBER(tp_http, ctx, req->conn->ctx);
    uv_thread_t self = uv_thread_self();
    assert(uv_thread_equal(&h->loop_thread, &self));
#endif
    req->res.status = status;
    req->res.reason = reason;
    if (ctype)
        tp_http_add_header(req, H2O_TOKEN_CONTENT_TYPE, ctype);
    if (cache)
        tp_http_add_header(req, H2O_TOKEN_CACHE_CONTROL, cache);
    security_headers(req);
    if (!req->res.mime_attr)
        req->res.mime_attr = &compressible;
    h2o_start_response(req, generator);
}

/* Send body (not copied: it must outlive the request, e.g. pool memory). */
void tp_http_send_ref(h2o_req_t *req, int status, const char *reason, const char *ctype,
                      const char *cache, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.content_length = body.len;
    start(req, status, reason, ctype, cache, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

void tp_http_start_stream(h2o_req_t *req, const char *ctype, const char *cache,
                          h2o_generator_t *generator)
{
    start(req, 200, "OK", ctype, cache, generator);
}

void tp_http_send(h2o_req_t *req, int status, const char *reason, const char *ctype,
                  const char *cache, const void *body, size_t len)
{
    h2o_iovec_t b = h2o_iovec_init(NULL, 0);
    if (len) {
        b.base = h2o_mem_alloc_pool(&req->pool, len);
        memcpy(b.base, body, len);
        b.len = len;
    }
    tp_http_send_ref(req, status, reason, ctype, cache, b);
}

void tp_http_send_error(h2o_req_t *req, int status, const char *code, const char *message)
{
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, false);
    tp_json_obj(&w);
    tp_json_kstr(&w, "error", code);
    tp_json_kstr(&w, "message", message);
    tp_json_obj_end(&w);
    tp_buf_putc(&b, '\n');
    const char *reason = status == 400   ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 403 ? "Forbidden"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 409 ? "Conflict"
                         : status == 413 ? "Payload Too Large"
                         : status == 421 ? "Misdirected Request"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    if (tp_buf_error(&b))
        tp_http_send(req, 503, "Service Unavailable", "text/plain; charset=utf-8", "no-store",
                     "out of memory\n", 14);
    else
        tp_http_send(req, status, reason, "application/json", "no-store", b.data, b.len);
    tp_buf_free(&b);
}

static const char unauthorized_page[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>tracepatch: link needed</title>\n"
    "<link rel=\"icon\" href=\"/assets/favicon.svg\">\n"
    "<link rel=\"stylesheet\" href=\"/assets/style.css\">\n</head>\n"
    "<body class=\"msg-page\">\n<main class=\"msg\">\n"
    "<h1>This report needs its link</h1>\n"
    "<p>tracepatch reports are private to the user running <code>tphd</code>. Open the link "
    "that <code>tph open</code> prints: it carries an access token once, and your browser "
    "then keeps it as a cookie for this address.</p>\n"
    "<pre>tph open TRACE_ID    # one trace\ntph open             # the trace list</pre>\n"
    "</main>\n</body>\n</html>\n";

void tp_http_send_unauthorized(h2o_req_t *req, bool api)
{
    if (api) {
        tp_http_send_error(req, 401, "unauthorized",
                           "a token is required: open the link `tph open ID` prints");
        return;
    }
    tp_http_send(req, 401, "Unauthorized", "text/html; charset=utf-8", "no-store",
                 unauthorized_page, sizeof(unauthorized_page) - 1);
}

/* ---- Static assets ------------------------------------------------------- */

static bool accepts_gzip(h2o_req_t *req)
{
    return (h2o_get_compressible_types(&req->headers) & H2O_COMPRESSIBLE_GZIP) != 0;
}

void tp_http_serve_asset(h2o_req_t *req, const tp_asset *a)
{
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    tp_http_add_header(req, H2O_TOKEN_ETAG, a->etag);
    tp_http_add_header(req, H2O_TOKEN_VARY, "accept-encoding");
    if (inm != -1 && h2o_memis(req->headers.entries[inm].value.base,
                               req->headers.entries[inm].value.len, a->etag, strlen(a->etag))) {
        tp_http_send_ref(req, 304, "Not Modified", NULL, "no-cache", h2o_iovec_init(NULL, 0));
        return;
    }
    req->res.mime_attr = &as_is; /* precompressed below, or left alone */
    h2o_iovec_t body = h2o_iovec_init(a->data, a->len);
    if (a->gz && accepts_gzip(req)) {
        tp_http_add_header(req, H2O_TOKEN_CONTENT_ENCODING, "gzip");
        body = h2o_iovec_init(a->gz, a->gz_len);
    }
    tp_http_send_ref(req, 200, "OK", a->content_type, "no-cache", body);
}
