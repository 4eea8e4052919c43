/* The query ops that rebuild trees: tree, stats, diff, export. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "finalize.h"
#include "otlp_export.h"
#include "query_ops.h"
#include "rebuild.h"
#include "render.h"
#include "render_web.h"
#include "tp_err.h"

#define MAX_FILTERS 64

/* Render options live in the "opts" object (docs/QUERY.md), apart from the
 * arguments that choose what to render; an absent "opts" means defaults. */
static const json_t *opts_obj(const tp_qctx *q)
{
    const json_t *o = json_object_get(q->args, "opts");
    return json_is_object(o) ? o : NULL;
}

static int read_filters(tp_qctx *q, const json_t *o, const char **filters)
{
    const json_t *f = json_object_get(o, "filter");
    if (!f || json_is_null(f)) {
        filters[0] = NULL;
        return 0;
    }
    if (json_is_string(f)) {
        filters[0] = json_string_value(f);
        filters[1] = NULL;
        return 0;
    }
    if (!json_is_array(f) || json_array_size(f) >= MAX_FILTERS)
        return tp__query_fail(q, -EINVAL,
                              "argument \"filter\" must be a list of at most %d patterns",
                              MAX_FILTERS - 1);
    size_t i;
    json_t *v;
    json_array_foreach(f, i, v)
    {
        if (!json_is_string(v))
            return tp__query_fail(q, -EINVAL, "argument \"filter\" must hold strings");
        filters[i] = json_string_value(v);
    }
    filters[json_array_size(f)] = NULL;
    return 0;
}

static int read_render_opts(tp_qctx *q, tp_render_opts *ro, const char **filters)
{
    const json_t *o = opts_obj(q), *given = json_object_get(q->args, "opts");
    const json_t *style = json_object_get(o, "style");
    bool fold;
    int64_t depth, threshold;
    tp_render_opts_init(ro);
    if (given && !o && !json_is_null(given))
        return tp__query_fail(q, -EINVAL, "argument \"opts\" must be an object");
    if (style && !json_is_null(style)) {
        const char *s = json_string_value(style);
        if (s && strcmp(s, "unicode") == 0)
            ro->style = TP_STYLE_UNICODE;
        else if (s && strcmp(s, "ascii") == 0)
            ro->style = TP_STYLE_ASCII;
        else
            return tp__query_fail(q, -EINVAL,
                                  "argument \"style\" must be \"unicode\" or \"ascii\"");
    }
    const json_t *units = json_object_get(o, "units");
    if (units && !json_is_null(units)) {
        const char *u = json_string_value(units);
        if (u && strcmp(u, "ms") == 0)
            ro->ms_units = true;
        else if (!u || strcmp(u, "auto") != 0)
            return tp__query_fail(q, -EINVAL, "argument \"units\" must be \"auto\" or \"ms\"");
    }
    if (tp__query_arg_bool(q, o, "color", false, &ro->color) < 0 ||
        tp__query_arg_bool(q, o, "args", true, &ro->args) < 0 ||
        tp__query_arg_bool(q, o, "returns", true, &ro->returns) < 0 ||
        tp__query_arg_bool(q, o, "self_time", false, &ro->self_time) < 0 ||
        tp__query_arg_bool(q, o, "source", false, &ro->source) < 0 ||
        tp__query_arg_bool(q, o, "header", true, &ro->header) < 0 ||
        tp__query_arg_bool(q, q->args, "folded", true, &fold) < 0 ||
        tp__query_arg_int(q, "depth", -1, &depth) < 0 ||
        tp__query_arg_int(q, "fold_threshold", 0, &threshold) < 0 ||
        read_filters(q, o, filters) < 0)
        return q->res->code;
    if (threshold < 0 || threshold > UINT32_MAX)
        return tp__query_fail(q, -EINVAL, "argument \"fold_threshold\" is out of range");
    ro->fold = fold;
    ro->fold_threshold = (uint32_t)threshold;
    ro->max_depth = depth < 0 || depth > INT32_MAX ? -1 : (int)depth;
    ro->filters = filters[0] ? filters : NULL;
    return 0;
}

static int format_of(tp_qctx *q, const char *def, const char *const *allowed, const char **ret)
{
    const char *f;
    if (tp__query_arg_str(q, "format", def, &f) < 0)
        return q->res->code;
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(f, allowed[i]) == 0) {
            *ret = allowed[i];
            return 0;
        }
    }
    return tp__query_fail(q, -EINVAL, "unknown format \"%.40s\"", f);
}

/* The reply body, its content type set first: a big answer leaves in
 * pieces while it is rendered (dispatch.c), each saying what it is. */
static tp_buf *out_as(tp_qctx *q, const char *ctype)
{
    q->res->content_type = ctype;
    return &q->res->body;
}

static int rendered(tp_qctx *q, int r, const char *ctype)
{
    if (r < 0)
        return tp__query_fail(q, r, "cannot render: %s", tp_strerror(r));
    q->res->content_type = ctype;
    return 0;
}

int tp_query_tree(tp_qctx *q)
{
    static const char *const formats[] = {"text", "json", "web", NULL};
    const char *format, *filters[MAX_FILTERS];
    tp_render_opts ro;
    tp_tcache_entry *e = NULL;
    tp_tree *sub = NULL;
    int64_t node;
    if (format_of(q, "text", formats, &format) < 0)
        return q->res->code;
    if (strcmp(format, "web") == 0)
        return tp_query_tree_web(q);
    if (read_render_opts(q, &ro, filters) < 0 || tp__query_arg_int(q, "node", -1, &node) < 0)
        return q->res->code;
    if (tp__query_load(q, "id", &e, NULL) < 0)
        return q->res->code;
    const tp_tree *t = tp_tcache_raw(e);
    int r = 0;
    if (node >= 0) {
        if ((uint64_t)node >= t->nnodes) {
            r = tp__query_fail(q, TP_ERR_NOT_FOUND,
                               "node %lld is not in trace %s (it has %zu calls)", (long long)node,
                               t->meta.trace_id, t->nnodes);
            goto out;
        }
        r = tp_rebuild_subtree(t, (uint32_t)node, &sub);
        if (r < 0) {
            tp__query_fail(q, r, "cannot extract node %lld: %s", (long long)node, tp_strerror(r));
            goto out;
        }
    }
    const tp_tree *show = sub ? sub : t;
    if (strcmp(format, "text") == 0) {
        r = rendered(q, tp_render_text(show, &ro, out_as(q, TP_CT_TEXT)), TP_CT_TEXT);
    } else {
        /* JSON is the raw (sub)tree unless folding was asked for explicitly. */
        bool fold_json = json_is_true(json_object_get(q->args, "folded"));
        tp_tree *folded = NULL;
        if (fold_json) {
            tp_fold_opts fo = {.threshold = ro.fold_threshold ? ro.fold_threshold : 2};
            r = tp_tree_fold(show, &fo, &folded);
        }
        if (r == 0)
            r = tp_render_json(folded ? folded : show, false, out_as(q, TP_CT_JSON));
        tp_tree_free(folded);
        r = rendered(q, r, TP_CT_JSON);
    }
out:
    tp_tree_free(sub);
    tp_tcache_put(e);
    return r;
}

int tp_query_stats(tp_qctx *q)
{
    static const char *const formats[] = {"text", "json", NULL};
    const char *format;
    bool color;
    tp_tcache_entry *e = NULL;
    tp_stats *s = NULL;
    if (format_of(q, "text", formats, &format) < 0 ||
        tp__query_arg_bool(q, opts_obj(q), "color", false, &color) < 0 ||
        tp__query_load(q, "id", &e, NULL) < 0)
        return q->res->code;
    const tp_tree *t = tp_tcache_raw(e);
    int r = tp_tree_stats(t, &s);
    if (r < 0) {
        tp__query_fail(q, r, "cannot compute statistics: %s", tp_strerror(r));
    } else if (strcmp(format, "text") == 0) {
        r = rendered(q, tp_render_stats(t, s, color, out_as(q, TP_CT_TEXT)), TP_CT_TEXT);
    } else {
        r = rendered(q, tp_render_stats_json(t, s, true, out_as(q, TP_CT_JSON)), TP_CT_JSON);
    }
    tp_tree_stats_free(s);
    tp_tcache_put(e);
    return r;
}

int tp_query_diff(tp_qctx *q)
{
    static const char *const formats[] = {"text", "json", NULL};
    const char *format;
    bool color;
    double pct, abs_ms;
    int64_t ra, rb;
    tp_tcache_entry *ea = NULL, *eb = NULL;
    tp_diff *d = NULL;
    if (format_of(q, "text", formats, &format) < 0 ||
        tp__query_arg_bool(q, opts_obj(q), "color", false, &color) < 0 ||
        tp__query_arg_num(q, "time_pct", 20, &pct) < 0 ||
        tp__query_arg_num(q, "time_abs_ms", 0.1, &abs_ms) < 0)
        return q->res->code;
    int r = tp__query_resolve_arg(q, "a", &ra);
    if (r == 0)
        r = tp__query_resolve_arg(q, "b", &rb);
    /* Entries are locked: take them in rowid order (two diffs of the same
     * pair in opposite order must not wait for each other), once each. */
    if (r == 0)
        r = tp__query_trees(q, ra < rb ? ra : rb, ra < rb ? &ea : &eb);
    if (r == 0 && ra != rb)
        r = tp__query_trees(q, ra < rb ? rb : ra, ra < rb ? &eb : &ea);
    if (r < 0)
        goto out;
    const tp_tree *a = tp_tcache_raw(ea ? ea : eb), *b = tp_tcache_raw(eb ? eb : ea);
    tp_diff_opts o = {.time_pct = pct, .time_abs_ns = (int64_t)(abs_ms * 1e6)};
    r = tp_tree_diff(a, b, &o, &d);
    if (r < 0) {
        tp__query_fail(q, r, "cannot compare: %s", tp_strerror(r));
    } else if (strcmp(format, "text") == 0) {
        r = rendered(q, tp_render_diff(d, color, out_as(q, TP_CT_TEXT)), TP_CT_TEXT);
    } else {
        r = rendered(q, tp_render_diff_json(d, out_as(q, TP_CT_JSON)), TP_CT_JSON);
    }
out:
    tp_tree_diff_free(d);
    tp_tcache_put(ea);
    tp_tcache_put(eb);
    return r;
}

/* The request tphd's exporter would send for this trace (with its span
 * selection when it runs), as OTLP/JSON: a file tools that read OTLP import. */
static int export_otlp(tp_qctx *q, const tp_tree *t, int64_t rowid)
{
    tp_otlp_opts def = {.slow_ns = TP_OTLP_DEFAULT_SLOW_NS};
    const tp_otlp_opts *o = q->env->otlp ? tp_otlp_export_span_opts(q->env->otlp) : &def;
    tp_otlp_body b;
    char err[256] = "";
    tp_otlp_body_init(&b, TP_OTLP_JSON);
    int r =
        tp_otlp_export_add_stored(&b, q->db, rowid, t, q->env->http_url, o, NULL, err, sizeof(err));
    if (r == 0)
        r = tp_otlp_body_finish(&b);
    if (r < 0) {
        tp_otlp_body_free(&b);
        return tp__query_fail(q, r, "cannot export: %s", err);
    }
    tp_buf_append(out_as(q, TP_CT_JSON), b.buf.data, b.buf.len);
    tp_buf_putc(&q->res->body, '\n');
    tp_otlp_body_free(&b);
    return rendered(q, tp_buf_error(&q->res->body), TP_CT_JSON);
}

int tp_query_export(tp_qctx *q)
{
    static const char *const formats[] = {"json",      "csv",  "chrome", "folded",
                                          "otlp-json", "html", NULL};
    const char *format;
    tp_tcache_entry *e = NULL;
    int64_t rowid;
    if (format_of(q, "json", formats, &format) < 0)
        return q->res->code;
    if (tp__query_load(q, "id", &e, &rowid) < 0)
        return q->res->code;
    const tp_tree *t = tp_tcache_raw(e);
    int r;
    if (strcmp(format, "json") == 0) {
        /* The file's "lines" and "source" keys, written by the renderer
         * itself: the answer streams, so nothing can be spliced in
         * afterwards. */
        tp_buf lines = TP_BUF_INIT, source = TP_BUF_INIT;
        bool has_lines = false, has_source = false;
        if (tp_query_lines_read(q, rowid, &lines, &has_lines) < 0 ||
            tp_query_source_read(q, rowid, &source, &has_source) < 0) {
            tp_buf_free(&lines);
            tp_buf_free(&source);
            tp_tcache_put(e);
            return q->res->code;
        }
        tp_render_section sec[] = {{"lines", lines.data, has_lines ? lines.len : 0},
                                   {"source", source.data, has_source ? source.len : 0}};
        r = rendered(q, tp_render_json_sections(t, true, sec, 2, out_as(q, TP_CT_JSON)),
                     TP_CT_JSON);
        tp_buf_free(&lines);
        tp_buf_free(&source);
    } else if (strcmp(format, "csv") == 0)
        r = rendered(q, tp_render_csv(t, out_as(q, TP_CT_CSV)), TP_CT_CSV);
    else if (strcmp(format, "chrome") == 0)
        r = rendered(q, tp_render_chrome(t, out_as(q, TP_CT_JSON)), TP_CT_JSON);
    else if (strcmp(format, "folded") == 0)
        r = rendered(q, tp_render_folded(t, out_as(q, TP_CT_TEXT)), TP_CT_TEXT);
    else if (strcmp(format, "otlp-json") == 0)
        r = export_otlp(q, t, rowid);
    else
        r = tp_query_export_html(q, t, rowid);
    tp_tcache_put(e);
    return r;
}

/* A millisecond argument as whole ns since the trace start. */
static int ms_arg(tp_qctx *q, const char *key, double def, int64_t *ret)
{
    double v;
    if (tp__query_arg_num(q, key, def, &v) < 0)
        return q->res->code;
    if (!(v >= 0 && v < 9e12))
        return tp__query_fail(q, -EINVAL, "argument \"%s\" must be milliseconds from 0", key);
    *ret = (int64_t)(v * 1e6 + 0.5);
    return 0;
}

int tp_query_profile(tp_qctx *q)
{
    int64_t t0, t1;
    tp_tcache_entry *e = NULL;
    if (ms_arg(q, "t0_ms", 0, &t0) < 0 || ms_arg(q, "t1_ms", 9e11, &t1) < 0)
        return q->res->code;
    if (t1 < t0)
        return tp__query_fail(q, -EINVAL, "argument \"t1_ms\" is before \"t0_ms\"");
    if (tp__query_load(q, "id", &e, NULL) < 0)
        return q->res->code;
    int r = rendered(q, tp_render_web_profile(tp_tcache_raw(e), t0, t1, out_as(q, TP_CT_JSON)),
                     TP_CT_JSON);
    tp_tcache_put(e);
    return r;
}

int tp_query_timeline(tp_qctx *q)
{
    int64_t t0, t1 = 0, nb;
    tp_tcache_entry *e = NULL;
    if (ms_arg(q, "t0_ms", 0, &t0) < 0 || tp__query_arg_int(q, "buckets", 1000, &nb) < 0)
        return q->res->code;
    if (nb < 1 || nb > TP_WEB_MAX_BUCKETS)
        return tp__query_fail(q, -EINVAL, "argument \"buckets\" must be from 1 to %d",
                              TP_WEB_MAX_BUCKETS);
    if (tp__query_load(q, "id", &e, NULL) < 0)
        return q->res->code;
    const tp_tree *t = tp_tcache_raw(e);
    /* The whole trace unless told otherwise. */
    int64_t end = t->meta.duration_ns > t0 ? t->meta.duration_ns : t0 + 1;
    int r = ms_arg(q, "t1_ms", (double)end / 1e6, &t1);
    if (r == 0 && t1 <= t0)
        r = tp__query_fail(q, -EINVAL, "argument \"t1_ms\" must be after \"t0_ms\"");
    if (r == 0)
        r = rendered(q, tp_render_web_timeline(t, t0, t1, (uint32_t)nb, out_as(q, TP_CT_JSON)),
                     TP_CT_JSON);
    tp_tcache_put(e);
    return r;
}

int tp_query_flame(tp_qctx *q)
{
    const char *fn;
    int64_t min_ns, max_nodes;
    tp_tcache_entry *e = NULL;
    const tp_tree *f = NULL;
    if (tp__query_arg_str(q, "fn", NULL, &fn) < 0 || ms_arg(q, "min_ms", 0, &min_ns) < 0 ||
        tp__query_arg_int(q, "max_nodes", 0, &max_nodes) < 0)
        return q->res->code;
    if (max_nodes < 0 || max_nodes > 1000000)
        return tp__query_fail(q, -EINVAL, "argument \"max_nodes\" must be from 0 to 1000000");
    if (tp__query_load(q, "id", &e, NULL) < 0)
        return q->res->code;
    /* The folded tree merges to the same graph as the raw one, sooner. */
    int r = tp_tcache_folded(e, &f);
    if (r < 0)
        r = tp__query_fail(q, r, "cannot fold the tree: %s", tp_strerror(r));
    else
        r = rendered(q,
                     tp_render_web_flame(f, fn, min_ns, (uint32_t)max_nodes, out_as(q, TP_CT_JSON)),
                     TP_CT_JSON);
    tp_tcache_put(e);
    return r;
}
