/* tphd's web server: listener, connections, tokens, static assets, responses
 * and query jobs. The API routes are in http_api.c. See http.h. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o/filecache.h>
#include <h2o/multithread.h>
#include <h2o/timeout.h>

#include "assets.h"
#include "http_priv.h"
#include "json.h"
#include "tp_err.h"

#define COOKIE_MAX_AGE "2592000" /* 30 days */

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

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

struct tp_http {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_timer_t sentinel; /* never started; its close callback frees the server */
    tp_http_backend backend;
    bool allow_remote;
    uint16_t port;
    char base_url[80];
    char cookie_name[32];
    uint32_t owner_uid;
    uv_mutex_t tok_mu;
    http_token *tokens; /* [0] is the owner's; guarded by tok_mu */
    size_t ntokens, tokcap;
    http_conn *conns;
    size_t nconns, njobs;
    bool started, listening, stopping, finishing;
    int closing; /* handles of ours still closing before the final release */
    void (*done)(void *);
    void *done_arg;
};

/* ---- Tokens ------------------------------------------------------------- */

static void hex_encode(const uint8_t *key, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[key[i] >> 4];
        out[2 * i + 1] = hex[key[i] & 15];
    }
    out[32] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly 32 hex digits into key. */
static bool hex_decode(const char *s, size_t n, uint8_t key[16])
{
    if (n != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static int random_key(uint8_t key[16])
{
    return getrandom(key, 16, 0) == 16 ? 0 : -EIO;
}

/* The owner's token from path when it is a private regular file of ours
 * holding 32 hex digits; otherwise a fresh one, written atomically (0600). */
static int load_token(const char *path, uint8_t key[16], char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        char buf[64];
        ssize_t n = -1;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            (st.st_mode & 077) == 0)
            n = read(fd, buf, sizeof(buf));
        close(fd);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        if (n == 32 && hex_decode(buf, 32, key))
            return 0;
    } else if (errno != ENOENT && errno != ELOOP) {
        int e = errno;
        snprintf(err, errsz, "%s: %s", path, strerror(e));
        return -e;
    }
    int r = random_key(key);
    if (r) {
        snprintf(err, errsz, "no random numbers for the HTTP token");
        return r;
    }
    char tmp[4096], line[34];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        snprintf(err, errsz, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    hex_encode(key, line);
    line[32] = '\n';
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0 || write(fd, line, 33) != 33 || fsync(fd) != 0) {
        int e = errno ? errno : EIO;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        snprintf(err, errsz, "%s: %s", tmp, strerror(e));
        return -e;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errsz, "%s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

/* The uid whose token key is; UINT32_MAX when none. Compares every token
 * in full so the time does not tell how much of a guess was right. */
static uint32_t token_uid(tp_http *h, const uint8_t key[16])
{
    uint32_t uid = UINT32_MAX;
    uv_mutex_lock(&h->tok_mu);
    for (size_t i = 0; i < h->ntokens; i++) {
        volatile uint8_t diff = 0;
        for (int k = 0; k < 16; k++)
            diff |= h->tokens[i].key[k] ^ key[k];
        if (diff == 0)
            uid = h->tokens[i].uid;
    }
    uv_mutex_unlock(&h->tok_mu);
    return uid;
}

int tp_http_token(tp_http *h, uint32_t uid, char ret_hex[33])
{
    int r = 0;
    uv_mutex_lock(&h->tok_mu);
    for (size_t i = 0; i < h->ntokens; i++) {
        if (h->tokens[i].uid == uid) {
            hex_encode(h->tokens[i].key, ret_hex);
            goto cleanup;
        }
    }
    if (h->ntokens == h->tokcap) {
        size_t cap = h->tokcap ? h->tokcap * 2 : 8;
        http_token *t = realloc(h->tokens, cap * sizeof(*t));
        if (!t) {
            r = -ENOMEM;
            goto cleanup;
        }
        h->tokens = t;
        h->tokcap = cap;
    }
    http_token *t = &h->tokens[h->ntokens];
    r = random_key(t->key);
    if (r)
        goto cleanup;
    t->uid = uid;
    h->ntokens++;
    hex_encode(t->key, ret_hex);
cleanup:
    uv_mutex_unlock(&h->tok_mu);
    return r;
}

int tp_http_link(tp_http *h, uint32_t uid, const char *trace_id, char *buf, size_t size)
{
    char tok[33];
    int r = tp_http_token(h, uid, tok);
    if (r)
        return r;
    int n = trace_id ? snprintf(buf, size, "%s/t/%s?token=%s", h->base_url, trace_id, tok)
                     : snprintf(buf, size, "%s/?token=%s", h->base_url, tok);
    return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

/* ---- Responses ---------------------------------------------------------- */

/* h2o keeps the value pointer until the headers are sent: copy it into the
 * request's pool, so callers may pass stack buffers. */
static void add_header(h2o_req_t *req, const h2o_token_t *name, const char *value)
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

/* Send body (not copied: it must outlive the request, e.g. pool memory). */
static void send_ref(h2o_req_t *req, int status, const char *reason, const char *ctype,
                     const char *cache, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = body.len;
    if (ctype)
        add_header(req, H2O_TOKEN_CONTENT_TYPE, ctype);
    if (cache)
        add_header(req, H2O_TOKEN_CACHE_CONTROL, cache);
    security_headers(req);
    if (!req->res.mime_attr)
        req->res.mime_attr = &compressible;
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
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
    send_ref(req, status, reason, ctype, cache, b);
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

static void send_unauthorized(h2o_req_t *req, bool api)
{
    if (api) {
        tp_http_send_error(req, 401, "unauthorized",
                           "a token is required: open the link `tph open ID` prints");
        return;
    }
    tp_http_send(req, 401, "Unauthorized", "text/html; charset=utf-8", "no-store",
                 unauthorized_page, sizeof(unauthorized_page) - 1);
}

/* ---- Request handling --------------------------------------------------- */

static bool method_is(h2o_iovec_t v, const char *s)
{
    return h2o_memis(v.base, v.len, s, strlen(s));
}

/* Host is the address we are bound to, as our URL spells it: a --http
 * 127.0.0.2:P server is asked for "127.0.0.2:P" (any loopback address may
 * be bound, and a literal address is no DNS name to rebind). */
static bool host_is_bound_address(const tp_http *h, h2o_iovec_t host)
{
    const char *auth = strstr(h->base_url, "://");
    if (!auth)
        return false;
    auth += 3;
    size_t al = strlen(auth);
    return host.len == al && h2o_lcstris(host.base, host.len, auth, al);
}

/* Host must name the loopback interface with our port (DNS rebinding). */
static bool host_ok(const tp_http *h, h2o_iovec_t host)
{
    if (h->allow_remote || host_is_bound_address(h, host))
        return true;
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    char port[8];
    int pl = snprintf(port, sizeof(port), ":%u", h->port);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t nl = strlen(names[i]);
        if (host.len < nl || !h2o_lcstris(host.base, nl, names[i], nl))
            continue;
        h2o_iovec_t rest = h2o_iovec_init(host.base + nl, host.len - nl);
        if (h2o_memis(rest.base, rest.len, port, (size_t)pl) || (rest.len == 0 && h->port == 80))
            return true;
    }
    return false;
}

static bool accepts_gzip(h2o_req_t *req)
{
    return (h2o_get_compressible_types(&req->headers) & H2O_COMPRESSIBLE_GZIP) != 0;
}

static void serve_asset(h2o_req_t *req, const tp_asset *a)
{
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    add_header(req, H2O_TOKEN_ETAG, a->etag);
    add_header(req, H2O_TOKEN_VARY, "accept-encoding");
    if (inm != -1 && h2o_memis(req->headers.entries[inm].value.base,
                               req->headers.entries[inm].value.len, a->etag, strlen(a->etag))) {
        send_ref(req, 304, "Not Modified", NULL, "no-cache", h2o_iovec_init(NULL, 0));
        return;
    }
    req->res.mime_attr = &as_is; /* precompressed below, or left alone */
    h2o_iovec_t body = h2o_iovec_init(a->data, a->len);
    if (a->gz && accepts_gzip(req)) {
        add_header(req, H2O_TOKEN_CONTENT_ENCODING, "gzip");
        body = h2o_iovec_init(a->gz, a->gz_len);
    }
    send_ref(req, 200, "OK", a->content_type, "no-cache", body);
}

/* The value of our cookie in the Cookie header(s), or {NULL, 0}. */
static h2o_iovec_t find_cookie(const tp_http *h, h2o_req_t *req)
{
    size_t nl = strlen(h->cookie_name);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        const char *p = v.base, *end = v.base + v.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            if ((size_t)(e - p) > nl && memcmp(p, h->cookie_name, nl) == 0 && p[nl] == '=')
                return h2o_iovec_init(p + nl + 1, (size_t)(e - p - nl - 1));
            p = e;
        }
    }
    return h2o_iovec_init(NULL, 0);
}

/* 302 to the same URL without its token parameter, setting the cookie. */
static void redirect_with_cookie(tp_http *h, h2o_req_t *req, const char *hex)
{
    h2o_iovec_t path = req->input.path;
    size_t qat = req->input.query_at;
    size_t plen = qat == SIZE_MAX ? path.len : qat;
    tp_buf loc = TP_BUF_INIT;
    /* A path starting "//" would be a protocol-relative URL to another host. */
    if (plen >= 2 && path.base[0] == '/' && path.base[1] == '/')
        tp_buf_putc(&loc, '/');
    else
        tp_buf_append(&loc, path.base, plen);
    if (qat != SIZE_MAX) {
        const char *p = path.base + qat + 1, *end = path.base + path.len;
        bool first = true;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *e = amp ? amp : end;
            if (!((size_t)(e - p) >= 6 && memcmp(p, "token=", 6) == 0) && e > p) {
                tp_buf_putc(&loc, first ? '?' : '&');
                tp_buf_append(&loc, p, (size_t)(e - p));
                first = false;
            }
            p = amp ? amp + 1 : end;
        }
    }
    char cookie[160];
    snprintf(cookie, sizeof(cookie),
             "%s=%s; Path=/; Max-Age=" COOKIE_MAX_AGE "; HttpOnly; SameSite=Strict", h->cookie_name,
             hex);
    if (tp_buf_error(&loc)) {
        tp_http_send_error(req, 503, "no_memory", "out of memory");
    } else {
        h2o_iovec_t l = h2o_strdup(&req->pool, loc.data, loc.len);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, l.base, l.len);
        add_header(req, H2O_TOKEN_SET_COOKIE, cookie);
        tp_http_send(req, 302, "Found", "text/plain; charset=utf-8", "no-store", "Found\n", 6);
    }
    tp_buf_free(&loc);
}

/* The uid the request may act as, from ?token= (then answered with a
 * redirect: returns UINT32_MAX - 1) or the cookie; UINT32_MAX when none. */
static uint32_t authenticate(tp_http *h, h2o_req_t *req)
{
    char tok[40];
    uint8_t key[16];
    int r = tp_http_param(req, "token", tok, sizeof(tok));
    if (r == 0 || r == -ENOSPC || r == -EINVAL) {
        uint32_t uid = r == 0 && hex_decode(tok, strlen(tok), key) ? token_uid(h, key) : UINT32_MAX;
        if (uid == UINT32_MAX)
            return UINT32_MAX;
        char hex[33];
        hex_encode(key, hex);
        redirect_with_cookie(h, req, hex);
        return UINT32_MAX - 1;
    }
    h2o_iovec_t c = find_cookie(h, req);
    if (c.base && hex_decode(c.base, c.len, key))
        return token_uid(h, key);
    return UINT32_MAX;
}

static bool has_prefix(const char *p, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && memcmp(p, prefix, pl) == 0;
}

/* The pages of the single-page app: the list, a trace, a diff. */
static bool is_page(const char *p, size_t n)
{
    return (n == 1 && p[0] == '/') || (n == 11 && memcmp(p, "/index.html", 11) == 0) ||
           (has_prefix(p, n, "/t/") && n > 3) || (n == 5 && memcmp(p, "/diff", 5) == 0) ||
           has_prefix(p, n, "/diff/");
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    tp_http *h = ((http_handler *)self)->h;
    const char *p = req->path_normalized.base;
    size_t n = req->path_normalized.len;
    bool api = has_prefix(p, n, "/api/") || (n == 4 && memcmp(p, "/api", 4) == 0);

    if (h->stopping) {
        tp_http_send_error(req, 503, "stopping", "tphd is shutting down");
        return 0;
    }
    if (!host_ok(h, req->input.authority)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "this server answers to %s, localhost, 127.0.0.1 and [::1] only",
                 strstr(h->base_url, "://") ? strstr(h->base_url, "://") + 3 : h->base_url);
        tp_http_send_error(req, 421, "misdirected", msg);
        return 0;
    }
    if (!method_is(req->method, "GET") && !method_is(req->method, "HEAD")) {
        add_header(req, H2O_TOKEN_ALLOW, "GET, HEAD");
        tp_http_send_error(req, 405, "method_not_allowed", "only GET and HEAD are served");
        return 0;
    }
    if (has_prefix(p, n, "/assets/")) {
        const tp_asset *a = tp_assets_find(p, n);
        if (a)
            serve_asset(req, a);
        else
            tp_http_send_error(req, 404, "not_found", "no such file");
        return 0;
    }
    if (!api && !is_page(p, n)) {
        tp_http_send_error(req, 404, "not_found", "no such page");
        return 0;
    }
    uint32_t uid = authenticate(h, req);
    if (uid == UINT32_MAX - 1)
        return 0;
    if (uid == UINT32_MAX) {
        send_unauthorized(req, api);
        return 0;
    }
    if (api) {
        tp_http_api(h, req, uid, p, n);
        return 0;
    }
    serve_asset(req, tp_assets_find("/index.html", 11));
    return 0;
}

/* ---- Query jobs --------------------------------------------------------- */

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

static void finish_if_idle(tp_http *h);

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
                add_header(req, H2O_TOKEN_CONTENT_DISPOSITION, cd);
            }
            const char *ct = rp->content_type[0] ? rp->content_type : "application/octet-stream";
            send_ref(req, 200, "OK", h2o_strdup(&req->pool, ct, SIZE_MAX).base, "no-store",
                     h2o_iovec_init(body ? body : "", len));
        }
    }
    tp_buf_free(&j->reply.body);
    free(j->args);
    free(j);
    h->njobs--;
    finish_if_idle(h);
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

/* ---- Listening, connections, start and stop ----------------------------- */

static void on_conn_close(uv_handle_t *handle)
{
    http_conn *c = (http_conn *)handle;
    tp_http *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    free(c);
    finish_if_idle(h);
}

static void on_accept_close(uv_handle_t *handle)
{
    free(handle);
}

static void on_accept(uv_stream_t *listener, int status)
{
    tp_http *h = listener->data;
    if (status != 0 || h->stopping)
        return;
    http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(h->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_accept_close);
        return;
    }
    c->h = h;
    c->next = h->conns;
    if (c->next)
        c->next->prev = c;
    h->conns = c;
    h->nconns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
    h2o_accept(&h->accept_ctx, sock);
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a);
}

static bool is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int tp_http_parse_listen(const char *spec, char *host, size_t hostsz, uint16_t *ret_port)
{
    const char *hs = spec, *he, *ps = NULL;
    if (!spec || !*spec)
        return -EINVAL;
    if (spec[0] == '[') {
        hs = spec + 1;
        he = strchr(hs, ']');
        if (!he || (he[1] && he[1] != ':'))
            return -EINVAL;
        ps = he[1] ? he + 2 : NULL;
    } else {
        he = strrchr(spec, ':');
        if (he && strchr(spec, ':') != he) /* a bare IPv6 address */
            return -EINVAL;
        ps = he ? he + 1 : NULL;
        if (!he)
            he = spec + strlen(spec);
    }
    size_t hl = (size_t)(he - hs);
    const char *def = "127.0.0.1";
    if (hl == 0) {
        hs = def;
        hl = strlen(def);
    }
    if (hl >= hostsz)
        return -EINVAL;
    unsigned long port = TP_HTTP_DEFAULT_PORT;
    if (ps) {
        char *end;
        if (*ps < '0' || *ps > '9')
            return -EINVAL;
        port = strtoul(ps, &end, 10);
        if (*end || port > 65535)
            return -EINVAL;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *ret_port = (uint16_t)port;
    return 0;
}

static int resolve(const tp_http_config *cfg, struct sockaddr_storage *ss)
{
    const char *host = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, cfg->port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, cfg->port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -EINVAL;
}

static void set_base_url(tp_http *h, const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN] = "127.0.0.1";
    bool v6 = ss->ss_family == AF_INET6;
    if (is_wildcard(ss))
        snprintf(ip, sizeof(ip), "%s", v6 ? "::1" : "127.0.0.1");
    else if (v6)
        uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof(ip));
    else
        uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof(ip));
    snprintf(h->base_url, sizeof(h->base_url), v6 ? "http://[%s]:%u" : "http://%s:%u", ip, h->port);
}

static int bind_listener(tp_http *h, const tp_http_config *cfg, char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    const char *host = cfg->host ? cfg->host : "127.0.0.1";
    if (resolve(cfg, &ss)) {
        snprintf(err, errsz, "--http %s: not an IP address (or localhost)", host);
        return -EINVAL;
    }
    if (!is_loopback(&ss) && !cfg->allow_remote) {
        snprintf(err, errsz,
                 "--http %s: not a loopback address; reports would be reachable "
                 "from the network (add --http-allow-remote to insist)",
                 host);
        return TP_ERR_PERM;
    }
    int r = uv_tcp_init(h->loop, &h->listener);
    if (r) {
        snprintf(err, errsz, "HTTP listener: %s", uv_strerror(r));
        return r;
    }
    h->listener.data = h;
    h->listening = true;
    h->closing++; /* from here on the listener must be closed */
    r = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (!r)
        r = uv_listen((uv_stream_t *)&h->listener, 128, on_accept);
    if (r) {
        snprintf(err, errsz, "%s:%u: %s", host, cfg->port, uv_strerror(r));
        return r;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len) == 0)
        h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    set_base_url(h, &ss);
    return 0;
}

static void setup_h2o(tp_http *h)
{
    h2o_config_init(&h->config);
    h->config.server_name = h2o_iovec_init(H2O_STRLIT("tphd"));
    h->config.max_request_entity_size = 16 * 1024;
    h->config.http1.req_timeout = 10000;
    h->config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *hc =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    http_handler *hd = (http_handler *)h2o_create_handler(pc, sizeof(*hd));
    hd->super.on_req = on_req;
    hd->h = h;
    h2o_compress_args_t ca = {.min_size = 1024, .gzip = {.quality = 1}, .brotli = {.quality = -1}};
    h2o_compress_register(pc, &ca);
    h2o_context_init(&h->ctx, h->loop, &h->config);
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;
    h->started = true;
}

static void release(tp_http *h)
{
    void (*done)(void *) = h->done;
    void *arg = h->done_arg;
    if (h->started)
        h2o_config_dispose(&h->config);
    uv_mutex_destroy(&h->tok_mu);
    free(h->tokens);
    free(h);
    if (done)
        done(arg);
}

/* h2o_context_dispose() of libh2o 2.2 (Debian's libh2o-dev 2.2.5), minus
 * the uv_run(loop, UV_RUN_NOWAIT) it ends with: libuv forbids running the
 * loop from inside one of its callbacks, and that nested run re-entered our
 * close callbacks while this server was being torn down. The timers and the
 * async handle closed here finish on the running loop instead. */
static void dispose_context(h2o_context_t *ctx)
{
    h2o_globalconf_t *config = ctx->globalconf;
    for (size_t i = 0; config->hosts[i]; i++) {
        h2o_hostconf_t *hc = config->hosts[i];
        for (size_t j = 0; j < hc->paths.size; j++)
            h2o_context_dispose_pathconf_context(ctx, hc->paths.entries + j);
        h2o_context_dispose_pathconf_context(ctx, &hc->fallback_path);
    }
    free(ctx->_pathconfs_inited.entries);
    free(ctx->_module_configs);
    h2o_timeout_dispose(ctx->loop, &ctx->zero_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->one_sec_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->hundred_ms_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->handshake_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->http1.req_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->http2.idle_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->http2.graceful_shutdown_timeout);
    h2o_timeout_dispose(ctx->loop, &ctx->proxy.io_timeout);
    h2o_filecache_destroy(ctx->filecache);
    ctx->filecache = NULL;
    for (size_t i = 0; i < ctx->storage.size; i++)
        if (ctx->storage.entries[i].dispose)
            ctx->storage.entries[i].dispose(ctx->storage.entries[i].data);
    free(ctx->storage.entries);
    h2o_multithread_unregister_receiver(ctx->queue, &ctx->receivers.hostinfo_getaddr);
    h2o_multithread_destroy_queue(ctx->queue);
    if (ctx->_timestamp_cache.value)
        h2o_mem_release_shared(ctx->_timestamp_cache.value);
}

static void on_handle_closed(uv_handle_t *handle)
{
    tp_http *h = handle->data;
    /* The listener may close long before the rest (stop waits for
     * connections and queries): only the last close of the final teardown
     * releases the server. */
    if (--h->closing == 0 && h->finishing)
        release(h);
}

/* Once stopping and nothing is in flight: dispose of h2o's context (its
 * timers and async handle close on the loop) and free everything when the
 * sentinel's close callback runs. libuv runs close callbacks in reverse
 * order of uv_close(), so the sentinel, closed first, comes last. */
static void finish_if_idle(tp_http *h)
{
    if (!h->stopping || h->finishing || h->nconns || h->njobs)
        return;
    h->finishing = true;
    h->closing++;
    uv_close((uv_handle_t *)&h->sentinel, on_handle_closed);
    if (h->started)
        dispose_context(&h->ctx);
    if (h->listening && !uv_is_closing((uv_handle_t *)&h->listener))
        uv_close((uv_handle_t *)&h->listener, on_handle_closed);
}

int tp_http_start(tp_http **ret, uv_loop_t *loop, const tp_http_config *cfg,
                  const tp_http_backend *backend, char *err, size_t errsz)
{
    if (!ret || !loop || !cfg || !cfg->token_path || !backend || !backend->query)
        return -EINVAL;
    tp_http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    h->loop = loop;
    h->backend = *backend;
    h->allow_remote = cfg->allow_remote;
    h->owner_uid = cfg->owner_uid;
    h->port = cfg->port;
    uv_mutex_init(&h->tok_mu);
    uv_timer_init(loop, &h->sentinel);
    h->sentinel.data = h;
    int r = -ENOMEM;
    h->tokens = calloc(8, sizeof(*h->tokens));
    if (!h->tokens) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    h->tokcap = 8;
    h->ntokens = 1;
    h->tokens[0].uid = cfg->owner_uid;
    r = load_token(cfg->token_path, h->tokens[0].key, err, errsz);
    if (r)
        goto fail;
    r = bind_listener(h, cfg, err, errsz);
    if (r)
        goto fail;
    snprintf(h->cookie_name, sizeof(h->cookie_name), "tp_token_%u", h->port);
    setup_h2o(h);
    *ret = h;
    return 0;
fail:
    /* Nothing was served: close what was opened and free on the loop. */
    h->stopping = true;
    finish_if_idle(h);
    return r;
}

uint16_t tp_http_port(const tp_http *h)
{
    return h->port;
}

int tp_http_base_url(const tp_http *h, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s", h->base_url);
    return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

void tp_http_stop(tp_http *h, void (*done)(void *arg), void *arg)
{
    if (!h || h->stopping)
        return;
    h->stopping = true;
    h->done = done;
    h->done_arg = arg;
    if (h->listening)
        uv_close((uv_handle_t *)&h->listener, on_handle_closed);
    /* What h2o_context_request_shutdown() does for HTTP/1 (no keep-alive
     * from now on) without its HTTP/2 part, which links a timer that
     * nothing unlinks and h2o_timeout_dispose() would then assert on. */
    h->ctx.shutdown_requested = 1;
    /* Idle keep-alive connections would otherwise linger until their
     * timeout: shut them down so h2o sees the end and closes them. A
     * connection whose request is still being answered closes after it. */
    for (http_conn *c = h->conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
    finish_if_idle(h);
}
