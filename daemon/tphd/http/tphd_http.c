/* The seam between tphd and its HTTP server (daemon/http.c, issue 5): start
 * it on the daemon's loop with the query ops as its backend, publish its URL
 * for status and ACKs, and stop it on shutdown. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "query.h"
#include "tp_err.h"
#include "tphd.h"
#include "util.h"

/* Runs on a threadpool thread (http.c's query jobs). */
static void backend_query(void *ctx, uint32_t uid, const char *op, const char *args_json,
                          tp_http_reply *reply)
{
    tphd *d = ctx;
    tp_query_env env;
    tp_query_result res;
    memset(&res, 0, sizeof(res));
    tp_server_query_env(d->server, uid, &env);
    /* The answer goes into the server's buffer, which streams it. */
    res.body = reply->body;
    reply->body = (tp_buf)TP_BUF_INIT;
    reply->live_type = &res.content_type;
    tp_query_run(&env, op, args_json, &res);
    reply->live_type = NULL;
    reply->code = res.code;
    reply->body = res.body;
    res.body = (tp_buf)TP_BUF_INIT;
    if (res.code == 0) {
        snprintf(reply->content_type, sizeof(reply->content_type), "%s", res.content_type);
    } else {
        tp_buf_reset(&reply->body);
        tp_buf_puts(&reply->body, res.message);
    }
    tp_query_result_free(&res);
}

/* The server whose links trace_link() hands out. Socket queries run on
 * threadpool threads with a copy of the link callback taken before they
 * started, so one may call it after tphd_http_stop() freed the server: the
 * pointer is cleared under the lock before the stop, and read under it. */
static pthread_mutex_t link_lock = PTHREAD_MUTEX_INITIALIZER;
static tp_http *link_http;

/* Any thread. */
static int trace_link(void *ud, uint32_t uid, const char *trace_id, char *buf, size_t size)
{
    (void)ud;
    int r = -ENOENT;
    pthread_mutex_lock(&link_lock);
    if (link_http)
        r = tp_http_link(link_http, uid, trace_id, buf, size);
    pthread_mutex_unlock(&link_lock);
    return r;
}

int tphd_http_parse(const char *spec, char *host, size_t hostsz, uint16_t *ret_port)
{
    return tp_http_parse_listen(spec, host, hostsz, ret_port);
}

int tphd_http_start(tphd *d)
{
    const tphd_config *c = d->cfg;
    char host[256] = "127.0.0.1", dir[PATH_MAX], token[PATH_MAX + 16], err[512], url[256];
    uint16_t port = TP_HTTP_DEFAULT_PORT;
    if (c->http_spec && tp_http_parse_listen(c->http_spec, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "tphd: invalid --http '%s' (use HOST:PORT)\n", c->http_spec);
        return -EINVAL;
    }
    if (tp_util_dirname(c->db_path, dir, sizeof(dir)) < 0)
        return -ENAMETOOLONG;
    snprintf(token, sizeof(token), "%s/%s", dir, TP_HTTP_TOKEN_FILE);
    tp_http_config cfg = {
        .host = host,
        .port = port,
        .token_path = token,
        .owner_uid = (uint32_t)geteuid(),
        .allow_remote = c->http_allow_remote,
    };
    tp_http_backend backend = {.query = backend_query, .ctx = d};
    tp_http *h = NULL;
    int r = tp_http_start(&h, &d->loop, &cfg, &backend, err, sizeof(err));
    if (r < 0) {
        if (c->http_spec) {
            fprintf(stderr, "tphd: cannot serve HTTP: %s\n", err);
            return r;
        }
        /* The default port may belong to another user's tphd: traces still
         * flow, only the report UI is missing. */
        fprintf(stderr, "tphd: HTTP disabled: %s (use --http HOST:PORT)\n", err);
        return 0;
    }
    d->http = h;
    if (tp_http_base_url(h, url, sizeof(url)) == 0) {
        tp_server_set_http_url(d->server, url);
        fprintf(stderr, "tphd: report UI at %s\n", url);
    }
    pthread_mutex_lock(&link_lock);
    link_http = h;
    pthread_mutex_unlock(&link_lock);
    tp_server_set_trace_url(d->server, trace_link, NULL);
    return 0;
}

void tphd_http_stop(tphd *d, void (*done)(void *d))
{
    tp_http *h = d->http;
    tp_server_set_trace_url(d->server, NULL, NULL);
    pthread_mutex_lock(&link_lock);
    link_http = NULL;
    pthread_mutex_unlock(&link_lock);
    d->http = NULL;
    tp_http_stop(h, done, d);
}
