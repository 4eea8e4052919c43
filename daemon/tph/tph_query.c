/* The commands that need tphd: logs, open, clean, status, import. */
#include "tph.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_jansson.h"
#include "load.h"
#include "tree.h"

int tph_query_json(tph_ctx *ctx, const char *op, json_t *args, const void *body, size_t body_len,
                   tph_reply *ret)
{
    char *text;
    int r;

    if (!args)
        return tph_fail("out of memory");
    text = tp_json_jansson_dumps(args);
    json_decref(args);
    if (!text)
        return tph_fail("out of memory");
    r = tph_query(ctx, op, text, body, body_len, ret);
    free(text);
    return r;
}

json_t *tph_reply_json(const tph_reply *rep, const char *op)
{
    json_error_t e;
    json_t *j = json_loadb(rep->body, rep->body_len, 0, &e);

    if (!j)
        tph_fail("tphd's answer to %s is not JSON: line %d column %d: %s", op, e.line, e.column,
                 e.text);
    return j;
}

/* Print the reply body as is (--json). */
static int print_reply(tph_reply *rep)
{
    int r = tph_print(rep->body, rep->body_len);
    tph_reply_free(rep);
    return r;
}

/* A command that takes no operands after its options. */
static int no_operands(tph_ctx *ctx, int argc, char **argv)
{
    if (optind < argc)
        return tph_usage(ctx->cmd, "unexpected argument '%s'", argv[optind]);
    return TPH_NEXT;
}

/* ---- logs ----------------------------------------------------------------- */

enum {
    LOGS_LABEL = TPH_OPT_FIRST,
    LOGS_SINCE,
    LOGS_LIMITED,
    LOGS_LIMIT,
    LOGS_OFFSET,
    LOGS_OTEL,
    LOGS_DIR
};

typedef struct logs_opts {
    const char *label, *otel_trace;
    const char *cache_dir; /* --cache-dir: where .tracepatch/ is (default: here) */
    int64_t since_s, limit, offset;
    bool since, limited;
} logs_opts;

static int logs_opt(tph_ctx *ctx, int c, logs_opts *o)
{
    switch (c) {
    case LOGS_LABEL:
        o->label = optarg;
        break;
    case LOGS_SINCE:
        if (tph_parse_duration(optarg, &o->since_s) < 0)
            return tph_usage(ctx->cmd, "invalid --since '%s' (use e.g. 30m, 1h, 7d)", optarg);
        o->since = true;
        break;
    case LOGS_LIMITED:
        o->limited = true;
        break;
    case LOGS_OTEL:
        if (!*optarg || strspn(optarg, "0123456789abcdefABCDEF") != strlen(optarg) ||
            strlen(optarg) > 32)
            return tph_usage(ctx->cmd, "invalid --otel-trace '%s' (up to 32 hex digits)", optarg);
        o->otel_trace = optarg;
        break;
    case LOGS_LIMIT:
        if (tph_parse_uint(optarg, 10000, &o->limit) < 0 || o->limit == 0)
            return tph_usage(ctx->cmd, "invalid --limit '%s' (expected 1 to 10000)", optarg);
        break;
    case LOGS_OFFSET:
        if (tph_parse_uint(optarg, INT32_MAX, &o->offset) < 0)
            return tph_usage(ctx->cmd, "invalid --offset '%s' (expected a count)", optarg);
        break;
    case LOGS_DIR:
        o->cache_dir = optarg;
        break;
    }
    return TPH_NEXT;
}

static int parse_logs(tph_ctx *ctx, int argc, char **argv, logs_opts *o)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"label", required_argument, NULL, LOGS_LABEL},
        {"since", required_argument, NULL, LOGS_SINCE},
        {"limited", no_argument, NULL, LOGS_LIMITED},
        {"otel-trace", required_argument, NULL, LOGS_OTEL},
        {"limit", required_argument, NULL, LOGS_LIMIT},
        {"offset", required_argument, NULL, LOGS_OFFSET},
        {"cache-dir", required_argument, NULL, LOGS_DIR},
        {NULL, 0, NULL, 0},
    };
    int c, r;

    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r == TPH_OWN)
            r = logs_opt(ctx, c, o);
        if (r != TPH_NEXT)
            return r;
    }
    return no_operands(ctx, argc, argv);
}

static json_t *logs_args(const logs_opts *o)
{
    json_t *a = json_object();

    if (!a)
        return NULL;
    if (o->label)
        json_object_set_new(a, "label", json_string(o->label));
    if (o->since)
        json_object_set_new(a, "since", json_integer((json_int_t)time(NULL) - o->since_s));
    if (o->limited)
        json_object_set_new(a, "limited", json_true());
    if (o->otel_trace)
        json_object_set_new(a, "otel_trace", json_string(o->otel_trace));
    json_object_set_new(a, "limit", json_integer(o->limit));
    if (o->offset)
        json_object_set_new(a, "offset", json_integer(o->offset));
    return a;
}

/* Ask tphd for its list. *ret_have is false when no daemon listens; a
 * failed query is reported and its exit code returned. */
static int daemon_list(tph_ctx *ctx, const logs_opts *o, tph_reply *ret, bool *ret_have)
{
    int r = tph_daemon_probe(ctx);

    *ret_have = false;
    if (r == TPH_NO_DAEMON)
        return TPH_EXIT_OK;
    if (r == TPH_EXIT_OK)
        r = tph_query_json(ctx, "list", logs_args(o), NULL, 0, ret);
    *ret_have = r == TPH_EXIT_OK;
    return r;
}

int tph_cmd_logs(tph_ctx *ctx, int argc, char **argv)
{
    logs_opts o = {.limit = 50};
    tph_local_filter lf;
    tp_buf out = TP_BUF_INIT, files_text = TP_BUF_INIT;
    json_t *j = NULL, *files = NULL;
    size_t nfiles = 0;
    tph_reply rep;
    bool have;
    char dir[4096];
    int r;

    r = parse_logs(ctx, argc, argv, &o);
    if (r != TPH_NEXT)
        return r;
    /* Files have no OpenTelemetry trace id: --otel-trace lists none. */
    lf =
        (tph_local_filter){o.label, o.since ? o.since_s : 0, o.otel_trace ? 0 : o.limit, o.limited};
    if (tph_local_dir(o.cache_dir, dir, sizeof dir) < 0)
        return tph_usage(ctx->cmd, "--cache-dir is too long");
    r = daemon_list(ctx, &o, &rep, &have);
    if (r != TPH_EXIT_OK)
        return r;
    r = tph_local_logs(o.cache_dir, &lf, &files, ctx->json ? NULL : &files_text, &nfiles);
    if (r < 0) {
        if (have)
            tph_reply_free(&rep);
        return tph_fail("%s: %s", dir, strerror(-r));
    }
    if (ctx->json && (have && !nfiles)) {
        json_decref(files);
        return print_reply(&rep); /* tphd's answer as it is */
    }
    if (have) {
        j = tph_reply_json(&rep, "list");
        tph_reply_free(&rep);
        if (!j) {
            json_decref(files);
            tp_buf_free(&files_text);
            return TPH_EXIT_FAIL;
        }
    }
    if (ctx->json) {
        /* tphd's answer with the files added, or just the files. */
        json_t *doc = j ? j : json_pack("{s:i, s:[]}", "total", 0, "traces");
        char *text = NULL;
        if (json_is_object(doc)) {
            json_object_set_new(doc, "files", files);
            text = json_dumps(doc, JSON_COMPACT);
        } else {
            json_decref(files);
        }
        json_decref(doc);
        r = text ? tph_print(text, strlen(text))
                 : tph_fail("tphd's trace list has an unexpected shape");
        free(text);
        return r;
    }
    json_decref(files);
    if (j) {
        r = tph_fmt_logs(j, o.offset, o.label || o.since || o.limited || o.otel_trace, &out);
        json_decref(j);
        if (r < 0) {
            tp_buf_free(&files_text);
            tp_buf_free(&out);
            return tph_fail("tphd's trace list has an unexpected shape");
        }
    } else if (!nfiles) {
        tp_buf_printf(&out, "no traces: no tphd at %s, and no trace files in %s/\n",
                      tph_socket_path(ctx), dir);
    }
    if (nfiles) {
        tp_buf_printf(&out, "%strace files in %s/ (%zu):\n", have ? "\n" : "", dir, nfiles);
        tp_buf_append(&out, files_text.data, files_text.len);
    }
    r = tp_buf_error(&out) ? tph_fail("out of memory") : tph_print(out.data, out.len);
    tp_buf_free(&out);
    tp_buf_free(&files_text);
    return r;
}

/* ---- status, clean -------------------------------------------------------- */

static int parse_plain(tph_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {TPH_COMMON_OPTS, {NULL, 0, NULL, 0}};
    int c, r;

    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r == TPH_OWN)
            r = tph_usage(ctx->cmd, "unexpected option");
        if (r != TPH_NEXT)
            return r;
    }
    return TPH_NEXT;
}

int tph_cmd_status(tph_ctx *ctx, int argc, char **argv)
{
    tp_buf out = TP_BUF_INIT;
    tph_reply rep;
    json_t *j;
    int r;

    r = parse_plain(ctx, argc, argv);
    if (r == TPH_NEXT)
        r = no_operands(ctx, argc, argv);
    if (r != TPH_NEXT)
        return r;
    r = tph_query(ctx, "status", "{}", NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    if (ctx->json)
        return print_reply(&rep);
    j = tph_reply_json(&rep, "status");
    tph_reply_free(&rep);
    if (!j)
        return TPH_EXIT_FAIL;
    r = tph_fmt_status(j, &out) < 0 ? tph_fail("tphd's status has an unexpected shape")
                                    : tph_print(out.data, out.len);
    json_decref(j);
    tp_buf_free(&out);
    return r;
}

enum { CLEAN_OLDER = TPH_OPT_FIRST, CLEAN_ALL, CLEAN_TRACES, CLEAN_DAEMON, CLEAN_DIR };

typedef struct clean_opts {
    int64_t older_than_s; /* 0: not given */
    bool all, traces, daemon;
    const char *cache_dir;
} clean_opts;

static int parse_clean(tph_ctx *ctx, int argc, char **argv, clean_opts *o)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"older-than", required_argument, NULL, CLEAN_OLDER},
        {"all", no_argument, NULL, CLEAN_ALL},
        {"traces", no_argument, NULL, CLEAN_TRACES},
        {"daemon", no_argument, NULL, CLEAN_DAEMON},
        {"yes", no_argument, NULL, CLEAN_DAEMON},
        {"cache-dir", required_argument, NULL, CLEAN_DIR},
        {NULL, 0, NULL, 0},
    };
    int c, r;

    while ((c = getopt_long(argc, argv, ":hy", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r != TPH_OWN && r != TPH_NEXT)
            return r;
        if (c == CLEAN_OLDER) {
            if (tph_parse_duration(optarg, &o->older_than_s) < 0 || o->older_than_s == 0)
                return tph_usage(ctx->cmd, "invalid --older-than '%s' (use e.g. 12h, 7d, 2w)",
                                 optarg);
        } else if (c == CLEAN_ALL) {
            o->all = true;
        } else if (c == CLEAN_TRACES) {
            o->traces = true;
        } else if (c == CLEAN_DAEMON || c == 'y') {
            o->daemon = true;
        } else if (c == CLEAN_DIR) {
            o->cache_dir = optarg;
        }
    }
    if (!o->older_than_s && !o->all && !o->traces)
        return tph_usage(ctx->cmd,
                         "say which traces to delete: --older-than DUR, --traces or --all");
    if ((o->older_than_s > 0) + o->all + o->traces > 1)
        return tph_usage(ctx->cmd, "--older-than, --traces and --all exclude each other");
    return no_operands(ctx, argc, argv);
}

/* The local part: trace files (--traces, --older-than) or the whole
 * .tracepatch/ directory (--all), as tracepatch 1.0.0 does. */
static int clean_local(const clean_opts *o)
{
    char dir[4096];
    size_t removed = 0;
    bool existed;
    int r;

    if ((r = tph_local_dir(o->cache_dir, dir, sizeof dir)) < 0)
        return tph_fail("--cache-dir is too long");
    if (o->all) {
        r = tph_local_remove_all(o->cache_dir, &existed);
        if (r < 0)
            return tph_fail("cannot remove %.*s: %s", (int)(strlen(dir) - 7), dir, strerror(-r));
        if (existed)
            printf("removed %.*s/\n", (int)(strlen(dir) - 7), dir);
        return TPH_EXIT_OK;
    }
    r = tph_local_clean(o->cache_dir, o->older_than_s, &removed);
    if (r < 0)
        return tph_fail("%s: %s", dir, strerror(-r));
    if (removed || o->traces)
        printf("removed %zu trace file%s from %s/\n", removed, removed == 1 ? "" : "s", dir);
    return TPH_EXIT_OK;
}

int tph_cmd_clean(tph_ctx *ctx, int argc, char **argv)
{
    clean_opts o = {0};
    json_t *args, *j;
    json_int_t n;
    tph_reply rep;
    int r;

    r = parse_clean(ctx, argc, argv, &o);
    if (r != TPH_NEXT)
        return r;
    r = clean_local(&o);
    if (r != TPH_EXIT_OK)
        return r;
    /* tphd's traces: by age as before; all of them only when asked for by
     * --daemon (or --yes), since a 1.0.0 user's `clean --all` means the
     * local directory. --traces is about the files alone. */
    if (o.traces || (o.all && !o.daemon)) {
        if (o.all && tph_daemon_probe(ctx) == TPH_EXIT_OK)
            fprintf(stderr, "tph: the traces stored in tphd were kept; "
                            "`tph clean --all --daemon` deletes them too\n");
        return tph_print("", 0);
    }
    r = tph_daemon_probe(ctx);
    if (r == TPH_NO_DAEMON && !o.daemon)
        return tph_print("", 0); /* nothing to age out but files */
    args = o.all ? json_pack("{s:b}", "all", 1)
                 : json_pack("{s:I}", "older_than", (json_int_t)o.older_than_s);
    r = tph_query_json(ctx, "clean", args, NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    if (ctx->json)
        return print_reply(&rep);
    j = tph_reply_json(&rep, "clean");
    tph_reply_free(&rep);
    if (!j)
        return TPH_EXIT_FAIL;
    n = json_integer_value(json_object_get(j, "deleted"));
    json_decref(j);
    printf("deleted %lld trace%s\n", (long long)n, n == 1 ? "" : "s");
    return tph_print("", 0);
}

/* ---- open ------------------------------------------------------------------- */

/* The report URL: the summary's own url (it carries the access token), else
 * the daemon's HTTP base + /t/<id>. *ret_url is NULL when tphd serves no
 * HTTP. */
static int report_url(tph_ctx *ctx, const json_t *summary, const char *id, char **ret_url)
{
    const char *url = tph_json_str(summary, "url"), *http;
    tph_reply rep;
    json_t *st;
    int r;

    *ret_url = NULL;
    if (url) {
        *ret_url = strdup(url);
        return *ret_url ? TPH_EXIT_OK : tph_fail("out of memory");
    }
    r = tph_query(ctx, "status", "{}", NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    st = tph_reply_json(&rep, "status");
    tph_reply_free(&rep);
    if (!st)
        return TPH_EXIT_FAIL;
    http = tph_json_str(st, "http");
    if (http) {
        size_t n = strlen(http);
        while (n > 0 && http[n - 1] == '/')
            n--;
        if (asprintf(ret_url, "%.*s/t/%s", (int)n, http, id) < 0) {
            *ret_url = NULL;
            r = tph_fail("out of memory");
        }
    }
    json_decref(st);
    return r;
}

static int print_open(tph_ctx *ctx, const char *id, const char *url)
{
    json_t *j;
    char *text;
    int r;

    if (!ctx->json) {
        printf("%s\n", url);
        return tph_print("", 0);
    }
    j = json_pack("{s:s, s:s?}", "id", id, "url", url);
    text = j ? tp_json_jansson_dumps(j) : NULL;
    json_decref(j);
    if (!text)
        return tph_fail("out of memory");
    r = tph_print(text, strlen(text));
    free(text);
    return r;
}

int tph_cmd_open(tph_ctx *ctx, int argc, char **argv)
{
    json_t *sum = NULL;
    char *url = NULL;
    const char *id;
    tph_reply rep;
    int r;

    r = parse_plain(ctx, argc, argv);
    if (r != TPH_NEXT)
        return r;
    if (optind >= argc)
        return tph_usage(ctx->cmd, "missing trace ID");
    if (optind + 1 < argc)
        return tph_usage(ctx->cmd, "unexpected argument '%s'", argv[optind + 1]);
    r = tph_query_json(ctx, "get", json_pack("{s:s, s:s}", "id", argv[optind], "what", "summary"),
                       NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    sum = tph_reply_json(&rep, "get");
    tph_reply_free(&rep);
    if (!sum)
        return TPH_EXIT_FAIL;
    id = tph_json_str(sum, "id");
    if (!id)
        r = tph_fail("tphd's summary of %s has no id", argv[optind]);
    else
        r = report_url(ctx, sum, id, &url);
    if (r == TPH_EXIT_OK && !url)
        r = tph_fail("tphd does not serve the report UI (no http address in its status), "
                     "so trace %.8s has no URL; try `tph tree %.8s` or "
                     "`tph export %.8s --format html -o report.html`",
                     id, id, id);
    if (r == TPH_EXIT_OK)
        r = print_open(ctx, id, url);
    free(url);
    json_decref(sum);
    return r;
}

/* ---- import ----------------------------------------------------------------- */

/* Check the file here first so that a broken one is reported exactly as
 * `tph tree FILE` would report it, with its line and column. */
static int check_trace_file(const char *path, const char *text, size_t len)
{
    char err[512] = "";
    tp_tree *t = NULL;
    int r;

    r = tp_load_json(text, len, &t, err, sizeof err);
    tp_tree_free(t);
    if (r == -ENOMEM)
        return tph_fail("out of memory");
    if (r < 0)
        return tph_fail("%s: %s", strcmp(path, "-") == 0 ? "<stdin>" : path, err);
    return TPH_EXIT_OK;
}

enum { IMPORT_LABEL = TPH_OPT_FIRST };

static int parse_import(tph_ctx *ctx, int argc, char **argv, const char **ret_label)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"label", required_argument, NULL, IMPORT_LABEL},
        {NULL, 0, NULL, 0},
    };
    int c, r;

    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r == TPH_OWN)
            *ret_label = optarg;
        else if (r != TPH_NEXT)
            return r;
    }
    if (optind >= argc)
        return tph_usage(ctx->cmd, "missing FILE");
    if (optind + 1 < argc)
        return tph_usage(ctx->cmd, "unexpected argument '%s' (import one file at a time)",
                         argv[optind + 1]);
    return TPH_NEXT;
}

static json_t *import_args(const char *path, const char *label)
{
    char *copy = strdup(path);
    json_t *a = copy ? json_pack("{s:s}", "source", basename(copy)) : NULL;

    free(copy);
    if (a && label)
        json_object_set_new(a, "label", json_string(label));
    return a;
}

static int print_imported(tph_ctx *ctx, tph_reply *rep)
{
    const char *id;
    json_t *j;
    int r;

    if (ctx->json)
        return print_reply(rep);
    j = tph_reply_json(rep, "import");
    tph_reply_free(rep);
    if (!j)
        return TPH_EXIT_FAIL;
    id = tph_json_str(j, "id");
    if (!id)
        r = tph_fail("tphd's answer to import has no id");
    else
        r = tph_print(id, strlen(id));
    json_decref(j);
    return r;
}

int tph_cmd_import(tph_ctx *ctx, int argc, char **argv)
{
    const char *label = NULL;
    char *text = NULL;
    size_t len = 0;
    tph_reply rep;
    int r;

    r = parse_import(ctx, argc, argv, &label);
    if (r != TPH_NEXT)
        return r;
    r = tph_read_file(argv[optind], &text, &len);
    if (r == TPH_EXIT_OK)
        r = check_trace_file(argv[optind], text, len);
    /* The file travels in the QUERY body (PROTOCOL.md 4.9; chunked when
     * larger than a frame) rather than in the "json" argument (docs/QUERY.md),
     * which would escape it and cap it at one wire string (1 MiB). */
    if (r == TPH_EXIT_OK)
        r = tph_query_json(ctx, "import", import_args(argv[optind], label), text, len, &rep);
    free(text);
    if (r != TPH_EXIT_OK)
        return r;
    return print_imported(ctx, &rep);
}
