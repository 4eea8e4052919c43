/* The JSON API (docs/API.md): each route checks its parameters and becomes
 * one query op (docs/QUERY.md) run by the backend off the loop thread.
 * Parameters are validated here so that a bad request is a 400 that names
 * the parameter, never a backend error. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_priv.h"
#include "json_jansson.h"

/* ---- Query strings ------------------------------------------------------ */

static int unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) ('+' is a space) into buf. */
static int decode(const char *s, size_t n, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = unhex(s[i + 1]), lo = unhex(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return -EINVAL;
        if (o + 1 >= size)
            return -ENOSPC;
        buf[o++] = c;
    }
    buf[o] = '\0';
    return 0;
}

int tp_http_param(h2o_req_t *req, const char *name, char *buf, size_t size)
{
    if (req->query_at == SIZE_MAX)
        return -ENOENT;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        if ((size_t)(ke - p) == nl && memcmp(p, name, nl) == 0)
            return eq ? decode(eq + 1, (size_t)(e - eq - 1), buf, size) : decode("", 0, buf, size);
        p = amp ? amp + 1 : end;
    }
    return -ENOENT;
}

/* ---- Parameters into query args ----------------------------------------- */

typedef struct api_req {
    tp_http *h;
    h2o_req_t *req;
    uint32_t uid;
    json_t *args;
    bool failed; /* an answer (400) was sent */
} api_req;

static void bad(api_req *a, const char *fmt, const char *what)
{
    if (a->failed)
        return;
    char msg[200];
    snprintf(msg, sizeof(msg), fmt, what);
    tp_http_send_error(a->req, 400, "bad_request", msg);
    a->failed = true;
}

/* Parameter name as a string (max bytes); false when absent or invalid. */
static bool str_param(api_req *a, const char *name, char *buf, size_t size)
{
    int r = tp_http_param(a->req, name, buf, size);
    if (r == -ENOENT)
        return false;
    if (r == -ENOSPC)
        bad(a, "parameter %s is too long", name);
    else if (r)
        bad(a, "parameter %s is not valid percent-encoded text", name);
    return r == 0;
}

static void copy_str(api_req *a, const char *name, const char *key, size_t max)
{
    char *buf = malloc(max + 1);
    if (!buf) {
        bad(a, "out of memory (%s)", name);
        return;
    }
    if (str_param(a, name, buf, max + 1)) {
        json_t *s = json_string(buf);
        if (!s)
            bad(a, "parameter %s is not UTF-8", name);
        else
            json_object_set_new(a->args, key, s);
    }
    free(buf);
}

static void copy_int(api_req *a, const char *name, const char *key, long long min, long long max)
{
    char buf[32], *end;
    if (!str_param(a, name, buf, sizeof(buf)))
        return;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (!buf[0] || *end || errno || v < min || v > max) {
        char what[160];
        snprintf(what, sizeof(what), "%s (an integer from %lld to %lld)", name, min, max);
        bad(a, "bad parameter %s", what);
        return;
    }
    json_object_set_new(a->args, key, json_integer(v));
}

static bool bool_param(api_req *a, const char *name, bool *ret)
{
    char buf[8];
    if (!str_param(a, name, buf, sizeof(buf)))
        return false;
    if (!strcmp(buf, "1") || !strcmp(buf, "true") || !strcmp(buf, "yes") || !buf[0]) {
        *ret = true;
    } else if (!strcmp(buf, "0") || !strcmp(buf, "false") || !strcmp(buf, "no")) {
        *ret = false;
    } else {
        bad(a, "bad parameter %s (true or false)", name);
        return false;
    }
    return true;
}

static void copy_bool(api_req *a, const char *name, const char *key)
{
    bool v;
    if (bool_param(a, name, &v))
        json_object_set_new(a->args, key, json_boolean(v));
}

static void copy_number(api_req *a, const char *name, const char *key)
{
    char buf[40], *end;
    if (!str_param(a, name, buf, sizeof(buf)))
        return;
    double v = strtod(buf, &end);
    if (!buf[0] || *end || !(v >= 0 && v < 1e12)) {
        bad(a, "bad parameter %s (a number from 0)", name);
        return;
    }
    json_object_set_new(a->args, key, json_real(v));
}

bool tp_http_valid_id(const char *s, size_t n, char id[33])
{
    if (n < 1 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    for (size_t i = 0; i < n; i++)
        id[i] = (char)tolower((unsigned char)s[i]);
    id[n] = '\0';
    return true;
}

static void id_param(api_req *a, const char *name)
{
    char buf[40], id[33];
    if (!str_param(a, name, buf, sizeof(buf))) {
        bad(a, "parameter %s (a trace ID) is required", name);
        return;
    }
    if (!tp_http_valid_id(buf, strlen(buf), id)) {
        bad(a, "parameter %s is not a trace ID (1 to 32 hex digits)", name);
        return;
    }
    json_object_set_new(a->args, name, json_string(id));
}

static void run(api_req *a, const char *op, int how, const char *filename)
{
    if (a->failed)
        return;
    char *args = tp_json_jansson_dumps(a->args);
    if (!args) {
        tp_http_send_error(a->req, 503, "no_memory", "out of memory");
        return;
    }
    tp_http_run_query(a->h, a->req, a->uid, op, args, how, filename);
}

/* ---- Routes ------------------------------------------------------------- */

static void api_list(api_req *a)
{
    copy_str(a, "label", "label", 256);
    copy_str(a, "q", "q", 256);
    copy_number(a, "since", "since");
    copy_bool(a, "limited", "limited");
    copy_str(a, "otel_trace", "otel_trace", 32);
    copy_int(a, "limit", "limit", 1, 1000);
    copy_int(a, "offset", "offset", 0, 1LL << 40);
    run(a, "list", TP_HTTP_AS_BODY, NULL);
}

static void api_tree(api_req *a)
{
    bool full = false;
    json_object_set_new(a->args, "format", json_string("web"));
    copy_int(a, "node", "node", 0, UINT32_MAX - 1);
    copy_int(a, "depth", "depth", -1, 1 << 20);
    copy_int(a, "offset", "offset", 0, UINT32_MAX - 1);
    copy_int(a, "limit", "limit", 1, 100000);
    copy_int(a, "max_nodes", "max_nodes", 1, 1000000);
    if (bool_param(a, "full", &full) && full)
        json_object_set_new(a->args, "max_text", json_integer(0));
    run(a, "tree", TP_HTTP_AS_BODY, NULL);
}

/* A folded call's calls: the tree op with members. */
static void api_members(api_req *a)
{
    bool full = false;
    char node[4];
    if (tp_http_param(a->req, "node", node, sizeof(node)) == -ENOENT)
        bad(a, "parameter %s is required", "node");
    json_object_set_new(a->args, "format", json_string("web"));
    json_object_set_new(a->args, "members", json_true());
    copy_int(a, "node", "node", 0, UINT32_MAX - 1);
    copy_int(a, "offset", "offset", 0, UINT32_MAX - 1);
    copy_int(a, "limit", "limit", 1, 100000);
    if (bool_param(a, "full", &full) && full)
        json_object_set_new(a->args, "max_text", json_integer(0));
    run(a, "tree", TP_HTTP_AS_BODY, NULL);
}

static void api_search(api_req *a)
{
    char q[4];
    if (tp_http_param(a->req, "q", q, sizeof(q)) == -ENOENT)
        bad(a, "parameter %s is required", "q");
    copy_str(a, "q", "q", 1000);
    copy_int(a, "limit", "limit", 1, 100000);
    run(a, "search", TP_HTTP_AS_BODY, NULL);
}

static void api_export(api_req *a, const char *id)
{
    static const char *const formats[][2] = {
        {"json", "json"},         {"csv", "csv"},   {"chrome", "chrome.json"},
        {"folded", "folded.txt"}, {"html", "html"},
    };
    char fmt[16];
    const char *ext = NULL;
    if (str_param(a, "format", fmt, sizeof(fmt)))
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
            if (!strcmp(fmt, formats[i][0]))
                ext = formats[i][1];
    if (!ext) {
        bad(a, "parameter %s must be json, csv, chrome, folded or html", "format");
        return;
    }
    json_object_set_new(a->args, "format", json_string(fmt));
    char filename[64];
    snprintf(filename, sizeof(filename), "trace-%s.%s", id, ext);
    run(a, "export", TP_HTTP_AS_DOWNLOAD, filename);
}

/* /api/traces/{id}[/what] */
static void api_trace(api_req *a, const char *p, size_t n)
{
    const char *slash = memchr(p, '/', n);
    size_t idlen = slash ? (size_t)(slash - p) : n;
    char id[33];
    if (!tp_http_valid_id(p, idlen, id)) {
        tp_http_send_error(a->req, 404, "not_found", "not a trace ID (1 to 32 hex digits)");
        return;
    }
    json_object_set_new(a->args, "id", json_string(id));
    const char *what = slash ? slash + 1 : "";
    size_t wl = slash ? n - idlen - 1 : 0;
#define IS(s) (wl == strlen(s) && memcmp(what, s, wl) == 0)
    if (!slash) {
        run(a, "get", TP_HTTP_AS_BODY, NULL);
    } else if (IS("tree")) {
        api_tree(a);
    } else if (IS("search")) {
        api_search(a);
    } else if (IS("members")) {
        api_members(a);
    } else if (IS("stats")) {
        json_object_set_new(a->args, "format", json_string("json"));
        run(a, "stats", TP_HTTP_AS_BODY, NULL);
    } else if (IS("export")) {
        api_export(a, id);
    } else if (IS("profile")) {
        copy_number(a, "t0", "t0_ms");
        copy_number(a, "t1", "t1_ms");
        run(a, "profile", TP_HTTP_AS_BODY, NULL);
    } else if (IS("timeline")) {
        copy_number(a, "t0", "t0_ms");
        copy_number(a, "t1", "t1_ms");
        copy_int(a, "buckets", "buckets", 1, 4000);
        run(a, "timeline", TP_HTTP_AS_BODY, NULL);
    } else if (IS("flame")) {
        copy_str(a, "fn", "fn", 1000);
        copy_number(a, "min_ms", "min_ms");
        copy_int(a, "max_nodes", "max_nodes", 1, 1000000);
        run(a, "flame", TP_HTTP_AS_BODY, NULL);
    } else if (IS("lines")) {
        run(a, "lines", TP_HTTP_AS_BODY, NULL);
    } else if (IS("source")) {
        copy_int(a, "func", "func", 0, (1 << 24) - 1);
        run(a, "source", TP_HTTP_AS_BODY, NULL);
    } else {
        tp_http_send_error(a->req, 404, "not_found", "no such API route");
    }
#undef IS
}

void tp_http_api(tp_http *h, h2o_req_t *req, uint32_t uid, const char *path, size_t len)
{
    api_req a = {h, req, uid, json_object(), false};
    if (!a.args) {
        tp_http_send_error(req, 503, "no_memory", "out of memory");
        return;
    }
    const char *p = path + 4; /* after "/api" */
    size_t n = len - 4;
#define IS(s) (n == strlen(s) && memcmp(p, s, n) == 0)
    if (IS("/status")) {
        run(&a, "status", TP_HTTP_AS_BODY, NULL);
    } else if (IS("/traces") || IS("/traces/")) {
        api_list(&a);
    } else if (n > 8 && memcmp(p, "/traces/", 8) == 0) {
        api_trace(&a, p + 8, n - 8);
    } else if (IS("/frames/points")) {
        /* One frame name's newest frames, for the frame-time graph. */
        copy_str(&a, "name", "name", 200);
        copy_number(&a, "since", "since");
        copy_int(&a, "limit", "limit", 1, 100000);
        run(&a, "frame_points", TP_HTTP_AS_BODY, NULL);
    } else if (IS("/frames")) {
        /* The frame names and their exact statistics (docs/QUERY.md frames). */
        copy_str(&a, "name", "name", 200);
        copy_number(&a, "since", "since");
        copy_number(&a, "window", "window");
        run(&a, "frames", TP_HTTP_AS_BODY, NULL);
    } else if (IS("/diff")) {
        id_param(&a, "a");
        id_param(&a, "b");
        json_object_set_new(a.args, "format", json_string("json"));
        run(&a, "diff", TP_HTTP_AS_BODY, NULL);
    } else {
        tp_http_send_error(req, 404, "not_found", "no such API route");
    }
#undef IS
    json_decref(a.args);
}
