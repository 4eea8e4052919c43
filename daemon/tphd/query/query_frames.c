/* Frames (issue 13): frames_add stores the durations a client's frame()
 * / frame_mark() measured; frames answers per-name statistics over a time
 * window. Every frame is kept as one row, so the percentiles are exact (the
 * nearest-rank value of the window's durations): a frame is a request or a
 * tick, far fewer than calls, and an exact answer needs no error bound to
 * explain. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "query_ops.h"
#include "store.h"
#include "tp_err.h"
#include "util.h"
#include "vec.h"

/* Longest frame name kept; a longer one is an error, not cut. */
#define FRAME_NAME_MAX 200

typedef struct frames_job {
    const json_t *frames; /* [[name, start_unix_ns, dur_ns[, trace_id]], ...], checked */
    uint32_t uid;
} frames_job;

static int frames_add_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    frames_job *j = arg;
    sqlite3_stmt *st = NULL;
    size_t i;
    json_t *f;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO frames (uid, name, start_ns, dur_ns, trace_id)"
                           " VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    json_array_foreach(j->frames, i, f)
    {
        sqlite3_bind_int64(st, 1, j->uid);
        sqlite3_bind_text(st, 2, json_string_value(json_array_get(f, 0)), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, json_integer_value(json_array_get(f, 1)));
        sqlite3_bind_int64(st, 4, json_integer_value(json_array_get(f, 2)));
        const char *tid = json_string_value(json_array_get(f, 3));
        if (tid)
            sqlite3_bind_text(st, 5, tid, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return tp_store_sqlite_err(db, sqlite3_errcode(db), "storing frames", op->errmsg,
                               sizeof(op->errmsg));
}

typedef struct frames_clean_job {
    uint32_t uid;
    bool all;
    int64_t cutoff_ns;
} frames_clean_job;

static int frames_clean_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    frames_clean_job *j = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            db, "DELETE FROM frames WHERE (?1 = 0 OR uid = ?1) AND (?2 OR start_ns < ?3)", -1, &st,
            NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, j->uid);
    sqlite3_bind_int(st, 2, j->all);
    sqlite3_bind_int64(st, 3, j->cutoff_ns);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return tp_store_sqlite_err(db, sqlite3_errcode(db), "cleaning frames", op->errmsg,
                               sizeof(op->errmsg));
}

int tp_query_frames_clean(tp_qctx *q, bool all, int64_t cutoff_ns)
{
    frames_clean_job j = {.uid = q->env->uid, .all = all, .cutoff_ns = cutoff_ns};
    char err[256];
    int r = tp_store_call_sync(q->env->store, frames_clean_fn, &j, err, sizeof(err));
    return r < 0 ? tp__query_fail(q, r, "%s", err) : 0;
}

/* A kept trace's id as clients make them: 32 lowercase hex digits. */
static bool is_trace_id(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || json_string_length(v) != 32)
        return false;
    for (size_t i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int tp_query_frames_add(tp_qctx *q)
{
    json_t *frames = json_object_get(q->args, "frames");
    size_t i;
    json_t *f;
    char err[256];
    if (!json_is_array(frames))
        return tp__query_fail(q, -EINVAL, "frames_add needs \"frames\": an array");
    /* Check all before storing any, so a bad batch stores nothing. */
    json_array_foreach(frames, i, f)
    {
        json_t *name = json_array_get(f, 0);
        json_t *tid = json_array_get(f, 3);
        if (!json_is_array(f) || json_array_size(f) < 3 || json_array_size(f) > 4 ||
            (json_array_size(f) == 4 && !json_is_null(tid) && !is_trace_id(tid)) ||
            !json_is_string(name) || json_string_length(name) == 0 ||
            json_string_length(name) > FRAME_NAME_MAX || !json_is_integer(json_array_get(f, 1)) ||
            !json_is_integer(json_array_get(f, 2)) || json_integer_value(json_array_get(f, 2)) < 0)
            return tp__query_fail(q, -EINVAL,
                                  "frames[%zu] is not [name (1-%d chars), start_ns, dur_ns >= 0"
                                  "[, trace id (32 hex) or null]]",
                                  i, FRAME_NAME_MAX);
    }
    frames_job j = {.frames = frames, .uid = q->env->uid};
    int r = tp_store_call_sync(q->env->store, frames_add_fn, &j, err, sizeof(err));
    if (r < 0)
        return tp__query_fail(q, r, "%s", err);
    return tp__query_reply_json(q,
                                json_pack("{s:I}", "added", (json_int_t)json_array_size(frames)));
}

/* Nearest rank: the smallest duration with at least p% of the frames at or
 * below it, so the answer is always one of the measured durations. */
static double rank_ms(const int64_t *d, size_t n, size_t p)
{
    size_t k = (p * n + 99) / 100;
    return (double)d[k ? k - 1 : 0] / 1e6;
}

static json_t *name_stats(const char *name, const int64_t *d, size_t n, int64_t first_ns,
                          int64_t last_end_ns, double total_ns, int64_t window_ns, int64_t w)
{
    double span_s = (double)(last_end_ns - first_ns) / 1e9;
    json_t *o = json_pack("{s:s,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:o,s:f}", "name", name, "count",
                          (json_int_t)n, "min_ms", (double)d[0] / 1e6, "avg_ms", total_ns / n / 1e6,
                          "max_ms", (double)d[n - 1] / 1e6, "p50_ms", rank_ms(d, n, 50), "p95_ms",
                          rank_ms(d, n, 95), "p99_ms", rank_ms(d, n, 99), "frames_per_s",
                          span_s > 0 ? json_real((double)n / span_s) : json_null(), "first",
                          (double)first_ns / 1e9);
    /* With windows: where this one begins (Unix seconds), and its length. */
    if (o && window_ns > 0) {
        json_object_set_new(o, "window_start", json_real((double)w * (double)window_ns / 1e9));
        json_object_set_new(o, "window_s", json_real((double)window_ns / 1e9));
    }
    return o;
}

int tp_query_frames(tp_qctx *q)
{
    const char *name;
    double since, window;
    sqlite3_stmt *st = NULL;
    TP_VEC(int64_t) d = TP_VEC_INIT; /* the durations of the current group, sorted */
    char cur[FRAME_NAME_MAX + 1] = "";
    int64_t first_ns = 0, last_end_ns = 0, cur_w = 0;
    double total_ns = 0;
    int r = 0;
    if (tp__query_arg_str(q, "name", NULL, &name) < 0 ||
        tp__query_arg_num(q, "since", 0, &since) < 0 ||
        tp__query_arg_num(q, "window", 0, &window) < 0)
        return q->res->code;
    /* A window of at least a millisecond and at most a year; 0: none. */
    if (window != 0 && !(window >= 0.001 && window <= 366 * 86400.0))
        return tp__query_fail(
            q, -EINVAL, "window must be from 0.001 to 31622400 seconds (0: none), got %g", window);
    int64_t window_ns = (int64_t)(window * 1e9);
    json_t *out = json_array();
    if (sqlite3_prepare_v2(q->db,
                           "SELECT name, start_ns, dur_ns, CASE WHEN ?4 > 0 THEN start_ns / ?4"
                           " ELSE 0 END AS w FROM frames"
                           " WHERE (?1 = 0 OR uid = ?1) AND (?2 IS NULL OR name = ?2)"
                           " AND start_ns >= ?3 ORDER BY name, w, dur_ns",
                           -1, &st, NULL) != SQLITE_OK) {
        r = tp__query_dberr(q, "reading frames");
        goto out;
    }
    sqlite3_bind_int64(st, 1, q->env->uid);
    if (name)
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)(since * 1e9));
    sqlite3_bind_int64(st, 4, window_ns);
    for (;;) {
        int rc = sqlite3_step(st);
        const char *nm = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        int64_t w = rc == SQLITE_ROW ? sqlite3_column_int64(st, 3) : 0;
        if (d.size && (!nm || strcmp(nm, cur) != 0 || w != cur_w)) {
            json_array_append_new(out, name_stats(cur, d.items, d.size, first_ns, last_end_ns,
                                                  total_ns, window_ns, cur_w));
            d.size = 0;
        }
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            r = tp__query_dberr(q, "reading frames");
            goto out;
        }
        int64_t start = sqlite3_column_int64(st, 1), dur = sqlite3_column_int64(st, 2);
        if (tp_vec_grow1(&d) < 0) {
            r = tp__query_fail(q, -ENOMEM, "out of memory");
            goto out;
        }
        if (d.size == 0) {
            snprintf(cur, sizeof(cur), "%s", nm);
            cur_w = w;
            first_ns = start;
            last_end_ns = start + dur;
            total_ns = 0;
        }
        if (start < first_ns)
            first_ns = start;
        if (start + dur > last_end_ns)
            last_end_ns = start + dur;
        total_ns += (double)dur;
        d.items[d.size++] = dur;
    }
    sqlite3_finalize(st);
    st = NULL;
    tp_vec_free(&d);
    return tp__query_reply_json(q, json_pack("{s:o}", "frames", out));
out:
    sqlite3_finalize(st);
    tp_vec_free(&d);
    json_decref(out);
    return r;
}

/* The graph's points: at most FRAME_POINTS_MAX, so one answer stays a few
 * MB whatever a client stored; total says how many matched. */
#define FRAME_POINTS_DEFAULT 5000
#define FRAME_POINTS_MAX     100000

int tp_query_frame_points(tp_qctx *q)
{
    const char *name;
    double since;
    int64_t limit;
    sqlite3_stmt *st = NULL;
    if (tp__query_arg_str(q, "name", NULL, &name) < 0 ||
        tp__query_arg_num(q, "since", 0, &since) < 0 ||
        tp__query_arg_int(q, "limit", FRAME_POINTS_DEFAULT, &limit) < 0)
        return q->res->code;
    if (!name)
        return tp__query_fail(q, -EINVAL, "frame_points needs \"name\": a frame name");
    if (limit < 1 || limit > FRAME_POINTS_MAX)
        return tp__query_fail(q, -EINVAL, "limit must be from 1 to %d, got %lld", FRAME_POINTS_MAX,
                              (long long)limit);
    int64_t total = 0;
    /* The newest limit frames, oldest first, each with the count of all
     * that matched (a window function: it counts before the LIMIT). */
    if (sqlite3_prepare_v2(q->db,
                           "SELECT start_ns, dur_ns, trace_id, total FROM (SELECT start_ns, dur_ns,"
                           " trace_id, count(*) OVER () AS total FROM frames"
                           " WHERE (?1 = 0 OR uid = ?1) AND name = ?2 AND start_ns >= ?3"
                           " ORDER BY start_ns DESC LIMIT ?4) ORDER BY start_ns",
                           -1, &st, NULL) != SQLITE_OK)
        return tp__query_dberr(q, "reading frames");
    sqlite3_bind_int64(st, 1, q->env->uid);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)(since * 1e9));
    sqlite3_bind_int64(st, 4, limit);
    json_t *points = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *tid = (const char *)sqlite3_column_text(st, 2);
        total = sqlite3_column_int64(st, 3);
        json_t *p = json_pack("[f,f,s?]", (double)sqlite3_column_int64(st, 0) / 1e9,
                              (double)sqlite3_column_int64(st, 1) / 1e6, tid);
        if (!p || json_array_append_new(points, p) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(points);
        return rc == SQLITE_NOMEM ? tp__query_fail(q, -ENOMEM, "out of memory")
                                  : tp__query_dberr(q, "reading frames");
    }
    return tp__query_reply_json(
        q, json_pack("{s:s,s:I,s:o}", "name", name, "total", (json_int_t)total, "points", points));
}
