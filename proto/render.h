/* Renderers: a finished tree into text, JSON, CSV, Chrome trace events and
 * folded stacks. Every renderer appends to a tp_buf and returns 0 or a
 * negative code (-ENOMEM). They never print; callers decide where text goes.
 * The same functions serve t.tree() in the extension, tph and tphd, so a
 * trace looks the same everywhere. */
#ifndef TP_RENDER_H
#define TP_RENDER_H

#include <stdbool.h>

#include "buf.h"
#include "tree.h"

#define TP_STYLE_UNICODE 0 /* "└── ", "├── ", "│   " (tracepatch's default look) */
#define TP_STYLE_ASCII   1 /* "`-- ", "|-- ", "|   ": 7-bit only, everything else escaped */

typedef struct tp_render_opts {
    int style;               /* TP_STYLE_* */
    bool color;              /* ANSI colours by duration; callers decide TTY-ness */
    bool args;               /* show arguments (default true) */
    bool returns;            /* show " -> value" (default true) */
    bool self_time;          /* append " / self: X" inside the timing brackets */
    bool source;             /* append "  (file:line)" */
    bool header;             /* the stats header block above the tree (default true) */
    bool fold;               /* fold repeated siblings first (default true) */
    bool ms_units;           /* tracepatch 1.0.0's fixed "0.05ms" durations, not "50.0\u00b5s" */
    uint32_t fold_threshold; /* 0 = default (2) */
    int max_depth;           /* show nodes with depth < max_depth; -1 = all */
    const char *const
        *filters; /* tracepatch --filter patterns: "glob" keeps, "!glob" drops;
                     matched against "module.qualname" and the module; NULL-terminated */
} tp_render_opts;

/** Defaults: unicode, no colour, args, returns, header, fold, all depths. */
void tp_render_opts_init(tp_render_opts *o);

/** The text tree in tracepatch's grammar, e.g.
 *    └── app.handle(uid=42) -> {'id': 42}  [1.23ms]
 *        ├── app.load(uid=42) -> None  [0.50ms / self: 0.10ms]
 *        └── app.check(x=1)  [0.20ms]
 *            !! ValueError: bad x
 *  with "[×N]" for folded groups and the 72-column stats header when
 *  opts->header. The tree may be raw or folded; a raw tree is folded here when
 *  opts->fold. Filters apply at every depth: a hidden node's visible
 *  descendants attach to its nearest visible ancestor. */
int tp_render_text(const tp_tree *t, const tp_render_opts *opts, tp_buf *out);

/** The stats header block alone (also what `tph stats` prints first). */
int tp_render_stats_header(const tp_tree *t, const tp_stats *s, tp_buf *out);
/** Detailed statistics for `tph stats`: header, top functions, per-module. */
int tp_render_stats(const tp_tree *t, const tp_stats *s, bool color, tp_buf *out);

/** tracepatch 1.0.0's JSON schema (tracepatch_version, schema_version,
 *  timestamp, label, trace_id, call_count, was_limited, limit_reason, config,
 *  stats, trace[] with name, module, args, return_value, exception, start,
 *  end, elapsed_ms, file, lineno, children) plus extra keys. "name" means
 *  what 1.0.0 means by it, in the nodes and the stats block alike: the
 *  qualname, with "module" beside it. Raw tree in, raw tree out: files
 *  round-trip. pretty selects 2-space indentation. */
int tp_render_json(const tp_tree *t, bool pretty, tp_buf *out);

/** A top-level key of a trace file written after "trace": key, and its value
 *  as JSON text already checked (len bytes at json, not NUL-terminated). The
 *  sections tracepatch writes are "lines" (lines= data) and "source" (the
 *  functions' source text, docs/API.md), in that order. */
typedef struct tp_render_section {
    const char *key;
    const char *json;
    size_t len;
} tp_render_section;

/** tp_render_json() with the n sections as its last top-level keys, in
 *  order (a section with len 0 is left out; none: the same bytes as
 *  tp_render_json()). The caller keeps sec. */
int tp_render_json_sections(const tp_tree *t, bool pretty, const tp_render_section *sec, size_t n,
                            tp_buf *out);

/** Where tp_render_json_stream() hands its text: n bytes at p (valid for
 *  the call only). Returns 0, or a negative code that ends the rendering. */
typedef int (*tp_render_sink)(void *ctx, const char *p, size_t n);

/** tp_render_json()'s document, byte for byte, given to sink in pieces of
 *  about chunk bytes (at least one node each; a piece never ends inside a
 *  UTF-8 sequence), so a trace of any size is written in bounded memory.
 *  Returns 0, the sink's code, or a negative code (-ENOMEM). */
int tp_render_json_stream(const tp_tree *t, bool pretty, const tp_render_section *sec, size_t nsec,
                          size_t chunk, tp_render_sink sink, void *ctx);
/** CSV: tracepatch's columns plus "exception", one row per call, RFC 4180 quoting. */
int tp_render_csv(const tp_tree *t, tp_buf *out);
/** Chrome trace-event JSON ({"traceEvents":[...]}, "X" events in µs, "name" the qualname
 *  and "cat" the module), opens in Perfetto. */
int tp_render_chrome(const tp_tree *t, tp_buf *out);
/** Folded stacks ("a;b;c <self µs>" per unique stack) for flamegraph.pl and speedscope. */
int tp_render_folded(const tp_tree *t, tp_buf *out);
/** An SVG flame graph: a bar per call, width by active time, callers below
 *  their callees, "module.qualname (time, share)" as each bar's tooltip; all
 *  traced text XML-escaped. title heads it (NULL: the trace label, else
 *  "Flame graph"). Bars narrower than 0.1 px are left out with their callees. */
int tp_render_svg(const tp_tree *t, const char *title, tp_buf *out);
/** The diff report `tph diff` prints. */
int tp_render_diff(const tp_diff *d, bool color, tp_buf *out);

/** Statistics as one line of compact JSON (`tph stats --json`, tphd's
 *  "stats" query and the "stats" of a trace summary):
 *    {"calls","unique_functions","modules","max_depth","exceptions",
 *     "duration_ms","slowest": {"name","module","node","ms"} | null,
 *     "most_called": {"name","module","count"} | null}
 *  and with full also "functions": [{"name","module","file",
 *  "lineno","count","total_ms","self_ms","min_ms","max_ms","exceptions"}]
 *  (s's order) and "by_module": [{"module","calls","functions","self_ms"}].
 *  Times are exact milliseconds without trailing zeros; strings are escaped
 *  by json.h's one rule. "name" is the qualname with "module" beside it,
 *  as in every JSON output (trace files, the report UI's JSON, Chrome
 *  events); where one string names a function it is "module.qualname" under
 *  another key ("function" in diffs). Appends to out; returns 0, -EINVAL
 *  or -ENOMEM. */
int tp_render_stats_json(const tp_tree *t, const tp_stats *s, bool full, tp_buf *out);
/** A diff as one line of compact JSON (`tph diff --json`, tphd's "diff"):
 *    {"calls_a","calls_b","duration_a_ms","duration_b_ms",
 *     "changes": [{"kind": "removed"|"added"|"count"|"time","path","function",
 *                  "count_a","count_b","total_a_ms","total_b_ms"}],
 *     "functions_added": [names], "functions_removed": [names]}
 *  path, function and the two lists hold "module.qualname" strings.
 *  Times as in tp_render_stats_json(). Returns 0, -EINVAL or -ENOMEM. */
int tp_render_diff_json(const tp_diff *d, tp_buf *out);

/** Duration with 3 significant digits in the largest unit it reaches:
 *  "850ns", "1.23\u00b5s", "12.3ms", "123ms", "1.23s". buf >= 32 bytes. */
const char *tp_render_format_duration(int64_t ns, char *buf, size_t size);

/** Append s[0..n) (client-supplied text: a label, a process name, a
 *  message) escaped for a terminal or a log line, with the same bytes the
 *  text tree gives: control characters, line separators and bidi overrides
 *  become visible escapes (\n, \x1b, \u202e), invalid UTF-8 becomes \xNN, so
 *  the text can neither drive the terminal nor start a line of its own. Use
 *  it for every client string tph or tphd prints. */
void tp_render_escape(tp_buf *b, const char *s, size_t n);

#endif
