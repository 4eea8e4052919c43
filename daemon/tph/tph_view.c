/* The commands that show one trace (or two) and also work on files: tree,
 * stats, diff, export. A FILE is loaded with tp_load_json and rendered
 * here with proto/; an ID is rendered by tphd with the same proto/ code, so
 * both look the same. */
#include "tph.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"
#include "render.h"
#include "tp_err.h"
#include "otlp.h"
#include "tree.h"

/* The HTML report needs the web UI's assets, which tph has when the build
 * links web/ (tpweb) into it; without them only tphd can make one. */
#if __has_include("assets.h")
#include "assets.h"
#include "render_web.h"
#define TPH_HAVE_HTML 1
#else
#define TPH_HAVE_HTML 0
#endif

/* ---- Shared: colour, loading --------------------------------------------- */

/* --color (always), --color=auto (when stdout is a terminal), --color=never. */
static int parse_color(tph_ctx *ctx, const char *when, bool *ret)
{
    if (!when || strcmp(when, "always") == 0 || strcmp(when, "yes") == 0)
        *ret = true;
    else if (strcmp(when, "never") == 0 || strcmp(when, "no") == 0)
        *ret = false;
    else if (strcmp(when, "auto") == 0)
        *ret = isatty(STDOUT_FILENO) == 1;
    else
        return tph_usage(ctx->cmd, "invalid --color '%s' (always, auto or never)", when);
    return TPH_NEXT;
}

static const char *display_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "<stdin>" : path;
}

/* Load a trace file into a finished raw tree; reports errors as
 * "tph: FILE: line 3 column 5: ...". */
static int load_text(const char *path, const char *text, size_t len, tp_tree **ret)
{
    char err[512] = "";
    int r = tp_load_json(text, len, ret, err, sizeof err);

    if (r == -ENOMEM)
        return tph_fail("%s: out of memory", display_name(path));
    if (r < 0)
        return tph_fail("%s: %s", display_name(path), err[0] ? err : tp_strerror(r));
    return TPH_EXIT_OK;
}

static int load_file(const char *path, tp_tree **ret)
{
    char *text = NULL;
    size_t len = 0;
    int r;

    r = tph_read_file(path, &text, &len);
    if (r != TPH_EXIT_OK)
        return r;
    r = load_text(path, text, len, ret);
    free(text);
    return r;
}

/* Fetch a stored trace as tracepatch JSON and load it like a file. */
static int load_id(tph_ctx *ctx, const char *id, tp_tree **ret)
{
    char err[512] = "";
    tph_reply rep;
    int r;

    r = tph_query_json(ctx, "export", json_pack("{s:s, s:s}", "id", id, "format", "json"), NULL, 0,
                       &rep);
    if (r != TPH_EXIT_OK)
        return r;
    r = tp_load_json(rep.body, rep.body_len, ret, err, sizeof err);
    tph_reply_free(&rep);
    if (r < 0)
        return tph_fail("trace %s as tphd sent it: %s", id, err[0] ? err : tp_strerror(r));
    return TPH_EXIT_OK;
}

static int load_any(tph_ctx *ctx, const char *arg, tp_tree **ret)
{
    return tph_is_file_arg(arg) ? load_file(arg, ret) : load_id(ctx, arg, ret);
}

/* Print a rendered buffer, or report the renderer's failure. */
static int print_buf(tp_buf *b, int r)
{
    if (r == 0)
        r = tp_buf_error(b);
    r = r < 0 ? tph_fail("cannot render: %s", tp_strerror(r)) : tph_print(b->data, b->len);
    tp_buf_free(b);
    return r;
}

/* Print the daemon's answer for a query whose reply is the output. */
static int query_print(tph_ctx *ctx, const char *op, json_t *args)
{
    tph_reply rep;
    int r;

    r = tph_query_json(ctx, op, args, NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    r = tph_print(rep.body, rep.body_len);
    tph_reply_free(&rep);
    return r;
}

/* Exactly n operands left after the options. */
static int want_operands(tph_ctx *ctx, int argc, char **argv, int n, const char *what)
{
    if (argc - optind < n)
        return tph_usage(ctx->cmd, "missing %s", what);
    if (argc - optind > n)
        return tph_usage(ctx->cmd, "unexpected argument '%s'", argv[optind + n]);
    return TPH_NEXT;
}

/* ---- tree ------------------------------------------------------------------- */

enum {
    TREE_COLOR = TPH_OPT_FIRST,
    TREE_NO_COLOR,
    TREE_SELF,
    TREE_STYLE,
    TREE_NO_ARGS,
    TREE_NO_RET,
    TREE_SOURCE,
    TREE_FILTER,
    TREE_DEPTH,
    TREE_NO_FOLD,
    TREE_NO_STATS,
    TREE_UNITS,
    TREE_LINES,
    TREE_FORMAT,
    TREE_FOLD_THRESHOLD,
    TREE_COLLAPSE,
};

#define TREE_TEXT 0
#define TREE_JSON 1
#define TREE_HTML 2

typedef struct tree_opts {
    tp_render_opts r;
    const char **filters; /* NULL-terminated, argc + 1 slots */
    size_t nfilters;
    bool lines;      /* --lines: then each call's line hits and values (a file's "lines") */
    int format;      /* TREE_TEXT, TREE_JSON (also --json) or TREE_HTML */
    const char *out; /* -o/--output, or NULL for stdout */
    bool local;      /* an option tphd's tree query does not know: render here */
} tree_opts;

static int tree_opt(tph_ctx *ctx, int c, tree_opts *o)
{
    int64_t n;

    switch (c) {
    case TREE_COLOR:
        return parse_color(ctx, optarg, &o->r.color);
    case TREE_NO_COLOR:
        o->r.color = false;
        break;
    case TREE_SELF:
        o->r.self_time = true;
        break;
    case TREE_STYLE:
        if (strcmp(optarg, "unicode") == 0)
            o->r.style = TP_STYLE_UNICODE;
        else if (strcmp(optarg, "ascii") == 0)
            o->r.style = TP_STYLE_ASCII;
        else if (strcmp(optarg, "ansi") == 0) /* tracepatch 1.0.0: unicode in colour */
            o->r.style = TP_STYLE_UNICODE, o->r.color = true;
        else
            return tph_usage(ctx->cmd, "invalid --style '%s' (unicode, ascii or ansi)", optarg);
        break;
    case TREE_FORMAT:
        if (strcmp(optarg, "text") == 0)
            o->format = TREE_TEXT;
        else if (strcmp(optarg, "json") == 0)
            o->format = TREE_JSON;
        else if (strcmp(optarg, "html") == 0)
            o->format = TREE_HTML, o->local = true;
        else
            return tph_usage(ctx->cmd, "invalid --format '%s' (text, json or html)", optarg);
        break;
    case 'o':
        o->out = optarg;
        break;
    case TREE_FOLD_THRESHOLD:
        if (tph_parse_uint(optarg, UINT32_MAX, &n) < 0 || n < 2)
            return tph_usage(ctx->cmd, "invalid --fold-threshold '%s' (a number from 2)", optarg);
        o->r.fold_threshold = (uint32_t)n;
        o->local = true;
        break;
    case TREE_COLLAPSE:
        /* 1.0.0's collapse_tree(max_depth=N): levels 0..N shown, below them
         * one "[N nested calls...]" line per cut call. */
        if (tph_parse_uint(optarg, INT32_MAX - 1, &n) < 0)
            return tph_usage(ctx->cmd, "invalid --collapse '%s' (expected a depth)", optarg);
        o->r.max_depth = (int)n + 1;
        break;
    case TREE_NO_ARGS:
        o->r.args = false;
        break;
    case TREE_NO_RET:
        o->r.returns = false;
        break;
    case TREE_SOURCE:
        o->r.source = true;
        break;
    case TREE_FILTER:
        o->filters[o->nfilters++] = optarg;
        break;
    case TREE_DEPTH:
        if (tph_parse_uint(optarg, INT32_MAX, &n) < 0)
            return tph_usage(ctx->cmd, "invalid --depth '%s' (expected a number of levels)",
                             optarg);
        o->r.max_depth = (int)n;
        break;
    case TREE_NO_FOLD:
        o->r.fold = false;
        break;
    case TREE_NO_STATS:
        o->r.header = false;
        break;
    case TREE_LINES:
        o->lines = true;
        break;
    case TREE_UNITS:
        if (strcmp(optarg, "auto") == 0)
            o->r.ms_units = false;
        else if (strcmp(optarg, "ms") == 0)
            o->r.ms_units = true;
        else
            return tph_usage(ctx->cmd, "invalid --units '%s' (auto or ms)", optarg);
        break;
    }
    return TPH_NEXT;
}

static int parse_tree(tph_ctx *ctx, int argc, char **argv, tree_opts *o)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"color", optional_argument, NULL, TREE_COLOR},
        {"colour", optional_argument, NULL, TREE_COLOR},
        {"no-color", no_argument, NULL, TREE_NO_COLOR},
        {"self-time", no_argument, NULL, TREE_SELF},
        {"style", required_argument, NULL, TREE_STYLE},
        {"no-args", no_argument, NULL, TREE_NO_ARGS},
        {"no-return", no_argument, NULL, TREE_NO_RET},
        {"show-source", no_argument, NULL, TREE_SOURCE},
        {"filter", required_argument, NULL, TREE_FILTER},
        {"depth", required_argument, NULL, TREE_DEPTH},
        {"no-fold", no_argument, NULL, TREE_NO_FOLD},
        {"no-stats", no_argument, NULL, TREE_NO_STATS},
        {"units", required_argument, NULL, TREE_UNITS},
        {"lines", no_argument, NULL, TREE_LINES},
        {"format", required_argument, NULL, TREE_FORMAT},
        {"output", required_argument, NULL, 'o'},
        {"fold-threshold", required_argument, NULL, TREE_FOLD_THRESHOLD},
        {"collapse", required_argument, NULL, TREE_COLLAPSE},
        {NULL, 0, NULL, 0},
    };
    int c, r;

    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r == TPH_OWN)
            r = tree_opt(ctx, c, o);
        if (r != TPH_NEXT)
            return r;
    }
    o->filters[o->nfilters] = NULL;
    o->r.filters = o->nfilters ? o->filters : NULL;
    return want_operands(ctx, argc, argv, 1, "trace ID or FILE");
}

/* The tree query's arguments (docs/QUERY.md) from the render options. */
static json_t *tree_args(const char *id, const tree_opts *o, bool json)
{
    json_t *f = json_array(), *opts;

    for (size_t i = 0; f && i < o->nfilters; i++)
        json_array_append_new(f, json_string(o->filters[i]));
    opts = json_pack("{s:s, s:b, s:b, s:b, s:b, s:b, s:o, s:b, s:s}", "style",
                     o->r.style == TP_STYLE_ASCII ? "ascii" : "unicode", "color", o->r.color,
                     "args", o->r.args, "returns", o->r.returns, "self_time", o->r.self_time,
                     "source", o->r.source, "filter", f, "header", o->r.header, "units",
                     o->r.ms_units ? "ms" : "auto");
    return json_pack("{s:s, s:s, s:b, s:i, s:o}", "id", id, "format", json ? "json" : "text",
                     "folded", o->r.fold, "depth", o->r.max_depth, "opts", opts);
}

/* --json gives the tree as tphd does: the raw trace in tracepatch's schema,
 * folded unless --no-fold (what the text view shows), compact. */
static int tree_json(const tp_tree *t, const tree_opts *o, tp_buf *out)
{
    tp_fold_opts fo = {.threshold = o->r.fold_threshold ? o->r.fold_threshold : 2};
    tp_tree *folded = NULL;
    int r;

    if (!o->r.fold)
        return tp_render_json(t, false, out);
    r = tp_tree_fold(t, &fo, &folded);
    if (r == 0)
        r = tp_render_json(folded, false, out);
    tp_tree_free(folded);
    return r;
}

/* Client text (names, arguments, source, values) escaped for the terminal. */
static void put_escaped(tp_buf *out, const char *s)
{
    s = s ? s : "";
    tp_render_escape(out, s, strlen(s));
}

/* One call's lines, as t.tree(lines=True) prints them (client_ext's
 * _lines.render_text): "lines of mod.f(args) [call N]", then per line its
 * number, hits and source, and the values sampled after "#". */
static int render_call_lines(json_t *rec, tp_buf *out)
{
    const char *mod = json_string_value(json_object_get(rec, "module"));
    const char *qual = json_string_value(json_object_get(rec, "qualname"));
    const char *args = json_string_value(json_object_get(rec, "args"));
    json_t *lines = json_object_get(rec, "lines"), *li;
    size_t i, width = 1;
    int r = 0;

    r |= tp_buf_puts(out, "lines of ");
    if (mod && *mod) {
        put_escaped(out, mod);
        r |= tp_buf_putc(out, '.');
    }
    put_escaped(out, qual ? qual : "?");
    r |= tp_buf_putc(out, '(');
    put_escaped(out, args);
    r |= tp_buf_printf(out, ") [call %lld]\n",
                       (long long)json_integer_value(json_object_get(rec, "call")));
    json_array_foreach(lines, i, li)
    {
        int n =
            snprintf(NULL, 0, "%lld", (long long)json_integer_value(json_object_get(li, "line")));
        if (n > 0 && (size_t)n > width)
            width = (size_t)n;
    }
    json_array_foreach(lines, i, li)
    {
        const char *src = json_string_value(json_object_get(li, "source"));
        size_t len;
        const char *key;
        json_t *vals, *v;
        bool first = true;

        src = src ? src : "";
        while (*src == ' ' || *src == '\t')
            src++;
        len = strlen(src);
        while (len && (src[len - 1] == ' ' || src[len - 1] == '\t' || src[len - 1] == '\r'))
            len--;
        r |= tp_buf_printf(out, "  %*lld │ %3lld× │ ", (int)width,
                           (long long)json_integer_value(json_object_get(li, "line")),
                           (long long)json_integer_value(json_object_get(li, "hits")));
        tp_render_escape(out, src, len);
        json_object_foreach(json_object_get(li, "values"), key, vals)
        {
            size_t k;
            r |= tp_buf_puts(out, first ? "   # " : "  ");
            put_escaped(out, key);
            r |= tp_buf_putc(out, '=');
            first = false;
            json_array_foreach(vals, k, v)
            {
                if (k)
                    r |= tp_buf_puts(out, ", ");
                put_escaped(out, json_string_value(v));
            }
        }
        r |= tp_buf_puts(out, "\n");
    }
    return r || tp_buf_error(out) ? -ENOMEM : 0;
}

/* The line section after a tree: a blank line, then each call's lines;
 * nothing when recs is not an array or is empty. One renderer for a file's
 * "lines" key and for tphd's lines query. */
static int render_lines_section(json_t *recs, tp_buf *out)
{
    json_t *rec;
    size_t i;
    int r = 0;

    if (!json_is_array(recs) || json_array_size(recs) == 0)
        return 0;
    r = tp_buf_puts(out, "\n") ? -ENOMEM : 0;
    json_array_foreach(recs, i, rec)
    {
        if (!r && json_is_object(rec))
            r = render_call_lines(rec, out);
    }
    return r;
}

/* The "lines" section of a trace file (trace(lines=...)). */
static int render_file_lines(const char *text, size_t len, tp_buf *out)
{
    json_t *doc = json_loadb(text, len, 0, NULL);
    int r = render_lines_section(doc ? json_object_get(doc, "lines") : NULL, out);
    json_decref(doc);
    return r;
}

static int render_html(const tp_tree *t, tp_buf *out);
static int write_out(const char *path, const char *data, size_t len);

/* Print, or write to -o FILE (0600 when new). */
static int tree_emit(const tree_opts *o, tp_buf *b, int r)
{
    if (!o->out)
        return print_buf(b, r);
    if (r == 0)
        r = tp_buf_error(b);
    r = r < 0 ? tph_fail("cannot render: %s", tp_strerror(r)) : write_out(o->out, b->data, b->len);
    tp_buf_free(b);
    return r;
}

/* A trace FILE's text tree, then (--lines) its "lines" section. */
static int tree_file_lines(const char *path, const tree_opts *o)
{
    tp_buf out = TP_BUF_INIT;
    tp_tree *t = NULL;
    char *text = NULL;
    size_t len = 0;
    /* Read once: FILE may be "-" (standard input). */
    int r = tph_read_file(path, &text, &len);
    if (r != TPH_EXIT_OK)
        return r;
    r = load_text(path, text, len, &t);
    if (r != TPH_EXIT_OK) {
        free(text);
        return r;
    }
    r = tp_render_text(t, &o->r, &out);
    tp_tree_free(t);
    if (r == 0)
        r = render_file_lines(text, len, &out);
    free(text);
    return tree_emit(o, &out, r);
}

/* A stored trace's line section (tphd's lines query), rendered as for a
 * file, appended to out. */
static int append_query_lines(tph_ctx *ctx, const char *target, tp_buf *out)
{
    tph_reply rep;
    int r = tph_query_json(ctx, "lines", json_pack("{s:s}", "id", target), NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    json_t *recs = tph_reply_json(&rep, "lines");
    tph_reply_free(&rep);
    if (!recs)
        return TPH_EXIT_FAIL;
    r = render_lines_section(recs, out);
    json_decref(recs);
    return r < 0 ? tph_fail("cannot render: %s", tp_strerror(r)) : TPH_EXIT_OK;
}

static int tree_local(tph_ctx *ctx, const char *target, const tree_opts *o)
{
    tp_buf out = TP_BUF_INIT;
    tp_tree *t = NULL;
    int r;

    if (o->format == TREE_HTML && !TPH_HAVE_HTML)
        return tph_fail("this tph was built without the report UI: use `tph export %s --format "
                        "html` with tphd",
                        target);
    r = load_any(ctx, target, &t);
    if (r != TPH_EXIT_OK)
        return r;
    if (o->format == TREE_JSON)
        r = tree_json(t, o, &out);
    else if (o->format == TREE_HTML)
        r = render_html(t, &out);
    else
        r = tp_render_text(t, &o->r, &out);
    tp_tree_free(t);
    /* A stored trace rendered here (--fold-threshold, --collapse, ...)
     * still gets its line section. */
    if (r == 0 && o->lines && o->format == TREE_TEXT && !tph_is_file_arg(target)) {
        int q = append_query_lines(ctx, target, &out);
        if (q != TPH_EXIT_OK) {
            tp_buf_free(&out);
            return q;
        }
    }
    return tree_emit(o, &out, r);
}

/* An ID whose options tphd's tree query takes: its answer, printed or
 * written to -o. */
static int tree_query(tph_ctx *ctx, const char *target, const tree_opts *o)
{
    tph_reply rep;
    int r;

    if (!o->out)
        return query_print(ctx, "tree", tree_args(target, o, o->format == TREE_JSON));
    r = tph_query_json(ctx, "tree", tree_args(target, o, o->format == TREE_JSON), NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    r = write_out(o->out, rep.body, rep.body_len);
    tph_reply_free(&rep);
    return r;
}

/* A stored trace's text tree (tphd's tree query), then (--lines) its line
 * section. */
static int tree_query_lines(tph_ctx *ctx, const char *target, const tree_opts *o)
{
    tp_buf out = TP_BUF_INIT;
    tph_reply rep;
    int r;

    r = tph_query_json(ctx, "tree", tree_args(target, o, false), NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    tp_buf_append(&out, rep.body, rep.body_len);
    tph_reply_free(&rep);
    r = append_query_lines(ctx, target, &out);
    if (r != TPH_EXIT_OK) {
        tp_buf_free(&out);
        return r;
    }
    return tree_emit(o, &out, 0);
}

int tph_cmd_tree(tph_ctx *ctx, int argc, char **argv)
{
    tree_opts o = {0};
    const char *target;
    int r;

    tp_render_opts_init(&o.r);
    o.filters = calloc((size_t)argc + 1, sizeof *o.filters);
    if (!o.filters)
        return tph_fail("out of memory");
    r = parse_tree(ctx, argc, argv, &o);
    if (r == TPH_NEXT) {
        target = argv[optind];
        if (ctx->json)
            o.format = TREE_JSON;
        if (o.lines && o.format == TREE_TEXT && tph_is_file_arg(target))
            r = tree_file_lines(target, &o);
        else if (o.lines && o.format == TREE_TEXT && !o.local)
            r = tree_query_lines(ctx, target, &o);
        else if (tph_is_file_arg(target) || o.local)
            r = tree_local(ctx, target, &o);
        else
            r = tree_query(ctx, target, &o);
    }
    free(o.filters);
    return r;
}

/* ---- stats, diff: --color and operands ------------------------------------ */

enum { VIEW_COLOR = TPH_OPT_FIRST, VIEW_NO_COLOR };

static int parse_view(tph_ctx *ctx, int argc, char **argv, int nargs, const char *what,
                      bool *ret_color)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"color", optional_argument, NULL, VIEW_COLOR},
        {"colour", optional_argument, NULL, VIEW_COLOR},
        {"no-color", no_argument, NULL, VIEW_NO_COLOR},
        {NULL, 0, NULL, 0},
    };
    int c, r;

    *ret_color = false;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r == TPH_OWN && c == VIEW_COLOR)
            r = parse_color(ctx, optarg, ret_color);
        else if (r == TPH_OWN) { /* --no-color */
            *ret_color = false;
            r = TPH_NEXT;
        }
        if (r != TPH_NEXT)
            return r;
    }
    return want_operands(ctx, argc, argv, nargs, what);
}

static int stats_file(const char *path, bool color, bool json)
{
    tp_buf out = TP_BUF_INIT;
    tp_stats *s = NULL;
    tp_tree *t = NULL;
    int r;

    r = load_file(path, &t);
    if (r != TPH_EXIT_OK)
        return r;
    r = tp_tree_stats(t, &s);
    if (r == 0)
        r = json ? tp_render_stats_json(t, s, true, &out) : tp_render_stats(t, s, color, &out);
    tp_tree_stats_free(s);
    tp_tree_free(t);
    return print_buf(&out, r);
}

int tph_cmd_stats(tph_ctx *ctx, int argc, char **argv)
{
    const char *target;
    bool color;
    int r;

    r = parse_view(ctx, argc, argv, 1, "trace ID or FILE", &color);
    if (r != TPH_NEXT)
        return r;
    target = argv[optind];
    if (tph_is_file_arg(target))
        return stats_file(target, color, ctx->json);
    return query_print(ctx, "stats",
                       json_pack("{s:s, s:b, s:s}", "id", target, "color", color, "format",
                                 ctx->json ? "json" : "text"));
}

/* Diff locally: at least one side is a file (the other may be an ID). */
static int diff_local(tph_ctx *ctx, const char *a, const char *b, bool color)
{
    tp_tree *ta = NULL, *tb = NULL;
    tp_buf out = TP_BUF_INIT;
    tp_diff *d = NULL;
    int r;

    r = load_any(ctx, a, &ta);
    if (r == TPH_EXIT_OK)
        r = load_any(ctx, b, &tb);
    if (r == TPH_EXIT_OK) {
        r = tp_tree_diff(ta, tb, NULL, &d);
        if (r == 0)
            r = ctx->json ? tp_render_diff_json(d, &out) : tp_render_diff(d, color, &out);
        r = print_buf(&out, r);
    }
    tp_tree_diff_free(d);
    tp_tree_free(ta);
    tp_tree_free(tb);
    return r;
}

int tph_cmd_diff(tph_ctx *ctx, int argc, char **argv)
{
    const char *a, *b;
    bool color;
    int r;

    r = parse_view(ctx, argc, argv, 2, "two traces to compare (IDs or files)", &color);
    if (r != TPH_NEXT)
        return r;
    a = argv[optind];
    b = argv[optind + 1];
    if (tph_is_file_arg(a) || tph_is_file_arg(b))
        return diff_local(ctx, a, b, color);
    return query_print(ctx, "diff",
                       json_pack("{s:s, s:s, s:b, s:s}", "a", a, "b", b, "color", color, "format",
                                 ctx->json ? "json" : "text"));
}

/* ---- export --------------------------------------------------------------- */

enum { EXPORT_FORMAT = TPH_OPT_FIRST };

static const char *const export_formats[] = {"json",   "csv",        "html",     "chrome",
                                             "folded", "flamegraph", "otlp-json"};

static bool known_format(const char *f)
{
    for (size_t i = 0; i < sizeof export_formats / sizeof export_formats[0]; i++)
        if (strcmp(f, export_formats[i]) == 0)
            return true;
    return false;
}

/* No --format: from the output's extension, else CSV (tracepatch 1.0.0's
 * default). */
static const char *format_for(const char *out)
{
    const char *dot = out ? strrchr(out, '.') : NULL;

    if (dot && (strcmp(dot, ".json") == 0 || strcmp(dot, ".html") == 0 ||
                strcmp(dot, ".folded") == 0 || strcmp(dot, ".chrome") == 0))
        return dot + 1;
    if (dot && strcmp(dot, ".svg") == 0)
        return "flamegraph";
    return "csv";
}

static int parse_export(tph_ctx *ctx, int argc, char **argv, const char **ret_format,
                        const char **ret_out)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"format", required_argument, NULL, EXPORT_FORMAT},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    int c, r;

    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r == TPH_OWN && c == 'o')
            *ret_out = optarg;
        else if (r == TPH_OWN && !known_format(optarg))
            return tph_usage(ctx->cmd,
                             "invalid --format '%s' (json, csv, html, chrome, folded, flamegraph "
                             "or otlp-json)",
                             optarg);
        else if (r == TPH_OWN)
            *ret_format = optarg;
        else if (r != TPH_NEXT)
            return r;
    }
    if (!*ret_format)
        *ret_format = format_for(*ret_out);
    return want_operands(ctx, argc, argv, 1, "trace ID or FILE");
}

static int render_html(const tp_tree *t, tp_buf *out)
{
#if TPH_HAVE_HTML
    tp_web_assets assets;

    tp_assets_report(&assets);
    return tp_render_html(t, NULL, &assets, out);
#else
    return -ENOTSUP;
#endif
}

/* A file has no process facts: the resource names the label only. */
static int render_otlp(const tp_tree *t, tp_buf *out)
{
    tp_otlp_trace tr = {.tree = t};
    tp_otlp_body b;
    int r;

    tp_otlp_body_init(&b, TP_OTLP_JSON);
    r = tp_otlp_body_add(&b, &tr, NULL, NULL);
    if (r == 0)
        r = tp_otlp_body_finish(&b);
    if (r == 0) {
        tp_buf_append(out, b.buf.data, b.buf.len);
        tp_buf_putc(out, '\n');
    }
    tp_otlp_body_free(&b);
    return r;
}

/* Render a loaded tree in one of the file formats proto/ knows. */
static int render_export(const tp_tree *t, const char *format, tp_buf *out)
{
    if (strcmp(format, "json") == 0)
        return tp_render_json(t, true, out);
    if (strcmp(format, "csv") == 0)
        return tp_render_csv(t, out);
    if (strcmp(format, "chrome") == 0)
        return tp_render_chrome(t, out);
    if (strcmp(format, "html") == 0)
        return render_html(t, out);
    if (strcmp(format, "otlp-json") == 0)
        return render_otlp(t, out);
    if (strcmp(format, "flamegraph") == 0)
        return tp_render_svg(t, NULL, out);
    return tp_render_folded(t, out);
}

/* An export holds argument values: a file it creates is the user's alone
 * (0600, as the database is), whatever the umask. A file that exists keeps
 * the mode its owner gave it. */
static FILE *open_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f;

    if (fd < 0)
        return NULL;
    f = fdopen(fd, "wb");
    if (!f)
        close(fd);
    return f;
}

static int write_out(const char *path, const char *data, size_t len)
{
    FILE *f;
    int ok;

    /* "-" is standard output, as for every Unix tool that takes -o. */
    if (!path || strcmp(path, "-") == 0) {
        if (len)
            fwrite(data, 1, len, stdout);
        if (fflush(stdout) != 0 || ferror(stdout))
            return tph_fail("cannot write the output: %s", strerror(errno));
        return TPH_EXIT_OK;
    }
    f = open_private(path);
    if (!f)
        return tph_fail("%s: %s", path, strerror(errno));
    ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    return ok ? TPH_EXIT_OK : tph_fail("%s: %s", path, strerror(errno));
}

static int export_file(const char *path, const char *format, const char *out_path)
{
    tp_buf out = TP_BUF_INIT;
    tp_tree *t = NULL;
    int r;

    if (strcmp(format, "html") == 0 && !TPH_HAVE_HTML)
        return tph_fail("%s: this tph was built without the report UI, so only tphd makes the "
                        "HTML report: `tph import %s`, then "
                        "`tph export ID --format html`",
                        display_name(path), path);
    r = load_file(path, &t);
    if (r != TPH_EXIT_OK)
        return r;
    r = render_export(t, format, &out);
    if (r == 0)
        r = tp_buf_error(&out);
    tp_tree_free(t);
    r = r < 0 ? tph_fail("cannot render: %s", tp_strerror(r))
              : write_out(out_path, out.data, out.len);
    tp_buf_free(&out);
    return r;
}

int tph_cmd_export(tph_ctx *ctx, int argc, char **argv)
{
    const char *format = NULL, *out = NULL, *target;
    tph_reply rep;
    int r;

    r = parse_export(ctx, argc, argv, &format, &out);
    if (r != TPH_NEXT)
        return r;
    target = argv[optind];
    if (tph_is_file_arg(target))
        return export_file(target, format, out);
    if (strcmp(format, "flamegraph") == 0) {
        /* tphd exports the trace; the flame graph is drawn here. */
        tp_buf b = TP_BUF_INIT;
        tp_tree *t = NULL;
        r = load_id(ctx, target, &t);
        if (r != TPH_EXIT_OK)
            return r;
        r = tp_render_svg(t, NULL, &b);
        tp_tree_free(t);
        if (r == 0)
            r = tp_buf_error(&b);
        r = r < 0 ? tph_fail("cannot render: %s", tp_strerror(r)) : write_out(out, b.data, b.len);
        tp_buf_free(&b);
        return r;
    }
    r = tph_query_json(ctx, "export", json_pack("{s:s, s:s}", "id", target, "format", format), NULL,
                       0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    r = write_out(out, rep.body, rep.body_len);
    tph_reply_free(&rep);
    return r;
}
