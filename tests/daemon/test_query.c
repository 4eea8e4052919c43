/* The query ops (docs/QUERY.md) run directly on a store, without a socket:
 * import, list, get, tree, stats, status, clean, and the errors for unknown
 * ops, bad arguments and IDs. Each test works on a fresh database. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"
#include "store.h"
#include "tp_err.h"

static char dir[256], path[300];
static tp_store *store;

static void setup(void)
{
    tp_store_opts o = {0};
    tp_store_info info;
    char err[256] = "";

    snprintf(dir, sizeof(dir), "/tmp/tp_query_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/traces.db", dir);
    o.path = path;
    cr_assert_eq(tp_store_open(&o, &store, &info, err, sizeof(err)), 0, "open: %s", err);
}

static void teardown(void)
{
    char cmd[400];

    tp_store_close(store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(query, .init = setup, .fini = teardown);

static tp_query_env env_for(uint32_t uid)
{
    tp_query_env e = {
        .store = store,
        .uid = uid,
        .pid = 4242,
        .version = "2.0.0",
        .daemon_pid = 1,
        .socket_path = "/run/test.sock",
        .clients = 3,
        .events_total = 99,
    };
    return e;
}

/* Run op as uid and return its result (code, message, body). */
static tp_query_result run_as(uint32_t uid, const char *op, const char *args)
{
    tp_query_env e = env_for(uid);
    tp_query_result res;

    memset(&res, 0, sizeof(res));
    tp_query_run(&e, op, args, &res);
    return res;
}

/* Run op as uid 1000, expect success and a JSON body; returns it parsed. */
static json_t *ok_json(const char *op, const char *args)
{
    tp_query_result res = run_as(1000, op, args);
    json_error_t je;
    json_t *j;

    cr_assert_eq(res.code, 0, "%s: %s", op, res.message);
    cr_assert_str_eq(res.content_type, "application/json");
    j = json_loadb(res.body.data, res.body.len, 0, &je);
    cr_assert_not_null(j, "%s: %s", op, je.text);
    tp_query_result_free(&res);
    return j;
}

static char *read_file(const char *name)
{
    char p[512];
    FILE *f;
    long n;
    char *text;

    snprintf(p, sizeof(p), "%s/../../e2e/data/%s", TP_TEST_DATA, name);
    f = fopen(p, "rb");
    cr_assert_not_null(f, "%s", p);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = malloc((size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* Import tests/e2e/data/<name> as uid (label optional); returns the new id. */
static char *import_as(uint32_t uid, const char *name, const char *label)
{
    char *text = read_file(name);
    json_t *args = json_pack("{s:s, s:s}", "json", text, "source", name);
    char *a;
    tp_query_result res;
    json_t *ans;
    char *id;

    if (label)
        json_object_set_new(args, "label", json_string(label));
    a = json_dumps(args, JSON_COMPACT);
    res = run_as(uid, "import", a);
    cr_assert_eq(res.code, 0, "import: %s", res.message);
    cr_assert_gt(res.created_rowid, 0);
    ans = json_loadb(res.body.data, res.body.len, 0, NULL);
    cr_assert_eq(json_object_size(ans), 2, "import answers {id, url}");
    cr_assert(json_is_null(json_object_get(ans, "url")));
    id = strdup(json_string_value(json_object_get(ans, "id")));
    cr_assert_eq(strlen(id), 32);
    json_decref(ans);
    tp_query_result_free(&res);
    free(a);
    json_decref(args);
    free(text);
    return id;
}

/* ---- the summary: one key per fact ------------------------------------------ */

Test(query, list_summary_has_exactly_the_contract_keys)
{
    static const char *const keys[] = {
        "id",           "label",  "uid",    "pid",         "host",          "python",
        "argv",         "client", "start",  "duration_ms", "calls",         "dropped",
        "limit_reason", "status", "age_ms", "url",         "otel_trace_id", "otlp",
    };
    char *id = import_as(1000, "small.json", NULL);
    json_t *l = ok_json("list", NULL);
    json_t *s = json_array_get(json_object_get(l, "traces"), 0);

    cr_assert_eq(json_integer_value(json_object_get(l, "total")), 1);
    cr_assert_eq(json_object_size(s), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_expect_not_null(json_object_get(s, keys[i]), "missing %s", keys[i]);
    cr_assert_str_eq(json_string_value(json_object_get(s, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(s, "label")), "debug-request");
    cr_assert_eq(json_integer_value(json_object_get(s, "calls")), 3);
    cr_assert_eq(json_integer_value(json_object_get(s, "uid")), 1000);
    cr_assert_eq(json_integer_value(json_object_get(s, "pid")), 4242);
    cr_assert_str_eq(json_string_value(json_object_get(s, "status")), "complete");
    cr_assert(json_is_null(json_object_get(s, "limit_reason")));
    cr_assert_float_eq(json_number_value(json_object_get(s, "start")), 1770906622.1, 1e-3);
    cr_assert(json_is_null(json_object_get(s, "otlp")), "finished while export was off");
    json_decref(l);
    free(id);
}

Test(query, get_is_the_summary_plus_stored_facts)
{
    char *id = import_as(1000, "small.json", NULL);
    char args[64];
    json_t *g, *st;

    snprintf(args, sizeof(args), "{\"id\": \"%.6s\"}", id);
    g = ok_json("get", args);
    cr_assert_str_eq(json_string_value(json_object_get(g, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(g, "source")), "small.json");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(g, "config"), "max_depth")),
                 30);
    st = json_object_get(g, "stats");
    cr_assert_eq(json_integer_value(json_object_get(st, "calls")), 3);
    cr_assert_null(json_object_get(g, "trace_id"));
    cr_assert_null(json_object_get(g, "call_count"));
    json_decref(g);
    free(id);
}

Test(query, get_what_trace_is_the_trace_file)
{
    char *id = import_as(1000, "small.json", NULL);
    char args[96];
    json_t *t;

    snprintf(args, sizeof(args), "{\"id\": \"%s\", \"what\": \"trace\"}", id);
    t = ok_json("get", args);
    /* A trace file keeps tracepatch 1.0.0's keys; the summary's are not it. */
    cr_assert_eq(json_integer_value(json_object_get(t, "call_count")), 3);
    cr_assert_not_null(json_object_get(t, "trace"));
    json_decref(t);
    free(id);
}

/* ---- filters, paging and users ------------------------------------------------- */

Test(query, list_filters_by_label_glob_and_pages)
{
    char *a = import_as(1000, "small.json", "api-one");
    char *b = import_as(1000, "loop.json", "api-two");
    char *c = import_as(1000, "small_b.json", "job-1");
    json_t *l;

    l = ok_json("list", "{\"label\": \"api-*\"}");
    cr_assert_eq(json_integer_value(json_object_get(l, "total")), 2);
    json_decref(l);
    l = ok_json("list", "{\"limit\": 1, \"offset\": 1}");
    cr_assert_eq(json_integer_value(json_object_get(l, "total")), 3);
    cr_assert_eq(json_array_size(json_object_get(l, "traces")), 1);
    json_decref(l);
    l = ok_json("list", "{\"q\": \"JOB\"}");
    cr_assert_eq(json_integer_value(json_object_get(l, "total")), 1);
    json_decref(l);
    free(a);
    free(b);
    free(c);
}

Test(query, another_uid_sees_nothing_and_root_sees_all)
{
    char *id = import_as(1000, "small.json", NULL);
    char args[64];
    tp_query_result res;
    json_t *l;

    res = run_as(1001, "list", NULL);
    cr_assert_eq(res.code, 0);
    l = json_loadb(res.body.data, res.body.len, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(l, "total")), 0);
    json_decref(l);
    tp_query_result_free(&res);
    snprintf(args, sizeof(args), "{\"id\": \"%s\"}", id);
    res = run_as(1001, "get", args);
    cr_assert_eq(res.code, TP_ERR_NOT_FOUND);
    tp_query_result_free(&res);
    res = run_as(0, "get", args);
    cr_assert_eq(res.code, 0, "%s", res.message);
    tp_query_result_free(&res);
    free(id);
}

Test(query, ambiguous_prefix_lists_the_candidates)
{
    char *ids[17];
    size_t x = 0, y = 0;
    char args[64];
    tp_query_result res;

    /* Seventeen random IDs: two of them share a first hex digit. */
    for (size_t i = 0; i < 17; i++)
        ids[i] = import_as(1000, "small.json", NULL);
    for (x = 0; x < 17; x++) {
        for (y = x + 1; y < 17 && ids[y][0] != ids[x][0]; y++)
            ;
        if (y < 17)
            break;
    }
    cr_assert_lt(x, 17);
    snprintf(args, sizeof(args), "{\"id\": \"%c\"}", ids[x][0]);
    res = run_as(1000, "get", args);
    cr_assert_eq(res.code, TP_ERR_AMBIGUOUS);
    cr_assert(strstr(res.message, ids[x]) && strstr(res.message, ids[y]), "%s", res.message);
    tp_query_result_free(&res);
    for (size_t i = 0; i < 17; i++)
        free(ids[i]);
}

/* ---- tree and stats ------------------------------------------------------------ */

Test(query, tree_text_reads_render_options_from_opts_only)
{
    char *id = import_as(1000, "small.json", NULL);
    char args[160];
    tp_query_result with, top;

    snprintf(args, sizeof(args),
             "{\"id\": \"%s\", \"opts\": {\"header\": false, \"style\": \"ascii\"}}", id);
    with = run_as(1000, "tree", args);
    cr_assert_eq(with.code, 0, "%s", with.message);
    cr_assert_str_eq(with.content_type, "text/plain; charset=utf-8");
    cr_assert_eq(strncmp(with.body.data, "`-- ", 4), 0, "%.*s", (int)with.body.len, with.body.data);
    /* The same keys at the top level are not render options. */
    snprintf(args, sizeof(args), "{\"id\": \"%s\", \"header\": false, \"style\": \"ascii\"}", id);
    top = run_as(1000, "tree", args);
    cr_assert_eq(top.code, 0, "%s", top.message);
    cr_assert_eq(strncmp(top.body.data, "Trace: ", 7), 0);
    tp_query_result_free(&with);
    tp_query_result_free(&top);
    free(id);
}

Test(query, tree_rejects_opts_that_is_not_an_object)
{
    char *id = import_as(1000, "small.json", NULL);
    char args[96];
    tp_query_result res;

    snprintf(args, sizeof(args), "{\"id\": \"%s\", \"opts\": [1]}", id);
    res = run_as(1000, "tree", args);
    cr_assert_eq(res.code, -EINVAL);
    cr_assert_str_eq(res.message, "argument \"opts\" must be an object");
    tp_query_result_free(&res);
    free(id);
}

Test(query, tree_filter_must_be_globs)
{
    char *id = import_as(1000, "small.json", NULL);
    char args[128];
    tp_query_result res;

    snprintf(args, sizeof(args), "{\"id\": \"%s\", \"opts\": {\"filter\": [1]}}", id);
    res = run_as(1000, "tree", args);
    cr_assert_eq(res.code, -EINVAL);
    cr_assert_str_eq(res.message, "argument \"filter\" must hold strings");
    tp_query_result_free(&res);
    free(id);
}

Test(query, stats_json_counts_the_calls)
{
    char *id = import_as(1000, "small.json", NULL);
    char args[96];
    json_t *s;

    snprintf(args, sizeof(args), "{\"id\": \"%s\", \"format\": \"json\"}", id);
    s = ok_json("stats", args);
    cr_assert_eq(json_integer_value(json_object_get(s, "calls")), 3);
    json_decref(s);
    free(id);
}

/* ---- status and clean ------------------------------------------------------------ */

Test(query, status_has_one_key_per_fact)
{
    json_t *s;

    free(import_as(1000, "small.json", NULL));
    s = ok_json("status", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(s, "version")), "2.0.0");
    cr_assert_eq(json_integer_value(json_object_get(s, "clients")), 3);
    cr_assert_eq(json_integer_value(json_object_get(s, "traces")), 1);
    cr_assert_eq(json_integer_value(json_object_get(s, "events_total")), 99);
    cr_assert_str_eq(json_string_value(json_object_get(s, "socket")), "/run/test.sock");
    cr_assert(json_is_null(json_object_get(s, "http")));
    cr_assert_null(json_object_get(s, "tphd_version"));
    cr_assert_null(json_object_get(s, "connections"));
    json_decref(s);
}

Test(query, clean_all_deletes_only_the_askers_traces)
{
    json_t *d, *l;
    tp_query_result res;

    free(import_as(1000, "small.json", NULL));
    free(import_as(1000, "loop.json", NULL));
    free(import_as(1001, "small.json", NULL));
    d = ok_json("clean", "{\"all\": true}");
    cr_assert_eq(json_integer_value(json_object_get(d, "deleted")), 2);
    json_decref(d);
    res = run_as(0, "list", NULL);
    l = json_loadb(res.body.data, res.body.len, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(l, "total")), 1);
    json_decref(l);
    tp_query_result_free(&res);
}

Test(query, clean_needs_older_than_or_all)
{
    tp_query_result res = run_as(1000, "clean", NULL);

    cr_assert_eq(res.code, TP_ERR_MISSING);
    cr_assert_str_eq(res.message, "give \"older_than\" (seconds) or \"all\": true");
    tp_query_result_free(&res);
}

/* ---- errors ------------------------------------------------------------------------ */

Test(query, unknown_op_names_the_ops)
{
    tp_query_result res = run_as(1000, "drop", NULL);

    cr_assert_eq(res.code, -EINVAL);
    cr_assert(strstr(res.message, "unknown query \"drop\""), "%s", res.message);
    tp_query_result_free(&res);
}

Test(query, args_that_are_not_an_object_are_a_json_error)
{
    tp_query_result res = run_as(1000, "list", "[1, 2]");

    cr_assert_eq(res.code, TP_ERR_JSON);
    tp_query_result_free(&res);
    res = run_as(1000, "list", "{not json");
    cr_assert_eq(res.code, TP_ERR_JSON);
    tp_query_result_free(&res);
}

Test(query, argument_of_the_wrong_type_is_named)
{
    tp_query_result res = run_as(1000, "list", "{\"limit\": \"ten\"}");

    cr_assert_eq(res.code, -EINVAL);
    cr_assert_str_eq(res.message, "argument \"limit\" must be an integer");
    tp_query_result_free(&res);
    res = run_as(1000, "list", "{\"limit\": 10001}");
    cr_assert_eq(res.code, -EINVAL);
    cr_assert_str_eq(res.message, "argument \"limit\" is at most 10000");
    tp_query_result_free(&res);
    res = run_as(1000, "list", "{\"limit\": 10000}");
    cr_assert_eq(res.code, 0, "%s", res.message);
    tp_query_result_free(&res);
}

Test(query, missing_id_is_not_found_with_the_prefix)
{
    tp_query_result res = run_as(1000, "get", "{\"id\": \"ffff\"}");

    cr_assert_eq(res.code, TP_ERR_NOT_FOUND);
    cr_assert_str_eq(res.message, "no trace matches ID \"ffff\"");
    tp_query_result_free(&res);
}
