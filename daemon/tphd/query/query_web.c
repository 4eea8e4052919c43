/* The report UI's queries (issue 5), built when web/ is: a tree served one
 * subtree at a time, search within a tree, and the self-contained HTML
 * report. Node ids are indices of the folded tree, which folds the same way
 * every time, so ids stay valid between requests. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "assets.h"
#include "json_jansson.h"
#include "query_ops.h"
#include "render.h"
#include "render_web.h"
#include "tp_err.h"

/* args.id's folded tree, from the cache. */
static int load_folded(tp_qctx *q, tp_tcache_entry **ret_e, const tp_tree **ret_folded)
{
    tp_tcache_entry *e = NULL;
    if (tp__query_load(q, "id", &e, NULL) < 0)
        return q->res->code;
    int r = tp_tcache_folded(e, ret_folded);
    if (r < 0) {
        tp_tcache_put(e);
        return tp__query_fail(q, r, "cannot fold the tree: %s", tp_strerror(r));
    }
    *ret_e = e;
    return 0;
}

static int u32_arg(tp_qctx *q, const char *key, int64_t def, int64_t min, uint32_t *ret)
{
    int64_t v;
    if (tp__query_arg_int(q, key, def, &v) < 0)
        return q->res->code;
    if (v < min || v > (int64_t)UINT32_MAX - 1)
        return tp__query_fail(q, -EINVAL, "argument \"%s\" is out of range", key);
    *ret = (uint32_t)v;
    return 0;
}

int tp_query_tree_web(tp_qctx *q)
{
    tp_web_tree_opts o;
    tp_render_web_tree_opts_init(&o);
    int64_t node, depth;
    bool members;
    if (tp__query_arg_int(q, "node", -1, &node) < 0 ||
        tp__query_arg_int(q, "depth", o.depth, &depth) < 0 ||
        tp__query_arg_bool(q, q->args, "members", false, &members) < 0 ||
        u32_arg(q, "offset", 0, 0, &o.offset) < 0 || u32_arg(q, "limit", 0, 0, &o.limit) < 0 ||
        u32_arg(q, "max_nodes", 0, 0, &o.max_nodes) < 0 ||
        u32_arg(q, "max_text", o.max_text, 0, &o.max_text) < 0)
        return q->res->code;
    if (depth < -1 || depth > INT32_MAX)
        return tp__query_fail(q, -EINVAL, "argument \"depth\" is out of range");
    o.depth = (int32_t)depth;
    tp_tcache_entry *e = NULL;
    const tp_tree *f = NULL;
    if (load_folded(q, &e, &f) < 0)
        return q->res->code;
    int r = 0;
    if (node >= 0 && (uint64_t)node >= f->nnodes) {
        r = tp__query_fail(q, TP_ERR_NOT_FOUND, "node %lld is not in this trace", (long long)node);
        goto out;
    }
    o.node = node < 0 ? TP_NONE : (uint32_t)node;
    if (members && o.node == TP_NONE)
        r = tp__query_fail(q, TP_ERR_MISSING, "argument \"node\" (the folded call) is required");
    else if (members)
        r = tp_render_web_members(f, o.node, o.offset, o.limit, o.max_text, &q->res->body);
    else
        r = tp_render_web_tree(f, &o, &q->res->body);
    if (r < 0 && q->res->code)
        goto out;
    if (r < 0)
        tp__query_fail(q, r, "cannot render the tree: %s", tp_strerror(r));
    else
        q->res->content_type = TP_CT_JSON;
out:
    tp_tcache_put(e);
    return r;
}

int tp_query_search(tp_qctx *q)
{
    const char *text;
    uint32_t limit = 0;
    tp_tcache_entry *e = NULL;
    const tp_tree *f = NULL;
    if (tp__query_arg_str(q, "q", NULL, &text) < 0 || u32_arg(q, "limit", 0, 0, &limit) < 0)
        return q->res->code;
    if (!text)
        return tp__query_fail(q, TP_ERR_MISSING, "argument \"q\" (the text to find) is required");
    if (load_folded(q, &e, &f) < 0)
        return q->res->code;
    int r = tp_render_web_search(f, text, limit, &q->res->body);
    if (r < 0)
        tp__query_fail(q, r, "cannot search: %s", tp_strerror(r));
    else
        q->res->content_type = TP_CT_JSON;
    tp_tcache_put(e);
    return r;
}

int tp_query_export_html(tp_qctx *q, const tp_tree *t, int64_t rowid)
{
    tp_web_assets assets;
    json_t *summary = NULL;
    char *text = NULL;
    tp_assets_report(&assets);
    /* The summary's url carries the owner's HTTP token, and a report file
     * is made to be handed around: whoever holds it could read every trace
     * of that user from the loopback port. The file gets no credential. */
    if (tp__query_get_json(q, rowid, t, &summary) == 0) {
        json_object_del(summary, "url");
        text = tp_json_jansson_dumps(summary);
    }
    json_decref(summary);
    q->res->code = 0; /* a missing summary is built from the tree instead */
    tp_buf lines = TP_BUF_INIT, source = TP_BUF_INIT;
    bool has_lines = false, has_source = false;
    if (tp_query_lines_read(q, rowid, &lines, &has_lines) < 0 ||
        tp_query_source_read(q, rowid, &source, &has_source) < 0) {
        free(text);
        tp_buf_free(&lines);
        tp_buf_free(&source);
        return q->res->code;
    }
    q->res->content_type = TP_CT_HTML; /* before the first piece leaves */
    tp_render_section sec[] = {{"lines", lines.data, has_lines ? lines.len : 0},
                               {"source", source.data, has_source ? source.len : 0}};
    int r = tp_render_html_sections(t, text, sec, 2, &assets, &q->res->body);
    tp_buf_free(&lines);
    tp_buf_free(&source);
    free(text);
    if (r < 0)
        return tp__query_fail(q, r, "cannot build the HTML report: %s", tp_strerror(r));
    q->res->content_type = TP_CT_HTML;
    return 0;
}
