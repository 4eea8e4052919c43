/* The SQL behind each writer op, trace deletion and retention. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "otlp.h"
#include "store_priv.h"
#include "tp_err.h"
#include "util.h"

#define MAX_ID_RETRIES    8
#define RETENTION_STEP    64   /* traces deleted per writer transaction */
#define VACUUM_STEP_PAGES 2048 /* pages returned to the file system per transaction */

int tp__store_stmts_prepare(sqlite3 *db, tp_store_stmts *st, char *err, size_t errsz)
{
    static const struct {
        size_t off;
        const char *sql;
    } defs[] = {
        {offsetof(tp_store_stmts, begin), "BEGIN IMMEDIATE"},
        {offsetof(tp_store_stmts, commit), "COMMIT"},
        {offsetof(tp_store_stmts, savepoint), "SAVEPOINT op"},
        {offsetof(tp_store_stmts, release), "RELEASE op"},
        {offsetof(tp_store_stmts, rollback_to), "ROLLBACK TO op"},
        {offsetof(tp_store_stmts, ins_trace),
         "INSERT INTO traces (id, client_id, label, uid, pid, pstart, host, argv, python,"
         " client, config, source, wall_start_ns, received_ns, otel_trace, platform, cwd)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"},
        {offsetof(tp_store_stmts, ins_func),
         "INSERT OR REPLACE INTO funcs (trace, fid, module, qualname, file, lineno)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
        {offsetof(tp_store_stmts, ins_chunk),
         "INSERT INTO chunks (trace, seq, nrecords, records, text) VALUES (?1, ?2, ?3, ?4, ?5)"},
        {offsetof(tp_store_stmts, upd_chunk),
         "UPDATE traces SET nevents = nevents + ?2, nchunks = nchunks + 1,"
         " calls = calls + ?3, last_ns = max(last_ns, ?4), bytes = bytes + ?5 WHERE rowid = ?1"},
        {offsetof(tp_store_stmts, end),
         "UPDATE traces SET status = 1, end_ns = ?2, calls = ?3, dropped = ?4,"
         " limit_reason = ?5, drop_reason = ?6, ended_ns = ?7 WHERE rowid = ?1"},
        {offsetof(tp_store_stmts, abort),
         "UPDATE traces SET status = 2, end_ns = last_ns, ended_ns = ?2,"
         " limit_reason = coalesce(limit_reason, 'disconnected') WHERE rowid = ?1 AND status = 0"},
        {offsetof(tp_store_stmts, ins_lines),
         "INSERT OR REPLACE INTO trace_lines (trace, json) VALUES (?1, ?2)"},
        {offsetof(tp_store_stmts, ins_source),
         "INSERT OR REPLACE INTO trace_source (trace, json) VALUES (?1, ?2)"},
    };
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        sqlite3_stmt **slot = (sqlite3_stmt **)((char *)st + defs[i].off);
        int rc = sqlite3_prepare_v3(db, defs[i].sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK) {
            int r = tp_store_sqlite_err(db, rc, "prepare", err, errsz);
            tp__store_stmts_finalize(st);
            return r;
        }
    }
    return 0;
}

void tp__store_stmts_finalize(tp_store_stmts *st)
{
    sqlite3_stmt **all = (sqlite3_stmt **)st;
    for (size_t i = 0; i < sizeof(*st) / sizeof(sqlite3_stmt *); i++)
        sqlite3_finalize(all[i]);
    memset(st, 0, sizeof(*st));
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Steps a write statement and resets it; returns 0 or a code with a message. */
static int step_done(sqlite3 *db, sqlite3_stmt *st, tp_store_op *op, const char *what)
{
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc != SQLITE_DONE)
        r = tp_store_sqlite_err(db, rc, what, op->errmsg, sizeof(op->errmsg));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

int tp__store_apply_begin(sqlite3 *db, tp_store_stmts *st, tp_store_op *op)
{
    const tp_store_begin *b = &op->begin;
    char id[33];
    int r = 0;
    memcpy(id, b->client_id, sizeof(id));
    for (int attempt = 0; attempt < MAX_ID_RETRIES; attempt++) {
        sqlite3_stmt *s = st->ins_trace;
        sqlite3_bind_text(s, 1, id, 32, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, b->client_id, -1, SQLITE_STATIC);
        bind_text(s, 3, b->label);
        sqlite3_bind_int64(s, 4, b->uid);
        sqlite3_bind_int64(s, 5, b->pid);
        sqlite3_bind_int64(s, 6, (int64_t)b->pstart);
        bind_text(s, 7, b->host);
        bind_text(s, 8, b->argv_json);
        bind_text(s, 9, b->python);
        bind_text(s, 10, b->client);
        bind_text(s, 11, b->config_json);
        bind_text(s, 12, b->source);
        bind_text(s, 16, b->platform);
        bind_text(s, 17, b->cwd);
        sqlite3_bind_int64(s, 13, b->wall_start_ns);
        sqlite3_bind_int64(s, 14, tp_util_now_ns());
        /* Searchable (tph logs --otel-trace) while the trace is still open. */
        char otel[33];
        if (tp_otlp_trace_id_hex(b->config_json, id, otel) == 0)
            sqlite3_bind_text(s, 15, otel, 32, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc == SQLITE_DONE) {
            op->rowid = sqlite3_last_insert_rowid(db);
            memcpy(op->id, id, sizeof(id));
            if (op->trace) {
                op->trace->rowid = op->rowid;
                memcpy(op->trace->id, id, sizeof(id));
            }
            return 0;
        }
        if (rc != SQLITE_CONSTRAINT_UNIQUE) {
            r = tp_store_sqlite_err(db, rc, "storing a new trace", op->errmsg, sizeof(op->errmsg));
            goto fail;
        }
        /* The id is taken (by another uid, or an earlier upload of this
         * one): the trace gets a fresh id, reported in its ACK. */
        r = tp_util_random_id(id);
        if (r < 0) {
            snprintf(op->errmsg, sizeof(op->errmsg), "cannot make a trace id");
            goto fail;
        }
    }
    r = TP_ERR_DB;
    snprintf(op->errmsg, sizeof(op->errmsg), "could not find a free trace id");
fail:
    if (op->trace && !op->trace->err)
        op->trace->err = r;
    return r;
}

/* Ops after a failed BEGIN (or any failed op) of the same trace are skipped. */
static int trace_usable(tp_store_op *op)
{
    if (!op->trace || op->trace->rowid == 0 || op->trace->err) {
        int r = op->trace && op->trace->err ? op->trace->err : TP_ERR_DB;
        snprintf(op->errmsg, sizeof(op->errmsg), "this trace could not be stored");
        return r;
    }
    return 0;
}

int tp__store_apply_events(sqlite3 *db, tp_store_stmts *st, tp_store_op *op)
{
    int r = trace_usable(op);
    if (r < 0)
        return r;
    int64_t rowid = op->trace->rowid;
    for (size_t i = 0; i < op->nfuncs; i++) {
        const tp_store_func *f = &op->funcs[i];
        sqlite3_bind_int64(st->ins_func, 1, rowid);
        sqlite3_bind_int64(st->ins_func, 2, f->fid);
        sqlite3_bind_text(st->ins_func, 3, f->module, -1, SQLITE_STATIC);
        sqlite3_bind_text(st->ins_func, 4, f->qualname, -1, SQLITE_STATIC);
        sqlite3_bind_text(st->ins_func, 5, f->file, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st->ins_func, 6, f->lineno);
        r = step_done(db, st->ins_func, op, "storing functions");
        if (r < 0)
            goto fail;
    }
    sqlite3_bind_int64(st->ins_chunk, 1, rowid);
    sqlite3_bind_int64(st->ins_chunk, 2, op->seq);
    sqlite3_bind_int64(st->ins_chunk, 3, (int64_t)op->nrecords);
    sqlite3_bind_blob64(st->ins_chunk, 4, op->nrecords ? op->records : "", op->nrecords * 16,
                        SQLITE_STATIC);
    sqlite3_bind_blob64(st->ins_chunk, 5, op->text_len ? op->text : "", op->text_len,
                        SQLITE_STATIC);
    r = step_done(db, st->ins_chunk, op, "storing events");
    if (r < 0)
        goto fail;
    sqlite3_bind_int64(st->upd_chunk, 1, rowid);
    sqlite3_bind_int64(st->upd_chunk, 2, (int64_t)op->nrecords);
    sqlite3_bind_int64(st->upd_chunk, 3, (int64_t)op->ncalls);
    sqlite3_bind_int64(st->upd_chunk, 4, (int64_t)op->max_t_ns);
    sqlite3_bind_int64(st->upd_chunk, 5, (int64_t)(op->nrecords * 16 + op->text_len));
    r = step_done(db, st->upd_chunk, op, "counting events");
    if (r < 0)
        goto fail;
    op->rowid = rowid;
    memcpy(op->id, op->trace->id, sizeof(op->id)); /* for STORED */
    return 0;
fail:
    if (!op->trace->err)
        op->trace->err = r;
    return r;
}

int tp__store_apply_lines(sqlite3 *db, tp_store_stmts *st, tp_store_op *op)
{
    int r = trace_usable(op);
    if (r < 0)
        return r;
    /* LINES and SOURCE: one JSON text per trace, each in its table. */
    bool lines = op->kind == TP_STORE_LINES;
    sqlite3_stmt *s = lines ? st->ins_lines : st->ins_source;
    sqlite3_bind_int64(s, 1, op->trace->rowid);
    sqlite3_bind_text64(s, 2, op->lines_json, op->lines_len, SQLITE_STATIC, SQLITE_UTF8);
    r = step_done(db, s, op, lines ? "storing line data" : "storing source text");
    if (r < 0 && !op->trace->err)
        op->trace->err = r;
    return r;
}

int tp__store_apply_end(sqlite3 *db, tp_store_stmts *st, tp_store_op *op)
{
    int r = trace_usable(op);
    if (r < 0)
        return r;
    int64_t rowid = op->trace->rowid;
    sqlite3_stmt *s;
    if (op->kind == TP_STORE_END) {
        s = st->end;
        sqlite3_bind_int64(s, 1, rowid);
        sqlite3_bind_int64(s, 2, (int64_t)op->end_ns);
        sqlite3_bind_int64(s, 3, (int64_t)op->call_count);
        sqlite3_bind_int64(s, 4, (int64_t)op->dropped);
        bind_text(s, 5, op->limit_reason);
        bind_text(s, 6, op->drop_reason);
        sqlite3_bind_int64(s, 7, tp_util_now_ns());
    } else {
        s = st->abort;
        sqlite3_bind_int64(s, 1, rowid);
        sqlite3_bind_int64(s, 2, tp_util_now_ns());
    }
    r = step_done(db, s, op, "ending a trace");
    if (r < 0)
        return r;
    op->rowid = rowid;
    memcpy(op->id, op->trace->id, sizeof(op->id));
    return 0;
}

/* ---- Deletion and retention --------------------------------------------------- */

int tp_store_delete_trace(sqlite3 *db, int64_t rowid)
{
    static const char *const tables[] = {
        "DELETE FROM chunks WHERE trace = ?1",      "DELETE FROM funcs WHERE trace = ?1",
        "DELETE FROM func_stats WHERE trace = ?1",  "DELETE FROM folded WHERE trace = ?1",
        "DELETE FROM trace_lines WHERE trace = ?1", "DELETE FROM trace_source WHERE trace = ?1",
        "DELETE FROM traces WHERE rowid = ?1",
    };
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, tables[i], -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, rowid);
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE && rc != SQLITE_OK)
            return (rc & 0xff) == SQLITE_FULL ? -ENOSPC : TP_ERR_DB;
    }
    return 0;
}

typedef struct retention_step {
    double retention_s;
    uint64_t max_bytes;
    int64_t deleted; /* out: traces deleted by this step */
    int64_t freed;   /* out: pages vacuumed by this step */
} retention_step;

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Deletes up to RETENTION_STEP of the oldest finished traces that break a
 * limit. Runs on the writer inside its transaction. */
static int retention_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    retention_step *rs = arg;
    int64_t ids[RETENTION_STEP];
    int n = 0;
    sqlite3_stmt *st = NULL;
    rs->deleted = 0;
    rs->freed = 0;
    if (rs->retention_s > 0) {
        int64_t cutoff = tp_util_now_ns() - (int64_t)(rs->retention_s * 1e9);
        if (sqlite3_prepare_v2(db,
                               "SELECT rowid FROM traces WHERE status != 0 AND wall_start_ns < ?1"
                               " ORDER BY wall_start_ns, rowid LIMIT ?2",
                               -1, &st, NULL) != SQLITE_OK)
            goto dberr;
        sqlite3_bind_int64(st, 1, cutoff);
        sqlite3_bind_int(st, 2, RETENTION_STEP);
        while (n < RETENTION_STEP && sqlite3_step(st) == SQLITE_ROW)
            ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (n == 0 && rs->max_bytes > 0) {
        int64_t page = pragma_int(db, "PRAGMA page_size");
        int64_t used =
            (pragma_int(db, "PRAGMA page_count") - pragma_int(db, "PRAGMA freelist_count")) * page;
        if (used > (int64_t)rs->max_bytes) {
            /* Roughly enough traces to get under the limit, at least one,
             * but never the trace that ended last: its ACK went out with
             * this commit, so the database holds at least the newest trace
             * even when that one alone is over the target. */
            /* Traces tphd ended itself (refused at the limit, their client
             * gone) had no ACK: they are not kept that way. */
            if (sqlite3_prepare_v2(
                    db,
                    "SELECT rowid, bytes FROM traces WHERE status != 0 AND rowid IS NOT"
                    " (SELECT rowid FROM traces WHERE status != 0 AND"
                    "  coalesce(limit_reason, '') NOT IN"
                    "  ('max-db-size', 'disconnected', 'not stored')"
                    "  ORDER BY ended_ns DESC, rowid DESC LIMIT 1)"
                    " ORDER BY wall_start_ns, rowid LIMIT ?1",
                    -1, &st, NULL) != SQLITE_OK)
                goto dberr;
            sqlite3_bind_int(st, 1, RETENTION_STEP);
            int64_t excess = used - (int64_t)rs->max_bytes, got = 0;
            while (n < RETENTION_STEP && got < excess && sqlite3_step(st) == SQLITE_ROW) {
                ids[n++] = sqlite3_column_int64(st, 0);
                got += sqlite3_column_int64(st, 1) + 512;
            }
            sqlite3_finalize(st);
            st = NULL;
        }
    }
    for (int i = 0; i < n; i++) {
        int r = tp_store_delete_trace(db, ids[i]);
        if (r < 0)
            goto dberr;
        rs->deleted++;
    }
    if (n == 0 && pragma_int(db, "PRAGMA freelist_count") > 0) {
        int64_t before = pragma_int(db, "PRAGMA freelist_count");
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", VACUUM_STEP_PAGES);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            goto dberr;
        rs->freed = before - pragma_int(db, "PRAGMA freelist_count");
    }
    return 0;
dberr:
    sqlite3_finalize(st);
    return tp_store_sqlite_err(db, sqlite3_errcode(db), "retention", op->errmsg,
                               sizeof(op->errmsg));
}

int64_t tp__store_prune_in_txn(sqlite3 *db, uint64_t target)
{
    retention_step rs = {.max_bytes = target};
    tp_store_op op;
    memset(&op, 0, sizeof(op));
    int r = retention_fn(db, &op, &rs);
    return r < 0 ? r : rs.deleted;
}

int64_t tp__store_prune(sqlite3 *db, uint64_t target)
{
    int64_t total = 0;
    tp_store_op op;
    for (int guard = 0; guard < 100000; guard++) {
        retention_step rs = {.max_bytes = target};
        memset(&op, 0, sizeof(op));
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return tp_store_sqlite_err(db, sqlite3_errcode(db), "pruning", NULL, 0);
        int r = retention_fn(db, &op, &rs);
        if (r == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            r = tp_store_sqlite_err(db, sqlite3_errcode(db), "pruning", NULL, 0);
        if (r < 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
        total += rs.deleted;
        if (rs.deleted == 0 && rs.freed <= 0)
            break;
    }
    return total;
}

int tp_store_retention(tp_store *s, double retention_s, uint64_t max_bytes, int64_t *ret_deleted)
{
    int64_t total = 0;
    /* Each step is its own short transaction, so ingest keeps flowing while a
     * large backlog is deleted. */
    for (int guard = 0; guard < 1000000; guard++) {
        retention_step rs = {.retention_s = retention_s,
                             .max_bytes = max_bytes ? tp__store_target(max_bytes) : 0};
        int r = tp_store_call_sync(s, retention_fn, &rs, NULL, 0);
        if (r < 0)
            return r;
        total += rs.deleted;
        if (rs.deleted == 0 && rs.freed <= 0)
            break;
    }
    tp__store_keep_reserve(s);
    if (ret_deleted)
        *ret_deleted = total;
    return 0;
}
