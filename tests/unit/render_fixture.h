/* Trees shared by the renderer tests (test_render*.c) and test_load.c. */
#ifndef TP_TEST_RENDER_FIXTURE_H
#define TP_TEST_RENDER_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "tree.h"

#define US 1000ULL /* ns per µs */

/* 2026-02-12T14:30:22.123456 UTC */
#define FIXTURE_WALL_NS 1770906622123456000LL

static inline void fx_call(tp_tree *t, uint32_t f, uint64_t us, const char *args)
{
    cr_assert_eq(tp_tree_call(t, f, us * US, false, args, args ? strlen(args) : 0), 0);
}

static inline void fx_ret(tp_tree *t, uint64_t us, const char *ret)
{
    cr_assert_eq(tp_tree_return(t, us * US, ret, ret ? strlen(ret) : 0), 0);
}

static inline void fx_unwind(tp_tree *t, uint64_t us, const char *type, const char *msg)
{
    cr_assert_eq(tp_tree_unwind(t, us * US, type, strlen(type), msg, strlen(msg)), 0);
}

/* Every feature of the text grammar: return values, an exception, a folded
 * run with equal returns, a folded run that partly raised, a caught
 * exception, a generator resumed twice, a second thread whose calls are
 * still open at the end, a limit and dropped events. Times are whole µs. */
static inline tp_tree *fx_rich_tree(void)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "handle", "app.py", 10), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app.db", "load", "app/db.py", 3), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "app", "check", "app.py", 20), 0);
    cr_assert_eq(tp_tree_def_func(t, 3, "app", "item", "app.py", 30), 0);
    cr_assert_eq(tp_tree_def_func(t, 4, "app", "retry", "app.py", 40), 0);
    cr_assert_eq(tp_tree_def_func(t, 5, "app", "parse", "app.py", 50), 0);
    cr_assert_eq(tp_tree_def_func(t, 6, "app", "Feed.stream", "app.py", 60), 0);
    cr_assert_eq(tp_tree_def_func(t, 7, "app", "tail", "app.py", 70), 0);

    fx_call(t, 0, 0, "req=1");
    fx_call(t, 1, 100, "id=7");
    fx_ret(t, 1100, "{'id': 7}");
    fx_call(t, 2, 1200, "x=1");
    fx_unwind(t, 1434, "ValueError", "bad x");
    fx_call(t, 3, 1500, "i=0");
    fx_ret(t, 1510, "None");
    fx_call(t, 3, 1520, "i=1");
    fx_ret(t, 1540, "None");
    fx_call(t, 3, 1550, "i=2");
    fx_ret(t, 1565, "None");
    fx_call(t, 4, 1600, "n=1");
    fx_unwind(t, 1650, "TimeoutError", "slow");
    fx_call(t, 4, 1700, "n=2");
    fx_ret(t, 1800, "True");
    fx_call(t, 5, 1900, "s='a'");
    cr_assert_eq(tp_tree_caught(t, 1950 * US, "KeyError", 8, "'a'", 3), 0);
    fx_ret(t, 2000, "1");
    cr_assert_eq(tp_tree_call(t, 6, 2100 * US, true, "", 0), 0);
    uint32_t gen = (uint32_t)t->nnodes - 1;
    cr_assert_eq(tp_tree_yield(t, gen, 2200 * US), 0);
    cr_assert_eq(tp_tree_resume(t, gen, 3000 * US), 0);
    cr_assert_eq(tp_tree_yield(t, gen, 3100 * US), 0);
    cr_assert_eq(tp_tree_resume(t, gen, 3900 * US), 0);
    fx_ret(t, 4000, "None");
    fx_ret(t, 5000, "'ok'");

    cr_assert_eq(tp_tree_thread(t, 1), 0);
    fx_call(t, 7, 6000, "");
    fx_call(t, 1, 6100, "id=8");
    cr_assert_eq(tp_tree_finish(t, 1206000 * US), 0);

    cr_assert_eq(tp_tree_set_label(t, "checkout"), 0);
    cr_assert_eq(tp_tree_set_limit_reason(t, "max_time"), 0);
    cr_assert_eq(tp_tree_set_config_json(t, "{\"max_depth\":30,\"max_time\":1.2,"
                                            "\"ignore_modules\":[\"logging\"]}"),
                 0);
    memcpy(t->meta.trace_id, "0123456789abcdef0123456789abcdef", 33);
    t->meta.wall_start_ns = FIXTURE_WALL_NS;
    t->meta.dropped = 3;
    return t;
}

/* The README's quick-start trace with fixed times (µs). */
static inline tp_tree *fx_readme_tree(void)
{
    tp_tree *t;
    const char *user = "{'id': 42, 'name': 'Alice'}";
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "__main__", "handle_request", "demo.py", 9), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "__main__", "load_user", "demo.py", 3), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "__main__", "validate", "demo.py", 6), 0);
    fx_call(t, 0, 0, "uid=42");
    fx_call(t, 1, 12, "uid=42");
    fx_ret(t, 22, user);
    fx_call(t, 2, 30, "user={'id': 42, ...}");
    fx_ret(t, 38, "True");
    fx_ret(t, 50, user);
    cr_assert_eq(tp_tree_finish(t, 50 * US), 0);
    cr_assert_eq(tp_tree_set_label(t, "debug-request"), 0);
    return t;
}

/* Reads TP_TEST_DATA/name into a NUL-terminated malloc'd string. */
static inline char *fx_read(const char *name, size_t *ret_len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", TP_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    if (ret_len)
        *ret_len = (size_t)n;
    return s;
}

/* Compares text with a golden file; when it differs (or the golden is
 * missing) writes the text to <name>.actual in the working directory so the
 * difference can be inspected. */
static inline void fx_golden(const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", TP_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    char *want = NULL;
    if (f) {
        fclose(f);
        want = fx_read(name, NULL);
    }
    if (!want || strcmp(want, text) != 0) {
        snprintf(path, sizeof(path), "%s.actual", name);
        FILE *o = fopen(path, "wb");
        if (o) {
            fputs(text, o);
            fclose(o);
        }
    }
    cr_assert_not_null(want, "golden file %s is missing (see %s.actual)", name, name);
    cr_assert_str_eq(text, want, "output differs from %s (see %s.actual)", name, name);
    free(want);
}

/* A renderer's whole output as a string the caller frees. */
static inline char *fx_text_of(int (*fn)(const tp_tree *, tp_buf *), const tp_tree *t)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(fn(t, &b), 0);
    char *s = tp_buf_steal(&b, NULL);
    cr_assert_not_null(s);
    return s;
}

#ifdef JANSSON_MAJOR_VERSION
/* Parses with jansson (for tests that include <jansson.h> first): the
 * output is valid JSON. */
static inline json_t *fx_parse_ok(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "invalid JSON: line %d column %d: %s", e.line, e.column, e.text);
    return j;
}
#endif

#endif
