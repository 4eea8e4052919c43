/* The query ops that live outside query.c, which dispatches to them:
 * query_tree.c (tree, stats, diff, export) and query_web.c (the report UI's
 * tree pages, search and HTML export). Internal to daemon/tphd/query. */
#ifndef TP_QUERY_OPS_H
#define TP_QUERY_OPS_H

#include "query_ctx.h"

/* query_tree.c. Each runs its op of docs/QUERY.md on q and returns 0 or
 * q->res->code. */
/** tree {id, format, folded, fold_threshold, node, depth, opts}. */
int tp_query_tree(tp_qctx *q);
/** stats {id, format, opts.color}. */
int tp_query_stats(tp_qctx *q);
/** diff {a, b, format, time_pct, time_abs_ms, opts.color}. */
int tp_query_diff(tp_qctx *q);
/** export {id, format}. */
int tp_query_export(tp_qctx *q);
/** profile {id, t0_ms, t1_ms}: the function table of the calls that started in the range. */
int tp_query_profile(tp_qctx *q);
/** timeline {id, t0_ms, t1_ms, buckets}: calls per lane, row and time bucket. */
int tp_query_timeline(tp_qctx *q);
/** flame {id, fn, min_ms, max_nodes}: the merged flame graph, or fn's sandwich. */
int tp_query_flame(tp_qctx *q);

/* query_web.c (with the report UI built in; otherwise these answer -ENOTSUP) */
/** tree with format "web": tp_render_web_tree of the folded tree. */
int tp_query_tree_web(tp_qctx *q);
/** search {id, q, limit}: tp_render_web_search of the folded tree. */
int tp_query_search(tp_qctx *q);
/** export format "html": the self-contained report. */
int tp_query_export_html(tp_qctx *q, const tp_tree *t, int64_t rowid);

/* query_lines.c */
/** Append the trace's stored line data (JSON text) to out; *ret_found says
 *  whether it has any. Returns 0 or q->res->code. */
int tp_query_lines_read(tp_qctx *q, int64_t rowid, tp_buf *out, bool *ret_found);
/** lines {id}: the trace's lines= data, the JSON array as it arrived ([] for none). */
int tp_query_lines(tp_qctx *q);
/** Append the trace's stored source text (JSON, a file's "source") to out;
 *  *ret_found says whether it has any. Returns 0 or q->res->code. */
int tp_query_source_read(tp_qctx *q, int64_t rowid, tp_buf *out, bool *ret_found);
/** source {id, func}: function func of the trace (its id in the trace's
 *  function table, a node's "func") with its source: {"func", "module",
 *  "qualname", "file", "line", "text" (null when none; at most
 *  TP_QUERY_SOURCE_MAX bytes, whole lines), "truncated" (lines left out),
 *  "missing" (why there is no text, or null)}. */
int tp_query_source(tp_qctx *q);
/** The "lines" and "source" keys of a trace file's text as compact JSON in
 *  *ret_lines and *ret_source (malloc'd; NULL when the file has none, or
 *  an empty "lines"). Returns 0, TP_ERR_JSON (not an array of objects; not
 *  PROTOCOL.md 4.6b's shape), TP_ERR_LIMIT (a source over
 *  TP_WIRE_MAX_SOURCE) or -ENOMEM, with a message, and then neither. */
int tp_query_sections_of_file(const char *text, size_t len, char **ret_lines, char **ret_source,
                              char *err, size_t errsz);

/* query_events.c */
/** events {id, records}: the trace's stored EVENTS batches in order, whole,
 *  until they hold at least records records (-1: all of them). */
int tp_query_events(tp_qctx *q);

/* query_frames.c */
/** frames_add {frames: [[name, start_ns, dur_ns], ...]}: store a client's frames. */
int tp_query_frames_add(tp_qctx *q);
/** frames {name, since}: per-name statistics (exact percentiles). */
int tp_query_frames(tp_qctx *q);
/** frame_points {name, since, limit}: the newest frames of one name, one
 *  point each (start, duration, kept trace), for the frame-time graph. */
int tp_query_frame_points(tp_qctx *q);
/** For clean: delete the peer's frames (all, or begun before cutoff_ns, Unix
 *  ns). Returns 0 or q->res->code. */
int tp_query_frames_clean(tp_qctx *q, bool all, int64_t cutoff_ns);

#endif
