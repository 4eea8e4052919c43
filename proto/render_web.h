/* The report UI's data (issue 5): a tree served one subtree at a time as JSON
 * with node ids, search within a tree, statistics and diffs as JSON, and the
 * self-contained HTML report (the web UI with the trace inlined).
 *
 * Node ids are node indices of the tree passed in. The daemon passes the
 * folded tree, so a 1M-call trace is browsed as its folded form and expanded
 * lazily: ids stay valid as long as the same tree is folded the same way.
 * Every function appends to out and returns 0, -EINVAL or -ENOMEM; none
 * prints. The JSON comes from the one writer (json.h), whose escaper
 * replaces bytes that are not UTF-8 by U+FFFD. The shapes are documented in docs/API.md. */
#ifndef TP_RENDER_WEB_H
#define TP_RENDER_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "render.h"
#include "tree.h"

#define TP_WEB_LIMIT_DEFAULT     1000    /* children listed per node when limit is 0 */
#define TP_WEB_MAX_NODES_DEFAULT 5000    /* node budget of one answer when max_nodes is 0 */
#define TP_WEB_MAX_BUCKETS       4000    /* time buckets of one timeline answer */
#define TP_WEB_MAX_PATH_IDS      1000000 /* path ids of one search answer, all matches together */

/** Which part of a tree tp_render_web_tree() emits. */
typedef struct tp_web_tree_opts {
    uint32_t node;      /* TP_NONE: list the roots; else list this node's children */
    int32_t depth;      /* levels to list below node: 1 = its children only, 0 = none, -1 = all */
    uint32_t offset;    /* skip this many entries of the first listed level (paging) */
    uint32_t limit;     /* list at most this many children of any one node (0: default) */
    uint32_t max_nodes; /* at most this many listed nodes in all, breadth first (0: default) */
    uint32_t max_text;  /* cut args/ret/exception text past this many bytes (0: never) */
} tp_web_tree_opts;

/** Defaults: the roots, depth 1, offset 0, default limit and budget, text cut at 1000. */
void tp_render_web_tree_opts_init(tp_web_tree_opts *o);

/** A subtree as JSON:
 *    {"node": N|null, "total": children of N (or roots), "offset": o,
 *     "self": <node object of N without kids> | null, "nodes": [node objects]}
 *  A node object is {"id","name","module","qualname","file","line","depth","parent" (null for a
 * root), "thread","count","start_ms","end_ms","total_ms","self_ms","min_ms","max_ms", "args","ret"
 * (strings or null when not captured),"exc" (null or {"type",
 *  "msg","caught"}),"nexc","suspends","flags":[names],"cut":bool,
 *  "children": number of children,"seq": L (only on the first group of a
 *  folded sequence),"has_more": bool,"kids":[...]} where
 *  "kids" is present when some children are listed and has_more says that
 *  not all of them are. A roots listing (node TP_NONE) adds "threads":
 *  [{"thread","name","first_root","roots","calls","total_ms"}] when
 *  tp_tree_thread_groups() gives any. Lists are breadth-first budgeted: the
 *  levels nearest to node are complete before deeper ones start. An unknown
 *  node id gives
 *  -EINVAL. */
int tp_render_web_tree(const tp_tree *t, const tp_web_tree_opts *o, tp_buf *out);

/** The calls a node of folded tree t stands for (tree.h fold_members), in
 *  order, from offset on, at most limit of them (0: TP_WEB_LIMIT_DEFAULT):
 *    {"node": N, "total": calls in the group, "offset": o,
 *     "calls": [node objects of the tree t was folded from, without kids]}
 *  Their "id" and "parent" are indices of that (unfolded) tree. In a tree
 *  that was not folded a node stands for itself. An unknown node gives
 *  -EINVAL. */
int tp_render_web_members(const tp_tree *t, uint32_t node, uint32_t offset, uint32_t limit,
                          uint32_t max_text, tp_buf *out);

/** Search: nodes whose "module.qualname", file, args, return value or
 *  exception contain query (ASCII case-insensitive), in tree order:
 *    {"query": q, "total": N, "truncated": bool,
 *     "matches": [{"id": n, "path": [root id, ..., n], "pos": [...]}]}
 *  where pos[k] is path[k]'s position among its siblings (so a client can
 *  fetch the page of a very wide node that holds it).
 *  with at most limit matches listed (0: 1000) and total counting all.
 *  The paths of the listed matches hold at most TP_WEB_MAX_PATH_IDS ids in
 *  all (a match whose path would pass it ends the list, "truncated": true):
 *  on a deep trace every match's path is as long as the trace, and limit
 *  times depth is a client's to choose. An empty query matches nothing. */
int tp_render_web_search(const tp_tree *t, const char *query, uint32_t limit, tp_buf *out);

/** Statistics of a raw tree as the UI's hotspots use them: those of
 *  tp_render_stats_json(t, s, true, out) (render.h), tphd's stats answer,
 *  plus "args" (cut at 1000 bytes) in "slowest" ({"name","node" (raw node
 *  index),"ms","args"}) and "avg_ms" after "max_ms" in each function, so the
 *  UI reads either. functions are s's order (total time descending), at most
 *  top of them (0: all). */
int tp_render_web_stats(const tp_tree *t, const tp_stats *s, uint32_t top, tp_buf *out);

/* render_web_agg.c: summaries of the whole tree, so the UI never needs to
 * load every call of a large trace to show one. */

/** The function table of the calls that started in [t0_ns, t1_ns) (times
 *  since the trace start), so a range selected in the timeline narrows it:
 *    {"t0_ms","t1_ms","calls","unique_functions","functions":[{"name" (the
 *     qualname),"module","file","lineno","count","total_ms","self_ms",
 *     "min_ms","max_ms","avg_ms","exceptions"}]}
 *  by total time descending, ties by function index. Works on a raw or a
 *  folded tree (a folded node counts as its calls). -EINVAL when t1 < t0. */
int tp_render_web_profile(const tp_tree *t, int64_t t0_ns, int64_t t1_ns, tp_buf *out);

/** The timeline summarised per lane, row (depth in the lane) and time
 *  bucket, so a low zoom of a 1M-call trace draws a few thousand blocks:
 *    {"t0_ms","t1_ms","bucket_ms","buckets":N,
 *     "lanes":[{"name","thread","rows":[[[bucket, busy_ms, func, started],
 *     ...], ...]}], "funcs":[names]}
 *  Lanes are as the UI draws them: one per thread ("thread N"), one per
 *  asyncio task ("task <coroutine>"; past 63 tasks the rest share "tasks
 *  (more)"), each call nested under its caller when they share a lane.
 *  Only non-empty buckets are listed: busy_ms is the time calls of that row
 *  covered in it, func (an index into funcs) the call that covered most of
 *  it, started the calls of the row that began in it. Rows past 64 are
 *  left out. The buckets are nbuckets (1..TP_WEB_MAX_BUCKETS) equal
 *  whole-ns slices from t0_ns on, so t1_ms may pass t1_ns by under one
 *  bucket. -EINVAL for an empty range or a bad count. */
int tp_render_web_timeline(const tp_tree *t, int64_t t0_ns, int64_t t1_ns, uint32_t nbuckets,
                           tp_buf *out);

/** A flame graph merged over the whole tree. fn NULL: the merged ("left
 *  heavy") view, every identical stack one group:
 *    {"mode":"merged","count","total_ms","self_ms","nodes":[group],"cut"}
 *  fn a "module.qualname": the sandwich view of that function, the calls
 *  below its calls merged, and its callers merged upwards level by level
 *  (a caller's time is that of its calls to fn):
 *    {"mode":"sandwich","fn","count","total_ms","self_ms","callees":[group],
 *     "callers":[group],"cut"}
 *  A group is {"function" (the dotted name),"count","total_ms","self_ms","kids":[group]} (kids
 *  absent when none), heaviest first. Groups under min_ns are left out;
 *  at most max_nodes groups (0: TP_WEB_MAX_NODES_DEFAULT) are listed and
 *  "cut" says the budget or the depth limit (256) left some out. A call of
 *  fn inside another call of fn counts once, in the outer one. */
int tp_render_web_flame(const tp_tree *t, const char *fn, int64_t min_ns, uint32_t max_nodes,
                        tp_buf *out);

/** A diff as JSON: tp_render_diff_json() (render.h). */
int tp_render_web_diff(const tp_diff *d, tp_buf *out);

/** The pieces of the web UI the HTML report inlines. The build generates
 *  them from web/ (tp_assets_report() in web/assets.h); proto/ does not
 *  depend on web/, so callers pass them in. */
typedef struct tp_web_assets {
    const char *html; /* web/index.html */
    size_t html_len;
    const char *js; /* web/app.js; must not contain "</script" */
    size_t js_len;
    const char *css; /* web/style.css; must not contain "</style" */
    size_t css_len;
    const char *js_sha256;  /* base64 SHA-256 of js for the report's CSP, or NULL */
    const char *css_sha256; /* base64 SHA-256 of css, or NULL */
} tp_web_assets;

/** The self-contained HTML report of a finished raw tree: index.html with
 *  style.css and app.js inlined and the data in two elements the app reads
 *  instead of fetching:
 *  <script type="application/json" id="tp-data"> (every "</" written "<\/"
 *  and "<!--" written "<\u0021--", so no trace text can end the element)
 *  holds {"trace": summary, "stats": tp_render_web_stats(all), "threads":
 *  [...] (as a roots listing's, first_root a packed id; only when the
 *  roots are on several threads)}, where summary is summary_json when given
 *  (a JSON object, e.g. the daemon's "get" answer) or one built from
 *  t->meta; <script type="application/octet-stream" id="tp-tree"> holds
 *  tp_render_web_pack() of the folded tree up to the groups' calls, and
 *  <script type="application/octet-stream" id="tp-members"> the calls,
 *  each deflated and in base64 (tp_render_web_deflate_b64()), which
 *  cannot hold "<". With both hashes
 *  given, a CSP meta tag allows exactly the inlined script and style and
 *  nothing else. Returns -EINVAL when the assets lack the tags this
 *  replaces. */
int tp_render_html(const tp_tree *t, const char *summary_json, const tp_web_assets *assets,
                   tp_buf *out);
/** tp_render_html() with a trace file's last keys (sec, n of them: "lines",
 *  the lines= data the Lines tab shows, and "source", the functions' source
 *  text the source view shows; one with len 0 is left out) added to the
 *  inlined data under their keys. Each text is checked and re-escaped
 *  (tp_json_copy); one that is not JSON becomes null. */
int tp_render_html_sections(const tp_tree *t, const char *summary_json,
                            const tp_render_section *sec, size_t n, const tp_web_assets *assets,
                            tp_buf *out);

/* render_pack.c: the report's tree in a few bytes a call. */

#define TP_WEB_PACK_MAGIC "TPK2" /* the first 4 bytes of a packed tree (its version) */
#define TP_WEB_PACK_LEVEL 6      /* the deflate level of the report's packed tree */
/* Most calls of folded groups a report's packed tree holds, in all: a
 * group is packed whole or not at all, in tree order while it fits. */
#define TP_WEB_PACK_MAX_MEMBERS 1000000

/** The packed tree (docs/API.md "The packed report tree"): t's nodes in
 *  pre-order, a node's packed id its position, as columns of LEB128
 *  varints after a deduplicated string table, then the calls each folded
 *  group stands for (of t->fold_src), groups whole while their calls
 *  together stay within max_members (TP_WEB_PACK_MAX_MEMBERS for a
 *  report); a group past that is left out. Appends to out. With ret_ids,
 *  *ret_ids (t->nnodes entries, the caller frees it) gets each node's
 *  packed id (TP_NONE for a node no root reaches). With ret_members_at,
 *  *ret_members_at gets where the groups' calls begin in what was
 *  appended (the report deflates the two parts apart, so a page opens
 *  without inflating the calls). Returns 0, -EINVAL or -ENOMEM. */
int tp_render_web_pack(const tp_tree *t, size_t max_members, tp_buf *out, uint32_t **ret_ids,
                       size_t *ret_members_at);

/** Append p[0..n) deflated (zlib format, RFC 1950, as the browser's
 *  DecompressionStream("deflate") reads it) at level (0..9), in base64 with
 *  padding and no line breaks. Returns 0, -EINVAL or -ENOMEM. */
int tp_render_web_deflate_b64(const void *p, size_t n, int level, tp_buf *out);

#endif
