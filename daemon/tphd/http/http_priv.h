/* Internals of daemon/tphd/http, shared by http.c (server, routing, query
 * jobs), http_auth.c (tokens, Host check, cookie), http_send.c (responses,
 * assets) and http_api.c (the JSON API's routes). Not a contract. */
#ifndef TP_HTTP_PRIV_H
#define TP_HTTP_PRIV_H

#include <h2o.h>

#include "assets.h"
#include "http.h"
#include "vec.h"

#define TP_HTTP_MAX_JOBS 64 /* queries in flight; more get 503 */
/* Connections open at once; more are closed as accepted, with a log line.
 * Their descriptors come out of TP_SERVER_FD_RESERVE (net/server.h), so
 * HTTP clients can never take the socket's (nor SQLite's) descriptors. */
#define TP_HTTP_MAX_CONNS 128

typedef struct http_conn {
    uv_tcp_t tcp; /* first: h2o's close callback gets this handle */
    tp_http *h;
    struct http_conn *prev, *next;
} http_conn;

typedef struct http_token {
    uint32_t uid;
    uint8_t key[16];
} http_token;

typedef struct http_handler {
    h2o_handler_t super;
    tp_http *h;
} http_handler;

/* The server. Loop thread only, except tok_mu and what it guards (tokens are
 * made by query workers through tp_http_link) and backend, which is set
 * once before serving. */
struct tp_http {
    uv_loop_t *loop;
    uv_thread_t loop_thread; /* the thread tp_http_start() ran on: the loop's */
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_timer_t sentinel;     /* never started; its close callback frees the server */
    tp_http_backend backend; /* set at start, then read-only */
    bool allow_remote;
    uint16_t port;     /* set at start, then read-only */
    char base_url[80]; /* set at start, then read-only (pool jobs read it) */
    char cookie_name[32];
    uint32_t owner_uid;
    uv_mutex_t tok_mu;
    TP_VEC(http_token) tokens; /* [0] is the owner's; under tok_mu (pool jobs make tokens) */
    http_conn *conns;
    size_t nconns, njobs;
    uint64_t refused; /* connections closed past TP_HTTP_MAX_CONNS */
    bool started, listening, stopping, finishing;
    int closing; /* handles of ours still closing before the final release */
    void (*done)(void *);
    void *done_arg;
    /* Set by tp_http_start(): a stopping server finishes once its last
     * connection and job are gone (http_jobs.c calls it after a job). */
    void (*finish_if_idle)(tp_http *h);
};

/** Presentation of a query's answer. */
enum {
    TP_HTTP_AS_BODY = 0, /* the body with its content type */
    TP_HTTP_AS_DOWNLOAD, /* the same, with Content-Disposition: attachment */
};

/** Send a complete response: status, content type, Cache-Control and the
 *  security headers every answer carries; body is copied. */
void tp_http_send(h2o_req_t *req, int status, const char *reason, const char *ctype,
                  const char *cache, const void *body, size_t len);

/** Add a response header; value is copied into the request's pool. */
void tp_http_add_header(h2o_req_t *req, const h2o_token_t *name, const char *value);

/** Like tp_http_send() with a body that lives until the request is done
 *  (not copied). */
void tp_http_send_ref(h2o_req_t *req, int status, const char *reason, const char *ctype,
                      const char *cache, h2o_iovec_t body);

/** Start a 200 response whose body follows in pieces: h2o_send() with
 *  H2O_SEND_STATE_IN_PROGRESS, then FINAL (or ERROR); generator->proceed
 *  asks for the next piece, generator->stop says the client went away.
 *  The headers are those of tp_http_send(). */
void tp_http_start_stream(h2o_req_t *req, const char *ctype, const char *cache,
                          h2o_generator_t *generator);

/** 401: a JSON error for the API, else the HTML page that says to run
 *  `tph open`. */
void tp_http_send_unauthorized(h2o_req_t *req, bool api);

/** Serve an asset: 304 when If-None-Match matches its ETag, else its gzip
 *  bytes when the request accepts gzip, else the plain bytes. */
void tp_http_serve_asset(h2o_req_t *req, const tp_asset *a);

/** Send {"error": code, "message": message} with status. */
void tp_http_send_error(h2o_req_t *req, int status, const char *code, const char *message);

/* http_jobs.c */

/** Run op(args) on the threadpool for uid and answer req with the result.
 *  Takes args (malloc'd JSON text) in every case. filename names the
 *  download for TP_HTTP_AS_DOWNLOAD. Answers 503 itself when too many
 *  queries are in flight. */
void tp_http_run_query(tp_http *h, h2o_req_t *req, uint32_t uid, const char *op, char *args,
                       int how, const char *filename);

/* http_auth.c */

/** The owner's token from path when it is a private (0600) regular file of
 *  ours holding 32 hex digits; otherwise a fresh random one, written there
 *  atomically. Returns 0 or a negative errno with a message in err. */
int tp_http_load_token(const char *path, uint8_t key[16], char *err, size_t errsz);

/** Whether a Host header value (authority) is ours: bound (the authority
 *  of our base URL, e.g. "127.0.0.2:7345"; may be NULL), or "localhost",
 *  "127.0.0.1" or "[::1]" with our_port (or no port when our_port is 80),
 *  all case-insensitive. Always true with allow_remote. */
bool tp_http_host_ok(h2o_iovec_t host, const char *bound, uint16_t our_port, bool allow_remote);

/** The authority part of h's base URL ("127.0.0.1:7345"). */
const char *tp_http_authority(const tp_http *h);

/** The uid req may act as, from ?token= (then answered with a 302 that sets
 *  the cookie: returns UINT32_MAX - 1) or the cookie; UINT32_MAX when none. */
uint32_t tp_http_authenticate(tp_http *h, h2o_req_t *req);

/* http_api.c */

/** Whether s (n bytes) is a trace ID prefix: 1-32 hex digits. On success
 *  writes it lowercased and NUL-terminated into id. */
bool tp_http_valid_id(const char *s, size_t n, char id[33]);

/** The decoded value of query-string parameter name of req into buf (NUL
 *  terminated). Returns 0, -ENOENT (absent), -ENOSPC (too long) or -EINVAL
 *  (bad escape or a NUL byte). */
int tp_http_param(h2o_req_t *req, const char *name, char *buf, size_t size);

/** Answer a request for /api/... (path is the normalized path). */
void tp_http_api(tp_http *h, h2o_req_t *req, uint32_t uid, const char *path, size_t len);

#endif
