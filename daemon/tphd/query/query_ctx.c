/* What every query op needs, whichever file it lives in: failing with a
 * message, reading arguments, resolving trace IDs, loading trees, and the
 * trace summary of docs/QUERY.md. The ops (query.c, query_tree.c,
 * query_web.c) depend on this file; it depends on none of them. */
#include "query_ctx.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_jansson.h"
#include "render.h"
#include "tp_err.h"
#include "util.h"

/* ---- Helpers ---------------------------------------------------------------------------- */

int tp__query_fail(tp_qctx *q, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->res->message, sizeof(q->res->message), fmt, ap);
    va_end(ap);
    q->res->code = code;
    return code;
}

json_t *tp__query_str(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Invalid UTF-8 (an old database, an odd import): show it repaired. */
    char *copy = strdup(s);
    if (!copy)
        return json_null();
    tp_util_utf8_fix(copy, strlen(copy));
    j = json_string(copy);
    free(copy);
    return j ? j : json_null();
}

int tp__query_arg_str(tp_qctx *q, const char *key, const char *def, const char **ret)
{
    json_t *v = json_object_get(q->args, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_string(v))
        return tp__query_fail(q, -EINVAL, "argument \"%s\" must be a string", key);
    *ret = json_string_value(v);
    return 0;
}

int tp__query_arg_bool(tp_qctx *q, const json_t *obj, const char *key, bool def, bool *ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return tp__query_fail(q, -EINVAL, "argument \"%s\" must be true or false", key);
    *ret = json_is_true(v);
    return 0;
}

int tp__query_arg_int(tp_qctx *q, const char *key, int64_t def, int64_t *ret)
{
    json_t *v = json_object_get(q->args, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_integer(v))
        return tp__query_fail(q, -EINVAL, "argument \"%s\" must be an integer", key);
    *ret = json_integer_value(v);
    return 0;
}

int tp__query_arg_num(tp_qctx *q, const char *key, double def, double *ret)
{
    json_t *v = json_object_get(q->args, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_number(v))
        return tp__query_fail(q, -EINVAL, "argument \"%s\" must be a number", key);
    *ret = json_number_value(v);
    return 0;
}

int tp__query_reply_json(tp_qctx *q, json_t *j)
{
    char *s = j ? tp_json_jansson_dumps(j) : NULL;
    json_decref(j);
    if (!s)
        return tp__query_fail(q, -ENOMEM, "out of memory");
    q->res->content_type = TP_CT_JSON;
    int r = tp_buf_puts(&q->res->body, s);
    free(s);
    return r < 0 ? tp__query_fail(q, r, "out of memory") : 0;
}

int tp__query_dberr(tp_qctx *q, const char *what)
{
    return tp__query_fail(q, TP_ERR_DB, "%s: %s", what, sqlite3_errmsg(q->db));
}

int tp__query_resolve(tp_qctx *q, const char *prefix, int64_t *ret_rowid)
{
    char lo[33], hi[34];
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > 32)
        return tp__query_fail(q, TP_ERR_NOT_FOUND, "\"%.40s\" is not a trace ID",
                              prefix ? prefix : "");
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)prefix[i]))
            return tp__query_fail(q, TP_ERR_NOT_FOUND, "\"%.40s\" is not a trace ID (hex digits)",
                                  prefix);
        lo[i] = (char)tolower((unsigned char)prefix[i]);
    }
    lo[n] = '\0';
    memcpy(hi, lo, n);
    hi[n] = 'g'; /* just past every id starting with lo: ids are [0-9a-f] */
    hi[n + 1] = '\0';
    sqlite3_stmt *st = NULL;
    const char *sql =
        q->env->uid == 0
            ? "SELECT rowid, id FROM traces WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 6"
            : "SELECT rowid, id FROM traces WHERE id >= ?1 AND id < ?2 AND uid = ?3"
              " ORDER BY id LIMIT 6";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return tp__query_dberr(q, "resolving an ID");
    sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
    if (q->env->uid != 0)
        sqlite3_bind_int64(st, 3, q->env->uid);
    char ids[6][33];
    int64_t rowid = 0;
    int found = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && found < 6) {
        rowid = sqlite3_column_int64(st, 0);
        snprintf(ids[found++], 33, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return tp__query_dberr(q, "resolving an ID");
    if (found == 0)
        return tp__query_fail(q, TP_ERR_NOT_FOUND, "no trace matches ID \"%s\"", lo);
    if (found > 1) {
        char list[6 * 34] = "";
        for (int i = 0; i < found && i < 5; i++) {
            strcat(list, i ? ", " : "");
            strcat(list, ids[i]);
        }
        char count[16];
        snprintf(count, sizeof(count), found > 5 ? "more than 5" : "%d", found);
        return tp__query_fail(q, TP_ERR_AMBIGUOUS, "ID \"%s\" matches %s traces: %s%s", lo, count,
                              list, found > 5 ? ", ..." : "");
    }
    *ret_rowid = rowid;
    return 0;
}

int tp__query_resolve_arg(tp_qctx *q, const char *key, int64_t *ret_rowid)
{
    const char *id;
    int r = tp__query_arg_str(q, key, NULL, &id);
    if (r < 0)
        return r;
    if (!id)
        return tp__query_fail(q, TP_ERR_MISSING, "argument \"%s\" (a trace ID) is required", key);
    return tp__query_resolve(q, id, ret_rowid);
}

int tp__query_trees(tp_qctx *q, int64_t rowid, tp_tcache_entry **ret)
{
    char err[256];
    int r = tp_tcache_get(q->db, rowid, ret, err, sizeof(err));
    return r < 0 ? tp__query_fail(q, r, "%s", err) : 0;
}

int tp__query_load(tp_qctx *q, const char *key, tp_tcache_entry **ret, int64_t *ret_rowid)
{
    int64_t rowid;
    if (tp__query_resolve_arg(q, key, &rowid) < 0 || tp__query_trees(q, rowid, ret) < 0)
        return q->res->code;
    if (ret_rowid)
        *ret_rowid = rowid;
    return 0;
}

/* ---- Summaries ------------------------------------------------------------------------ */

static const char *otlp_state_name(int s)
{
    static const char *const names[] = {NULL, "pending", "exported", "lost", "skipped"};
    return s > 0 && s < 5 ? names[s] : NULL;
}

static const char *status_name(int s)
{
    return s == TP_TRACE_OPEN ? "open" : s == TP_TRACE_COMPLETE ? "complete" : "truncated";
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static json_t *parsed_or_null(const char *text, json_t *fallback)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (j) {
        json_decref(fallback);
        return j;
    }
    return fallback;
}

/* A trace summary as docs/QUERY.md defines it: one key per fact, so list,
 * get, tph --json and the HTTP API cannot disagree about which one counts. */
json_t *tp__query_summary(const tp_qctx *q, sqlite3_stmt *st)
{
    int64_t end = sqlite3_column_type(st, 8) == SQLITE_NULL ? sqlite3_column_int64(st, 9)
                                                            : sqlite3_column_int64(st, 8);
    int64_t start = sqlite3_column_int64(st, 7);
    int status = sqlite3_column_int(st, 13);
    const char *id = col_text(st, 0);
    json_t *o = json_object();
    char url[512];
    json_object_set_new(o, "id", tp__query_str(id));
    json_object_set_new(o, "label", tp__query_str(col_text(st, 1)));
    json_object_set_new(o, "uid", json_integer(sqlite3_column_int64(st, 2)));
    json_object_set_new(o, "pid", json_integer(sqlite3_column_int64(st, 3)));
    json_object_set_new(o, "host", tp__query_str(col_text(st, 4)));
    json_object_set_new(o, "python", tp__query_str(col_text(st, 5)));
    json_object_set_new(o, "argv", parsed_or_null(col_text(st, 6), json_array()));
    json_object_set_new(o, "client", tp__query_str(col_text(st, 16)));
    json_object_set_new(o, "start", json_real((double)start / 1e9));
    json_object_set_new(o, "duration_ms", json_real((double)end / 1e6));
    json_object_set_new(o, "calls", json_integer(sqlite3_column_int64(st, 10)));
    json_object_set_new(o, "dropped", json_integer(sqlite3_column_int64(st, 11)));
    json_object_set_new(o, "limit_reason", tp__query_str(col_text(st, 12)));
    json_object_set_new(o, "status", json_string(status_name(status)));
    /* An open trace's age by tphd's clock: how long it has been running. */
    json_object_set_new(o, "age_ms",
                        status == TP_TRACE_OPEN
                            ? json_real((double)(tp_util_now_ns() - start) / 1e6)
                            : json_null());
    json_object_set_new(o, "otel_trace_id", tp__query_str(col_text(st, 21)));
    const char *otlp = otlp_state_name(sqlite3_column_int(st, 22));
    json_object_set_new(o, "otlp", otlp ? json_string(otlp) : json_null());
    if (id && q->env->trace_url &&
        q->env->trace_url(q->env->trace_url_ud, q->env->uid, id, url, sizeof(url)) == 0)
        json_object_set_new(o, "url", json_string(url));
    else
        json_object_set_new(o, "url", json_null());
    return o;
}

/* The summary keys of tp_render_stats_json() as an object (NULL when memory
 * runs out), for a summary whose stored stats are not there yet. */
static json_t *stats_object(const tp_tree *t, const tp_stats *s)
{
    tp_buf b = TP_BUF_INIT;
    json_t *o = NULL;
    if (tp_render_stats_json(t, s, false, &b) == 0)
        o = json_loadb(b.data, b.len, 0, NULL);
    tp_buf_free(&b);
    return o;
}

int tp__query_get_json(tp_qctx *q, int64_t rowid, const tp_tree *t, json_t **ret)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, "SELECT " TP_QSUMMARY_COLS " FROM traces WHERE rowid = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return tp__query_dberr(q, "reading a trace");
    sqlite3_bind_int64(st, 1, rowid);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return tp__query_fail(q, TP_ERR_NOT_FOUND, "the trace was just deleted");
    }
    json_t *o = tp__query_summary(q, st);
    json_object_set_new(o, "config", parsed_or_null(col_text(st, 14), json_null()));
    json_t *stats = parsed_or_null(col_text(st, 15), NULL);
    json_object_set_new(o, "source", tp__query_str(col_text(st, 17)));
    json_object_set_new(o, "pstart", json_integer(sqlite3_column_int64(st, 18)));
    json_object_set_new(o, "events", json_integer(sqlite3_column_int64(st, 19)));
    /* Why events (or, "lines over 8 MiB", the lines= data) did not arrive. */
    json_object_set_new(o, "drop_reason", tp__query_str(col_text(st, 23)));
    sqlite3_finalize(st);
    if (!stats) {
        /* Not finalized yet (just ended, or still open): compute it now. */
        tp_tcache_entry *e = NULL;
        tp_stats *s = NULL;
        char err[256];
        int r = t ? 0 : tp_tcache_get(q->db, rowid, &e, err, sizeof(err));
        if (r == 0 && !t)
            t = tp_tcache_raw(e);
        if (r == 0)
            r = tp_tree_stats(t, &s);
        stats = r == 0 ? stats_object(t, s) : json_null();
        tp_tree_stats_free(s);
        tp_tcache_put(e);
    }
    json_object_set_new(o, "stats", stats ? stats : json_null());
    *ret = o;
    return 0;
}
