#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store_priv.h"
#include "tp_err.h"
#include "util.h"

#define DEFAULT_COMMIT_INTERVAL_NS (100 * 1000000LL)
#define MAX_READERS                8
/* After an op someone waits for (END, ABORT, a call), commit once the
 * transaction is this old instead of waiting for the interval. */
#define PROMPT_COMMIT_NS (2 * 1000000LL)

/* One producer's FIFO of ops. The writer serves the lanes round robin, so a
 * client ending a small trace waits for one batch of each busy client, not
 * for everything they have queued; within a lane the order is kept. */
typedef struct lane {
    void *owner;
    tp_store_op *head, **tail;
    struct lane *next;
} lane;

/* A caller of tp_store_call_sync() waiting for its op. */
typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done; /* under mu: the writer sets it, the caller waits for it */
} sync_wait;

/* Threads (tphd.h): the writer thread owns db and st; the queue fields
 * are under mu; the reader pool is under rmu; the rest is set by
 * tp_store_open() and read-only until tp_store_close(). */
struct tp_store {
    char *path;  /* read-only */
    int lock_fd; /* holds an flock() on the database file; read-only */
    sqlite3 *db; /* the writer's connection: writer thread only (after open) */
    tp_store_stmts st;
    tp_store_done_cb done; /* read-only; called on the writer thread */
    void *done_ud;
    int64_t commit_interval_ns; /* read-only */
    uint64_t max_bytes;         /* 0 = no size limit (tp_store_opts); read-only */
    char *reserve_path;         /* <db>-reserve; read-only */
    atomic_bool reserve;        /* atomic: the reserve file is in place */
    bool fast_delete;           /* secure_delete=FAST since the disk was full; writer thread */

    pthread_t thread;    /* the writer; joined by tp_store_close() */
    bool thread_started; /* opener/closer thread only */
    tp_store_ckpt *ckpt; /* checkpoints the WAL off the writer thread; writer thread */
    pthread_mutex_t mu;  /* guards the queue and stopping */
    pthread_cond_t cond;
    lane *lanes, **lanes_tail;  /* lanes with ops, in serving order; under mu */
    lane *spare;                /* empty lanes kept for reuse; under mu */
    lane fallback;              /* when a lane cannot be allocated; under mu */
    size_t nqueued;             /* under mu */
    unsigned small_run;         /* small ops taken ahead of the round robin in a row; under mu */
    bool stopping;              /* under mu */
    atomic_size_t queued_bytes; /* atomic: submitters add, the writer subtracts, anyone reads */

    pthread_mutex_t rmu;           /* guards the reader pool */
    sqlite3 *readers[MAX_READERS]; /* idle reader connections; under rmu */
    int nreaders;                  /* under rmu */
};

int tp_store_sqlite_err(sqlite3 *db, int rc, const char *what, char *err, size_t errsz)
{
    int code = TP_ERR_DB;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        code = -ENOMEM;
        break;
    case SQLITE_FULL:
        code = -ENOSPC;
        break;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
        code = TP_ERR_DB;
        break;
    default:
        break;
    }
    if (err && errsz)
        snprintf(err, errsz, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return code;
}

/* ---- Opening and migrating ------------------------------------------------ */

static int open_conn(const char *path, bool create, sqlite3 **ret, char *err, size_t errsz)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        int r = tp_store_sqlite_err(db, rc, path, err, errsz);
        sqlite3_close(db);
        return r;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 10000);
    *ret = db;
    return 0;
}

/* Create the file 0600 ourselves so SQLite (and its -wal/-shm, which copy the
 * main file's mode) never exposes traces to other users, and hold an flock()
 * on it while open: a second tphd on the same database would fight over the
 * write lock. (SQLite's own locks are fcntl() locks, which flock() does not
 * interfere with on Linux.) Returns the descriptor that holds the lock. */
static int create_file(const char *path, int *ret_fd, char *err, size_t errsz)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errsz, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            snprintf(err, errsz, "%s is in use by another tphd", path);
        else
            snprintf(err, errsz, "cannot lock %s: %s", path, strerror(e));
        close(fd);
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == 0)
        (void)fchmod(fd, 0600);
    *ret_fd = fd;
    return 0;
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errsz)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        if (err && errsz)
            snprintf(err, errsz, "%s (in: %.60s)", msg ? msg : sqlite3_errstr(rc), sql);
        sqlite3_free(msg);
        return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : TP_ERR_DB;
    }
    return 0;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *ret = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : TP_ERR_DB;
}

/* Schema migrations: migrations[v] takes user_version v to v + 1. */
static const char *const migrations[] = {
    "CREATE TABLE traces ("
    "  id TEXT NOT NULL UNIQUE," /* 32 lowercase hex */
    "  client_id TEXT NOT NULL," /* the id the client chose */
    "  label TEXT,"
    "  uid INTEGER NOT NULL,"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  pstart INTEGER NOT NULL DEFAULT 0,"
    "  host TEXT, argv TEXT, python TEXT, client TEXT, config TEXT, source TEXT,"
    "  wall_start_ns INTEGER NOT NULL," /* Unix ns of the trace start */
    "  received_ns INTEGER NOT NULL,"   /* Unix ns when tphd stored BEGIN */
    "  ended_ns INTEGER,"               /* Unix ns when tphd stored END/truncation */
    "  end_ns INTEGER,"                 /* trace end, ns since its start */
    "  calls INTEGER NOT NULL DEFAULT 0,"
    "  dropped INTEGER NOT NULL DEFAULT 0,"
    "  limit_reason TEXT, drop_reason TEXT,"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  nevents INTEGER NOT NULL DEFAULT 0,"
    "  nchunks INTEGER NOT NULL DEFAULT 0,"
    "  last_ns INTEGER NOT NULL DEFAULT 0," /* largest event time seen */
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  finalized INTEGER NOT NULL DEFAULT 0,"
    "  stats TEXT);"
    "CREATE INDEX traces_start ON traces(wall_start_ns);"
    "CREATE INDEX traces_uid_start ON traces(uid, wall_start_ns);"
    "CREATE INDEX traces_status ON traces(status, finalized);"
    "CREATE TABLE funcs ("
    "  trace INTEGER NOT NULL, fid INTEGER NOT NULL,"
    "  module TEXT NOT NULL, qualname TEXT NOT NULL, file TEXT NOT NULL,"
    "  lineno INTEGER NOT NULL, PRIMARY KEY (trace, fid)) WITHOUT ROWID;"
    "CREATE TABLE chunks ("
    "  trace INTEGER NOT NULL, seq INTEGER NOT NULL, nrecords INTEGER NOT NULL,"
    "  records BLOB NOT NULL, text BLOB NOT NULL);"
    "CREATE UNIQUE INDEX chunks_trace_seq ON chunks(trace, seq);"
    "CREATE TABLE func_stats ("
    "  trace INTEGER NOT NULL, fid INTEGER NOT NULL, count INTEGER NOT NULL,"
    "  total_ns INTEGER NOT NULL, self_ns INTEGER NOT NULL, min_ns INTEGER NOT NULL,"
    "  max_ns INTEGER NOT NULL, nexc INTEGER NOT NULL,"
    "  PRIMARY KEY (trace, fid)) WITHOUT ROWID;"
    "CREATE TABLE folded ("
    "  trace INTEGER PRIMARY KEY, format INTEGER NOT NULL, data BLOB NOT NULL);",
    /* 1 -> 2: OTLP export. otlp is the export state (otlp_export.h);
     * otel_trace the OpenTelemetry trace id of the trace's spans, set when
     * it begins or is finalized (a trace finalized before had no traceparent, so its
     * own id is the one). Only pending rows are indexed for the exporter. */
    "ALTER TABLE traces ADD COLUMN otlp INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE traces ADD COLUMN otel_trace TEXT;"
    "UPDATE traces SET otel_trace = id WHERE finalized = 1;"
    "CREATE INDEX traces_otlp_pending ON traces(otlp) WHERE otlp = 1;"
    "CREATE INDEX traces_otel_trace ON traces(otel_trace);",
    /* 2 -> 3: frames (query_frames.c), one row per frame so that the
     * percentiles of any window are exact. */
    "CREATE TABLE frames ("
    "  uid INTEGER NOT NULL, name TEXT NOT NULL,"
    "  start_ns INTEGER NOT NULL," /* Unix ns when the frame began */
    "  dur_ns INTEGER NOT NULL);"
    "CREATE INDEX frames_name_start ON frames(name, start_ns);",
    /* 3 -> 4: line data of trace(lines=...) (PROTOCOL.md 4.6a), one JSON
     * text per trace, read whole by the lines query. */
    "CREATE TABLE trace_lines (trace INTEGER PRIMARY KEY, json TEXT NOT NULL);",
    /* 4 -> 5: the id of the trace kept inside a frame (frame(trace=True)
     * or the web middleware), NULL when none was, for the frame graph. */
    "ALTER TABLE frames ADD COLUMN trace_id TEXT;",
    /* 5 -> 6: where the client ran (HELLO's platform and cwd), so a stored
     * trace's file has tracepatch 1.0.0's four environment keys. */
    "ALTER TABLE traces ADD COLUMN platform TEXT;"
    "ALTER TABLE traces ADD COLUMN cwd TEXT;",
    /* 6 -> 7: the source text of a trace's functions (PROTOCOL.md 4.6b),
     * one JSON text per trace, as the file's "source" key. */
    "CREATE TABLE trace_source (trace INTEGER PRIMARY KEY, json TEXT NOT NULL);",
};

static int migrate(sqlite3 *db, int *ret_from, char *err, size_t errsz)
{
    int64_t version = 0;
    int r = query_int(db, "PRAGMA user_version", &version);
    if (r < 0) {
        snprintf(err, errsz, "cannot read the schema version: %s", sqlite3_errmsg(db));
        return r;
    }
    if (version > TP_STORE_SCHEMA) {
        snprintf(err, errsz,
                 "the database has schema version %lld, newer than this tphd knows (%d); "
                 "use a newer tphd or another --db",
                 (long long)version, TP_STORE_SCHEMA);
        return TP_ERR_VERSION;
    }
    *ret_from = (int)version;
    if (version == 0) {
        /* Settings that only take effect before the first table exists (and,
         * for the page size, before the switch to WAL). */
        r = exec_sql(db,
                     "PRAGMA page_size=" TP_STORE_PAGE_SIZE_STR "; PRAGMA auto_vacuum=INCREMENTAL;",
                     err, errsz);
        if (r < 0)
            return r;
    }
    r = exec_sql(db, "PRAGMA journal_mode=WAL", err, errsz);
    if (r < 0)
        return r;
    for (int64_t v = version; v < TP_STORE_SCHEMA; v++) {
        char sql[64];
        r = exec_sql(db, "BEGIN IMMEDIATE", err, errsz);
        if (r < 0)
            return r;
        r = exec_sql(db, migrations[v], err, errsz);
        if (r == 0) {
            snprintf(sql, sizeof(sql), "PRAGMA user_version=%lld", (long long)v + 1);
            r = exec_sql(db, sql, err, errsz);
        }
        if (r == 0)
            r = exec_sql(db, "COMMIT", err, errsz);
        if (r < 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
    }
    return 0;
}

static int recover(sqlite3 *db, tp_store_info *info, char *err, size_t errsz)
{
    int64_t now = tp_util_now_ns();
    char sql[256];
    int r = exec_sql(db, "BEGIN IMMEDIATE", err, errsz);
    if (r < 0)
        return r;
    snprintf(sql, sizeof(sql),
             "UPDATE traces SET status=%d, end_ns=last_ns, ended_ns=%lld,"
             " limit_reason=coalesce(limit_reason, 'disconnected') WHERE status=%d",
             TP_TRACE_TRUNCATED, (long long)now, TP_TRACE_OPEN);
    r = exec_sql(db, sql, err, errsz);
    if (r == 0)
        info->truncated_now = sqlite3_changes(db);
    if (r == 0)
        r = exec_sql(db, "COMMIT", err, errsz);
    if (r < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    if (query_int(db, "SELECT count(*) FROM traces", &info->traces) < 0 ||
        query_int(db, "SELECT count(*) FROM traces WHERE finalized=0 AND status!=0",
                  &info->unfinalized) < 0) {
        snprintf(err, errsz, "cannot count traces: %s", sqlite3_errmsg(db));
        return TP_ERR_DB;
    }
    return 0;
}

static void *writer_main(void *arg);

static void store_free(tp_store *s)
{
    tp__store_ckpt_stop(s->ckpt);
    tp__store_stmts_finalize(&s->st);
    for (int i = 0; i < s->nreaders; i++)
        sqlite3_close(s->readers[i]);
    if (s->db)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->rmu);
    while (s->spare) {
        lane *l = s->spare;
        s->spare = l->next;
        if (l != &s->fallback)
            free(l);
    }
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->path);
    free(s->reserve_path);
    free(s);
}

int tp_store_open(const tp_store_opts *opts, tp_store **ret, tp_store_info *ret_info, char *err,
                  size_t errsz)
{
    tp_store_info info = {0};
    tp_store *s = calloc(1, sizeof(*s));
    int r = -ENOMEM;
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    s->lanes_tail = &s->lanes;
    s->lock_fd = -1;
    s->done = opts->done;
    s->done_ud = opts->done_ud;
    s->commit_interval_ns =
        opts->commit_interval_ns > 0 ? opts->commit_interval_ns : DEFAULT_COMMIT_INTERVAL_NS;
    s->max_bytes = opts->max_bytes;
    s->path = strdup(opts->path);
    s->reserve_path = malloc(strlen(opts->path) + sizeof("-reserve"));
    if (s->reserve_path)
        sprintf(s->reserve_path, "%s-reserve", opts->path);
    if (!s->path || !s->reserve_path) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    r = create_file(s->path, &s->lock_fd, err, errsz);
    if (r < 0)
        goto fail;
    r = open_conn(s->path, true, &s->db, err, errsz);
    if (r < 0)
        goto fail;
    /* A file that is not a database, not ours, or damaged fails here,
     * unchanged. */
    bool stamp = false;
    r = tp__store_check(s->db, s->path, &stamp, err, errsz);
    if (r < 0)
        goto fail;
    r = migrate(s->db, &info.schema_from, err, errsz);
    if (r == 0 && stamp)
        r = exec_sql(s->db, "PRAGMA application_id=" TP_STORE_APP_ID_STR, err, errsz);
    if (r < 0)
        goto fail;
    r = exec_sql(s->db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "PRAGMA journal_size_limit=67108864;"
                 "PRAGMA cache_size=-32768;",
                 err, errsz);
    if (r < 0)
        goto fail;
    if (s->max_bytes) {
        /* The WAL's share of the limit: truncated to an eighth of it after a
         * checkpoint, checkpointed at an eighth. */
        char sql[96];
        int64_t wal = (int64_t)(s->max_bytes / 8);
        snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%lld", (long long)wal);
        r = exec_sql(s->db, sql, err, errsz);
        if (r < 0)
            goto fail;
        /* Pruning makes room for what arrives in the same transaction: a
         * deletion that zeroed every freed page (secure_delete, on as Debian
         * builds SQLite) would write as much to the WAL as it frees. Freed
         * pages keep their old bytes until reused, in a 0600 file. */
        r = exec_sql(s->db, "PRAGMA secure_delete=FAST", err, errsz);
        if (r < 0)
            goto fail;
        s->fast_delete = true;
    }
    tp__store_keep_reserve(s);
    r = recover(s->db, &info, err, errsz);
    if (r < 0)
        goto fail;
    r = tp__store_stmts_prepare(s->db, &s->st, err, errsz);
    if (r < 0)
        goto fail;
    r = tp__store_ckpt_start(s->path, s->db, &s->ckpt, err, errsz);
    if (r < 0)
        goto fail;
    if (s->max_bytes) {
        int64_t pages = (int64_t)(s->max_bytes / 8 / 16384);
        tp__store_ckpt_set_pages(s->ckpt, pages < 16 ? 16 : pages > 1024 ? 1024 : (int)pages);
    }
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        r = -EAGAIN;
        snprintf(err, errsz, "cannot start the writer thread");
        goto fail;
    }
    s->thread_started = true;
    if (ret_info)
        *ret_info = info;
    *ret = s;
    return 0;
fail:
    store_free(s);
    return r;
}

/* ---- The queue and the writer thread ---------------------------------------- */

/* The lane of owner (appended to the serving order when new). Under mu. */
static lane *lane_of(tp_store *s, void *owner)
{
    for (lane *l = s->lanes; l; l = l->next)
        if (l->owner == owner)
            return l;
    lane *l = s->spare;
    if (l)
        s->spare = l->next;
    else if (!(l = malloc(sizeof(*l))))
        l = &s->fallback;
    if (l == &s->fallback) {
        /* Out of memory: everyone shares one lane (still FIFO). */
        for (lane *f = s->lanes; f; f = f->next)
            if (f == &s->fallback)
                return f;
    }
    l->owner = owner;
    l->head = NULL;
    l->tail = &l->head;
    l->next = NULL;
    *s->lanes_tail = l;
    s->lanes_tail = &l->next;
    return l;
}

int tp_store_submit(tp_store *s, tp_store_op *op)
{
    op->next = NULL;
    op->result = 0;
    op->errmsg[0] = '\0';
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return -ESHUTDOWN;
    }
    atomic_fetch_add(&s->queued_bytes, op->bytes);
    lane *l = lane_of(s, op->owner);
    *l->tail = op;
    l->tail = &op->next;
    s->nqueued++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

size_t tp_store_queued_bytes(const tp_store *s)
{
    return atomic_load(&((tp_store *)s)->queued_bytes);
}

static void deliver(tp_store *s, tp_store_op *list)
{
    while (list) {
        tp_store_op *op = list;
        list = op->next;
        op->next = NULL;
        atomic_fetch_sub(&s->queued_bytes, op->bytes);
        if (op->kind == TP_STORE_CALL && op->priv) {
            sync_wait *w = op->priv;
            pthread_mutex_lock(&w->mu);
            w->done = true;
            pthread_cond_signal(&w->cond);
            pthread_mutex_unlock(&w->mu);
        } else if (s->done) {
            s->done(op, s->done_ud);
        }
    }
}

/* The transaction failed as a whole: every op in it failed, and the traces
 * they began are gone. */
static void fail_batch(tp_store *s, tp_store_op *list, int code, const char *msg)
{
    for (tp_store_op *op = list; op; op = op->next) {
        if (op->result == 0) {
            op->result = code;
            snprintf(op->errmsg, sizeof(op->errmsg), "%s", msg);
        }
        if (op->trace) {
            if (op->kind == TP_STORE_BEGIN)
                op->trace->rowid = 0;
            if (!op->trace->err)
                op->trace->err = code;
        }
    }
}

static void release_reserve_if_full(tp_store *s);

/* Pages in use in the main file as the writer sees it (its open
 * transaction included), in bytes. Writer thread. */
static int64_t used_bytes(tp_store *s)
{
    sqlite3_stmt *st = NULL;
    int64_t used = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT ((SELECT page_count FROM pragma_page_count()) - "
                           "(SELECT freelist_count FROM pragma_freelist_count())) * "
                           "(SELECT page_size FROM pragma_page_size())",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        used = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return used;
}

/* Under --max-db-size, traces still being received count too (pruning
 * deletes finished ones only): a batch that would take the pages in use
 * past the open traces' ceiling, TP_STORE_OPEN_CEILING of the limit, is
 * refused with -ENOSPC and its trace is ended, truncated, keeping what was
 * stored (it is then a finished trace, pruned like any other). Writer
 * thread, inside the transaction. */
static int refuse_over_limit(tp_store *s, tp_store_op *op)
{
    if (!s->max_bytes || !op->trace || !op->trace->rowid || op->trace->err ||
        (op->kind != TP_STORE_EVENTS && op->kind != TP_STORE_LINES && op->kind != TP_STORE_SOURCE))
        return 0;
    /* What the batch will take, with room for SQLite's own pages. */
    uint64_t need = op->nrecords * 16 + op->text_len + op->lines_len + 4096;
    uint64_t ceiling = TP_STORE_OPEN_CEILING(s->max_bytes);
    /* Finished traces go first (not the newest: its ACK is out). */
    for (int i = 0; i < 64 && (uint64_t)used_bytes(s) + need > ceiling; i++) {
        if (tp__store_prune_in_txn(s->db, need < ceiling ? ceiling - need : 0) <= 0)
            break;
    }
    if ((uint64_t)used_bytes(s) + need <= ceiling)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE traces SET status = 2, end_ns = last_ns, ended_ns = ?2,"
                           " limit_reason = coalesce(limit_reason, 'max-db-size')"
                           " WHERE rowid = ?1 AND status = 0",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, op->trace->rowid);
        sqlite3_bind_int64(st, 2, tp_util_now_ns());
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    op->trace->err = -ENOSPC;
    op->rowid = op->trace->rowid; /* for the caller: the trace to finalize */
    memcpy(op->id, op->trace->id, sizeof(op->id));
    snprintf(op->errmsg, sizeof(op->errmsg),
             "the database is at its size limit (--max-db-size %llu MiB): the trace was ended,"
             " truncated, with what was stored before",
             (unsigned long long)(s->max_bytes >> 20));
    return op->result = -ENOSPC;
}

static int apply(tp_store *s, tp_store_op *op, bool may_release)
{
    int r;
    if (op->kind == TP_STORE_CALL && !op->fn)
        return op->result = 0; /* a barrier: nothing to run, just a place in the queue */
    if (refuse_over_limit(s, op) < 0)
        return op->result;
    if (op->kind == TP_STORE_CALL && may_release)
        release_reserve_if_full(s);
    if (sqlite3_step(s->st.savepoint) != SQLITE_DONE) {
        sqlite3_reset(s->st.savepoint);
        return tp_store_sqlite_err(s->db, sqlite3_errcode(s->db), "savepoint", op->errmsg,
                                   sizeof(op->errmsg));
    }
    sqlite3_reset(s->st.savepoint);
    switch (op->kind) {
    case TP_STORE_BEGIN:
        r = tp__store_apply_begin(s->db, &s->st, op);
        break;
    case TP_STORE_EVENTS:
        r = tp__store_apply_events(s->db, &s->st, op);
        break;
    case TP_STORE_END:
    case TP_STORE_ABORT:
        r = tp__store_apply_end(s->db, &s->st, op);
        break;
    case TP_STORE_LINES:
    case TP_STORE_SOURCE:
        r = tp__store_apply_lines(s->db, &s->st, op);
        break;
    case TP_STORE_CALL:
        r = op->fn(s->db, op, op->arg);
        break;
    default:
        r = -EINVAL;
        snprintf(op->errmsg, sizeof(op->errmsg), "unknown store op %d", op->kind);
        break;
    }
    if (r < 0) {
        sqlite3_step(s->st.rollback_to);
        sqlite3_reset(s->st.rollback_to);
    }
    sqlite3_step(s->st.release);
    sqlite3_reset(s->st.release);
    op->result = r;
    return r;
}

static bool begin_txn(tp_store *s, char *msg, size_t msgsz)
{
    int rc = sqlite3_step(s->st.begin);
    sqlite3_reset(s->st.begin);
    if (rc == SQLITE_DONE)
        return true;
    snprintf(msg, msgsz, "cannot begin a transaction: %s", sqlite3_errmsg(s->db));
    return false;
}

void tp__store_keep_reserve(tp_store *s)
{
    if (atomic_load(&s->reserve) || !s->reserve_path)
        return;
    struct statvfs vfs;
    if (statvfs(s->reserve_path, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < 4 * (uint64_t)TP_STORE_RESERVE)
        return; /* not while the disk is this full: the space is needed now */
    int fd = open(s->reserve_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    bool ok = posix_fallocate(fd, 0, (off_t)TP_STORE_RESERVE) == 0;
    close(fd);
    if (ok)
        atomic_store(&s->reserve, true);
    else
        unlink(s->reserve_path);
}

/* The disk is full: give up the reserve so that a commit that deletes can
 * go through (its WAL frames need room). Writer thread. */
static bool release_reserve(tp_store *s)
{
    if (!s->fast_delete) {
        int rc = sqlite3_exec(s->db, "PRAGMA secure_delete=FAST", NULL, NULL, NULL);
        s->fast_delete = rc == SQLITE_OK;
    }
    if (!atomic_exchange(&s->reserve, false))
        return false;
    unlink(s->reserve_path);
    fprintf(stderr,
            "tphd: the disk holding %s is full (ENOSPC): gave up the %zu MiB reserve kept "
            "for deleting traces; delete traces (tph clean) or free space\n",
            s->path, TP_STORE_RESERVE >> 20);
    return true;
}

/* Calls (clean, retention, deletions) are what frees space: on a disk with
 * less room than the reserve, they get the reserve first. And deletions
 * stop overwriting what they free (SQLite as Debian builds it has
 * secure_delete on): zeroing every freed page writes as much to the WAL as
 * is deleted, which a full disk cannot take. Until tphd restarts, freed
 * pages then keep their old bytes until reused, in a 0600 file. Writer
 * thread. */
static void release_reserve_if_full(tp_store *s)
{
    struct statvfs vfs;
    if (statvfs(s->reserve_path, &vfs) != 0 ||
        (uint64_t)vfs.f_bavail * vfs.f_frsize >= TP_STORE_RESERVE)
        return;
    release_reserve(s);
}

static int commit_txn(tp_store *s, char *msg, size_t msgsz)
{
    int rc = sqlite3_step(s->st.commit);
    sqlite3_reset(s->st.commit);
    if (rc == SQLITE_DONE)
        return 0;
    snprintf(msg, msgsz, "commit failed: %s", sqlite3_errmsg(s->db));
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : TP_ERR_DB;
}

/* Small ops at the head of a lane (BEGIN, END, a call) go before big
 * EVENTS batches of other lanes, so an END is not queued behind every busy
 * client's batch; at most this many in a row, so batches are never starved. */
#define MAX_SMALL_FIRST 16

/* Takes the next op: a small one at the head of some lane if any (see
 * MAX_SMALL_FIRST), else round robin over the lanes; waits when nothing is
 * queued and no transaction is open. NULL when there is nothing. */
static tp_store_op *take_op(tp_store *s, bool in_txn, bool *ret_stop)
{
    tp_store_op *op = NULL;
    pthread_mutex_lock(&s->mu);
    while (!s->nqueued && !s->stopping && !in_txn)
        pthread_cond_wait(&s->cond, &s->mu);
    lane **link = &s->lanes;
    if (s->small_run < MAX_SMALL_FIRST) {
        for (lane **p = &s->lanes; *p; p = &(*p)->next) {
            if ((*p)->head->kind != TP_STORE_EVENTS) {
                link = p;
                break;
            }
        }
    }
    lane *l = *link;
    if (l) {
        op = l->head;
        s->small_run = op->kind != TP_STORE_EVENTS && link != &s->lanes ? s->small_run + 1 : 0;
        l->head = op->next;
        if (!l->head)
            l->tail = &l->head;
        op->next = NULL;
        s->nqueued--;
        /* The lane goes to the back of the line, or away when empty. */
        *link = l->next;
        if (s->lanes_tail == &l->next)
            s->lanes_tail = link;
        l->next = NULL;
        if (l->head) {
            *s->lanes_tail = l;
            s->lanes_tail = &l->next;
        } else if (l != &s->fallback) {
            l->next = s->spare;
            s->spare = l;
        }
    }
    *ret_stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return op;
}

/* Ops whose producer waits on the commit: an ACK, a truncation, a query. */
static bool awaited(const tp_store_op *op)
{
    return op->kind == TP_STORE_END || op->kind == TP_STORE_ABORT || op->kind == TP_STORE_CALL;
}

typedef struct txn_state {
    bool open, prompt;
    bool adds; /* a trace op (BEGIN, EVENTS, END, ABORT) is in it */
    int64_t start;
    tp_store_op *done, **done_tail;
} txn_state;

/* After a commit, under --max-db-size: when the main file holds more than
 * its share of the limit, delete the oldest traces now, not at the next
 * retention tick (a fast client fills a small disk within a minute). */
static void truncate_wal_if_big(tp_store *s)
{
    char wal[4200];
    struct stat st;
    snprintf(wal, sizeof(wal), "%s-wal", s->path);
    /* The checkpointer's PASSIVE checkpoints never shrink the file; under a
     * limit the writer truncates it itself (waiting for readers, briefly). */
    if (stat(wal, &st) == 0 && (uint64_t)st.st_size > s->max_bytes / 8)
        sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

static void prune_now(tp_store *s)
{
    truncate_wal_if_big(s);
    if (used_bytes(s) <= (int64_t)tp__store_target(s->max_bytes))
        return;
    int64_t r = tp__store_prune(s->db, tp__store_target(s->max_bytes));
    truncate_wal_if_big(s);
    if (r < 0)
        fprintf(stderr, "tphd: deleting the oldest traces for --max-db-size failed: %s\n",
                tp_strerror((int)r));
}

/* An END (or ABORT) that failed, in a failed commit or because a batch of
 * its trace was lost before, leaves a row that a committed BEGIN made: mark
 * it truncated in a transaction of its own, or it would stay "open" until
 * tphd restarts. The update is small and may take the reserve (a full disk
 * is the usual cause). Writer thread. */
static void truncate_failed_ends(tp_store *s, const tp_store_op *list)
{
    bool any = false;
    for (const tp_store_op *op = list; op && !any; op = op->next)
        any = op->result < 0 && (op->kind == TP_STORE_END || op->kind == TP_STORE_ABORT) &&
              op->trace && op->trace->rowid;
    if (!any)
        return;
    char msg[160];
    sqlite3_stmt *st = NULL;
    release_reserve_if_full(s);
    if (!begin_txn(s, msg, sizeof(msg)))
        return;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE traces SET status = 2, end_ns = last_ns, ended_ns = ?2,"
                           " limit_reason = coalesce(limit_reason, 'not stored')"
                           " WHERE rowid = ?1 AND status = 0",
                           -1, &st, NULL) == SQLITE_OK) {
        for (const tp_store_op *op = list; op; op = op->next) {
            if (op->result < 0 && (op->kind == TP_STORE_END || op->kind == TP_STORE_ABORT) &&
                op->trace && op->trace->rowid) {
                sqlite3_bind_int64(st, 1, op->trace->rowid);
                sqlite3_bind_int64(st, 2, tp_util_now_ns());
                sqlite3_step(st);
                sqlite3_reset(st);
            }
        }
    }
    sqlite3_finalize(st);
    if (commit_txn(s, msg, sizeof(msg)) < 0)
        fprintf(stderr, "tphd: marking traces that could not be stored truncated: %s\n", msg);
}

static void finish_txn(tp_store *s, txn_state *t)
{
    char msg[160];
    int r = commit_txn(s, msg, sizeof(msg));
    if (r < 0)
        fail_batch(s, t->done, r, msg);
    truncate_failed_ends(s, t->done);
    t->open = t->prompt = t->adds = false;
    deliver(s, t->done);
    t->done = NULL;
    t->done_tail = &t->done;
    if (r == 0 && s->max_bytes)
        prune_now(s);
}

static void *writer_main(void *arg)
{
    tp_store *s = arg;
    txn_state t = {.done_tail = &t.done};
    char msg[160];

    for (;;) {
        bool stop;
        tp_store_op *op = take_op(s, t.open, &stop);
        if (!op) {
            if (t.open) {
                finish_txn(s, &t); /* idle: commit now so ACKs go out at once */
                continue;
            }
            if (stop)
                break;
            continue;
        }
        if (!t.open) {
            if (!begin_txn(s, msg, sizeof(msg))) {
                op->result = TP_ERR_DB;
                fail_batch(s, op, TP_ERR_DB, msg);
                deliver(s, op);
                continue;
            }
            t.open = true;
            t.start = tp_util_mono_ns();
        }
        /* Only a transaction of calls alone may take the reserve: one that
         * stores a trace must not use the room kept for deleting. */
        apply(s, op, !t.adds);
        t.adds |= op->kind != TP_STORE_CALL;
        t.prompt |= awaited(op);
        *t.done_tail = op;
        t.done_tail = &op->next;
        int64_t age = tp_util_mono_ns() - t.start;
        if (age >= s->commit_interval_ns || (t.prompt && age >= PROMPT_COMMIT_NS))
            finish_txn(s, &t);
    }
    return NULL;
}

void tp_store_close(tp_store *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    tp__store_ckpt_stop(s->ckpt);
    s->ckpt = NULL;
    tp__store_stmts_finalize(&s->st);
    for (int i = 0; i < s->nreaders; i++)
        sqlite3_close(s->readers[i]);
    s->nreaders = 0;
    if (s->db) {
        sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        sqlite3_close(s->db);
        s->db = NULL;
    }
    store_free(s);
}

int tp_store_call_sync(tp_store *s, tp_store_fn fn, void *arg, char *errmsg, size_t errsz)
{
    sync_wait w = {.done = false};
    tp_store_op op;
    memset(&op, 0, sizeof(op));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    op.kind = TP_STORE_CALL;
    op.fn = fn;
    op.arg = arg;
    op.priv = &w;
    int r = tp_store_submit(s, &op);
    if (r == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.mu);
        pthread_mutex_unlock(&w.mu);
        r = op.result;
        if (errmsg && errsz)
            snprintf(errmsg, errsz, "%s", op.errmsg);
    } else if (errmsg && errsz) {
        snprintf(errmsg, errsz, "tphd is shutting down");
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cond);
    return r;
}

int tp_store_barrier(tp_store *s)
{
    return tp_store_call_sync(s, NULL, NULL, NULL, 0);
}

/* ---- Readers ------------------------------------------------------------------ */

int tp_store_reader_get(tp_store *s, sqlite3 **ret, char *err, size_t errsz)
{
    sqlite3 *db = NULL;
    pthread_mutex_lock(&s->rmu);
    if (s->nreaders > 0)
        db = s->readers[--s->nreaders];
    pthread_mutex_unlock(&s->rmu);
    if (db) {
        *ret = db;
        return 0;
    }
    int r = open_conn(s->path, false, &db, err, errsz);
    if (r < 0)
        return r;
    r = exec_sql(db, "PRAGMA query_only=1; PRAGMA cache_size=-8192;", err, errsz);
    if (r < 0) {
        sqlite3_close(db);
        return r;
    }
    *ret = db;
    return 0;
}

void tp_store_reader_put(tp_store *s, sqlite3 *db)
{
    if (!db)
        return;
    /* A reader must not keep a read transaction (and so an old snapshot, which
     * pins the WAL) while it sits in the pool. */
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->rmu);
    if (s->nreaders < MAX_READERS) {
        s->readers[s->nreaders++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&s->rmu);
    if (db)
        sqlite3_close(db);
}

const char *tp_store_path(const tp_store *s)
{
    return s->path;
}

int64_t tp_store_db_bytes(const tp_store *s)
{
    struct stat st;
    int64_t total = 0;
    char wal[4200];
    if (stat(s->path, &st) == 0)
        total += st.st_size;
    snprintf(wal, sizeof(wal), "%s-wal", s->path);
    if (stat(wal, &st) == 0)
        total += st.st_size;
    return total;
}
