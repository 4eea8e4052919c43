/* The tree cache: a finished trace is rebuilt once and then served from
 * memory; an open trace, or one whose row changed, is rebuilt every time;
 * the least recently used entry goes first. Whether a tree came from the
 * cache is seen by deleting the trace's stored chunks behind its back: a
 * rebuild then finds no calls. Criterion runs every test in its own
 * process, so each starts with an empty cache. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"
#include "rebuild.h"
#include "store.h"
#include "tcache.h"
#include "tp_err.h"

static char dir[256], path[300];
static tp_store *store;
static sqlite3 *side; /* a writable connection that changes rows behind the cache */

static void setup(void)
{
    tp_store_opts o = {0};
    tp_store_info info;
    char err[256] = "";

    snprintf(dir, sizeof(dir), "/tmp/tp_tcache_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/traces.db", dir);
    o.path = path;
    cr_assert_eq(tp_store_open(&o, &store, &info, err, sizeof(err)), 0, "open: %s", err);
    cr_assert_eq(sqlite3_open(path, &side), SQLITE_OK);
    sqlite3_busy_timeout(side, 5000);
}

static void teardown(void)
{
    char cmd[400];

    tp_tcache_clear();
    sqlite3_close(side);
    tp_store_close(store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(tcache, .init = setup, .fini = teardown);

/* Import tests/e2e/data/small.json (3 calls); returns its rowid. */
static int64_t import_small(void)
{
    char p[512], *text, *args;
    FILE *f;
    long n;
    tp_query_env env = {.store = store, .uid = 1000, .version = "2.0.0"};
    tp_query_result res;
    json_t *a;

    snprintf(p, sizeof(p), "%s/../../e2e/data/small.json", TP_TEST_DATA);
    f = fopen(p, "rb");
    cr_assert_not_null(f, "%s", p);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    a = json_pack("{s:s}", "json", text);
    args = json_dumps(a, JSON_COMPACT);
    memset(&res, 0, sizeof(res));
    tp_query_run(&env, "import", args, &res);
    cr_assert_eq(res.code, 0, "import: %s", res.message);
    int64_t rowid = res.created_rowid;
    tp_query_result_free(&res);
    free(args);
    json_decref(a);
    free(text);
    return rowid;
}

static void side_exec(const char *sql)
{
    char *msg = NULL;

    cr_assert_eq(sqlite3_exec(side, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg);
}

/* The number of nodes of rowid's tree as the cache gives it, or -1 when
 * tp_tcache_get fails. */
static long nodes_of(int64_t rowid)
{
    sqlite3 *db;
    tp_tcache_entry *e = NULL;
    char err[256];
    long n = -1;

    cr_assert_eq(tp_store_reader_get(store, &db, err, sizeof(err)), 0);
    if (tp_tcache_get(db, rowid, &e, err, sizeof(err)) == 0)
        n = (long)tp_tcache_raw(e)->nnodes;
    tp_tcache_put(e);
    tp_store_reader_put(store, db);
    return n;
}

Test(tcache, finished_trace_is_served_from_memory_after_first_get)
{
    int64_t rowid = import_small();

    cr_assert_eq(nodes_of(rowid), 3);
    side_exec("DELETE FROM chunks");
    cr_assert_eq(nodes_of(rowid), 3);
}

Test(tcache, without_a_first_get_the_tree_is_rebuilt_from_the_rows)
{
    int64_t rowid = import_small();

    side_exec("DELETE FROM chunks");
    cr_assert_eq(nodes_of(rowid), 0);
}

Test(tcache, open_trace_is_rebuilt_every_time)
{
    int64_t rowid = import_small();
    char sql[128];

    snprintf(sql, sizeof(sql), "UPDATE traces SET status = %d WHERE rowid = %lld", TP_TRACE_OPEN,
             (long long)rowid);
    side_exec(sql);
    cr_assert_eq(nodes_of(rowid), 3);
    side_exec("DELETE FROM chunks");
    cr_assert_eq(nodes_of(rowid), 0);
}

Test(tcache, a_changed_event_count_is_another_trace)
{
    int64_t rowid = import_small();

    cr_assert_eq(nodes_of(rowid), 3);
    side_exec("DELETE FROM chunks");
    side_exec("UPDATE traces SET nevents = nevents + 1");
    cr_assert_eq(nodes_of(rowid), 0);
}

Test(tcache, a_deleted_trace_is_not_found)
{
    int64_t rowid = import_small();
    sqlite3 *db;
    tp_tcache_entry *e = NULL;
    char err[256];

    cr_assert_eq(nodes_of(rowid), 3);
    side_exec("DELETE FROM traces");
    cr_assert_eq(tp_store_reader_get(store, &db, err, sizeof(err)), 0);
    cr_assert_eq(tp_tcache_get(db, rowid, &e, err, sizeof(err)), TP_ERR_NOT_FOUND);
    cr_assert_str_eq(err, "the trace was just deleted");
    tp_store_reader_put(store, db);
}

Test(tcache, folded_tree_is_made_once_per_entry)
{
    int64_t rowid = import_small();
    sqlite3 *db;
    tp_tcache_entry *e = NULL;
    const tp_tree *f1 = NULL, *f2 = NULL;
    char err[256];

    cr_assert_eq(tp_store_reader_get(store, &db, err, sizeof(err)), 0);
    cr_assert_eq(tp_tcache_get(db, rowid, &e, err, sizeof(err)), 0);
    cr_assert_eq(tp_tcache_folded(e, &f1), 0);
    tp_tcache_put(e);
    cr_assert_eq(tp_tcache_get(db, rowid, &e, err, sizeof(err)), 0);
    cr_assert_eq(tp_tcache_folded(e, &f2), 0);
    cr_assert_eq(f1, f2);
    cr_assert(f1->folded);
    tp_tcache_put(e);
    tp_store_reader_put(store, db);
}

Test(tcache, clear_drops_every_idle_tree)
{
    int64_t rowid = import_small();

    cr_assert_eq(nodes_of(rowid), 3);
    tp_tcache_clear();
    side_exec("DELETE FROM chunks");
    cr_assert_eq(nodes_of(rowid), 0);
}

Test(tcache, least_recently_used_goes_first_past_max_entries)
{
    int64_t rows[TP_TCACHE_MAX_ENTRIES + 1];

    for (int i = 0; i <= TP_TCACHE_MAX_ENTRIES; i++)
        rows[i] = import_small();
    /* Fill the cache, touching the first so the second is the oldest. */
    for (int i = 0; i < TP_TCACHE_MAX_ENTRIES; i++)
        cr_assert_eq(nodes_of(rows[i]), 3);
    cr_assert_eq(nodes_of(rows[0]), 3);
    cr_assert_eq(nodes_of(rows[TP_TCACHE_MAX_ENTRIES]), 3); /* one too many */
    side_exec("DELETE FROM chunks");
    /* Hits first: a miss would insert its rebuilt tree and evict another. */
    cr_assert_eq(nodes_of(rows[0]), 3);
    for (int i = 2; i <= TP_TCACHE_MAX_ENTRIES; i++)
        cr_assert_eq(nodes_of(rows[i]), 3, "entry %d", i);
    cr_assert_eq(nodes_of(rows[1]), 0, "the least recently used was evicted");
}

Test(tcache, offer_of_a_small_trace_is_declined)
{
    int64_t rowid = import_small();
    sqlite3 *db;
    tp_tree *raw = NULL;
    char err[256];

    /* The tree finalization would offer: rebuilt by the caller, 3 calls. */
    cr_assert_eq(tp_store_reader_get(store, &db, err, sizeof(err)), 0);
    cr_assert_eq(tp_rebuild_tree(db, rowid, &raw, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(raw->nnodes, 3);
    cr_assert_eq(tp_tcache_offer(db, rowid, raw, NULL), 0); /* and frees raw */
    tp_store_reader_put(store, db);
    side_exec("DELETE FROM chunks");
    cr_assert_eq(nodes_of(rowid), 0);
}
