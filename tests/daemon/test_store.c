/* tphd's store: open/migrate, ops through the writer thread, recovery of
 * traces left open, deletion, retention, readers. Every test works on a
 * fresh database file in a temporary directory. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event.h"
#include "store.h"
#include "tp_err.h"
#include "util.h"

static char dir[256], path[300];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tp_store_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/traces.db", dir);
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown);

/* Completions, collected for the test thread. */
typedef struct collector {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    tp_store_op *ops[64];
    int n;
} collector;

static collector col = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};

static void on_done(tp_store_op *op, void *ud)
{
    collector *c = ud;
    pthread_mutex_lock(&c->mu);
    c->ops[c->n++] = op;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&col.mu);
    while (col.n < n)
        pthread_cond_wait(&col.cond, &col.mu);
    pthread_mutex_unlock(&col.mu);
}

static tp_store *open_store(tp_store_info *info)
{
    tp_store_opts o = {.path = path, .done = on_done, .done_ud = &col};
    tp_store *s = NULL;
    char err[256] = "";
    col.n = 0;
    int r = tp_store_open(&o, &s, info, err, sizeof(err));
    cr_assert_eq(r, 0, "open: %s", err);
    return s;
}

static int64_t q_int(tp_store *s, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char err[128];
    cr_assert_eq(tp_store_reader_get(s, &db, err, sizeof(err)), 0);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    tp_store_reader_put(s, db);
    return v;
}

static char *q_text(tp_store *s, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char err[128];
    cr_assert_eq(tp_store_reader_get(s, &db, err, sizeof(err)), 0);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *v = t ? strdup((const char *)t) : NULL;
    sqlite3_finalize(st);
    tp_store_reader_put(s, db);
    return v;
}

static void op_begin(tp_store_op *op, tp_store_trace *t, const char *id, int64_t start)
{
    memset(op, 0, sizeof(*op));
    op->kind = TP_STORE_BEGIN;
    op->trace = t;
    snprintf(op->begin.client_id, sizeof(op->begin.client_id), "%s", id);
    op->begin.label = "lbl";
    op->begin.uid = 1000;
    op->begin.pid = 42;
    op->begin.pstart = 7;
    op->begin.host = "h";
    op->begin.argv_json = "[\"a\"]";
    op->begin.wall_start_ns = start;
}

static const tp_store_func funcs[] = {{0, "m", "f", "m.py", 3}, {1, "m", "g", "m.py", 9}};
static tp_event recs[4] = {
    {TP_EV_CALL, 0, 0, 0, 100},
    {TP_EV_CALL, 0, 0, 1, 200},
    {TP_EV_RETURN, 0, 0, 0, 300},
    {TP_EV_RETURN, 0, 0, 0, 400},
};

static void op_events(tp_store_op *op, tp_store_trace *t, uint32_t seq)
{
    memset(op, 0, sizeof(*op));
    op->kind = TP_STORE_EVENTS;
    op->trace = t;
    op->seq = seq;
    op->records = recs;
    op->nrecords = 4;
    op->text = "";
    op->text_len = 0;
    op->ncalls = 2;
    op->max_t_ns = 400;
    op->funcs = seq == 0 ? funcs : NULL;
    op->nfuncs = seq == 0 ? 2 : 0;
    op->bytes = 100;
}

static void op_end(tp_store_op *op, tp_store_trace *t, int kind)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->trace = t;
    op->end_ns = 500;
    op->call_count = 4;
    op->dropped = 1;
    op->limit_reason = kind == TP_STORE_END ? "max_calls" : NULL;
}

Test(store, open_creates_a_private_migrated_database)
{
    tp_store_info info;
    tp_store *s = open_store(&info);
    struct stat st;
    cr_assert_eq(info.schema_from, 0);
    cr_assert_eq(info.traces, 0);
    cr_assert_eq(q_int(s, "PRAGMA user_version"), TP_STORE_SCHEMA);
    cr_assert_eq(q_int(s, "PRAGMA page_size"), 16384);
    cr_assert_eq(q_int(s, "PRAGMA auto_vacuum"), 2);
    char *mode = q_text(s, "PRAGMA journal_mode");
    cr_assert_str_eq(mode, "wal");
    free(mode);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_str_eq(tp_store_path(s), path);
    tp_store_close(s);
    /* Reopening migrates nothing. */
    s = open_store(&info);
    cr_assert_eq(info.schema_from, TP_STORE_SCHEMA);
    tp_store_close(s);
}

Test(store, a_trace_goes_in_and_ends_complete)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op ops[4];
    op_begin(&ops[0], &tr, "0123456789abcdef0123456789abcdef", 1700000000000000000LL);
    op_events(&ops[1], &tr, 0);
    op_events(&ops[2], &tr, 1);
    op_end(&ops[3], &tr, TP_STORE_END);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(tp_store_submit(s, &ops[i]), 0);
    wait_done(4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(col.ops[i], &ops[i], "completions come in submission order");
        cr_assert_eq(ops[i].result, 0, "op %d: %s", i, ops[i].errmsg);
    }
    cr_assert_gt(tr.rowid, 0);
    cr_assert_str_eq(tr.id, "0123456789abcdef0123456789abcdef");
    cr_assert_str_eq(ops[3].id, tr.id);
    /* The END's completion came after its commit: a reader sees it. */
    cr_assert_eq(q_int(s, "SELECT status FROM traces"), TP_TRACE_COMPLETE);
    cr_assert_eq(q_int(s, "SELECT calls FROM traces"), 4);
    cr_assert_eq(q_int(s, "SELECT dropped FROM traces"), 1);
    cr_assert_eq(q_int(s, "SELECT end_ns FROM traces"), 500);
    cr_assert_eq(q_int(s, "SELECT nevents FROM traces"), 8);
    cr_assert_eq(q_int(s, "SELECT nchunks FROM traces"), 2);
    cr_assert_eq(q_int(s, "SELECT last_ns FROM traces"), 400);
    cr_assert_eq(q_int(s, "SELECT uid FROM traces"), 1000);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM funcs"), 2);
    cr_assert_eq(q_int(s, "SELECT lineno FROM funcs WHERE fid = 1"), 9);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM chunks"), 2);
    cr_assert_eq(q_int(s, "SELECT length(records) FROM chunks WHERE seq = 1"), 64);
    char *lr = q_text(s, "SELECT limit_reason FROM traces");
    cr_assert_str_eq(lr, "max_calls");
    free(lr);
    tp_store_close(s);
}

Test(store, an_id_collision_gets_a_fresh_id)
{
    tp_store *s = open_store(NULL);
    tp_store_trace a = {0}, b = {0};
    tp_store_op ops[2];
    op_begin(&ops[0], &a, "ffffffffffffffffffffffffffffffff", 1);
    op_begin(&ops[1], &b, "ffffffffffffffffffffffffffffffff", 2);
    tp_store_submit(s, &ops[0]);
    tp_store_submit(s, &ops[1]);
    wait_done(2);
    cr_assert_eq(ops[1].result, 0);
    cr_assert_str_eq(a.id, "ffffffffffffffffffffffffffffffff");
    cr_assert_str_neq(b.id, a.id);
    cr_assert_eq(strlen(b.id), 32);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces WHERE client_id = "
                          "'ffffffffffffffffffffffffffffffff'"),
                 2);
    tp_store_close(s);
}

Test(store, ops_after_a_failed_begin_are_skipped)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {.err = TP_ERR_DB}; /* as if BEGIN had failed */
    tp_store_op ops[2];
    op_events(&ops[0], &tr, 0);
    op_end(&ops[1], &tr, TP_STORE_END);
    tp_store_submit(s, &ops[0]);
    tp_store_submit(s, &ops[1]);
    wait_done(2);
    cr_assert_eq(ops[0].result, TP_ERR_DB);
    cr_assert_eq(ops[1].result, TP_ERR_DB);
    cr_assert_str_eq(ops[1].errmsg, "this trace could not be stored");
    cr_assert_eq(q_int(s, "SELECT count(*) FROM chunks"), 0);
    tp_store_close(s);
}

Test(store, abort_marks_truncated_at_the_last_event)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op ops[3];
    op_begin(&ops[0], &tr, "0000000000000000000000000000000a", 5);
    op_events(&ops[1], &tr, 0);
    op_end(&ops[2], &tr, TP_STORE_ABORT);
    for (int i = 0; i < 3; i++)
        tp_store_submit(s, &ops[i]);
    wait_done(3);
    cr_assert_eq(ops[2].result, 0);
    cr_assert_eq(q_int(s, "SELECT status FROM traces"), TP_TRACE_TRUNCATED);
    cr_assert_eq(q_int(s, "SELECT end_ns FROM traces"), 400);
    char *lr = q_text(s, "SELECT limit_reason FROM traces");
    cr_assert_str_eq(lr, "disconnected");
    free(lr);
    tp_store_close(s);
}

Test(store, traces_left_open_are_truncated_at_the_next_open)
{
    tp_store_info info;
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op ops[2];
    op_begin(&ops[0], &tr, "0000000000000000000000000000000b", 5);
    op_events(&ops[1], &tr, 0);
    tp_store_submit(s, &ops[0]);
    tp_store_submit(s, &ops[1]);
    wait_done(2);
    tp_store_close(s);
    s = open_store(&info);
    cr_assert_eq(info.truncated_now, 1);
    cr_assert_eq(info.traces, 1);
    cr_assert_eq(info.unfinalized, 1);
    cr_assert_eq(q_int(s, "SELECT status FROM traces"), TP_TRACE_TRUNCATED);
    cr_assert_eq(q_int(s, "SELECT end_ns FROM traces"), 400);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM chunks"), 1);
    tp_store_close(s);
}

static int fail_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    /* A write that must not survive: the savepoint rolls it back. */
    sqlite3_exec(db, "UPDATE traces SET label = 'changed'", NULL, NULL, NULL);
    snprintf(op->errmsg, sizeof(op->errmsg), "nope");
    return -EIO;
}

static int count_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM traces", -1, &st, NULL);
    sqlite3_step(st);
    *(int64_t *)arg = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

Test(store, a_failing_call_is_rolled_back_alone)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op op;
    char msg[64];
    int64_t n = -1;
    op_begin(&op, &tr, "0000000000000000000000000000000c", 5);
    tp_store_submit(s, &op);
    cr_assert_eq(tp_store_call_sync(s, fail_fn, NULL, msg, sizeof(msg)), -EIO);
    cr_assert_str_eq(msg, "nope");
    cr_assert_eq(tp_store_call_sync(s, count_fn, &n, NULL, 0), 0);
    cr_assert_eq(n, 1);
    char *label = q_text(s, "SELECT label FROM traces");
    cr_assert_str_eq(label, "lbl");
    free(label);
    cr_assert_eq(tp_store_barrier(s), 0);
    tp_store_close(s);
}

static int delete_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    return tp_store_delete_trace(db, *(int64_t *)arg);
}

static void op_lines(tp_store_op *op, tp_store_trace *t, const char *json)
{
    memset(op, 0, sizeof(*op));
    op->kind = TP_STORE_LINES;
    op->trace = t;
    op->lines_json = json;
    op->lines_len = strlen(json);
}

Test(store, lines_are_stored_with_their_trace_as_sent)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op ops[4];
    op_begin(&ops[0], &tr, "0000000000000000000000000000000e", 5);
    op_events(&ops[1], &tr, 0);
    op_lines(&ops[2], &tr, "[{\"call\": 0, \"lines\": []}]");
    op_end(&ops[3], &tr, TP_STORE_END);
    for (int i = 0; i < 4; i++)
        tp_store_submit(s, &ops[i]);
    wait_done(4);
    cr_assert_eq(ops[2].result, 0, "%s", ops[2].errmsg);
    char *j = q_text(s, "SELECT json FROM trace_lines");
    cr_assert_str_eq(j, "[{\"call\": 0, \"lines\": []}]");
    free(j);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM trace_lines JOIN traces ON traces.rowid = trace"),
                 1);
    tp_store_close(s);
}

Test(store, source_is_stored_with_its_trace_as_sent)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op ops[5];
    op_begin(&ops[0], &tr, "0000000000000000000000000000000f", 5);
    op_events(&ops[1], &tr, 0);
    op_lines(&ops[2], &tr, "[]");
    op_lines(&ops[3], &tr, "{\"functions\": []}");
    ops[3].kind = TP_STORE_SOURCE;
    op_end(&ops[4], &tr, TP_STORE_END);
    for (int i = 0; i < 5; i++)
        tp_store_submit(s, &ops[i]);
    wait_done(5);
    cr_assert_eq(ops[3].result, 0, "%s", ops[3].errmsg);
    char *j = q_text(s, "SELECT json FROM trace_source");
    cr_assert_str_eq(j, "{\"functions\": []}");
    free(j);
    j = q_text(s, "SELECT json FROM trace_lines");
    cr_assert_str_eq(j, "[]");
    free(j);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM trace_source JOIN traces ON traces.rowid = trace"),
                 1);
    cr_assert_eq(tp_store_call_sync(s, delete_fn, &tr.rowid, NULL, 0), 0);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM trace_source"), 0);
    tp_store_close(s);
}

Test(store, delete_removes_every_row_of_a_trace)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op ops[4];
    op_begin(&ops[0], &tr, "0000000000000000000000000000000d", 5);
    op_events(&ops[1], &tr, 0);
    op_lines(&ops[2], &tr, "[]");
    op_end(&ops[3], &tr, TP_STORE_END);
    for (int i = 0; i < 4; i++)
        tp_store_submit(s, &ops[i]);
    wait_done(4);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM trace_lines"), 1);
    cr_assert_eq(tp_store_call_sync(s, delete_fn, &tr.rowid, NULL, 0), 0);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces"), 0);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM chunks"), 0);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM funcs"), 0);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM trace_lines"), 0);
    tp_store_close(s);
}

Test(store, retention_deletes_old_finished_traces_only)
{
    tp_store *s = open_store(NULL);
    tp_store_trace t[3] = {{0}};
    tp_store_op ops[5];
    int64_t now = tp_util_now_ns(), day = 86400LL * 1000000000LL, deleted = -1;
    op_begin(&ops[0], &t[0], "00000000000000000000000000000001", now - 10 * day);
    op_end(&ops[1], &t[0], TP_STORE_END);
    op_begin(&ops[2], &t[1], "00000000000000000000000000000002", now - 10 * day); /* open */
    op_begin(&ops[3], &t[2], "00000000000000000000000000000003", now - day);
    op_end(&ops[4], &t[2], TP_STORE_END);
    for (int i = 0; i < 5; i++)
        tp_store_submit(s, &ops[i]);
    wait_done(5);
    cr_assert_eq(tp_store_retention(s, 7 * 86400.0, 0, &deleted), 0);
    cr_assert_eq(deleted, 1);
    char *left = q_text(s, "SELECT group_concat(substr(id, 32), ',') FROM "
                           "(SELECT id FROM traces ORDER BY id)");
    cr_assert_str_eq(left, "2,3");
    free(left);
    tp_store_close(s);
}

Test(store, size_limit_deletes_the_oldest_first)
{
    tp_store *s = open_store(NULL);
    enum { N = 8 };
    static tp_event big[4096];
    tp_store_trace t[N];
    tp_store_op ops[3 * N];
    int64_t deleted = -1;
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 4096; i++)
        big[i] = (tp_event){TP_EV_THREAD, 0, 0, (uint32_t)i, (uint64_t)i};
    for (int k = 0; k < N; k++) {
        char id[33];
        snprintf(id, sizeof(id), "%032x", k + 1);
        op_begin(&ops[3 * k], &t[k], id, 1000 + k);
        op_events(&ops[3 * k + 1], &t[k], 0);
        ops[3 * k + 1].records = big; /* 64 KiB per trace */
        ops[3 * k + 1].nrecords = 4096;
        op_end(&ops[3 * k + 2], &t[k], TP_STORE_END);
    }
    for (int i = 0; i < 3 * N; i++)
        tp_store_submit(s, &ops[i]);
    wait_done(3 * N);
    /* A 696 KiB limit keeps half of it for the pages in use (the rest is the
     * WAL's): 348 KiB, about half of the eight traces above an empty schema-4
     * database (whose frames table and index are two 16 KiB pages more than
     * schema 2's, and trace_lines one more). */
    cr_assert_eq(tp_store_retention(s, 0, 696 * 1024, &deleted), 0);
    cr_assert_geq(deleted, 3);
    cr_assert_lt(deleted, N);
    /* The survivors are the newest ones. */
    cr_assert_eq(q_int(s, "SELECT min(wall_start_ns) FROM traces"), 1000 + deleted);
    cr_assert_leq(q_int(s, "PRAGMA page_count") * 16384, 448 * 1024);
    tp_store_close(s);
}

#define TRACE_A "aa000000000000000000000000000001"
#define TRACE_B "bb000000000000000000000000000002"

/* Rewrites a new database into an older schema's shape with sql (which also
 * sets user_version), then opens it: the migrations ran from `from` to
 * today's schema. Returns the open store. */
static tp_store *open_downgraded(const char *sql, int from)
{
    tp_store_opts o = {.path = path};
    tp_store *s = NULL;
    tp_store_info info;
    char err[256];
    sqlite3 *db;
    cr_assert_eq(tp_store_open(&o, &s, NULL, err, sizeof(err)), 0, "%s", err);
    tp_store_close(s);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_eq(tp_store_open(&o, &s, &info, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(info.schema_from, from);
    cr_assert_eq(q_int(s, "PRAGMA user_version"), TP_STORE_SCHEMA);
    return s;
}

/* What migrations 6 and 7 add, and one finished trace. */
#define DROP_SOURCE "DROP TABLE trace_source;"
#define DROP_ENV                                                                                   \
    DROP_SOURCE "ALTER TABLE traces DROP COLUMN platform; ALTER TABLE traces DROP COLUMN cwd;"
#define INSERT_A                                                                                   \
    "INSERT INTO traces (id, client_id, uid, wall_start_ns, received_ns, status, finalized)"       \
    " VALUES ('" TRACE_A "', '" TRACE_A "', 1, 1, 1, 1, 1);"

Test(store, schema_1_migrates_to_2_with_export_columns)
{
    /* A schema-1 file: today's tables without what migrations 2 to 6 add. */
    tp_store *s =
        open_downgraded("DROP TABLE frames; DROP TABLE trace_lines;"
                        "DROP INDEX traces_otlp_pending; DROP INDEX traces_otel_trace;"
                        "ALTER TABLE traces DROP COLUMN otlp;"
                        "ALTER TABLE traces DROP COLUMN otel_trace;" INSERT_A
                        "INSERT INTO traces (id, client_id, uid, wall_start_ns,"
                        " received_ns, status, finalized) VALUES ('" TRACE_B "', '" TRACE_B
                        "', 1, 2, 2, 0, 0);" DROP_ENV "PRAGMA user_version = 1;",
                        1);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces WHERE otlp = 0"), 2,
                 "nothing finished before is queued for export");
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces WHERE otel_trace = '" TRACE_A "'"), 1,
                 "a finalized trace is its own OpenTelemetry trace");
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces WHERE otel_trace IS NULL"), 1,
                 "an unfinalized one gets its id when it is finalized");
    tp_store_close(s);
}

Test(store, schema_2_migrates_to_3_with_an_empty_frames_table)
{
    tp_store *s = open_downgraded(
        DROP_ENV "DROP TABLE frames; DROP TABLE trace_lines; PRAGMA user_version = 2;", 2);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM frames"), 0);
    tp_store_close(s);
}

Test(store, schema_3_migrates_to_4_keeping_its_traces)
{
    tp_store *s = open_downgraded(
        "DROP TABLE trace_lines; ALTER TABLE frames DROP COLUMN trace_id;" DROP_ENV INSERT_A
        "PRAGMA user_version = 3;",
        3);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces"), 1);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM trace_lines"), 0);
    tp_store_close(s);
}

Test(store, schema_4_migrates_to_5_keeping_its_frames)
{
    tp_store *s = open_downgraded("ALTER TABLE frames DROP COLUMN trace_id;"
                                  "INSERT INTO frames VALUES (1, 'req', 5, 7);" DROP_ENV
                                  "PRAGMA user_version = 4;",
                                  4);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM frames WHERE dur_ns = 7 AND trace_id IS NULL"), 1);
    tp_store_close(s);
}

Test(store, schema_5_migrates_to_6_with_the_environment_columns)
{
    tp_store *s = open_downgraded(DROP_ENV INSERT_A "PRAGMA user_version = 5;", 5);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces WHERE platform IS NULL AND cwd IS NULL"), 1);
    tp_store_close(s);
}

Test(store, schema_6_migrates_to_7_with_an_empty_source_table)
{
    tp_store *s = open_downgraded(DROP_SOURCE INSERT_A "PRAGMA user_version = 6;", 6);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM traces"), 1);
    cr_assert_eq(q_int(s, "SELECT count(*) FROM trace_source"), 0);
    tp_store_close(s);
}

Test(store, a_newer_schema_is_refused)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    /* A tphd database (its application id) that a newer tphd wrote. */
    cr_assert_eq(sqlite3_exec(db, "PRAGMA application_id = 1414547524; PRAGMA user_version = 99",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    tp_store_opts o = {.path = path};
    tp_store *s = NULL;
    char err[256];
    cr_assert_eq(tp_store_open(&o, &s, NULL, err, sizeof(err)), TP_ERR_VERSION);
    cr_assert_null(s);
    cr_assert(strstr(err, "schema version 99") != NULL, "%s", err);
}

Test(store, a_file_that_is_not_a_database_is_refused)
{
    FILE *f = fopen(path, "w");
    fputs("this is not a database, it is a text file long enough to have a header......", f);
    fclose(f);
    tp_store_opts o = {.path = path};
    tp_store *s = NULL;
    char err[256] = "";
    cr_assert_lt(tp_store_open(&o, &s, NULL, err, sizeof(err)), 0);
    cr_assert(strstr(err, "not a database") != NULL, "%s", err);
}

Test(store, queued_bytes_count_until_completion)
{
    tp_store *s = open_store(NULL);
    tp_store_trace tr = {0};
    tp_store_op op;
    op_begin(&op, &tr, "0000000000000000000000000000000e", 5);
    op.bytes = 12345;
    cr_assert_eq(tp_store_queued_bytes(s), 0);
    tp_store_submit(s, &op);
    wait_done(1);
    cr_assert_eq(tp_store_queued_bytes(s), 0);
    tp_store_close(s);
}

Test(store, a_database_in_use_is_refused)
{
    tp_store *s = open_store(NULL), *second = NULL;
    tp_store_opts o = {.path = path};
    char err[256] = "";
    cr_assert_eq(tp_store_open(&o, &second, NULL, err, sizeof(err)), -EBUSY);
    cr_assert_null(second);
    cr_assert(strstr(err, "is in use by another tphd") != NULL, "%s", err);
    tp_store_close(s);
    /* Free again once the first one closed. */
    s = open_store(NULL);
    tp_store_close(s);
}
