/* The call tree: built from an event stream, folded, measured and compared.
 *
 * A tp_tree owns flat arrays of functions and nodes plus an arena for their
 * strings. Nodes link by index (TP_NONE ends a list), so a 1M-call tree is a
 * few large allocations, not a million small ones. The struct fields below are
 * public and read-only for callers; only functions in this header modify a
 * tree. A tree is not thread-safe: one thread at a time.
 *
 * Node i of a raw (unfolded) tree is the i-th CALL of the trace. */
#ifndef TP_TREE_H
#define TP_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define TP_NONE UINT32_MAX

/* Node flags. */
#define TP_NODE_EXC        0x01 /* ended by an exception propagating out (exc_type/exc_msg set) */
#define TP_NODE_CAUGHT     0x02 /* an exception was raised and handled inside; the call returned */
#define TP_NODE_OPEN       0x04 /* still open when the trace stopped; end_ns is the trace's end */
#define TP_NODE_GEN        0x08 /* generator/coroutine: one node from first resume to completion */
#define TP_NODE_FOLDED     0x10 /* stands for count > 1 consecutive sibling calls */
#define TP_NODE_ARGS_MIXED 0x20 /* folded: the calls' args differ (args holds the first's) */
#define TP_NODE_RET_MIXED  0x40 /* folded: the calls' returns differ (ret holds the first's) */
#define TP_NODE_SPAWNED    0x80 /* asyncio task coroutine, under the call creating the task */
#define TP_NODE_SHAPE_MIXED                                                                        \
    0x100 /* folded: the calls made different calls (their direct children differ) */
#define TP_NODE_MEM 0x200 /* mem_delta was measured (track_memory); folded: for some call */
#define TP_NODE_SEQ                                                                                \
    0x400 /* folded: one of the seq_len sibling groups of a repeated sequence (see tp_node.seq) */

/** An interned function. Strings are owned by the tree. */
typedef struct tp_func {
    const char *module;   /* "pkg.mod"; never NULL */
    const char *qualname; /* "Class.method"; never NULL */
    const char *file;     /* never NULL ("" when unknown) */
    int32_t lineno;       /* first line, 0 when unknown */
    bool defined;         /* private: set once described */
} tp_func;

/** One call (or, in a folded tree, a group of consecutive sibling calls). */
typedef struct tp_node {
    uint32_t func;        /* index into tree->funcs */
    uint32_t flags;       /* TP_NODE_* */
    uint32_t parent;      /* TP_NONE for a root */
    uint32_t first_child; /* TP_NONE when none */
    uint32_t last_child;
    uint32_t next;        /* next sibling, TP_NONE at the end */
    uint32_t depth;       /* roots are 0 */
    uint32_t thread;      /* thread index from TP_EV_THREAD (0 by default) */
    uint32_t count;       /* 1, or N for a folded node */
    uint32_t suspends;    /* generator/coroutine suspensions (summed when folded) */
    uint32_t nexc;        /* folded: how many of the calls raised */
    uint32_t seq;         /* folded: on the first group of a repeated sequence of L sibling
                             functions, L (2..TP_FOLD_SEQ_MAX): it and its next L-1 siblings
                             (all TP_NODE_SEQ) hold the calls of the sequence's positions,
                             count repetitions each; 0 elsewhere */
    int64_t start_ns;     /* since the trace start; first call's start when folded */
    int64_t end_ns;       /* last call's end when folded; end_ns - start_ns is the span */
    int64_t total_ns;     /* active time: the sum of the intervals the call ran (for a
                             generator, its resumes; for others, end - start); summed
                             over the group when folded */
    int64_t self_ns;      /* the time the call was the innermost running call of its
                             thread (>= 0, <= total_ns; a thread's self times sum to
                             at most its duration) */
    int64_t min_ns;       /* folded: shortest call; otherwise = total_ns */
    int64_t max_ns;       /* folded: longest call; otherwise = total_ns */
    int64_t mem_delta;    /* with TP_NODE_MEM: traced memory at the end minus at the start, in
                             bytes (a generator: summed over the intervals it ran); summed over
                             the measured calls when folded; 0 otherwise */
    const char *args;     /* "uid=42, *args=(1,)"; NULL when not captured */
    const char *ret;      /* return value repr; NULL when not captured or raised */
    const char *exc_type; /* set with TP_NODE_EXC, or the handled one with TP_NODE_CAUGHT */
    const char *exc_msg;
} tp_node;

/** Trace-level facts that travel with a tree (JSON header, wire TRACE_BEGIN/END). */
typedef struct tp_trace_meta {
    char trace_id[33];        /* lowercase hex, NUL-terminated; "" when none */
    const char *label;        /* owned by the tree; NULL when none */
    int64_t wall_start_ns;    /* Unix time of the trace start, ns */
    int64_t duration_ns;      /* trace start to trace end */
    uint64_t call_count;      /* calls recorded (exact; equals max_calls when capped) */
    uint64_t dropped;         /* events lost (daemon upload, memory) */
    const char *limit_reason; /* "max_depth", "max_calls", "max_time", "memory" or NULL */
    const char *config_json;  /* the trace's config as a JSON object text, or NULL */
    bool running;             /* still being recorded: the tree holds what arrived so far */
    /* Where it was recorded (tracepatch 1.0.0's file keys); each NULL when
     * unknown. Trace files carry them; the wire does not (yet). */
    const char *hostname;
    const char *python_version; /* "3.12.1" */
    const char *platform;       /* sys.platform: "linux" */
    const char *working_directory;
} tp_trace_meta;

/** A thread's name as the trace recorded it (TP_EV_THREAD's text). */
typedef struct tp_thread_name {
    uint32_t thread;  /* the thread index nodes carry */
    const char *name; /* owned by the tree; never NULL */
} tp_thread_name;

/** A folded node's calls: fold_members[off, off + len) of its tree. */
typedef struct tp_fold_group {
    uint32_t off, len;
} tp_fold_group;

typedef struct tp_tree {
    tp_func *funcs;                 /* read-only */
    size_t nfuncs;                  /* read-only */
    tp_node *nodes;                 /* read-only; node i = call i in a raw tree */
    size_t nnodes;                  /* read-only */
    uint32_t first_root, last_root; /* read-only; roots linked through next */
    tp_trace_meta meta;             /* read-write through tp_tree_set_*() */
    bool folded;                    /* read-only */
    /* A folded tree keeps every call it stands for: node i stands for the
     * nodes fold_members[fold_groups[i].off ...] (each .len of them) of
     * fold_src, the tree it was folded from. fold_src is borrowed: read
     * members through it only while the caller keeps that tree alive. All
     * NULL in a tree that was not made by tp_tree_fold(). Read-only. */
    const struct tp_tree *fold_src;
    uint32_t *fold_members;
    tp_fold_group *fold_groups;
    tp_thread_name *threads; /* read-only: named threads, in the order first named */
    size_t nthreads;         /* read-only */
    void *priv;              /* private: arena, builder state */
} tp_tree;

/** Create an empty tree. Free with tp_tree_free(). Returns 0 or -ENOMEM. */
int tp_tree_new(tp_tree **ret);
/** Free a tree and everything it owns. Accepts NULL. */
void tp_tree_free(tp_tree *t);

/** Copy a string into the tree's arena; returns NULL on allocation failure. */
const char *tp_tree_strdup(tp_tree *t, const char *s, size_t len);
int tp_tree_set_label(tp_tree *t, const char *label);
int tp_tree_set_config_json(tp_tree *t, const char *json);
int tp_tree_set_limit_reason(tp_tree *t, const char *reason);
/** Copy the recording environment into the tree (any may be NULL). */
int tp_tree_set_env(tp_tree *t, const char *hostname, const char *python_version,
                    const char *platform, const char *working_directory);

/** Name thread (a copy of name[0..len) is kept; renaming replaces it). Works
 *  on a finished tree too (loaders). Returns 0 or -ENOMEM. */
int tp_tree_set_thread_name(tp_tree *t, uint32_t thread, const char *name, size_t len);
/** The name of thread, or NULL when it has none. */
const char *tp_tree_thread_name(const tp_tree *t, uint32_t thread);

/** A thread whose top-level calls the views show under one line naming it. */
typedef struct tp_thread_group {
    uint32_t thread;     /* thread index */
    const char *name;    /* tp_tree_thread_name(), NULL when unnamed */
    uint32_t first_root; /* its first root */
    uint32_t nroots;     /* its roots */
    uint64_t calls;      /* calls under its roots, theirs included (a folded node counts as its
                            calls) */
    int64_t total_ns;    /* its roots' summed active time */
} tp_thread_group;

/** The per-thread roots every view draws: when the roots of t are calls of
 *  more than one thread, one group per thread but thread 0 (the thread that
 *  opened the trace), in the order of their first roots; with one thread,
 *  none (*ret NULL, *ret_n 0), and the views are as without threads. Free
 *  *ret with free(). Returns 0 or -ENOMEM. */
int tp_tree_thread_groups(const tp_tree *t, tp_thread_group **ret, size_t *ret_n);

/* ---- Building ---------------------------------------------------------- */

/** Describe function id (ids are small and dense, chosen by the producer).
 *  Strings are copied. Redescribing an id replaces it. Returns 0, -ENOMEM,
 *  or TP_ERR_LIMIT for id >= 1<<24. */
int tp_tree_def_func(tp_tree *t, uint32_t id, const char *module, const char *qualname,
                     const char *file, int32_t lineno);

/* Per-event builder calls. Text pointers may be NULL (not captured); text is
 * copied and need not be NUL-terminated. The builder tolerates unbalanced
 * streams: a RETURN with no open call is ignored and counted, never a crash.
 * Times are ns since the trace start and must not go backwards within a thread
 * (a smaller value is clamped). Errors: -ENOMEM, TP_ERR_UNKNOWN_FUNC,
 * TP_ERR_SEQUENCE (RESUME/YIELD naming a call that is not suspended/current). */
int tp_tree_call(tp_tree *t, uint32_t func, uint64_t t_ns, bool is_gen, const char *args,
                 size_t args_len);
int tp_tree_return(tp_tree *t, uint64_t t_ns, const char *ret, size_t ret_len);
int tp_tree_unwind(tp_tree *t, uint64_t t_ns, const char *type, size_t type_len, const char *msg,
                   size_t msg_len);
int tp_tree_caught(tp_tree *t, uint64_t t_ns, const char *type, size_t type_len, const char *msg,
                   size_t msg_len);
int tp_tree_yield(tp_tree *t, uint32_t seq, uint64_t t_ns);
int tp_tree_resume(tp_tree *t, uint32_t seq, uint64_t t_ns);
int tp_tree_thread(tp_tree *t, uint32_t thread);
/** The next call on the current thread is a task created by call seq: it
 *  becomes seq's child (TP_NODE_SPAWNED) instead of the current call's. A seq
 *  that names no call is ignored (the call links as usual). */
int tp_tree_spawn(tp_tree *t, uint32_t seq);
/** The call that ended last on the current thread changed the traced memory
 *  by delta bytes (TP_EV_MEMORY): it gets TP_NODE_MEM and mem_delta. Ignored
 *  (counted as stray) when no call has ended on this thread yet. */
int tp_tree_memory(tp_tree *t, int64_t delta);

/** Apply one event (host byte order; text as the record owns it: s2 only for
 *  UNWIND/CAUGHT; rsv matters only to TP_EV_MEMORY). The one dispatch of
 *  event kinds for every builder (the extension's log, tphd's stored chunks,
 *  wire batches). Returns what the matching call above returns, or
 *  TP_ERR_MALFORMED for an unknown kind. */
int tp_tree_event(tp_tree *t, uint8_t kind, uint8_t flags, uint16_t rsv, uint32_t arg,
                  uint64_t t_ns, const char *s1, size_t l1, const char *s2, size_t l2);

/** Feed a batch in wire layout (see event.h): n records and the text stream
 *  they own. The records need not be aligned. Validates as it goes: an unknown
 *  kind or flag, or text running past text_len, returns TP_ERR_MALFORMED and
 *  leaves the events before it applied. */
int tp_tree_feed(tp_tree *t, const void *records, size_t n, const void *text, size_t text_len);

/** Close every open call at end_ns (marked TP_NODE_OPEN, real end time, never
 *  0) and every suspended generator likewise, then compute total/self/min/max
 *  and meta.duration_ns. Call once, after the last event. */
int tp_tree_finish(tp_tree *t, uint64_t end_ns);

/* ---- Folding ----------------------------------------------------------- */

#define TP_FOLD_SEQ_MAX 8 /* longest repeated sequence of sibling functions that folds */

typedef struct tp_fold_opts {
    uint32_t threshold; /* fold runs of at least this many same-function siblings (or
                           repetitions of a sequence); default 2 */
} tp_fold_opts;

/** Build a folded copy of a finished tree: consecutive sibling calls of the
 *  same function (at least threshold of them) become one TP_NODE_FOLDED node
 *  with count, min/avg/max and summed total/self; their children are
 *  concatenated in order and folded recursively. A run of at least threshold
 *  repetitions of one sequence of 2..TP_FOLD_SEQ_MAX sibling functions
 *  ("parse, price, parse, price, ...") folds too, into L consecutive
 *  TP_NODE_SEQ groups, one per position of the sequence, each holding that
 *  position's calls; the first carries seq = L, and the views draw the L as
 *  one line "[parse, price] xN". At each sibling the fold covering the most
 *  calls wins, the shorter sequence on a tie, so runs of one function fold as
 *  before. Linear in the siblings. opts may be NULL. The result is a new tree
 *  (free it), with meta copied. */
int tp_tree_fold(const tp_tree *t, const tp_fold_opts *opts, tp_tree **ret);

/* ---- Statistics (always on the raw tree) -------------------------------- */

typedef struct tp_func_stats {
    uint32_t func; /* index into tree->funcs */
    uint64_t count;
    int64_t total_ns; /* cumulative: time in outermost invocations (recursion not double-counted) */
    int64_t self_ns;
    int64_t min_ns, max_ns; /* over single invocations */
    uint64_t nexc;          /* invocations that raised */
} tp_func_stats;

typedef struct tp_module_stats {
    const char *module; /* owned by the tree */
    uint64_t calls;
    uint32_t functions;
    int64_t self_ns;
} tp_module_stats;

typedef struct tp_stats {
    uint64_t calls;
    uint32_t modules;
    uint32_t max_depth; /* deepest node's depth; roots are 0 */
    uint32_t unique_functions;
    uint64_t exceptions;  /* calls that raised */
    int64_t duration_ns;  /* meta.duration_ns, or the roots' span when unset */
    uint32_t slowest;     /* node with the largest total_ns, TP_NONE when empty */
    uint32_t most_called; /* func with the most calls, TP_NONE when empty */
    tp_func_stats *funcs; /* sorted by total_ns descending, then name */
    size_t nfuncs;
    tp_module_stats *mods; /* sorted by calls descending, then name */
    size_t nmods;
} tp_stats;

/** Compute statistics of a finished raw tree (a folded tree is expanded by
 *  count for calls but its min/max are the folded ones). Free with
 *  tp_tree_stats_free(). */
int tp_tree_stats(const tp_tree *t, tp_stats **ret);
void tp_tree_stats_free(tp_stats *s);

/* ---- Diff ---------------------------------------------------------------- */

#define TP_DIFF_ADDED   1 /* path/function only in b */
#define TP_DIFF_REMOVED 2 /* only in a */
#define TP_DIFF_COUNT   3 /* call count changed */
#define TP_DIFF_TIME    4 /* time changed past the thresholds (count equal) */

typedef struct tp_diff_opts {
    double time_pct;     /* report time changes of at least this percent; default 20 */
    int64_t time_abs_ns; /* ... and at least this many ns; default 100000 (0.1 ms) */
} tp_diff_opts;

typedef struct tp_diff_entry {
    int kind;   /* TP_DIFF_* */
    char *path; /* "mod.f > mod.g" call path from a root; owned by the diff */
    char *name; /* "mod.g", the last element */
    uint64_t count_a, count_b;
    int64_t total_a_ns, total_b_ns;
} tp_diff_entry;

typedef struct tp_diff {
    tp_diff_entry *entries; /* ordered: removed, added, count, time; then by path */
    size_t n;
    char **funcs_added; /* function names ("mod.qualname") only in b, sorted */
    size_t nfuncs_added;
    char **funcs_removed; /* only in a, sorted */
    size_t nfuncs_removed;
    uint64_t calls_a, calls_b;
    int64_t duration_a_ns, duration_b_ns;
} tp_diff;

/** Compare two finished raw trees, aligned by call path (the chain of
 *  function names from the root). opts may be NULL. */
int tp_tree_diff(const tp_tree *a, const tp_tree *b, const tp_diff_opts *opts, tp_diff **ret);
void tp_tree_diff_free(tp_diff *d);

/** "module.qualname" of a function into buf; returns buf. Helper for renderers. */
const char *tp_tree_func_name(const tp_tree *t, uint32_t func, char *buf, size_t size);

#endif
