/* tphd's web server (issue 5): the report UI (web/, embedded) and its JSON
 * API (docs/API.md) over HTTP/1.1, served by h2o on the daemon's libuv loop.
 *
 * Security: the server binds to loopback unless told otherwise, answers 421
 * to a Host header that names anything but localhost/127.0.0.1/[::1] with
 * its port (DNS rebinding), and serves nothing but its static assets without
 * a token. A token is 128 random bits: the daemon owner's is kept in a 0600
 * file (created on first start) and acts as the daemon's euid; other users'
 * tokens (system daemon) are made on demand by tp_http_token() and live as
 * long as the process. A token is accepted once in the URL ("?token=HEX"),
 * answered with a 302 to the same URL without it that sets an HttpOnly,
 * SameSite=Strict cookie, and from then on as that cookie. No CORS headers,
 * a strict Content-Security-Policy, nosniff, no-referrer.
 *
 * Queries go to the daemon through a backend callback, run on libuv's
 * threadpool (uv_queue_work), never on the loop thread. */
#ifndef TP_HTTP_H
#define TP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"

#define TP_HTTP_DEFAULT_PORT 7345    /* `tphd --http` default: 127.0.0.1:7345 */
#define TP_HTTP_TOKEN_FILE   "token" /* the owner's token file, next to the database */

typedef struct tp_http tp_http;

/** What a backend query produced. The server initialises it (code 0,
 *  content_type "application/json", empty body) and frees the body. */
typedef struct tp_http_reply {
    int code;              /* 0, or a tp_err.h code / negated errno */
    char content_type[64]; /* code 0: the body's type ("application/json", "text/csv", ...) */
    tp_buf body;           /* code 0: the answer; otherwise the error message for the user */
    /* Set by the backend while the op runs: where its content type is. The
     * server makes body a stream (tp_buf_set_drain) whose pieces, drained
     * on the backend's thread, read it. */
    const char *const *live_type;
} tp_http_reply;

/** How the server reaches the daemon's queries (the ops of docs/QUERY.md). */
typedef struct tp_http_backend {
    /** Run query op with args (a JSON object text) on behalf of uid and fill
     *  reply. Called on a libuv threadpool thread, possibly several at once,
     *  never on the loop thread. The ops used: status, list, get, tree
     *  (format "web"), search, stats (format "json"), diff (format "json"),
     *  export. */
    void (*query)(void *ctx, uint32_t uid, const char *op, const char *args_json,
                  tp_http_reply *reply);
    void *ctx;
} tp_http_backend;

/** Where and how to listen. */
typedef struct tp_http_config {
    const char *host;  /* address to bind: an IPv4/IPv6 literal or "localhost"; NULL: 127.0.0.1 */
    uint16_t port;     /* 0: any free port (see tp_http_port()) */
    bool allow_remote; /* allow a non-loopback address, and then any Host header */
    const char *token_path; /* the owner's 0600 token file; required */
    uint32_t owner_uid;     /* the uid the owner's token acts as (the daemon's euid) */
} tp_http_config;

/** Split "HOST:PORT", "[V6]:PORT", "HOST" (default port) or ":PORT"
 *  (default host) into host (NUL-terminated, brackets removed) and port.
 *  Returns 0 or -EINVAL. */
int tp_http_parse_listen(const char *spec, char *host, size_t hostsz, uint16_t *ret_port);

/** Load or create the token file, bind and start serving on loop. Refuses
 *  (TP_ERR_PERM) a non-loopback address unless cfg->allow_remote. On failure
 *  returns a code and writes a message into err (e.g. "127.0.0.1:7345: address
 *  already in use"). The backend is copied. Loop thread only. */
int tp_http_start(tp_http **ret, uv_loop_t *loop, const tp_http_config *cfg,
                  const tp_http_backend *backend, char *err, size_t errsz);

/** The bound port (useful with port 0). */
uint16_t tp_http_port(const tp_http *h);

/** The base URL ("http://127.0.0.1:7345", "http://[::1]:7345"; a wildcard
 *  bind gives 127.0.0.1). Any thread. Returns 0 or -ENOSPC. */
int tp_http_base_url(const tp_http *h, char *buf, size_t size);

/** The token (32 lowercase hex digits and a NUL) that gives uid access: the
 *  owner's for cfg->owner_uid, else one made for uid on first use. Any thread.
 *  Returns 0, -ENOMEM or -EIO (no randomness). */
int tp_http_token(tp_http *h, uint32_t uid, char ret_hex[33]);

/** The link `tph open` prints: base URL + "/t/" + trace_id + "?token=" + uid's
 *  token (trace_id NULL: the trace list). Any thread. Returns 0, -ENOSPC or
 *  tp_http_token()'s codes. */
int tp_http_link(tp_http *h, uint32_t uid, const char *trace_id, char *buf, size_t size);

/** Stop: close the listener, let requests in progress finish (open
 *  connections are shut down), then release everything and call done(arg)
 *  (may be NULL) on the loop. h is invalid afterwards. Loop thread only. */
void tp_http_stop(tp_http *h, void (*done)(void *arg), void *arg);

#endif
