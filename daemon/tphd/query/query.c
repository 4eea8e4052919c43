#include "query.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "finalize.h"
#include "json_jansson.h"
#include "load.h"
#include "query_priv.h"
#include "rebuild.h"
#include "render.h"
#include "tp_err.h"
#include "util.h"
#include "wire.h"

#define CLEAN_STEP   256   /* traces deleted per writer transaction */
#define IMPORT_CHUNK 65536 /* records per stored chunk of an import */

/* ---- Helpers ---------------------------------------------------------------------------- */

int tp_qfail(tp_qctx *q, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->res->message, sizeof(q->res->message), fmt, ap);
    va_end(ap);
    q->res->code = code;
    return code;
}

json_t *tp_qstr(const char *s)
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
    tp_utf8_fix(copy, strlen(copy));
    j = json_string(copy);
    free(copy);
    return j ? j : json_null();
}

int tp_qarg_str(tp_qctx *q, const char *key, const char *def, const char **ret)
{
    json_t *v = json_object_get(q->args, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_string(v))
        return tp_qfail(q, -EINVAL, "argument \"%s\" must be a string", key);
    *ret = json_string_value(v);
    return 0;
}

int tp_qarg_bool(tp_qctx *q, const json_t *obj, const char *key, bool def, bool *ret)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return tp_qfail(q, -EINVAL, "argument \"%s\" must be true or false", key);
    *ret = json_is_true(v);
    return 0;
}

int tp_qarg_int(tp_qctx *q, const char *key, int64_t def, int64_t *ret)
{
    json_t *v = json_object_get(q->args, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_integer(v))
        return tp_qfail(q, -EINVAL, "argument \"%s\" must be an integer", key);
    *ret = json_integer_value(v);
    return 0;
}

int tp_qarg_num(tp_qctx *q, const char *key, double def, double *ret)
{
    json_t *v = json_object_get(q->args, key);
    if (!v || json_is_null(v)) {
        *ret = def;
        return 0;
    }
    if (!json_is_number(v))
        return tp_qfail(q, -EINVAL, "argument \"%s\" must be a number", key);
    *ret = json_number_value(v);
    return 0;
}

int tp_qreply_json(tp_qctx *q, json_t *j)
{
    char *s = j ? tp_json_jansson_dumps(j) : NULL;
    json_decref(j);
    if (!s)
        return tp_qfail(q, -ENOMEM, "out of memory");
    q->res->content_type = TP_CT_JSON;
    int r = tp_buf_puts(&q->res->body, s);
    free(s);
    return r < 0 ? tp_qfail(q, r, "out of memory") : 0;
}

static int dberr(tp_qctx *q, const char *what)
{
    return tp_qfail(q, TP_ERR_DB, "%s: %s", what, sqlite3_errmsg(q->db));
}

int tp_qresolve(tp_qctx *q, const char *prefix, int64_t *ret_rowid)
{
    char lo[33], hi[34];
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > 32)
        return tp_qfail(q, TP_ERR_NOT_FOUND, "\"%.40s\" is not a trace ID", prefix ? prefix : "");
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)prefix[i]))
            return tp_qfail(q, TP_ERR_NOT_FOUND, "\"%.40s\" is not a trace ID (hex digits)",
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
        return dberr(q, "resolving an ID");
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
        return dberr(q, "resolving an ID");
    if (found == 0)
        return tp_qfail(q, TP_ERR_NOT_FOUND, "no trace matches ID \"%s\"", lo);
    if (found > 1) {
        char list[6 * 34] = "";
        for (int i = 0; i < found && i < 5; i++) {
            strcat(list, i ? ", " : "");
            strcat(list, ids[i]);
        }
        char count[16];
        snprintf(count, sizeof(count), found > 5 ? "more than 5" : "%d", found);
        return tp_qfail(q, TP_ERR_AMBIGUOUS, "ID \"%s\" matches %s traces: %s%s", lo, count, list,
                        found > 5 ? ", ..." : "");
    }
    *ret_rowid = rowid;
    return 0;
}

int tp_qresolve_arg(tp_qctx *q, const char *key, int64_t *ret_rowid)
{
    const char *id;
    int r = tp_qarg_str(q, key, NULL, &id);
    if (r < 0)
        return r;
    if (!id)
        return tp_qfail(q, TP_ERR_MISSING, "argument \"%s\" (a trace ID) is required", key);
    return tp_qresolve(q, id, ret_rowid);
}

int tp_qtrees(tp_qctx *q, int64_t rowid, tp_tcache_entry **ret)
{
    char err[256];
    int r = tp_tcache_get(q->db, rowid, ret, err, sizeof(err));
    return r < 0 ? tp_qfail(q, r, "%s", err) : 0;
}

int tp_qload(tp_qctx *q, const char *key, tp_tcache_entry **ret, int64_t *ret_rowid)
{
    int64_t rowid;
    if (tp_qresolve_arg(q, key, &rowid) < 0 || tp_qtrees(q, rowid, ret) < 0)
        return q->res->code;
    if (ret_rowid)
        *ret_rowid = rowid;
    return 0;
}

/* ---- list / get ------------------------------------------------------------------------ */

#define SUMMARY_COLS                                                                               \
    "id, label, uid, pid, host, python, argv, wall_start_ns, end_ns, last_ns, calls,"              \
    " dropped, limit_reason, status, config, stats, client, source, pstart, nevents, rowid"

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
static json_t *summary(const tp_qctx *q, sqlite3_stmt *st)
{
    int64_t end = sqlite3_column_type(st, 8) == SQLITE_NULL ? sqlite3_column_int64(st, 9)
                                                            : sqlite3_column_int64(st, 8);
    int64_t start = sqlite3_column_int64(st, 7);
    int status = sqlite3_column_int(st, 13);
    const char *id = col_text(st, 0);
    json_t *o = json_object();
    char url[512];
    json_object_set_new(o, "id", tp_qstr(id));
    json_object_set_new(o, "label", tp_qstr(col_text(st, 1)));
    json_object_set_new(o, "uid", json_integer(sqlite3_column_int64(st, 2)));
    json_object_set_new(o, "pid", json_integer(sqlite3_column_int64(st, 3)));
    json_object_set_new(o, "host", tp_qstr(col_text(st, 4)));
    json_object_set_new(o, "python", tp_qstr(col_text(st, 5)));
    json_object_set_new(o, "argv", parsed_or_null(col_text(st, 6), json_array()));
    json_object_set_new(o, "client", tp_qstr(col_text(st, 16)));
    json_object_set_new(o, "start", json_real((double)start / 1e9));
    json_object_set_new(o, "duration_ms", json_real((double)end / 1e6));
    json_object_set_new(o, "calls", json_integer(sqlite3_column_int64(st, 10)));
    json_object_set_new(o, "dropped", json_integer(sqlite3_column_int64(st, 11)));
    json_object_set_new(o, "limit_reason", tp_qstr(col_text(st, 12)));
    json_object_set_new(o, "status", json_string(status_name(status)));
    if (id && q->env->trace_url &&
        q->env->trace_url(q->env->trace_url_ud, q->env->uid, id, url, sizeof(url)) == 0)
        json_object_set_new(o, "url", json_string(url));
    else
        json_object_set_new(o, "url", json_null());
    return o;
}

static int op_list(tp_qctx *q)
{
    const char *label, *text;
    double since;
    bool limited_set =
        json_object_get(q->args, "limited") && !json_is_null(json_object_get(q->args, "limited"));
    bool limited = false;
    int64_t limit, offset;
    if (tp_qarg_str(q, "label", NULL, &label) < 0 || tp_qarg_str(q, "q", NULL, &text) < 0 ||
        tp_qarg_num(q, "since", 0, &since) < 0 ||
        tp_qarg_bool(q, q->args, "limited", false, &limited) < 0 ||
        tp_qarg_int(q, "limit", 50, &limit) < 0 || tp_qarg_int(q, "offset", 0, &offset) < 0)
        return q->res->code;
    if (limit > 10000)
        return tp_qfail(q, -EINVAL, "argument \"limit\" is at most 10000");
    char where[512] = "WHERE 1";
    if (q->env->uid != 0)
        strcat(where, " AND uid = ?1");
    if (label)
        strcat(where, " AND label GLOB ?2");
    if (since > 0)
        strcat(where, " AND wall_start_ns >= ?3");
    if (text && *text)
        /* The UI's search box: an id prefix, or text in label, argv or host. */
        strcat(where,
               " AND (substr(id, 1, length(?6)) = lower(?6) OR instr(lower(label), lower(?6))"
               " OR instr(lower(argv), lower(?6)) OR instr(lower(host), lower(?6)))");
    if (limited_set)
        strcat(where, limited ? " AND limit_reason IS NOT NULL" : " AND limit_reason IS NULL");
    char sql[1024];
    sqlite3_stmt *cnt = NULL, *st = NULL;
    json_t *arr = json_array();
    int64_t total = 0;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM traces %s", where);
    if (sqlite3_prepare_v2(q->db, sql, -1, &cnt, NULL) != SQLITE_OK)
        goto fail;
    snprintf(sql, sizeof(sql),
             "SELECT " SUMMARY_COLS " FROM traces %s ORDER BY wall_start_ns DESC, rowid DESC"
             " LIMIT ?4 OFFSET ?5",
             where);
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_stmt *both[2] = {cnt, st};
    for (int i = 0; i < 2; i++) {
        if (q->env->uid != 0)
            sqlite3_bind_int64(both[i], 1, q->env->uid);
        if (label)
            sqlite3_bind_text(both[i], 2, label, -1, SQLITE_STATIC);
        if (since > 0)
            sqlite3_bind_int64(both[i], 3, (int64_t)(since * 1e9));
        if (text && *text)
            sqlite3_bind_text(both[i], 6, text, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 4, limit < 0 ? -1 : limit);
    sqlite3_bind_int64(st, 5, offset < 0 ? 0 : offset);
    /* One snapshot for the count and the page. */
    sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL);
    if (sqlite3_step(cnt) == SQLITE_ROW)
        total = sqlite3_column_int64(cnt, 0);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, summary(q, st));
    sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    return tp_qreply_json(q, json_pack("{s:I, s:o}", "total", (json_int_t)total, "traces", arr));
fail:
    dberr(q, "listing traces");
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    json_decref(arr);
    return q->res->code;
}

static int op_get(tp_qctx *q)
{
    const char *id, *what;
    int64_t rowid;
    if (tp_qarg_str(q, "id", NULL, &id) < 0 || tp_qarg_str(q, "what", NULL, &what) < 0)
        return q->res->code;
    if (what && strcmp(what, "trace") == 0) {
        /* PROTOCOL.md: the trace itself, in tracepatch's JSON schema. */
        tp_tcache_entry *e = NULL;
        if (tp_qload(q, "id", &e, NULL) < 0)
            return q->res->code;
        int r = tp_render_json(tp_tcache_raw(e), false, &q->res->body);
        tp_tcache_put(e);
        if (r < 0)
            return tp_qfail(q, r, "cannot render: %s", tp_strerror(r));
        q->res->content_type = TP_CT_JSON;
        return 0;
    }
    if (what && strcmp(what, "summary") != 0)
        return tp_qfail(q, -EINVAL, "argument \"what\" must be \"summary\" or \"trace\"");
    if (!id)
        return tp_qfail(q, TP_ERR_MISSING, "argument \"id\" (a trace ID) is required");
    if (tp_qresolve(q, id, &rowid) < 0)
        return q->res->code;
    json_t *o;
    if (tp_qget_json(q, rowid, NULL, &o) < 0)
        return q->res->code;
    return tp_qreply_json(q, o);
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

int tp_qget_json(tp_qctx *q, int64_t rowid, const tp_tree *t, json_t **ret)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, "SELECT " SUMMARY_COLS " FROM traces WHERE rowid = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return dberr(q, "reading a trace");
    sqlite3_bind_int64(st, 1, rowid);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return tp_qfail(q, TP_ERR_NOT_FOUND, "the trace was just deleted");
    }
    json_t *o = summary(q, st);
    json_object_set_new(o, "config", parsed_or_null(col_text(st, 14), json_null()));
    json_t *stats = parsed_or_null(col_text(st, 15), NULL);
    json_object_set_new(o, "source", tp_qstr(col_text(st, 17)));
    json_object_set_new(o, "pstart", json_integer(sqlite3_column_int64(st, 18)));
    json_object_set_new(o, "events", json_integer(sqlite3_column_int64(st, 19)));
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
        tp_stats_free(s);
        tp_tcache_put(e);
    }
    json_object_set_new(o, "stats", stats ? stats : json_null());
    *ret = o;
    return 0;
}

/* ---- clean ------------------------------------------------------------------------------ */

typedef struct clean_step {
    uint32_t uid;
    bool all;
    int64_t cutoff_ns;
    int64_t deleted;
} clean_step;

static int clean_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    clean_step *cs = arg;
    sqlite3_stmt *st = NULL;
    int64_t ids[CLEAN_STEP];
    int n = 0;
    /* Open traces are still being written; they are never cleaned. */
    const char *sql =
        cs->uid == 0 ? "SELECT rowid FROM traces WHERE status != 0 AND (?1 OR wall_start_ns < ?2)"
                       " ORDER BY wall_start_ns LIMIT ?4"
                     : "SELECT rowid FROM traces WHERE status != 0 AND (?1 OR wall_start_ns < ?2)"
                       " AND uid = ?3 ORDER BY wall_start_ns LIMIT ?4";
    cs->deleted = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int(st, 1, cs->all);
    sqlite3_bind_int64(st, 2, cs->cutoff_ns);
    if (cs->uid != 0)
        sqlite3_bind_int64(st, 3, cs->uid);
    sqlite3_bind_int(st, 4, CLEAN_STEP);
    while (n < CLEAN_STEP && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    for (int i = 0; i < n; i++) {
        if (tp_store_delete_trace(db, ids[i]) < 0)
            goto fail;
        cs->deleted++;
    }
    return 0;
fail:
    sqlite3_finalize(st);
    return tp_store_sqlite_err(db, sqlite3_errcode(db), "cleaning", op->errmsg, sizeof(op->errmsg));
}

static int op_clean(tp_qctx *q)
{
    double older;
    bool all;
    if (tp_qarg_num(q, "older_than", -1, &older) < 0 ||
        tp_qarg_bool(q, q->args, "all", false, &all) < 0)
        return q->res->code;
    if (!all && older < 0)
        return tp_qfail(q, TP_ERR_MISSING, "give \"older_than\" (seconds) or \"all\": true");
    clean_step cs = {.uid = q->env->uid,
                     .all = all,
                     .cutoff_ns = tp_now_ns() - (int64_t)(older > 0 ? older * 1e9 : 0)};
    int64_t total = 0;
    char msg[200];
    do {
        int r = tp_store_call_sync(q->env->store, clean_fn, &cs, msg, sizeof(msg));
        if (r < 0)
            return tp_qfail(q, r, "%s", msg);
        total += cs.deleted;
    } while (cs.deleted == CLEAN_STEP);
    if (total > 0)
        tp_store_retention(q->env->store, 0, 0, NULL); /* gives the pages back */
    return tp_qreply_json(q, json_pack("{s:I}", "deleted", (json_int_t)total));
}

/* ---- status ----------------------------------------------------------------------------- */

static int op_status(tp_qctx *q)
{
    const tp_query_env *e = q->env;
    sqlite3_stmt *st = NULL;
    int64_t traces = 0, dropped = 0;
    const char *sql = e->uid == 0 ? "SELECT count(*), total(dropped) FROM traces"
                                  : "SELECT count(*), total(dropped) FROM traces WHERE uid = ?1";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return dberr(q, "counting traces");
    if (e->uid != 0)
        sqlite3_bind_int64(st, 1, e->uid);
    if (sqlite3_step(st) == SQLITE_ROW) {
        traces = sqlite3_column_int64(st, 0);
        dropped = (int64_t)sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(e->version ? e->version : ""));
    json_object_set_new(o, "protocol", json_integer(TP_WIRE_VERSION));
    json_object_set_new(o, "uptime_s", json_real(e->uptime_s));
    json_object_set_new(o, "pid", json_integer(e->daemon_pid));
    json_object_set_new(o, "socket", tp_qstr(e->socket_path));
    json_object_set_new(o, "db", tp_qstr(tp_store_path(e->store)));
    json_object_set_new(o, "db_bytes", json_integer(tp_store_db_bytes(e->store)));
    json_object_set_new(o, "traces", json_integer(traces));
    json_object_set_new(o, "clients", json_integer(e->clients));
    json_object_set_new(o, "events_total", json_integer((json_int_t)e->events_total));
    json_object_set_new(o, "events_per_s",
                        e->events_per_s < 0 ? json_null() : json_real(e->events_per_s));
    json_object_set_new(o, "dropped", json_integer(dropped));
    json_object_set_new(o, "http", tp_qstr(e->http_url));
    return tp_qreply_json(q, o);
}

/* ---- import ----------------------------------------------------------------------------- */

typedef struct import_job {
    const tp_tree *t;
    const tp_query_env *env;
    const char *source;
    tp_buf rec, text;
    char id[33];
    int64_t rowid;
} import_job;

/* Stores the import's events in chunks of IMPORT_CHUNK records, each with
 * the text its records own. */
static int insert_chunks(sqlite3 *db, import_job *j)
{
    const tp_event *ev = (const tp_event *)j->rec.data;
    size_t n = j->rec.len / sizeof(tp_event), start = 0, tstart = 0, tpos = 0;
    const uint8_t *tx = (const uint8_t *)j->text.data;
    sqlite3_stmt *st = NULL;
    uint32_t seq = 0;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO chunks (trace, seq, nrecords, records, text)"
                           " VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        return TP_ERR_DB;
    do {
        size_t end = n - start > IMPORT_CHUNK ? start + IMPORT_CHUNK : n;
        for (size_t i = start; i < end; i++) {
            if (!(ev[i].flags & TP_EVF_TEXT))
                continue;
            for (unsigned k = tp_event_text_entries(ev[i].kind); k > 0; k--) {
                uint32_t l;
                memcpy(&l, tx + tpos, 4);
                tpos += 4 + le32toh(l);
            }
        }
        sqlite3_bind_int64(st, 1, j->rowid);
        sqlite3_bind_int64(st, 2, seq++);
        sqlite3_bind_int64(st, 3, (int64_t)(end - start));
        sqlite3_bind_blob64(st, 4, end > start ? (const void *)(ev + start) : "",
                            (end - start) * sizeof(tp_event), SQLITE_STATIC);
        sqlite3_bind_blob64(st, 5, tpos > tstart ? (const void *)(tx + tstart) : "", tpos - tstart,
                            SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return TP_ERR_DB;
        }
        start = end;
        tstart = tpos;
    } while (start < n);
    sqlite3_finalize(st);
    return 0;
}

static int import_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    import_job *j = arg;
    const tp_tree *t = j->t;
    sqlite3_stmt *st = NULL;
    int64_t start = t->meta.wall_start_ns ? t->meta.wall_start_ns : tp_now_ns();
    uint64_t calls = t->meta.call_count > t->nnodes ? t->meta.call_count : t->nnodes;
    int rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO traces (id, client_id, label, uid, pid, pstart, client, config, source,"
        " wall_start_ns, received_ns, ended_ns, end_ns, last_ns, calls, dropped, limit_reason,"
        " status, nevents, nchunks, bytes)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'tph import', ?7, ?8, ?9, ?10, ?10, ?11, ?11, ?12, ?13,"
        " ?14, 1, ?15, ?16, ?17)",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->meta.trace_id[0] ? t->meta.trace_id : j->id, -1, SQLITE_STATIC);
    if (t->meta.label)
        sqlite3_bind_text(st, 3, t->meta.label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, j->env->uid);
    sqlite3_bind_int64(st, 5, j->env->pid);
    sqlite3_bind_int64(st, 6, (int64_t)j->env->pstart);
    if (t->meta.config_json)
        sqlite3_bind_text(st, 7, t->meta.config_json, -1, SQLITE_STATIC);
    if (j->source)
        sqlite3_bind_text(st, 8, j->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, start);
    sqlite3_bind_int64(st, 10, tp_now_ns());
    sqlite3_bind_int64(st, 11, t->meta.duration_ns);
    sqlite3_bind_int64(st, 12, (int64_t)calls);
    sqlite3_bind_int64(st, 13, (int64_t)t->meta.dropped);
    if (t->meta.limit_reason)
        sqlite3_bind_text(st, 14, t->meta.limit_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, (int64_t)(j->rec.len / sizeof(tp_event)));
    sqlite3_bind_int64(
        st, 16, (int64_t)((j->rec.len / sizeof(tp_event) + IMPORT_CHUNK - 1) / IMPORT_CHUNK));
    sqlite3_bind_int64(st, 17, (int64_t)(j->rec.len + j->text.len));
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto fail;
    j->rowid = sqlite3_last_insert_rowid(db);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO funcs (trace, fid, module, qualname, file, lineno)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < t->nfuncs; i++) {
        sqlite3_bind_int64(st, 1, j->rowid);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, t->funcs[i].module, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, t->funcs[i].qualname, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, t->funcs[i].file, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, t->funcs[i].lineno);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (insert_chunks(db, j) < 0)
        goto fail;
    return 0;
fail:
    sqlite3_finalize(st);
    return tp_store_sqlite_err(db, sqlite3_errcode(db), "importing", op->errmsg,
                               sizeof(op->errmsg));
}

static int op_import(tp_qctx *q)
{
    const char *text, *source, *label;
    size_t len;
    tp_tree *t = NULL;
    char err[256], url[512];
    if (tp_qarg_str(q, "json", NULL, &text) < 0 || tp_qarg_str(q, "source", NULL, &source) < 0 ||
        tp_qarg_str(q, "label", NULL, &label) < 0)
        return q->res->code;
    if (text) {
        len = strlen(text);
    } else if (q->env->body) {
        /* PROTOCOL.md: the file travels as the QUERY body. */
        text = q->env->body;
        len = q->env->body_len;
    } else {
        return tp_qfail(q, TP_ERR_MISSING, "import needs the file: the QUERY body (or \"json\")");
    }
    int r = tp_tree_from_json(text, len, &t, err, sizeof(err));
    if (r < 0)
        return tp_qfail(q, r, "%s", err);
    if (label && tp_tree_set_label(t, label) < 0) {
        tp_tree_free(t);
        return tp_qfail(q, -ENOMEM, "out of memory");
    }
    import_job j = {
        .t = t, .env = q->env, .source = source, .rec = TP_BUF_INIT, .text = TP_BUF_INIT};
    r = tp_random_id(j.id);
    if (r == 0)
        r = tp_rebuild_events(t, TP_NONE, &j.rec, &j.text);
    if (r < 0) {
        tp_qfail(q, r, "cannot convert the trace: %s", tp_strerror(r));
        goto out;
    }
    r = tp_store_call_sync(q->env->store, import_fn, &j, err, sizeof(err));
    if (r < 0) {
        tp_qfail(q, r, "%s", err);
        goto out;
    }
    q->res->created_rowid = j.rowid;
    json_t *ans = json_pack("{s:s}", "id", j.id);
    if (ans && q->env->trace_url &&
        q->env->trace_url(q->env->trace_url_ud, q->env->uid, j.id, url, sizeof(url)) == 0)
        json_object_set_new(ans, "url", json_string(url));
    else if (ans)
        json_object_set_new(ans, "url", json_null());
    r = tp_qreply_json(q, ans);
out:
    tp_buf_free(&j.rec);
    tp_buf_free(&j.text);
    tp_tree_free(t);
    return r;
}

/* ---- Dispatch --------------------------------------------------------------------------- */

void tp_query_run(const tp_query_env *env, const char *op, const char *args_json,
                  tp_query_result *res)
{
    static const struct {
        const char *name;
        int (*fn)(tp_qctx *q);
        bool reads; /* needs a reader connection */
    } ops[] = {
        {"list", op_list, true},       {"get", op_get, true},
        {"tree", tp_query_tree, true}, {"stats", tp_query_stats, true},
        {"diff", tp_query_diff, true}, {"export", tp_query_export, true},
        {"clean", op_clean, false},    {"status", op_status, true},
        {"import", op_import, false},  {"search", tp_query_search, true},
    };
    tp_qctx q = {.env = env, .res = res};
    json_error_t jerr;
    char err[256];
    res->code = 0;
    res->message[0] = '\0';
    res->content_type = TP_CT_JSON;
    q.args = json_loads(args_json && *args_json ? args_json : "{}", 0, &jerr);
    if (!q.args || !json_is_object(q.args)) {
        tp_qfail(&q, TP_ERR_JSON, "the query arguments are not a JSON object%s%s",
                 q.args ? "" : ": ", q.args ? "" : jerr.text);
        goto out;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(op ? op : "", ops[i].name) != 0)
            continue;
        if (ops[i].reads) {
            /* Read what was received before the query: a trace whose frames
             * tphd has taken in is visible to the next query, whatever
             * connection either came on. */
            int r = tp_store_barrier(env->store);
            if (r < 0) {
                tp_qfail(&q, r, "the database failed: %s", tp_strerror(r));
                goto out;
            }
            r = tp_store_reader_get(env->store, &q.db, err, sizeof(err));
            if (r < 0) {
                tp_qfail(&q, r, "%s", err);
                goto out;
            }
        }
        ops[i].fn(&q);
        goto out;
    }
    tp_qfail(&q, -EINVAL,
             "unknown query \"%.40s\" (list, get, tree, stats, diff, export, clean, status, "
             "import, search)",
             op ? op : "");
out:
    if (q.db)
        tp_store_reader_put(env->store, q.db);
    json_decref(q.args);
    if (res->code < 0)
        tp_buf_reset(&res->body);
}

void tp_query_result_free(tp_query_result *res)
{
    tp_buf_free(&res->body);
}
