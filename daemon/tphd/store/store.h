/* tphd's storage: one SQLite database in WAL mode, written by one writer
 * thread, read through a small pool of reader connections.
 *
 * Producers (the server's event loop, query workers) hand the writer
 * tp_store_op values through a queue; the writer applies them in order inside
 * batched transactions (committed when the queue runs dry, and at least every
 * 100 ms under load) and, once the transaction holding an op committed (or
 * failed), passes the op to the completion callback, on the writer thread.
 * The callback owns the op from then on.
 *
 * Schema (PRAGMA user_version = TP_STORE_SCHEMA):
 *   traces      one row per trace: identity, process facts, status, counters,
 *               the JSON "stats" object (filled when the trace is finalized)
 *   funcs       per trace: trace-local function id -> module, qualname, file, line
 *   chunks      per trace: one row per EVENTS batch (records BLOB in wire
 *               layout with trace-local function ids, text BLOB)
 *   func_stats  per trace, per function: count, total, self, min, max, exceptions
 *   folded      per trace: the folded tree as tp_render_json() text (format 1)
 * Schema 2 adds traces.otlp (OTLP export state) and traces.otel_trace (the
 * OpenTelemetry trace id, 32 hex), see otlp_export.h and finalize.h.
 * Schema 3 adds frames: one row per frame (uid, name, start, duration) that a
 * client measured with tracepatch.frame(), see query_frames.c.
 * Schema 4 adds trace_lines: per trace, the lines= data a LINES message (or
 * an imported file's "lines" key) carried, as the JSON text it came in.
 * Schema 5 adds frames.trace_id: the trace kept inside a frame, if any.
 * Schema 6 adds traces.platform and traces.cwd (HELLO's).
 * Schema 7 adds trace_source: per trace, the functions' source text a
 * SOURCE message (or an imported file's "source" key) carried, as sent.
 * Trace status: TP_TRACE_OPEN while it is being received, COMPLETE after its
 * END, TRUNCATED when its connection (or tphd) died first. */
#ifndef TP_STORE_H
#define TP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define TP_STORE_SCHEMA 7

#define TP_TRACE_OPEN      0 /* receiving events */
#define TP_TRACE_COMPLETE  1 /* END received and committed */
#define TP_TRACE_TRUNCATED 2 /* the sender went away (or tphd crashed) before END */

/* Finalization state (traces.finalized). */
#define TP_FINAL_PENDING 0 /* stats/folded tree not computed yet */
#define TP_FINAL_DONE    1 /* func_stats, folded and traces.stats are filled */
#define TP_FINAL_FAILED  2 /* the events could not be rebuilt; see the log */

/** Op kinds. */
enum {
    TP_STORE_BEGIN = 1, /* insert a trace row (status open) */
    TP_STORE_EVENTS,    /* insert one chunk and the new functions it uses */
    TP_STORE_END,       /* mark a trace complete with END's facts */
    TP_STORE_ABORT,     /* mark an open trace truncated (its sender is gone) */
    TP_STORE_LINES,     /* store a trace's lines= JSON text (trace_lines) */
    TP_STORE_SOURCE,    /* store a trace's source JSON text (trace_source), in lines_json */
    TP_STORE_CALL,      /* run fn(db, arg) inside the writer's transaction (fn NULL: nothing) */
};

/** The writer's view of one trace being received. Embedded in the producer's
 *  per-trace state; the fields are written by the writer thread only and
 *  read by the producer only after the op that set them completed. */
typedef struct tp_store_trace {
    int64_t rowid; /* traces.rowid after BEGIN; 0 before or when BEGIN failed */
    char id[33];   /* the stored id: the client's, or a fresh one after a collision */
    int err;       /* sticky: the first failure of an op on this trace (0 = none) */
} tp_store_trace;

/** A function descriptor carried by an EVENTS op (trace-local id). */
typedef struct tp_store_func {
    uint32_t fid;
    const char *module, *qualname, *file; /* never NULL */
    int32_t lineno;
} tp_store_func;

/** Facts stored with a new trace (BEGIN). Strings may be NULL except id. */
typedef struct tp_store_begin {
    char client_id[33]; /* the id the client chose (32 lowercase hex) */
    const char *label;
    uint32_t uid;
    int64_t pid;
    uint64_t pstart; /* process start, clock ticks since boot */
    const char *host, *argv_json, *python, *client, *config_json, *source;
    const char *platform, *cwd; /* the client's sys.platform and working directory */
    int64_t wall_start_ns;
} tp_store_begin;

typedef struct tp_store_op tp_store_op;

/** Runs on the writer thread inside the open transaction (under a savepoint
 *  that is rolled back when it fails). Returns 0 or a code; may write a
 *  message into op->errmsg. */
typedef int (*tp_store_fn)(sqlite3 *db, tp_store_op *op, void *arg);

/** One unit of work for the writer. Producers allocate ops (usually in one
 *  block with their payload), fill the fields of their kind, and get the op
 *  back through the completion callback. Fields are public. */
struct tp_store_op {
    int kind;              /* TP_STORE_* */
    tp_store_trace *trace; /* BEGIN/EVENTS/END/ABORT */
    void *owner;           /* producer's context (e.g. the connection) */
    size_t bytes;          /* queued memory this op accounts for */

    tp_store_begin begin; /* BEGIN */

    uint32_t seq;        /* EVENTS */
    const void *records; /* EVENTS: nrecords * 16 bytes, trace-local function ids */
    size_t nrecords;
    const void *text;
    size_t text_len;
    uint64_t ncalls;            /* EVENTS: CALL records in this batch */
    uint64_t max_t_ns;          /* EVENTS: largest t_ns in this batch */
    const tp_store_func *funcs; /* EVENTS: functions first used by this batch */
    size_t nfuncs;

    const char *lines_json; /* LINES, SOURCE: JSON text, not NUL-terminated */
    size_t lines_len;

    uint64_t end_ns; /* END */
    uint64_t call_count;
    uint64_t dropped;
    const char *limit_reason, *drop_reason;

    tp_store_fn fn; /* CALL */
    void *arg;

    /* Results, set by the writer before completion. */
    int result;       /* 0 or a code (TP_ERR_DB, ...) */
    char errmsg[160]; /* "" or a message for the peer */
    int64_t rowid;    /* BEGIN/EVENTS/END/ABORT: the trace's rowid */
    char id[33];      /* BEGIN/EVENTS/END/ABORT: the stored trace id */

    tp_store_op *next; /* private: queue link */
    void *priv;        /* private */
};

typedef struct tp_store tp_store;

/** Completion callback: runs on the writer thread once op's transaction has
 *  committed (op->result 0) or failed (op->result < 0). It owns op. */
typedef void (*tp_store_done_cb)(tp_store_op *op, void *ud);

typedef struct tp_store_opts {
    const char *path;      /* database file; created 0600 */
    tp_store_done_cb done; /* may be NULL when every op is synchronous */
    void *done_ud;
    int64_t commit_interval_ns; /* 0 = 100 ms: the longest a busy transaction stays open */
    /* 0 = no limit. Else the database and its WAL together stay under this:
     * the WAL is checkpointed and truncated to an eighth of it, and after a
     * commit that leaves more than half of it in use in the main file the
     * writer deletes the oldest finished traces at once (see
     * tp_store_retention). A reserve file of TP_STORE_RESERVE bytes beside
     * the database is given up when a deletion meets a full disk. */
    uint64_t max_bytes;
} tp_store_opts;

/** Under a size limit, the pages in use in the main file that a batch of a
 *  trace still being received may take it to: the oldest finished traces
 *  (not the newest) are deleted to make room, and past it the batch is
 *  refused with -ENOSPC and its trace ended truncated. The WAL (truncated
 *  past an eighth) comes on top. */
#define TP_STORE_OPEN_CEILING(max_bytes) (max_bytes)

/** Bytes of the reserve file (<db>-reserve) kept so that deleting traces
 *  and checkpointing still work on a full disk. */
#define TP_STORE_RESERVE ((size_t)2 << 20)

/** Facts from opening: for the start-up log line. */
typedef struct tp_store_info {
    int schema_from;       /* user_version found (0 for a new file) */
    int64_t traces;        /* rows in traces */
    int64_t truncated_now; /* open traces left by a crash, marked truncated */
    int64_t unfinalized;   /* traces whose stats/folded tree still need computing */
} tp_store_info;

/** Open (creating if needed) the database, migrate it, mark traces left open
 *  by a previous run truncated, and start the writer thread. On failure
 *  returns a code and writes a message into err. */
int tp_store_open(const tp_store_opts *opts, tp_store **ret, tp_store_info *ret_info, char *err,
                  size_t errsz);

/** Apply every queued op, commit, checkpoint the WAL (TRUNCATE), stop the
 *  writer thread and close every connection. Pending completions are
 *  delivered before it returns. Accepts NULL. Not from the writer thread. */
void tp_store_close(tp_store *s);

/** Queue an op for the writer. Any thread. The op must stay valid until its
 *  completion. Returns 0, or -ESHUTDOWN after tp_store_close() began (the op
 *  is then not taken). */
int tp_store_submit(tp_store *s, tp_store_op *op);

/** Run fn(db, op, arg) on the writer inside its transaction and wait until
 *  that transaction committed. For worker threads (never the writer thread or
 *  an event loop). Returns fn's result, TP_ERR_DB when the commit failed, or
 *  -ESHUTDOWN. errmsg (optional) receives op->errmsg. */
int tp_store_call_sync(tp_store *s, tp_store_fn fn, void *arg, char *errmsg, size_t errsz);

/** Wait until every op submitted before this call is committed (a no-op
 *  CALL through the queue), so that a reader sees them. Worker threads
 *  only. Returns 0, or the commit's failure, or -ESHUTDOWN. */
int tp_store_barrier(tp_store *s);

/** Bytes of queued, not yet completed ops (their op->bytes). Any thread. */
size_t tp_store_queued_bytes(const tp_store *s);

/** Borrow a read-only connection (query_only, its own WAL snapshot per
 *  statement or transaction) for the calling thread; give it back with
 *  tp_store_reader_put(). Returns 0 or TP_ERR_DB with a message. */
int tp_store_reader_get(tp_store *s, sqlite3 **ret, char *err, size_t errsz);
void tp_store_reader_put(tp_store *s, sqlite3 *db);

/** The database path as opened. */
const char *tp_store_path(const tp_store *s);

/** Size of the database in bytes (page_count * page_size of the main file plus
 *  the WAL file). Any thread. */
int64_t tp_store_db_bytes(const tp_store *s);

/** Delete a trace and everything stored for it. For fn callbacks and the
 *  writer (db is the writer connection). Returns 0 or TP_ERR_DB. */
int tp_store_delete_trace(sqlite3 *db, int64_t rowid);

/** Retention: delete the oldest finished traces whose start is older than
 *  retention_s seconds (0 = no age limit), then, while the database is bigger
 *  than half of max_bytes in use (0 = no size limit; the rest is the WAL's and
 *  headroom), more of the oldest; then give free
 *  pages back to the file system. Queued through the writer; blocks the caller
 *  like tp_store_call_sync(). Returns 0 or a code; *ret_deleted counts traces. */
int tp_store_retention(tp_store *s, double retention_s, uint64_t max_bytes, int64_t *ret_deleted);

/** Map an SQLite result code to a tp code (TP_ERR_DB, or -ENOMEM / -ENOSPC /
 *  -EACCES for the obvious ones) and write "what: sqlite message" into err. */
int tp_store_sqlite_err(sqlite3 *db, int rc, const char *what, char *err, size_t errsz);

#endif
