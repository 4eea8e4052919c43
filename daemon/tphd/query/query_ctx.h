/* What every query op needs (query_ctx.c): the context of one running
 * query, argument getters, ID resolution, tree loading and the trace summary
 * of docs/QUERY.md. Internal to daemon/tphd/query; not a contract. The ops
 * themselves are declared in query_ops.h, so this header depends on none of
 * them. */
#ifndef TP_QUERY_CTX_H
#define TP_QUERY_CTX_H

#include <jansson.h>
#include <sqlite3.h>

#include "query.h"
#include "tcache.h"

#define TP_CT_JSON "application/json"
#define TP_CT_TEXT "text/plain; charset=utf-8"
#define TP_CT_CSV  "text/csv; charset=utf-8"
#define TP_CT_HTML "text/html; charset=utf-8"

/** Everything an op needs while it runs. */
typedef struct tp_qctx {
    const tp_query_env *env;
    json_t *args; /* the arguments object */
    sqlite3 *db;  /* a reader connection */
    tp_query_result *res;
} tp_qctx;

/** Set res->code and res->message; returns code. */
int tp__query_fail(tp_qctx *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Argument getters: 0 and the value (def when absent), or TP_ERR_TYPE via
 *  tp__query_fail when present with the wrong type. */
int tp__query_arg_str(tp_qctx *q, const char *key, const char *def, const char **ret);
int tp__query_arg_bool(tp_qctx *q, const json_t *obj, const char *key, bool def, bool *ret);
int tp__query_arg_int(tp_qctx *q, const char *key, int64_t def, int64_t *ret);
int tp__query_arg_num(tp_qctx *q, const char *key, double def, double *ret);

/** Resolve an ID prefix visible to the peer to a rowid: TP_ERR_NOT_FOUND,
 *  TP_ERR_AMBIGUOUS (listing up to 5 candidates) or TP_ERR_DB via tp__query_fail. */
int tp__query_resolve(tp_qctx *q, const char *prefix, int64_t *ret_rowid);

/** Resolve args[key] (a required trace ID argument) to a rowid. */
int tp__query_resolve_arg(tp_qctx *q, const char *key, int64_t *ret_rowid);

/** The trace's trees (tcache.h): a locked cache entry to release with
 *  tp_tcache_put(). */
int tp__query_trees(tp_qctx *q, int64_t rowid, tp_tcache_entry **ret);

/** tp__query_resolve_arg() then tp__query_trees(); *ret_rowid may be NULL. */
int tp__query_load(tp_qctx *q, const char *key, tp_tcache_entry **ret, int64_t *ret_rowid);

/** What "get" answers for a trace: the summary plus config, stats and the
 *  other stored facts. Stats not stored yet are computed from t when given
 *  (a caller already holding the trace's cache entry must pass its tree:
 *  entries are not re-entrant), else from the cache. */
int tp__query_get_json(tp_qctx *q, int64_t rowid, const tp_tree *t, json_t **ret);

/** Dump j (stolen) compactly as the JSON body. */
int tp__query_reply_json(tp_qctx *q, json_t *j);

/** Fail with what, and the reader connection's SQLite message: TP_ERR_DB. */
int tp__query_dberr(tp_qctx *q, const char *what);

/** The columns tp__query_summary() reads, in its order, for "SELECT ... FROM traces". */
#define TP_QSUMMARY_COLS                                                                           \
    "id, label, uid, pid, host, python, argv, wall_start_ns, end_ns, last_ns, calls,"              \
    " dropped, limit_reason, status, config, stats, client, source, pstart, nevents, rowid,"       \
    " otel_trace, otlp, drop_reason"

/** The trace summary (docs/QUERY.md) of the row st is on, selected with
 *  TP_QSUMMARY_COLS. Returns a new object (NULL when memory runs out). */
json_t *tp__query_summary(const tp_qctx *q, sqlite3_stmt *st);

/** json_string that never fails on bad UTF-8 (NULL -> null). */
json_t *tp__query_str(const char *s);

#endif
