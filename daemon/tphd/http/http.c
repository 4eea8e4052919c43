/* tphd's web server: h2o on the daemon's loop, the listener and its
 * connections, the routing of a request (Host check, method, assets, pages,
 * API), start and stop. Who may read is http_auth.c; how answers are sent
 * is http_send.c; the API routes are http_api.c, which run their queries
 * through http_jobs.c. See http.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o/filecache.h>
#include <h2o/multithread.h>
#include <h2o/timeout.h>

#include "assets.h"
#include "http_priv.h"
#include "tp_err.h"

static void finish_if_idle(tp_http *h);

/* ---- Request handling --------------------------------------------------- */

static bool method_is(h2o_iovec_t v, const char *s)
{
    return h2o_memis(v.base, v.len, s, strlen(s));
}

static bool has_prefix(const char *p, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && memcmp(p, prefix, pl) == 0;
}

/* The pages of the single-page app: the list, a trace, a diff, the frames. */
static bool is_page(const char *p, size_t n)
{
    return (n == 1 && p[0] == '/') || (n == 11 && memcmp(p, "/index.html", 11) == 0) ||
           (has_prefix(p, n, "/t/") && n > 3) || (n == 5 && memcmp(p, "/diff", 5) == 0) ||
           has_prefix(p, n, "/diff/") || (n == 7 && memcmp(p, "/frames", 7) == 0);
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
    if (!tp_http_host_ok(req->input.authority, tp_http_authority(h), h->port, h->allow_remote)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "this server answers to %s, localhost, 127.0.0.1 and [::1] only",
                 tp_http_authority(h));
        tp_http_send_error(req, 421, "misdirected", msg);
        return 0;
    }
    if (!method_is(req->method, "GET") && !method_is(req->method, "HEAD")) {
        tp_http_add_header(req, H2O_TOKEN_ALLOW, "GET, HEAD");
        tp_http_send_error(req, 405, "method_not_allowed", "only GET and HEAD are served");
        return 0;
    }
    if (has_prefix(p, n, "/assets/")) {
        const tp_asset *a = tp_assets_find(p, n);
        if (a)
            tp_http_serve_asset(req, a);
        else
            tp_http_send_error(req, 404, "not_found", "no such file");
        return 0;
    }
    if (!api && !is_page(p, n)) {
        tp_http_send_error(req, 404, "not_found", "no such page");
        return 0;
    }
    uint32_t uid = tp_http_authenticate(h, req);
    if (uid == UINT32_MAX - 1)
        return 0;
    if (uid == UINT32_MAX) {
        tp_http_send_unauthorized(req, api);
        return 0;
    }
    if (api) {
        tp_http_api(h, req, uid, p, n);
        return 0;
    }
    tp_http_serve_asset(req, tp_assets_find("/index.html", 11));
    return 0;
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
    if (h->nconns >= TP_HTTP_MAX_CONNS) {
        /* Once per 1000 refusals after the first few, as the socket does. */
        if (++h->refused <= 10 || h->refused % 1000 == 0)
            fprintf(stderr,
                    "tphd: HTTP connection refused (%llu so far): tphd serves at most %d HTTP "
                    "connections at once\n",
                    (unsigned long long)h->refused, TP_HTTP_MAX_CONNS);
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
    tp_vec_free(&h->tokens);
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
    h->loop_thread = uv_thread_self();
    h->finish_if_idle = finish_if_idle;
    h->backend = *backend;
    h->allow_remote = cfg->allow_remote;
    h->owner_uid = cfg->owner_uid;
    h->port = cfg->port;
    uv_mutex_init(&h->tok_mu);
    uv_timer_init(loop, &h->sentinel);
    h->sentinel.data = h;
    int r = -ENOMEM;
    if (tp_vec_grow1(&h->tokens) < 0) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    memset(&h->tokens.items[0], 0, sizeof(h->tokens.items[0]));
    h->tokens.size = 1;
    h->tokens.items[0].uid = cfg->owner_uid;
    r = tp_http_load_token(cfg->token_path, h->tokens.items[0].key, err, errsz);
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

const char *tp_http_authority(const tp_http *h)
{
    const char *auth = strstr(h->base_url, "://");
    return auth ? auth + 3 : h->base_url;
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
