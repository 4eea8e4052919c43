#include "query.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finalize.h"
#include "load.h"
#include "otlp_export.h"
#include "query_ops.h"
#include "rebuild.h"
#include "render.h"
#include "tp_err.h"
#include "util.h"
#include "wire.h"

#define CLEAN_STEP   256   /* traces deleted per writer transaction */
#define IMPORT_CHUNK 65536 /* records per stored chunk of an import */

/* ---- list / get ------------------------------------------------------------------------ */

static int op_list(tp_qctx *q)
{
    const char *label, *text, *otel;
    double since;
    bool limited_set =
        json_object_get(q->args, "limited") && !json_is_null(json_object_get(q->args, "limited"));
    bool limited = false;
    int64_t limit, offset;
    if (tp__query_arg_str(q, "label", NULL, &label) < 0 ||
        tp__query_arg_str(q, "q", NULL, &text) < 0 ||
        tp__query_arg_str(q, "otel_trace", NULL, &otel) < 0 ||
        tp__query_arg_num(q, "since", 0, &since) < 0 ||
        tp__query_arg_bool(q, q->args, "limited", false, &limited) < 0 ||
        tp__query_arg_int(q, "limit", 50, &limit) < 0 ||
        tp__query_arg_int(q, "offset", 0, &offset) < 0)
        return q->res->code;
    if (limit > 10000)
        return tp__query_fail(q, -EINVAL, "argument \"limit\" is at most 10000");
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
    if (otel && *otel)
        /* A prefix of the OpenTelemetry trace id, as Jaeger or Tempo show it. */
        strcat(where, " AND substr(otel_trace, 1, length(?7)) = lower(?7)");
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
             "SELECT " TP_QSUMMARY_COLS " FROM traces %s ORDER BY wall_start_ns DESC, rowid DESC"
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
        if (otel && *otel)
            sqlite3_bind_text(both[i], 7, otel, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 4, limit < 0 ? -1 : limit);
    sqlite3_bind_int64(st, 5, offset < 0 ? 0 : offset);
    /* One snapshot for the count and the page. */
    sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL);
    if (sqlite3_step(cnt) == SQLITE_ROW)
        total = sqlite3_column_int64(cnt, 0);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, tp__query_summary(q, st));
    sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    return tp__query_reply_json(q,
                                json_pack("{s:I, s:o}", "total", (json_int_t)total, "traces", arr));
fail:
    tp__query_dberr(q, "listing traces");
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    json_decref(arr);
    return q->res->code;
}

static int op_get(tp_qctx *q)
{
    const char *id, *what;
    int64_t rowid;
    if (tp__query_arg_str(q, "id", NULL, &id) < 0 || tp__query_arg_str(q, "what", NULL, &what) < 0)
        return q->res->code;
    if (what && strcmp(what, "trace") == 0) {
        /* PROTOCOL.md: the trace itself, in tracepatch's JSON schema. */
        tp_tcache_entry *e = NULL;
        if (tp__query_load(q, "id", &e, NULL) < 0)
            return q->res->code;
        int r = tp_render_json(tp_tcache_raw(e), false, &q->res->body);
        tp_tcache_put(e);
        if (r < 0)
            return tp__query_fail(q, r, "cannot render: %s", tp_strerror(r));
        q->res->content_type = TP_CT_JSON;
        return 0;
    }
    if (what && strcmp(what, "summary") != 0)
        return tp__query_fail(q, -EINVAL, "argument \"what\" must be \"summary\" or \"trace\"");
    if (!id)
        return tp__query_fail(q, TP_ERR_MISSING, "argument \"id\" (a trace ID) is required");
    if (tp__query_resolve(q, id, &rowid) < 0)
        return q->res->code;
    json_t *o;
    if (tp__query_get_json(q, rowid, NULL, &o) < 0)
        return q->res->code;
    return tp__query_reply_json(q, o);
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
    if (tp__query_arg_num(q, "older_than", -1, &older) < 0 ||
        tp__query_arg_bool(q, q->args, "all", false, &all) < 0)
        return q->res->code;
    if (!all && older < 0)
        return tp__query_fail(q, TP_ERR_MISSING, "give \"older_than\" (seconds) or \"all\": true");
    clean_step cs = {.uid = q->env->uid,
                     .all = all,
                     .cutoff_ns = tp_util_now_ns() - (int64_t)(older > 0 ? older * 1e9 : 0)};
    int64_t total = 0;
    char msg[200];
    do {
        int r = tp_store_call_sync(q->env->store, clean_fn, &cs, msg, sizeof(msg));
        if (r < 0)
            return tp__query_fail(q, r, "%s", msg);
        total += cs.deleted;
    } while (cs.deleted == CLEAN_STEP);
    /* Frames go with the traces of the same age (docs/QUERY.md). */
    if (tp_query_frames_clean(q, all, cs.cutoff_ns) < 0)
        return q->res->code;
    if (total > 0)
        tp_store_retention(q->env->store, 0, 0, NULL); /* gives the pages back */
    return tp__query_reply_json(q, json_pack("{s:I}", "deleted", (json_int_t)total));
}

/* ---- status ----------------------------------------------------------------------------- */

/* The exporter's counters (since tphd started; root only) and the
 * caller's traces still waiting, or null without --otlp-endpoint. */
static json_t *otlp_status(tp_qctx *q)
{
    const tp_query_env *e = q->env;
    tp_otlp_stats st;
    int64_t pending = 0;
    sqlite3_stmt *s = NULL;
    if (!e->otlp)
        return json_null();
    tp_otlp_export_stats(e->otlp, &st);
    if (sqlite3_prepare_v2(q->db,
                           e->uid == 0 ? "SELECT count(*) FROM traces WHERE otlp = 1"
                                       : "SELECT count(*) FROM traces WHERE otlp = 1 AND uid = ?1",
                           -1, &s, NULL) == SQLITE_OK) {
        if (e->uid != 0)
            sqlite3_bind_int64(s, 1, e->uid);
        if (sqlite3_step(s) == SQLITE_ROW)
            pending = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    if (e->uid != 0)
        /* The exporter's counters cover every user's traces: like the
         * event counts, they are not for others to see how busy one is. */
        return json_pack("{s:s, s:I, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}",
                         "endpoint", tp_otlp_export_url(e->otlp), "pending", (json_int_t)pending,
                         "exported_traces", "exported_spans", "lost_traces", "lost_spans",
                         "skipped_traces", "requests", "failed_requests", "retries",
                         "buffered_bytes", "max_buffered_bytes", "last_error");
    return json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "endpoint",
        tp_otlp_export_url(e->otlp), "pending", (json_int_t)pending, "exported_traces",
        (json_int_t)st.exported_traces, "exported_spans", (json_int_t)st.exported_spans,
        "lost_traces", (json_int_t)st.lost_traces, "lost_spans", (json_int_t)st.lost_spans,
        "skipped_traces", (json_int_t)st.skipped_traces, "requests", (json_int_t)st.requests,
        "failed_requests", (json_int_t)st.failed_requests, "retries", (json_int_t)st.retries,
        "buffered_bytes", (json_int_t)st.buffered_bytes, "max_buffered_bytes",
        (json_int_t)st.max_buffered_bytes, "last_error", st.last_error[0] ? st.last_error : NULL);
}

static int op_status(tp_qctx *q)
{
    const tp_query_env *e = q->env;
    sqlite3_stmt *st = NULL;
    int64_t traces = 0, dropped = 0;
    const char *sql = e->uid == 0 ? "SELECT count(*), total(dropped) FROM traces"
                                  : "SELECT count(*), total(dropped) FROM traces WHERE uid = ?1";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return tp__query_dberr(q, "counting traces");
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
    json_object_set_new(o, "socket", tp__query_str(e->socket_path));
    json_object_set_new(o, "db", tp__query_str(tp_store_path(e->store)));
    /* The size of a database other users write to tells how much they
     * trace: only its owner and root see it. */
    json_object_set_new(o, "db_bytes",
                        e->whole_db ? json_integer(tp_store_db_bytes(e->store)) : json_null());
    json_object_set_new(o, "traces", json_integer(traces));
    json_object_set_new(o, "clients", json_integer(e->clients));
    json_object_set_new(o, "events_total", json_integer((json_int_t)e->events_total));
    json_object_set_new(o, "events_per_s",
                        e->events_per_s < 0 ? json_null() : json_real(e->events_per_s));
    json_object_set_new(o, "dropped", json_integer(dropped));
    json_object_set_new(o, "http", tp__query_str(e->http_url));
    json_object_set_new(o, "otlp", otlp_status(q));
    return tp__query_reply_json(q, o);
}

/* ---- import ----------------------------------------------------------------------------- */

typedef struct import_job {
    const tp_tree *t;
    const tp_query_env *env;
    const char *source;
    tp_buf rec, text;
    char id[33];
    int64_t rowid;
    char *lines;       /* the file's "lines" as JSON text, or NULL */
    char *source_json; /* the file's "source" as JSON text, or NULL */
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
    int64_t start = t->meta.wall_start_ns ? t->meta.wall_start_ns : tp_util_now_ns();
    uint64_t calls = t->meta.call_count > t->nnodes ? t->meta.call_count : t->nnodes;
    int rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO traces (id, client_id, label, uid, pid, pstart, client, config, source,"
        " wall_start_ns, received_ns, ended_ns, end_ns, last_ns, calls, dropped, limit_reason,"
        " status, nevents, nchunks, bytes, host, python, platform, cwd)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'tph import', ?7, ?8, ?9, ?10, ?10, ?11, ?11, ?12, ?13,"
        " ?14, 1, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
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
    sqlite3_bind_int64(st, 10, tp_util_now_ns());
    sqlite3_bind_int64(st, 11, t->meta.duration_ns);
    sqlite3_bind_int64(st, 12, (int64_t)calls);
    sqlite3_bind_int64(st, 13, (int64_t)t->meta.dropped);
    if (t->meta.limit_reason)
        sqlite3_bind_text(st, 14, t->meta.limit_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, (int64_t)(j->rec.len / sizeof(tp_event)));
    sqlite3_bind_int64(
        st, 16, (int64_t)((j->rec.len / sizeof(tp_event) + IMPORT_CHUNK - 1) / IMPORT_CHUNK));
    sqlite3_bind_int64(st, 17, (int64_t)(j->rec.len + j->text.len));
    /* The file's environment keys (1.0.0's), kept as a streamed trace's. */
    const char *env[] = {t->meta.hostname, t->meta.python_version, t->meta.platform,
                         t->meta.working_directory};
    for (int k = 0; k < 4; k++)
        if (env[k])
            sqlite3_bind_text(st, 18 + k, env[k], -1, SQLITE_STATIC);
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
    static const char *const ins[] = {"INSERT INTO trace_lines (trace, json) VALUES (?1, ?2)",
                                      "INSERT INTO trace_source (trace, json) VALUES (?1, ?2)"};
    const char *texts[] = {j->lines, j->source_json};
    for (int k = 0; k < 2; k++) {
        if (!texts[k])
            continue;
        if (sqlite3_prepare_v2(db, ins[k], -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_int64(st, 1, j->rowid);
        sqlite3_bind_text(st, 2, texts[k], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE)
            goto fail;
    }
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
    if (tp__query_arg_str(q, "json", NULL, &text) < 0 ||
        tp__query_arg_str(q, "source", NULL, &source) < 0 ||
        tp__query_arg_str(q, "label", NULL, &label) < 0)
        return q->res->code;
    if (text) {
        len = strlen(text);
    } else if (q->env->body) {
        /* PROTOCOL.md: the file travels as the QUERY body. */
        text = q->env->body;
        len = q->env->body_len;
    } else {
        return tp__query_fail(q, TP_ERR_MISSING,
                              "import needs the file: the QUERY body (or \"json\")");
    }
    int r = tp_load_json(text, len, &t, err, sizeof(err));
    if (r < 0)
        return tp__query_fail(q, r, "%s", err);
    if (label && tp_tree_set_label(t, label) < 0) {
        tp_tree_free(t);
        return tp__query_fail(q, -ENOMEM, "out of memory");
    }
    import_job j = {
        .t = t, .env = q->env, .source = source, .rec = TP_BUF_INIT, .text = TP_BUF_INIT};
    r = tp_query_sections_of_file(text, len, &j.lines, &j.source_json, err, sizeof(err));
    if (r < 0) {
        tp__query_fail(q, r, "%s", err);
        goto out;
    }
    r = tp_util_random_id(j.id);
    if (r == 0)
        r = tp_rebuild_events(t, TP_NONE, &j.rec, &j.text);
    if (r < 0) {
        tp__query_fail(q, r, "cannot convert the trace: %s", tp_strerror(r));
        goto out;
    }
    r = tp_store_call_sync(q->env->store, import_fn, &j, err, sizeof(err));
    if (r < 0) {
        tp__query_fail(q, r, "%s", err);
        goto out;
    }
    q->res->created_rowid = j.rowid;
    json_t *ans = json_pack("{s:s}", "id", j.id);
    if (ans && q->env->trace_url &&
        q->env->trace_url(q->env->trace_url_ud, q->env->uid, j.id, url, sizeof(url)) == 0)
        json_object_set_new(ans, "url", json_string(url));
    else if (ans)
        json_object_set_new(ans, "url", json_null());
    r = tp__query_reply_json(q, ans);
out:
    free(j.lines);
    free(j.source_json);
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
        {"list", op_list, true},
        {"get", op_get, true},
        {"tree", tp_query_tree, true},
        {"stats", tp_query_stats, true},
        {"diff", tp_query_diff, true},
        {"export", tp_query_export, true},
        {"clean", op_clean, false},
        {"status", op_status, true},
        {"import", op_import, false},
        {"search", tp_query_search, true},
        {"profile", tp_query_profile, true},
        {"timeline", tp_query_timeline, true},
        {"flame", tp_query_flame, true},
        {"frames_add", tp_query_frames_add, false},
        {"frames", tp_query_frames, true},
        {"frame_points", tp_query_frame_points, true},
        {"lines", tp_query_lines, true},
        {"source", tp_query_source, true},
        {"events", tp_query_events, true},
    };
    tp_qctx q = {.env = env, .res = res};
    json_error_t jerr;
    char err[256];
    res->code = 0;
    res->message[0] = '\0';
    res->content_type = TP_CT_JSON;
    q.args = json_loads(args_json && *args_json ? args_json : "{}", 0, &jerr);
    if (!q.args || !json_is_object(q.args)) {
        tp__query_fail(&q, TP_ERR_JSON, "the query arguments are not a JSON object%s%s",
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
                tp__query_fail(&q, r, "the database failed: %s", tp_strerror(r));
                goto out;
            }
            r = tp_store_reader_get(env->store, &q.db, err, sizeof(err));
            if (r < 0) {
                tp__query_fail(&q, r, "%s", err);
                goto out;
            }
        }
        ops[i].fn(&q);
        goto out;
    }
    /* The ops it knows, from the table, so the message never lists fewer. */
    char names[256] = "";
    for (size_t i = 0, n = 0; i < sizeof(ops) / sizeof(ops[0]) && n < sizeof(names); i++)
        n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "", ops[i].name);
    tp__query_fail(&q, -EINVAL, "unknown query \"%.40s\" (%s)", op ? op : "", names);
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
