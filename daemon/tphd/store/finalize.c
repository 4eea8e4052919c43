#include "finalize.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "rebuild.h"
#include "render.h"
#include "tcache.h"
#include "tp_err.h"

#define BATCH_TRACES 32
#define BATCH_BYTES  (16u << 20)
/* The stored folded tree is for quick views of ordinary traces; a trace
 * whose folded form has more nodes than this is folded on demand instead
 * (its JSON would run to hundreds of MiB and cost seconds per trace). */
#define MAX_STORED_FOLDED_NODES 20000

/* ---- Finalizing ---------------------------------------------------------------------- */

typedef struct fin_result {
    int64_t rowid;
    int state;            /* TP_FINAL_DONE or TP_FINAL_FAILED */
    tp_func_stats *funcs; /* copied out of the tp_stats */
    size_t nfuncs;
    char *stats_json;
    char *folded;
    size_t folded_len;
    char otel_trace[33]; /* "" when the trace has no usable id */
} fin_result;

/* The export hook (tp_finalize_set_export); one tphd has one exporter. The
 * lock makes turning it off wait for a finalizer calling it. */
static pthread_mutex_t export_mu = PTHREAD_MUTEX_INITIALIZER;
static tp_finalize_export_fn export_fn;
static void *export_ud;
static atomic_bool export_on;

void tp_finalize_set_export(tp_finalize_export_fn fn, void *ud)
{
    pthread_mutex_lock(&export_mu);
    export_fn = fn;
    export_ud = ud;
    atomic_store(&export_on, fn != NULL);
    pthread_mutex_unlock(&export_mu);
}

static void export_notify(void)
{
    pthread_mutex_lock(&export_mu);
    if (export_fn)
        export_fn(export_ud);
    pthread_mutex_unlock(&export_mu);
}

static void result_clear(fin_result *r)
{
    free(r->funcs);
    free(r->stats_json);
    free(r->folded);
    memset(r, 0, sizeof(*r));
}

/* Rebuild, measure and fold one trace. Returns TP_ERR_NOT_FOUND when it was
 * deleted meanwhile; any other failure marks it failed. */
static int compute(sqlite3 *db, int64_t rowid, fin_result *res)
{
    tp_tree *t = NULL, *f = NULL;
    tp_stats *st = NULL;
    tp_buf folded = TP_BUF_INIT, stats = TP_BUF_INIT;
    char err[256];
    res->rowid = rowid;
    res->state = TP_FINAL_FAILED;
    int r = tp_rebuild_tree(db, rowid, &t, err, sizeof(err));
    if (r == TP_ERR_NOT_FOUND)
        return r;
    if (r == 0)
        r = tp_tree_stats(t, &st);
    if (r == 0)
        r = tp_tree_fold(t, NULL, &f);
    if (r == 0 && f->nnodes <= MAX_STORED_FOLDED_NODES)
        r = tp_render_json(f, false, &folded);
    if (r == 0)
        r = tp_render_stats_json(t, st, false, &stats);
    if (r == 0) {
        res->stats_json = tp_buf_steal(&stats, NULL);
        res->funcs = st->nfuncs ? malloc(st->nfuncs * sizeof(*res->funcs)) : NULL;
        if (!res->stats_json || (st->nfuncs && !res->funcs))
            r = -ENOMEM;
    }
    if (r == 0) {
        /* A trace cut before its first event has no functions (and funcs is
         * NULL, which memcpy may not be given even for 0 bytes). */
        if (st->nfuncs)
            memcpy(res->funcs, st->funcs, st->nfuncs * sizeof(*res->funcs));
        res->nfuncs = st->nfuncs;
        res->folded = folded.len ? tp_buf_steal(&folded, &res->folded_len) : NULL;
        res->state = TP_FINAL_DONE;
        if (tp_otlp_trace_id_hex(t->meta.config_json, t->meta.trace_id, res->otel_trace) < 0)
            res->otel_trace[0] = '\0';
        /* The report UI will want these trees next: they go to the cache. */
        tp_tcache_offer(db, rowid, t, f);
        t = f = NULL;
    } else {
        fprintf(stderr, "tphd: cannot finalize trace %lld: %s\n", (long long)rowid,
                r == -ENOMEM ? "out of memory" : tp_strerror(r));
        free(res->funcs);
        free(res->stats_json);
        res->funcs = NULL;
        res->stats_json = NULL;
        res->nfuncs = 0;
    }
    tp_buf_free(&folded);
    tp_buf_free(&stats);
    tp_tree_stats_free(st);
    tp_tree_free(f);
    tp_tree_free(t);
    return 0;
}

typedef struct fin_batch {
    fin_result items[BATCH_TRACES];
    size_t n, bytes;
} fin_batch;

static int exec_bound(sqlite3 *db, const char *sql, int64_t rowid)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, rowid);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? rc : -1;
}

static int store_one(sqlite3 *db, const fin_result *res, sqlite3_stmt *ins, sqlite3_stmt *fold,
                     sqlite3_stmt *upd)
{
    /* Deleted while we computed: nothing to attach the results to. */
    if (exec_bound(db, "SELECT 1 FROM traces WHERE rowid = ?1", res->rowid) != SQLITE_ROW)
        return 0;
    if (exec_bound(db, "DELETE FROM func_stats WHERE trace = ?1", res->rowid) < 0)
        return TP_ERR_DB;
    for (size_t i = 0; i < res->nfuncs; i++) {
        const tp_func_stats *f = &res->funcs[i];
        sqlite3_bind_int64(ins, 1, res->rowid);
        sqlite3_bind_int64(ins, 2, f->func);
        sqlite3_bind_int64(ins, 3, (int64_t)f->count);
        sqlite3_bind_int64(ins, 4, f->total_ns);
        sqlite3_bind_int64(ins, 5, f->self_ns);
        sqlite3_bind_int64(ins, 6, f->min_ns);
        sqlite3_bind_int64(ins, 7, f->max_ns);
        sqlite3_bind_int64(ins, 8, (int64_t)f->nexc);
        int rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            return TP_ERR_DB;
    }
    if (res->folded) {
        sqlite3_bind_int64(fold, 1, res->rowid);
        sqlite3_bind_blob64(fold, 2, res->folded, res->folded_len, SQLITE_STATIC);
        int rc = sqlite3_step(fold);
        sqlite3_reset(fold);
        if (rc != SQLITE_DONE)
            return TP_ERR_DB;
    }
    sqlite3_bind_int64(upd, 1, res->rowid);
    if (res->stats_json)
        sqlite3_bind_text(upd, 2, res->stats_json, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(upd, 2);
    sqlite3_bind_int(upd, 3, res->state);
    if (res->otel_trace[0])
        sqlite3_bind_text(upd, 4, res->otel_trace, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(upd, 4);
    sqlite3_bind_int(upd, 5, res->state == TP_FINAL_DONE && atomic_load(&export_on));
    int rc = sqlite3_step(upd);
    sqlite3_reset(upd);
    return rc == SQLITE_DONE ? 0 : TP_ERR_DB;
}

static int store_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    fin_batch *b = arg;
    sqlite3_stmt *ins = NULL, *fold = NULL, *upd = NULL;
    int r = TP_ERR_DB;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO func_stats (trace, fid, count, total_ns,"
                           " self_ns, min_ns, max_ns, nexc) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                           -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO folded (trace, format, data) VALUES (?1, 1, ?2)",
                           -1, &fold, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "UPDATE traces SET stats = ?2, finalized = ?3, otel_trace = ?4,"
                           " otlp = CASE WHEN ?5 AND otlp = 0 THEN 1 ELSE otlp END"
                           " WHERE rowid = ?1",
                           -1, &upd, NULL) != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        r = store_one(db, &b->items[i], ins, fold, upd);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    if (r < 0)
        tp_store_sqlite_err(db, sqlite3_errcode(db), "storing statistics", op->errmsg,
                            sizeof(op->errmsg));
    sqlite3_finalize(ins);
    sqlite3_finalize(fold);
    sqlite3_finalize(upd);
    return r;
}

static int flush(tp_store *s, fin_batch *b)
{
    int r = 0;
    if (b->n > 0) {
        char msg[200];
        r = tp_store_call_sync(s, store_fn, b, msg, sizeof(msg));
        if (r < 0)
            fprintf(stderr, "tphd: %s\n", msg);
        else if (atomic_load(&export_on))
            export_notify();
    }
    for (size_t i = 0; i < b->n; i++)
        result_clear(&b->items[i]);
    b->n = 0;
    b->bytes = 0;
    return r;
}

int tp_finalize_traces(tp_store *s, const int64_t *rowids, size_t n, const atomic_bool *cancel)
{
    sqlite3 *db = NULL;
    char err[256];
    int r = tp_store_reader_get(s, &db, err, sizeof(err));
    if (r < 0)
        return r;
    fin_batch *b = calloc(1, sizeof(*b));
    if (!b) {
        tp_store_reader_put(s, db);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        if (cancel && atomic_load(cancel)) {
            r = -ECANCELED;
            break;
        }
        fin_result *res = &b->items[b->n];
        if (compute(db, rowids[i], res) == TP_ERR_NOT_FOUND) {
            result_clear(res);
            continue;
        }
        b->bytes += res->folded_len + res->nfuncs * sizeof(tp_func_stats);
        b->n++;
        if (b->n == BATCH_TRACES || b->bytes >= BATCH_BYTES)
            r = flush(s, b);
    }
    int fr = flush(s, b);
    if (r == 0)
        r = fr;
    free(b);
    tp_store_reader_put(s, db);
    return r;
}

int tp_finalize_pending(tp_store *s, size_t max, int64_t **ret, size_t *ret_n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char err[256];
    int64_t *ids = malloc((max ? max : 1) * sizeof(*ids));
    size_t n = 0;
    if (!ids)
        return -ENOMEM;
    int r = tp_store_reader_get(s, &db, err, sizeof(err));
    if (r < 0) {
        free(ids);
        return r;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT rowid FROM traces WHERE status != 0 AND finalized = 0"
                           " ORDER BY rowid LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        r = TP_ERR_DB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)max);
    int rc;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
out:
    sqlite3_finalize(st);
    tp_store_reader_put(s, db);
    if (r < 0) {
        free(ids);
        return r;
    }
    *ret = ids;
    *ret_n = n;
    return 0;
}
