/* Loading JSON trace files: tracepatch 1.0.0's files and ours, and precise
 * errors for everything else. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"
#include "render.h"
#include "render_fixture.h"
#include "tp_err.h"
#include "tree.h"

static void utc(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
}

TestSuite(load, .init = utc);

static tp_tree *load_ok(const char *text)
{
    tp_tree *t = NULL;
    char err[256] = "unset";
    int r = tp_load_json(text, strlen(text), &t, err, sizeof(err));
    cr_assert_eq(r, 0, "load failed: %d (%s)", r, err);
    cr_assert_str_eq(err, "");
    return t;
}

static void load_fails(const char *text, int code, const char *msg)
{
    tp_tree *t = (tp_tree *)0x1; /* must stay untouched */
    char err[256] = "unset";
    int r = tp_load_json(text, strlen(text), &t, err, sizeof(err));
    cr_assert_eq(r, code, "got %d (%s) for %s", r, err, text);
    cr_assert_str_eq(err, msg, "got \"%s\" for %.200s", err, text);
    cr_assert_eq(t, (tp_tree *)0x1);
}

static char *tree_text(const tp_tree *t, bool header)
{
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.header = header;
    o.ms_units = true; /* 1.0.0 files, read as 1.0.0 prints them */
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_text(t, &o, &b), 0);
    return tp_buf_steal(&b, NULL);
}

static void check_tree(const char *json, const char *want)
{
    tp_tree *t = load_ok(json);
    char *s = tree_text(t, false);
    cr_assert_str_eq(s, want);
    free(s);
    tp_tree_free(t);
}

/* ---- tracepatch 1.0.0 files ------------------------------------------------ */

Test(load, tracepatch_1_0_0_file_gives_exact_tree)
{
    char *text = fx_read("tracepatch-1.0.0.json", NULL);
    tp_tree *t = load_ok(text);
    char *s = tree_text(t, true);
    fx_golden("load_tracepatch-1.0.0.txt", s);
    cr_assert_str_eq(t->meta.label, "checkout-flow");
    cr_assert_str_eq(t->meta.trace_id, "a1b2c3d4");
    cr_assert_eq(t->meta.wall_start_ns, FIXTURE_WALL_NS);
    cr_assert_eq(t->meta.call_count, 6);
    cr_assert_eq(t->meta.duration_ns, 4500000);
    cr_assert_null(t->meta.limit_reason);
    cr_assert_str_eq(t->meta.config_json,
                     "{\"max_depth\":30,\"max_calls\":10000,\"max_repr\":120,\"max_time\":60.0,"
                     "\"ignore_modules\":[\"logging\"],\"include_modules\":[],"
                     "\"track_memory\":false,\"sample\":null}");
    /* One function per (module, name, file, line): both price calls share one. */
    cr_assert_eq(t->nfuncs, 5);
    cr_assert_eq(t->nodes[2].func, t->nodes[3].func);
    cr_assert_str_eq(t->funcs[t->nodes[5].func].file, "");
    cr_assert_eq(t->funcs[t->nodes[5].func].lineno, 0);
    free(s);
    free(text);
    tp_tree_free(t);
}

/* The README's JSON example (with "children": [] for its "[...]"): no
 * schema_version, trace_id, file, lineno or exception. */
Test(load, readme_json_example_loads)
{
    char *text = fx_read("tracepatch-readme.json", NULL);
    tp_tree *t = load_ok(text);
    char *s = tree_text(t, true);
    cr_assert_str_eq(s, "Trace: my-trace\n"
                        "────────────────────────────────────────────────────────────────────────\n"
                        "Recorded:     1 calls across 1 modules    | Duration: 333.00ms\n"
                        "Max depth:    0 levels                    | Unique functions: 1\n"
                        "Slowest:      __main__.do_something [333.00ms]| Most called: "
                        "__main__.do_something [×1]\n"
                        "────────────────────────────────────────────────────────────────────────\n"
                        "\n"
                        "└── __main__.do_something(x=42, y='hello') -> {'result': 'OK'}  "
                        "[333.00ms]\n");
    cr_assert_eq(t->meta.call_count, 42);
    cr_assert_str_eq(t->meta.trace_id, "");
    free(s);
    free(text);
    tp_tree_free(t);
}

/* `tph tree --format json` in 1.0.0 wrote a bare array of root calls. */
Test(load, bare_array_of_calls_loads)
{
    check_tree("[{\"name\": \"f\", \"module\": \"m\", \"args\": \"\", \"return_value\": null, "
               "\"exception\": null, \"start\": 1.0, \"end\": 1.5, \"elapsed_ms\": 500.0, "
               "\"children\": []}]",
               "└── m.f()  [500.00ms]\n");
}

/* Without start/end a call begins where its previous sibling ended. */
Test(load, calls_without_times_are_laid_out_in_order)
{
    tp_tree *t = load_ok("{\"trace\": [{\"name\": \"a\", \"module\": \"m\", \"elapsed_ms\": 3, "
                         "\"children\": [{\"name\": \"b\", \"module\": \"m\", \"elapsed_ms\": 1},"
                         " {\"name\": \"c\", \"module\": \"m\", \"elapsed_ms\": 1.5}]}]}");
    cr_assert_eq(t->nnodes, 3);
    cr_assert_eq(t->nodes[1].start_ns, 0);
    cr_assert_eq(t->nodes[1].end_ns, 1000000);
    cr_assert_eq(t->nodes[2].start_ns, 1000000);
    cr_assert_eq(t->nodes[2].end_ns, 2500000);
    cr_assert_eq(t->nodes[0].total_ns, 3000000);
    cr_assert_eq(t->meta.duration_ns, 3000000);
    tp_tree_free(t);
}

Test(load, exception_text_is_split_into_type_and_message)
{
    tp_tree *t = load_ok("{\"trace\": [{\"name\": \"a\", \"module\": \"m\", "
                         "\"exception\": \"KeyError: 'k': missing\"}, "
                         "{\"name\": \"b\", \"module\": \"m\", \"exception\": \"StopIteration\"}, "
                         "{\"name\": \"c\", \"module\": \"m\", \"exception\": \"E: x\", "
                         "\"return_value\": \"1\"}]}");
    cr_assert_eq(t->nodes[0].flags & (TP_NODE_EXC | TP_NODE_CAUGHT), TP_NODE_EXC);
    cr_assert_str_eq(t->nodes[0].exc_type, "KeyError");
    cr_assert_str_eq(t->nodes[0].exc_msg, "'k': missing");
    cr_assert_str_eq(t->nodes[1].exc_type, "StopIteration");
    cr_assert_str_eq(t->nodes[1].exc_msg, "");
    /* An exception and a return value: it was handled inside. */
    cr_assert_eq(t->nodes[2].flags & (TP_NODE_EXC | TP_NODE_CAUGHT), TP_NODE_CAUGHT);
    cr_assert_str_eq(t->nodes[2].ret, "1");
    tp_tree_free(t);
}

Test(load, header_fields_fill_meta)
{
    tp_tree *t = load_ok("{\"trace\": [], \"was_limited\": true, \"limit_reason\": null, "
                         "\"trace_id\": \"A1B2-C3D4\", \"dropped\": 7, \"label\": null, "
                         "\"timestamp\": \"2026-02-12T14:30:22Z\", \"config\": null}");
    cr_assert_str_eq(t->meta.limit_reason, "unknown");
    cr_assert_str_eq(t->meta.trace_id, "a1b2c3d4");
    cr_assert_eq(t->meta.dropped, 7);
    cr_assert_null(t->meta.label);
    cr_assert_null(t->meta.config_json);
    cr_assert_eq(t->meta.wall_start_ns, FIXTURE_WALL_NS - 123456000);
    tp_tree_free(t);
    t = load_ok("{\"trace\": [], \"trace_id\": \"not hex\", "
                "\"timestamp\": \"2026-02-12T15:30:22.5+01:00\"}");
    cr_assert_str_eq(t->meta.trace_id, "");
    cr_assert_eq(t->meta.wall_start_ns, FIXTURE_WALL_NS - 123456000 + 500000000);
    tp_tree_free(t);
}

/* ---- Our own extra keys ---------------------------------------------------------- */

/* An unfinished call followed by a sibling cannot have stayed open: it is
 * closed when the sibling begins, and the sibling stays a sibling. */
Test(load, misplaced_unfinished_call_is_closed)
{
    check_tree("{\"trace\": [{\"name\": \"a\", \"module\": \"m\", \"start\": 0, \"end\": 0.001, "
               "\"unfinished\": true, \"children\": [{\"name\": \"b\", \"module\": \"m\", "
               "\"start\": 0.0001, \"end\": 0.0002}]}, {\"name\": \"c\", \"module\": \"m\", "
               "\"start\": 0.002, \"end\": 0.003}]}",
               "├── m.a()  [2.00ms]\n"
               "│   └── m.b()  [0.10ms]\n"
               "└── m.c()  [1.00ms]\n");
}

/* Roots on two threads; the last root of each thread may stay open. */
Test(load, threads_and_open_calls)
{
    tp_tree *t = load_ok(
        "{\"start\": 100, \"duration_ms\": 50, \"trace\": ["
        "{\"name\": \"a\", \"module\": \"m\", \"start\": 100, \"end\": 100.01, \"thread\": 1},"
        "{\"name\": \"b\", \"module\": \"m\", \"start\": 100.005, \"unfinished\": true, "
        "\"thread\": 2, \"children\": [{\"name\": \"g\", \"module\": \"m\", \"start\": 100.006,"
        " \"generator\": true, \"suspends\": 3, \"unfinished\": true}]},"
        "{\"name\": \"c\", \"module\": \"m\", \"start\": 100.02, \"end\": 100.03, \"thread\": 1}"
        "]}");
    char *s = tree_text(t, false);
    /* No thread 0 calls: each thread has its line. */
    cr_assert_str_eq(s,
                     "├── thread 1  [2 calls, 20.00ms]\n"
                     "│   ├── m.a()  [10.00ms]\n"
                     "│   └── m.c()  [10.00ms]\n"
                     "└── thread 2  [2 calls, 45.00ms]\n"
                     "    └── m.b()  [45.00ms, unfinished]\n"
                     "        └── m.g()  [44.00ms active, 44.00ms span, resumed 3×, unfinished]\n");
    cr_assert_eq(t->nodes[1].thread, 2);
    cr_assert_eq(t->nodes[3].thread, 1);
    cr_assert_eq(t->nodes[2].suspends, 3);
    cr_assert_eq(t->meta.wall_start_ns, 100000000000LL);
    free(s);
    tp_tree_free(t);
}

/* Functions are one per (module, name, file, line), however the strings
 * split; threads one per id, in any order and number. */
Test(load, functions_and_threads_are_interned_exactly)
{
    tp_buf doc = TP_BUF_INIT;
    tp_buf_puts(&doc, "{\"start\": 100, \"trace\": [");
    const int nthreads = 300, nfunc = 1000;
    for (int i = 0; i < 2 * nfunc; i++)
        tp_buf_printf(&doc,
                      "%s{\"name\": \"f%d\", \"module\": \"m\", \"file\": \"x.py\", "
                      "\"line\": 1, \"start\": %d.0, \"end\": %d.0005, \"thread\": %d}",
                      i ? "," : "", i % nfunc, 100 + i, 100 + i, nthreads - i % nthreads);
    /* Same letters, split differently: ("ab", "c") is not ("a", "bc"). */
    tp_buf_puts(&doc, ",{\"name\": \"c\", \"module\": \"ab\", \"start\": 5000.0},"
                      "{\"name\": \"bc\", \"module\": \"a\", \"start\": 5001.0},"
                      "{\"name\": \"c\", \"module\": \"ab\", \"start\": 5002.0}]}");
    tp_tree *t = load_ok(tp_buf_cstr(&doc));
    cr_assert_eq(t->nfuncs, nfunc + 2);
    cr_assert_eq(t->nnodes, 2 * nfunc + 3);
    for (int i = 0; i < nfunc; i++)
        cr_assert_eq(t->nodes[i].func, t->nodes[i + nfunc].func, "call %d", i);
    cr_assert_eq(t->nodes[2 * nfunc].func, t->nodes[2 * nfunc + 2].func);
    cr_assert_neq(t->nodes[2 * nfunc].func, t->nodes[2 * nfunc + 1].func);
    for (int i = 0; i < 2 * nfunc; i++)
        cr_assert_eq(t->nodes[i].thread, (uint32_t)(nthreads - i % nthreads), "call %d", i);
    tp_buf_free(&doc);
    tp_tree_free(t);
}

/* Our deepest loadable file: about 1000 nested calls round-trip. */
Test(load, thousand_deep_round_trip)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "r", "", 0), 0);
    const uint32_t depth = 1000;
    for (uint32_t i = 0; i < depth; i++)
        fx_call(t, 0, i, NULL);
    for (uint32_t i = 0; i < depth; i++)
        fx_ret(t, depth + i, NULL);
    cr_assert_eq(tp_tree_finish(t, 2 * depth * US), 0);
    tp_buf a = TP_BUF_INIT, b = TP_BUF_INIT;
    cr_assert_eq(tp_render_json(t, false, &a), 0);
    tp_tree *u = load_ok(tp_buf_cstr(&a));
    cr_assert_eq(u->nnodes, depth);
    cr_assert_eq(u->nodes[depth - 1].depth, depth - 1);
    cr_assert_eq(tp_render_json(u, false, &b), 0);
    cr_assert_str_eq(tp_buf_cstr(&b), tp_buf_cstr(&a));
    tp_buf_free(&a);
    tp_buf_free(&b);
    tp_tree_free(t);
    tp_tree_free(u);
}

Test(load, too_deep_is_a_limit_error)
{
    tp_buf b = TP_BUF_INIT;
    tp_buf_puts(&b, "{\"trace\":[");
    for (int i = 0; i < 1100; i++)
        tp_buf_puts(&b, "{\"name\":\"f\",\"children\":[");
    for (int i = 0; i < 1100; i++)
        tp_buf_puts(&b, "]}");
    tp_buf_puts(&b, "]}");
    load_fails(tp_buf_cstr(&b), TP_ERR_LIMIT,
               "line 1 column 24563: nested deeper than the JSON parser's 2048 levels (about "
               "1020 nested calls)");
    tp_buf_free(&b);
}

/* ---- Errors ------------------------------------------------------------------------------ */

Test(load, corrupt_files_name_the_problem)
{
    static const struct {
        const char *file, *msg;
    } cases[] = {
        {"corrupt-syntax.json", "line 4 column 33: string or '}' expected near '}'"},
        {"corrupt-types.json", "trace[0].children[2]: 'name' must be a string"},
        {"corrupt-empty.json", "empty document"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = fx_read(cases[i].file, NULL);
        load_fails(text, TP_ERR_JSON, cases[i].msg);
        free(text);
    }
}

Test(load, wrong_types_and_values_are_named)
{
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"", "empty document"},
        {" \n\t ", "empty document"},
        {"3", "a trace must be a JSON object (or an array of calls)"},
        {"{\"label\": \"x\"}", "'trace' is missing: this is not a tracepatch trace"},
        {"{\"trace\": {}}", "'trace' must be an array"},
        {"{\"label\": 5, \"trace\": []}", "'label' must be a string or null"},
        {"{\"trace\": [], \"call_count\": -1}", "'call_count' must be an integer from 0 to "
                                                "9223372036854775807"},
        {"{\"trace\": [], \"config\": [1]}", "'config' must be an object or null"},
        {"{\"trace\": [], \"was_limited\": \"yes\"}", "'was_limited' must be true or false"},
        {"{\"trace\": [], \"duration_ms\": \"1\"}", "'duration_ms' must be a number"},
        {"{\"trace\": [1]}", "trace[0]: a call must be an object"},
        {"{\"trace\": [{\"module\": \"m\"}]}", "trace[0]: 'name' is missing"},
        {"{\"trace\": [{\"name\": \"a\"}, {\"name\": \"b\", \"args\": 1}]}",
         "trace[1]: 'args' must be a string or null"},
        {"{\"trace\": [{\"name\": \"a\", \"lineno\": -1}]}",
         "trace[0]: 'lineno' must be an integer from 0 to 2147483647"},
        {"{\"trace\": [{\"name\": \"a\", \"lineno\": 1.5}]}",
         "trace[0]: 'lineno' must be an integer from 0 to 2147483647"},
        {"{\"trace\": [{\"name\": \"a\", \"children\": {}}]}",
         "trace[0]: 'children' must be an array"},
        {"{\"trace\": [{\"name\": \"a\", \"children\": [{\"name\": \"b\", \"elapsed_ms\": -1}]}]}",
         "trace[0].children[0]: 'elapsed_ms' must not be negative"},
        {"{\"trace\": [{\"name\": \"a\", \"start\": 1e300}]}", "trace[0]: 'start' is out of range"},
        {"{\"trace\": [{\"name\": \"a\", \"suspends\": 4294967295, \"generator\": true}]}",
         "trace[0]: too many generator suspensions (more than 16777216 in one file)"},
        {"{\"trace\": [{\"name\": \"a\", \"caught\": 1}]}",
         "trace[0]: 'caught' must be true or false"},
        {"{\"trace\": [], \"trace\": []}",
         "line 1 column 21: duplicate object key near '\"trace\"'"},
        {"{\"trace\": [{\"name\": \"a\\u0000b\"}]}",
         "line 1 column 30: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'"},
        {"{\"trace\": [{\"name\": \"\xff\"}]}",
         "line 1 column 21: unable to decode byte 0xff near '\"'"},
        {"{\"trace\": []} x", "line 1 column 15: end of file expected near 'x'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        load_fails(cases[i].json, TP_ERR_JSON, cases[i].msg);
}

Test(load, arguments_are_checked)
{
    tp_tree *t;
    cr_assert_eq(tp_load_json(NULL, 0, &t, NULL, 0), -EINVAL);
    cr_assert_eq(tp_load_json("[]", 2, NULL, NULL, 0), -EINVAL);
    /* No room for a message is fine. */
    cr_assert_eq(tp_load_json("{", 1, &t, NULL, 0), TP_ERR_JSON);
    char small[8];
    cr_assert_eq(tp_load_json("{\"trace\": [1]}", 14, &t, small, sizeof(small)), TP_ERR_JSON);
    cr_assert_str_eq(small, "trace[0");
    /* Only len bytes are read. */
    cr_assert_eq(tp_load_json("[]garbage", 2, &t, NULL, 0), 0);
    cr_assert_eq(t->nnodes, 0);
    tp_tree_free(t);
}

/* Thousands of corrupted variants of valid files (tracepatch 1.0.0's and
 * ours, with generators, threads and open calls): each one loads (and then
 * renders) or fails with a message, never crashes or leaks. */
#ifndef LOAD_MUTATIONS
#define LOAD_MUTATIONS 2000 /* per file */
#endif

static void mutate_file(const char *name, unsigned seed)
{
    static const char alphabet[] = "{}[]\":,0123456789.-e ntfalsru\\x";
    size_t len;
    char *orig = fx_read(name, &len);
    char *doc = malloc(len + 1);
    cr_assert_not_null(doc);
    size_t loaded = 0;
    for (int iter = 0; iter < LOAD_MUTATIONS; iter++) {
        memcpy(doc, orig, len + 1);
        size_t n = len;
        for (int k = 0; k < 1 + iter % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            if (seed % 4 == 0) { /* delete a byte */
                memmove(doc + pos, doc + pos + 1, n - pos);
                n--;
            } else {
                doc[pos] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
            }
        }
        tp_tree *t = NULL;
        char err[256] = "";
        int r = tp_load_json(doc, n, &t, err, sizeof(err));
        cr_assert(r == 0 || r == TP_ERR_JSON || r == TP_ERR_LIMIT, "%s #%d: %d", name, iter, r);
        if (r) {
            cr_assert_neq(err[0], '\0', "%s #%d: no message", name, iter);
            continue;
        }
        loaded++;
        tp_buf b = TP_BUF_INIT;
        cr_assert_eq(tp_render_text(t, NULL, &b), 0);
        cr_assert_eq(tp_render_json(t, false, &b), 0);
        tp_buf_free(&b);
        tp_tree_free(t);
    }
    cr_assert_gt(loaded, LOAD_MUTATIONS / 20, "%s: only %zu loaded", name, loaded);
    free(doc);
    free(orig);
}

Test(load, mutated_files_fail_cleanly)
{
    mutate_file("tracepatch-1.0.0.json", 12345);
    mutate_file("render_json.json", 777);
}

/* track_memory: memory_delta_bytes is exact, memory_delta_kb (1.0.0's key)
 * is rounded to bytes; a call without either is not measured; the text
 * tree shows the measured ones in KB, MB or GB. */
Test(load, memory_delta_keys_mark_calls_measured)
{
    tp_tree *t =
        load_ok("{\"start\": 100, \"duration_ms\": 50, \"trace\": ["
                "{\"name\": \"a\", \"module\": \"m\", \"start\": 100, \"end\": 100.01, "
                "\"memory_delta_kb\": 976.563, \"children\": ["
                "{\"name\": \"b\", \"module\": \"m\", \"start\": 100.001, \"end\": 100.002, "
                "\"memory_delta_kb\": -0.5}]},"
                "{\"name\": \"c\", \"module\": \"m\", \"start\": 100.02, \"end\": 100.03, "
                "\"memory_delta_kb\": 1.0, \"memory_delta_bytes\": -3221225472},"
                "{\"name\": \"d\", \"module\": \"m\", \"start\": 100.03, \"end\": 100.04, "
                "\"memory_delta_kb\": 2048.0},"
                "{\"name\": \"e\", \"module\": \"m\", \"start\": 100.04, \"end\": 100.05, "
                "\"memory_delta_kb\": null}"
                "]}");
    cr_assert_eq(t->nodes[0].flags, TP_NODE_MEM);
    cr_assert_eq(t->nodes[0].mem_delta, 1000001); /* 976.563 KiB, rounded */
    cr_assert_eq(t->nodes[1].mem_delta, -512);
    cr_assert_eq(t->nodes[2].mem_delta, -3221225472LL);
    cr_assert_eq(t->nodes[4].flags, 0);
    char *s = tree_text(t, false);
    cr_assert_str_eq(s, "├── m.a()  [10.00ms, +976.6 KB]\n"
                        "│   └── m.b()  [1.00ms, -0.5 KB]\n"
                        "├── m.c()  [10.00ms, -3.0 GB]\n"
                        "├── m.d()  [10.00ms, +2.0 MB]\n"
                        "└── m.e()  [10.00ms]\n");
    free(s);
    tp_tree_free(t);
}

Test(load, memory_delta_of_the_wrong_type_or_range_is_named)
{
    load_fails("[{\"name\": \"a\", \"memory_delta_kb\": \"1\"}]", TP_ERR_JSON,
               "trace[0]: 'memory_delta_kb' must be a number from -100000000000000 to "
               "100000000000000");
    load_fails("[{\"name\": \"a\", \"memory_delta_kb\": 1e15}]", TP_ERR_JSON,
               "trace[0]: 'memory_delta_kb' must be a number from -100000000000000 to "
               "100000000000000");
    load_fails("[{\"name\": \"a\", \"memory_delta_bytes\": 1.5}]", TP_ERR_JSON,
               "trace[0]: 'memory_delta_bytes' must be an integer from -102400000000000000 to "
               "102400000000000000");
}

/* Thread names travel in "threads" when the roots are on several threads
 * (and only then): loaded back, the tree names them and writes the same
 * bytes. */
Test(load, thread_names_round_trip)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "a", "m.py", 1), 0);
    const char *main_name = "MainThread", *w = "Thread-1 (w\"x)";
    cr_assert_eq(tp_tree_event(t, TP_EV_THREAD, TP_EVF_TEXT, 0, 0, 0, main_name, 10, NULL, 0), 0);
    fx_call(t, 0, 0, NULL);
    fx_ret(t, 10, NULL);
    char *one = NULL;
    {
        tp_tree *single = NULL;
        cr_assert_eq(tp_tree_new(&single), 0);
        cr_assert_eq(tp_tree_def_func(single, 0, "m", "a", "m.py", 1), 0);
        cr_assert_eq(
            tp_tree_event(single, TP_EV_THREAD, TP_EVF_TEXT, 0, 0, 0, main_name, 10, NULL, 0), 0);
        fx_call(single, 0, 0, NULL);
        fx_ret(single, 10, NULL);
        cr_assert_eq(tp_tree_finish(single, 20 * US), 0);
        tp_buf b = TP_BUF_INIT;
        cr_assert_eq(tp_render_json(single, false, &b), 0);
        one = tp_buf_steal(&b, NULL);
        cr_assert_null(strstr(one, "\"threads\""));
        tp_tree_free(single);
    }
    cr_assert_eq(tp_tree_event(t, TP_EV_THREAD, TP_EVF_TEXT, 0, 1, 0, w, strlen(w), NULL, 0), 0);
    fx_call(t, 0, 12, NULL);
    fx_ret(t, 15, NULL);
    cr_assert_eq(tp_tree_finish(t, 20 * US), 0);
    tp_buf a = TP_BUF_INIT, b = TP_BUF_INIT;
    cr_assert_eq(tp_render_json(t, false, &a), 0);
    const char *want = "\"threads\":[{\"thread\":0,\"name\":\"MainThread\"},"
                       "{\"thread\":1,\"name\":\"Thread-1 (w\\\"x)\"}],\"config\"";
    cr_assert_not_null(strstr(tp_buf_cstr(&a), want), "%s", tp_buf_cstr(&a));
    tp_tree *u = load_ok(tp_buf_cstr(&a));
    cr_assert_str_eq(tp_tree_thread_name(u, 1), w);
    cr_assert_str_eq(tp_tree_thread_name(u, 0), main_name);
    cr_assert_eq(tp_render_json(u, false, &b), 0);
    cr_assert_str_eq(tp_buf_cstr(&b), tp_buf_cstr(&a));
    char *s = tree_text(u, false);
    cr_assert_str_eq(s, "├── m.a()  [0.01ms]\n"
                        "└── thread Thread-1 (w\"x)  [1 call, 0.00ms]\n"
                        "    └── m.a()  [0.00ms]\n");
    free(s);
    free(one);
    tp_buf_free(&a);
    tp_buf_free(&b);
    tp_tree_free(u);
    tp_tree_free(t);
}

Test(load, bad_threads_key_is_an_error)
{
    load_fails("{\"threads\": 3, \"trace\": []}", TP_ERR_JSON, "'threads' must be an array");
    load_fails("{\"threads\": [{\"thread\": 1}], \"trace\": []}", TP_ERR_JSON,
               "a 'threads' entry needs 'thread' and 'name'");
}
