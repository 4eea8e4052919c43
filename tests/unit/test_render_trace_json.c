/* The tracepatch JSON trace file (proto/render_trace_json.c): golden,
 * escaping, config, round trip through the loader. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"
#include "render.h"
#include "render_fixture.h"
#include "tree.h"

/* JSON timestamps are local time: pin the zone. */
static void utc(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
}

TestSuite(render_trace_json, .init = utc);

static char *json_of(const tp_tree *t, bool pretty)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_json(t, pretty, &b), 0);
    char *s = tp_buf_steal(&b, NULL);
    cr_assert_not_null(s);
    return s;
}

static tp_tree *load(const char *text)
{
    tp_tree *t = NULL;
    char err[256];
    int r = tp_load_json(text, strlen(text), &t, err, sizeof(err));
    cr_assert_eq(r, 0, "load failed: %d %s", r, err);
    return t;
}

Test(render_trace_json, pretty_golden)
{
    tp_tree *t = fx_rich_tree();
    char *s = json_of(t, true);
    json_decref(fx_parse_ok(s));
    fx_golden("render_json.json", s);
    free(s);
    tp_tree_free(t);
}

/* tphd's json export: the trace file with its lines= data as the last key;
 * without any, the same bytes as tp_render_json(). */
Test(render_trace_json, lines_are_the_last_key)
{
    tp_tree *t = fx_readme_tree();
    char *plain = json_of(t, true);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_json_sections(t, true, NULL, 0, &b), 0);
    cr_assert_str_eq(tp_buf_cstr(&b), plain);
    tp_buf_reset(&b);
    static const char lines[] = "[{\"call\":0,\"lines\":[]}]";
    tp_render_section sec[] = {{"lines", lines, strlen(lines)}};
    cr_assert_eq(tp_render_json_sections(t, true, sec, 1, &b), 0);
    const char *s = tp_buf_cstr(&b);
    size_t n = strlen(plain);
    /* Everything up to the closing brace, then the key. */
    cr_assert_eq(strncmp(s, plain, n - 3), 0);
    cr_assert_str_eq(s + n - 3, ",\n  \"lines\": [{\"call\":0,\"lines\":[]}]\n}\n");
    json_t *j = fx_parse_ok(s);
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(json_object_get(j, "lines"), 0), "call")),
        0);
    json_decref(j);
    tp_buf_free(&b);
    free(plain);
    tp_tree_free(t);
}

Test(render_trace_json, compact_has_no_whitespace_between_tokens)
{
    tp_tree *t = fx_readme_tree();
    char *s = json_of(t, false);
    static const char head[] =
        "{\"tracepatch_version\":\"2.0.0\",\"schema_version\":1,\"timestamp\":\"1970-01-01T00:"
        "00:00.000000\",\"label\":\"debug-request\",\"trace_id\":null,\"start\":0.000000,"
        "\"wall_start_ns\":0,\"duration_ms\":0.050,\"duration_ns\":50000,\"call_count\":3,"
        "\"was_limited\":false,\"limit_reason\":null,\"dropped\":0,\"config\":{},\"stats\":{";
    cr_assert_eq(strncmp(s, head, strlen(head)), 0, "got %s", s);
    const char *validate = strstr(s, "{\"name\":\"validate\",\"module\":\"__main__\",\"args\"");
    cr_assert_not_null(validate);
    cr_assert_str_eq(validate,
                     "{\"name\":\"validate\",\"module\":\"__main__\",\"args\":\"user={'id': 42, "
                     "...}\",\"return_value\":\"True\",\"exception\":null,\"start\":0.000030,"
                     "\"end\":0.000038,\"elapsed_ms\":0.008,\"file\":\"demo.py\",\"lineno\":6,"
                     "\"qualname\":\"validate\",\"exception_type\":null,\"exception_message\":"
                     "null,\"caught\":false,\"unfinished\":false,\"generator\":false,"
                     "\"suspends\":0,\"thread\":0,\"start_ns\":30000,\"end_ns\":38000,"
                     "\"active_ns\":8000,\"self_ns\":8000,"
                     "\"children\":[]}]}]}\n");
    json_t *j = fx_parse_ok(s);
    json_decref(j);
    free(s);
    tp_tree_free(t);
}

/* Every byte sequence gives valid JSON: escapes for quotes, backslashes and
 * control characters, U+FFFD for bytes that are not UTF-8. */
Test(render_trace_json, escapes_arbitrary_bytes)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m\"od", "f\\n", "", 0), 0);
    fx_call(t, 0, 0,
            "a=\"q\"\n\t\x01\x1f\x7f b='\xff' c='\xc3\xa9' d='\xed\xa0\x80' e='\xf0\x9f\x98\x80'");
    fx_ret(t, 1, "</script>");
    cr_assert_eq(tp_tree_finish(t, 1 * US), 0);
    char *s = json_of(t, false);
    cr_assert_not_null(strstr(s, "\"name\":\"f\\\\n\",\"module\":\"m\\\"od\",\"args\":"
                                 "\"a=\\\"q\\\"\\n\\t\\u0001\\u001f\x7f b='\xef\xbf\xbd' "
                                 "c='\xc3\xa9' d='\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd' "
                                 "e='\xf0\x9f\x98\x80'\",\"return_value\":\"</script>\""),
                       "got %s", s);
    json_t *j = fx_parse_ok(s);
    json_t *node = json_array_get(json_object_get(j, "trace"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(node, "module")), "m\"od");
    json_decref(j);
    free(s);
    tp_tree_free(t);
}

Test(render_trace_json, config_is_reindented_or_replaced)
{
    static const struct {
        const char *in, *compact;
    } cases[] = {
        {"{\"a\": [1, -2.5e+3, {\"b\": null}], \"c\": \"\\u00e9\\ud83d\\ude00\\n\"}",
         "\"config\":{\"a\":[1,-2.5e+3,{\"b\":null}],\"c\":\"\xc3\xa9\xf0\x9f\x98\x80\\n\"},"},
        {"{}", "\"config\":{},"},
        {" { \"x\" : [ ] } ", "\"config\":{\"x\":[]},"},
        {"{\"a\":1,}", "\"config\":{},"},                                /* trailing comma */
        {"{\"a\":01}", "\"config\":{},"},                                /* leading zero */
        {"[1]", "\"config\":{},"},                                       /* not an object */
        {"{\"a\":1}}", "\"config\":{},"},                                /* trailing bytes */
        {"{\"a\":\"x\"], \"evil\": 1}", "\"config\":{},"},               /* injection attempt */
        {"{\"a\":\"\x01\"}", "\"config\":{},"},                          /* raw control char */
        {"{\"a\":\"\\ud800\"}", "\"config\":{\"a\":\"\xef\xbf\xbd\"},"}, /* lone surrogate */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_tree *t = fx_readme_tree();
        cr_assert_eq(tp_tree_set_config_json(t, cases[i].in), 0);
        char *s = json_of(t, false);
        cr_assert_not_null(strstr(s, cases[i].compact), "case %zu: %s", i, s);
        json_decref(fx_parse_ok(s));
        free(s);
        tp_tree_free(t);
    }
    /* Pretty output indents the config like the rest. */
    tp_tree *t = fx_readme_tree();
    cr_assert_eq(tp_tree_set_config_json(t, "{\"a\":[1,{\"b\":true}],\"c\":{}}"), 0);
    char *s = json_of(t, true);
    cr_assert_not_null(strstr(s, "  \"config\": {\n"
                                 "    \"a\": [\n"
                                 "      1,\n"
                                 "      {\n"
                                 "        \"b\": true\n"
                                 "      }\n"
                                 "    ],\n"
                                 "    \"c\": {}\n"
                                 "  },\n"),
                       "got %s", s);
    free(s);
    /* Nesting past the bound is refused, not recursed into. */
    char deep[300];
    memset(deep, '[', sizeof(deep));
    memcpy(deep, "{\"a\":", 5);
    deep[sizeof(deep) - 1] = '\0';
    cr_assert_eq(tp_tree_set_config_json(t, deep), 0);
    s = json_of(t, false);
    cr_assert_not_null(strstr(s, "\"config\":{},"));
    free(s);
    tp_tree_free(t);
}

/* A folded tree keeps its groups' figures (extra keys on folded nodes). */
Test(render_trace_json, of_folded_tree_describes_groups)
{
    tp_tree *t = fx_rich_tree(), *f;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    char *s = json_of(f, false);
    cr_assert_not_null(strstr(s, "\"name\":\"item\",\"module\":\"app\",\"args\":\"i=0\","
                                 "\"return_value\":\"None\",\"exception\":null,"
                                 "\"start\":1770906622.124956,\"end\":1770906622.125021,"
                                 "\"elapsed_ms\":0.065,"),
                       "got %s", s);
    cr_assert_not_null(strstr(s, "\"thread\":0,\"start_ns\":1500000,\"end_ns\":1565000,\"count\":3,"
                                 "\"total_ms\":0.045,\"self_ms\":0.045,"
                                 "\"min_ms\":0.010,\"max_ms\":0.020,\"raised\":0,"
                                 "\"args_mixed\":true,\"return_mixed\":false,\"calls_mixed\":false,"
                                 "\"children\":[]"));
    cr_assert_not_null(strstr(s, "\"count\":2,\"total_ms\":0.150,\"self_ms\":0.150,"
                                 "\"min_ms\":0.050,\"max_ms\":0.100,\"raised\":1,"
                                 "\"args_mixed\":true,\"return_mixed\":true,"));
    json_decref(fx_parse_ok(s));
    free(s);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* tree -> JSON -> load -> JSON is the same text, and the loaded tree renders
 * the same text tree (times, exceptions, generators, threads, open calls). */
Test(render_trace_json, round_trip_is_identical)
{
    tp_tree *t = fx_rich_tree();
    char *a = json_of(t, true);
    tp_tree *u = load(a);
    char *b = json_of(u, true);
    cr_assert_str_eq(b, a);
    char *ca = json_of(t, false);
    tp_tree *v = load(ca);
    char *cb = json_of(v, false);
    cr_assert_str_eq(cb, ca);

    tp_render_opts o;
    tp_render_opts_init(&o);
    o.self_time = true;
    o.source = true;
    tp_buf x = TP_BUF_INIT, y = TP_BUF_INIT;
    cr_assert_eq(tp_render_text(t, &o, &x), 0);
    cr_assert_eq(tp_render_text(u, &o, &y), 0);
    cr_assert_str_eq(tp_buf_cstr(&y), tp_buf_cstr(&x));
    cr_assert_str_eq(u->meta.trace_id, t->meta.trace_id);
    cr_assert_eq(u->meta.wall_start_ns, t->meta.wall_start_ns);
    cr_assert_eq(u->meta.duration_ns, t->meta.duration_ns);
    cr_assert_eq(u->meta.dropped, 3);
    cr_assert_eq(u->meta.call_count, 12);
    tp_buf_free(&x);
    tp_buf_free(&y);
    free(a);
    free(b);
    free(ca);
    free(cb);
    tp_tree_free(t);
    tp_tree_free(u);
    tp_tree_free(v);
}

static bool is_ancestor(const tp_tree *t, uint32_t a, uint32_t n)
{
    for (uint32_t p = t->nodes[n].parent; p != TP_NONE; p = t->nodes[p].parent)
        if (p == a)
            return true;
    return false;
}

/* A random but valid event stream: calls, returns, exceptions, generators
 * suspended and resumed (also from other threads and after their caller
 * returned), three threads; times in ns. With realistic, a suspended
 * generator is resumed the way Python code mostly resumes one: on its own
 * thread, by a frame that is no generator or by its parent generator (yield
 * from), and never by one of its own descendants. */
static tp_tree *random_tree(unsigned seed, int events, bool realistic)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    for (uint32_t f = 0; f < 6; f++) {
        char q[8];
        snprintf(q, sizeof(q), "f%u", f);
        cr_assert_eq(tp_tree_def_func(t, f, f < 3 ? "a" : "b", q, "x.py", (int32_t)f), 0);
    }
    uint32_t stack[3][64], depth[3] = {0}, susp[64], nsusp = 0, th = 0;
    bool is_gen[4096] = {0};
    uint64_t now = 0;
    for (int i = 0; i < events && t->nnodes < 4000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 8) % 100;
        now += 1 + (seed >> 20) % 50000;
        uint32_t *st = stack[th], *d = &depth[th];
        if (r < 40 && *d < 60) {
            bool gen = (seed >> 12) % 3 == 0;
            cr_assert_eq(tp_tree_call(t, (seed >> 4) % 6, now, gen, "a=1", 3), 0);
            is_gen[t->nnodes - 1] = gen;
            st[(*d)++] = (uint32_t)t->nnodes - 1;
        } else if (r < 65 && *d) {
            cr_assert_eq(tp_tree_return(t, now, "None", (seed >> 5) % 2 ? 4 : 0), 0);
            (*d)--;
        } else if (r < 72 && *d) {
            cr_assert_eq(tp_tree_unwind(t, now, "E", 1, "m", 1), 0);
            (*d)--;
        } else if (r < 75 && *d) {
            cr_assert_eq(tp_tree_caught(t, now, "K", 1, "", 0), 0);
        } else if (r < 85 && *d && is_gen[st[*d - 1]] && nsusp < 64) {
            cr_assert_eq(tp_tree_yield(t, st[*d - 1], now), 0);
            susp[nsusp++] = st[--(*d)];
        } else if (r < 95 && nsusp && *d < 60) {
            uint32_t k = (seed >> 3) % nsusp, g = susp[k];
            uint32_t top = *d ? st[*d - 1] : TP_NONE;
            if (realistic && t->nodes[g].thread != th)
                continue;
            if (realistic && top != TP_NONE &&
                ((is_gen[top] && t->nodes[g].parent != top) || is_ancestor(t, g, top)))
                continue;
            cr_assert_eq(tp_tree_resume(t, g, now), 0);
            st[(*d)++] = g;
            susp[k] = susp[--nsusp];
        } else if (r >= 95) {
            th = (seed >> 6) % 3;
            cr_assert_eq(tp_tree_thread(t, th), 0);
        }
    }
    cr_assert_eq(tp_tree_finish(t, now + 1), 0);
    t->meta.wall_start_ns = FIXTURE_WALL_NS + 789;
    return t;
}

/* Realistic random traces survive the trip through JSON byte for byte: the
 * loader replays calls in time order, suspending and resuming generators
 * as the program must have. */
Test(render_trace_json, round_trip_of_random_traces)
{
    for (unsigned seed = 1; seed <= 400; seed++) {
        tp_tree *t = random_tree(seed, 40 + (int)(seed % 7) * 60, true);
        char *a = json_of(t, false);
        tp_tree *u = load(a);
        char *b = json_of(u, false);
        cr_assert_str_eq(b, a, "seed %u", seed);
        free(a);
        free(b);
        tp_tree_free(t);
        tp_tree_free(u);
    }
}

/* Contrived ones (a generator resumed by its own descendant, by an
 * unrelated generator, or on another thread) keep every call in its place
 * with its start; what the file does not say (who resumed whom, where) may
 * shift suspension counts or close a call early, and the text is stable
 * from the second trip on. */
Test(render_trace_json, round_trip_of_contrived_traces_keeps_the_tree)
{
    for (unsigned seed = 1; seed <= 300; seed++) {
        tp_tree *t = random_tree(seed, 40 + (int)(seed % 7) * 60, false);
        char *a = json_of(t, false);
        tp_tree *u = load(a);
        cr_assert_eq(u->nnodes, t->nnodes, "seed %u", seed);
        for (size_t i = 0; i < t->nnodes; i++) {
            const tp_node *x = &t->nodes[i], *y = &u->nodes[i];
            cr_assert_eq(y->parent, x->parent, "seed %u node %zu", seed, i);
            cr_assert_eq(y->start_ns, x->start_ns, "seed %u node %zu", seed, i);
            cr_assert_str_eq(u->funcs[y->func].qualname, t->funcs[x->func].qualname);
        }
        char *b = json_of(u, false);
        tp_tree *v = load(b);
        char *c = json_of(v, false);
        cr_assert_str_eq(c, b, "seed %u", seed);
        free(a);
        free(b);
        free(c);
        tp_tree_free(t);
        tp_tree_free(u);
        tp_tree_free(v);
    }
}

/* Nanosecond times travel exactly beside the microsecond ones. */
Test(render_trace_json, round_trip_keeps_nanoseconds)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 1999, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 2001, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 3999, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 5001, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 6789), 0);
    t->meta.wall_start_ns = 1700000000999999999LL;
    char *a = json_of(t, false);
    cr_assert_not_null(strstr(a,
                              "\"start\":1700000000.999999,\"wall_start_ns\":"
                              "1700000000999999999,\"duration_ms\":0.006,\"duration_ns\":6789,"));
    /* Both ends truncate to the µs (1 and 5), elapsed is 3002 ns. */
    cr_assert_not_null(strstr(a, "\"start\":1700000001.000000,\"end\":1700000001.000004,"
                                 "\"elapsed_ms\":0.003,"),
                       "got %s", a);
    cr_assert_not_null(strstr(a, "\"start_ns\":1999,\"end_ns\":5001,"));
    tp_tree *u = load(a);
    cr_assert_eq(u->nodes[1].start_ns, 2001);
    cr_assert_eq(u->nodes[1].end_ns, 3999);
    cr_assert_eq(u->meta.duration_ns, 6789);
    char *b = json_of(u, false);
    cr_assert_str_eq(b, a);
    free(a);
    free(b);
    tp_tree_free(t);
    tp_tree_free(u);
}

static void drop_ns_keys(json_t *node)
{
    json_object_del(node, "start_ns");
    json_object_del(node, "end_ns");
    json_object_del(node, "active_ns");
    json_object_del(node, "self_ns");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(node, "children"), i, c) drop_ns_keys(c);
}

/* Without the _ns keys (a file from another writer), times come from the µs
 * ones: the rich tree, whose times are whole µs, loads the same. */
Test(render_trace_json, microsecond_times_load_alone)
{
    tp_tree *t = fx_rich_tree();
    char *a = json_of(t, true);
    json_t *doc = fx_parse_ok(a);
    json_object_del(doc, "wall_start_ns");
    json_object_del(doc, "duration_ns");
    size_t i;
    json_t *root;
    json_array_foreach(json_object_get(doc, "trace"), i, root) drop_ns_keys(root);
    char *us_only = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    cr_assert_not_null(us_only);
    cr_assert_null(strstr(us_only, "_ns\""));
    tp_tree *u = load(us_only);
    char *b = json_of(u, true);
    cr_assert_str_eq(b, a);
    free(us_only);
    free(a);
    free(b);
    json_decref(doc);
    tp_tree_free(t);
    tp_tree_free(u);
}

/* A 100k-deep chain is written without recursion, compact or pretty. */
Test(render_trace_json, deep_chain_is_iterative)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "r", "", 0), 0);
    const uint32_t depth = 100000;
    for (uint32_t i = 0; i < depth; i++)
        cr_assert_eq(tp_tree_call(t, 0, i, false, NULL, 0), 0);
    for (uint32_t i = 0; i < depth; i++)
        cr_assert_eq(tp_tree_return(t, depth + i, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 2 * depth), 0);
    for (int pretty = 0; pretty < 2; pretty++) {
        tp_buf b = TP_BUF_INIT;
        cr_assert_eq(tp_render_json(t, pretty, &b), 0);
        size_t opens = 0, closes = 0;
        for (size_t i = 0; i < b.len; i++) {
            opens += b.data[i] == '[';
            closes += b.data[i] == ']';
        }
        cr_assert_eq(opens, closes);
        cr_assert_eq(opens, depth + 3); /* children per node, trace, stats lists */
        /* Indentation stops growing at 64 levels (128 spaces). */
        if (pretty)
            cr_assert_null(strstr(b.data, "\n                                                  "
                                          "                                                  "
                                          "                              \""));
        tp_buf_free(&b);
    }
    tp_tree_free(t);
}

/* "name" is 1.0.0's: a function's qualname with its module beside it, in the
 * stats block as in the nodes (the stats once said "app.db.load" where the
 * nodes say "load"). */
Test(render_trace_json, stats_names_mean_what_node_names_mean)
{
    tp_tree *t = fx_rich_tree();
    char *s = json_of(t, false);
    json_t *j = fx_parse_ok(s);
    json_t *st = json_object_get(j, "stats");
    json_t *slow = json_object_get(st, "slowest"), *mc = json_object_get(st, "most_called");
    cr_assert_str_eq(json_string_value(json_object_get(slow, "name")), "tail");
    cr_assert_str_eq(json_string_value(json_object_get(slow, "module")), "app");
    cr_assert_str_eq(json_string_value(json_object_get(mc, "name")), "item");
    cr_assert_str_eq(json_string_value(json_object_get(mc, "module")), "app");
    json_t *f0 = json_array_get(json_object_get(st, "functions"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(f0, "name")), "load");
    cr_assert_str_eq(json_string_value(json_object_get(f0, "module")), "app.db");
    cr_assert_str_eq(json_string_value(json_object_get(f0, "qualname")), "load");
    /* 1.0.0's own key keeps the dotted call name the text header prints. */
    cr_assert_str_eq(json_string_value(json_object_get(st, "slowest_call_name")), "app.tail");
    json_decref(j);
    free(s);
    tp_tree_free(t);
}

/* A sink that collects the pieces and the largest one after the first, and
 * may fail. */
typedef struct collect {
    tp_buf all;
    size_t pieces, largest;
    size_t fail_at; /* 0: never */
} collect;

static int collect_sink(void *ctx, const char *p, size_t n)
{
    collect *c = ctx;
    cr_assert_gt(n, 0);
    if (c->fail_at && c->pieces + 1 == c->fail_at)
        return -EIO;
    /* The first piece also holds the header and the stats block. */
    if (c->pieces++ && n > c->largest)
        c->largest = n;
    tp_buf_append(&c->all, p, n);
    return 0;
}

/* The "lines" and "source" sections go last, in the order given; an empty
 * one is left out; streamed, the same bytes. */
Test(render_trace_json, sections_are_the_last_keys_in_order_streamed_alike)
{
    tp_tree *t = fx_readme_tree();
    char *plain = json_of(t, false);
    static const char lines[] = "[{\"call\":0}]", source[] = "{\"functions\":[]}";
    tp_render_section sec[] = {
        {"lines", lines, strlen(lines)}, {"empty", "", 0}, {"source", source, strlen(source)}};
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_json_sections(t, false, sec, 3, &b), 0);
    size_t n = strlen(plain);
    cr_assert_eq(strncmp(tp_buf_cstr(&b), plain, n - 2), 0);
    cr_assert_str_eq(tp_buf_cstr(&b) + n - 2,
                     ",\"lines\":[{\"call\":0}],\"source\":{\"functions\":[]}}\n");
    collect c = {.all = TP_BUF_INIT};
    cr_assert_eq(tp_render_json_stream(t, false, sec, 3, 1, collect_sink, &c), 0);
    cr_assert_str_eq(tp_buf_cstr(&c.all), tp_buf_cstr(&b));
    cr_assert_eq(tp_render_json_sections(t, false, NULL, 1, &b), -EINVAL);
    tp_buf_free(&c.all);
    tp_buf_free(&b);
    free(plain);
    tp_tree_free(t);
}

Test(render_trace_json, stream_gives_the_same_bytes_in_bounded_pieces)
{
    tp_tree *t = random_tree(7, 2000, true);
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *whole = json_of(t, pretty);
        size_t chunks[] = {1, 4096, (size_t)1 << 30};
        for (size_t k = 0; k < 3; k++) {
            collect c = {.all = TP_BUF_INIT};
            cr_assert_eq(tp_render_json_stream(t, pretty, NULL, 0, chunks[k], collect_sink, &c), 0);
            cr_assert_str_eq(tp_buf_cstr(&c.all), whole, "chunk %zu", chunks[k]);
            if (chunks[k] == 4096) {
                /* A piece is a chunk plus one node's text and the closing
                 * of its ancestors (60 levels, indented: under 16 KiB). */
                cr_assert_gt(c.pieces, 2);
                cr_assert_lt(c.largest, 4096 + 16384, "largest piece %zu", c.largest);
            }
            if (chunks[k] == (size_t)1 << 30)
                cr_assert_eq(c.pieces, 1);
            tp_buf_free(&c.all);
        }
        free(whole);
    }
    tp_tree_free(t);
}

Test(render_trace_json, stream_stops_at_the_sinks_error)
{
    tp_tree *t = random_tree(3, 500, true);
    collect c = {.all = TP_BUF_INIT, .fail_at = 2};
    cr_assert_eq(tp_render_json_stream(t, true, NULL, 0, 512, collect_sink, &c), -EIO);
    cr_assert_eq(c.pieces, 1);
    cr_assert_eq(tp_render_json_stream(NULL, true, NULL, 0, 512, collect_sink, &c), -EINVAL);
    cr_assert_eq(tp_render_json_stream(t, true, NULL, 0, 512, NULL, NULL), -EINVAL);
    tp_buf_free(&c.all);
    tp_tree_free(t);
}

/* tracepatch 1.0.0's environment keys sit after trace_id, are written only
 * when known, and come back from a file. */
Test(render_trace_json, environment_keys_follow_trace_id_and_round_trip)
{
    tp_tree *t = fx_readme_tree();
    char *s = json_of(t, false);
    cr_assert_null(strstr(s, "hostname"));
    free(s);
    cr_assert_eq(tp_tree_set_env(t, "box", "3.12.1", "linux", "/srv/app"), 0);
    s = json_of(t, false);
    cr_assert(strstr(s, "\"trace_id\":null,\"hostname\":\"box\",\"python_version\":\"3.12.1\","
                        "\"platform\":\"linux\",\"working_directory\":\"/srv/app\",\"start\":"),
              "%s", s);
    tp_tree *back = load(s);
    char *again = json_of(back, false);
    cr_assert_str_eq(again, s);
    free(again);
    tp_tree_free(back);
    free(s);
    cr_assert_eq(tp_tree_set_env(t, NULL, "3.12.1", NULL, NULL), 0);
    s = json_of(t, false);
    cr_assert(strstr(s, "\"trace_id\":null,\"python_version\":\"3.12.1\",\"start\":"), "%s", s);
    free(s);
    tp_tree_free(t);
}

/* track_memory: measured calls carry memory_delta_kb and the exact bytes,
 * unmeasured ones neither, and both come back through the loader. */
Test(render_trace_json, memory_delta_round_trips_exactly)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "", 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 1000, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_call(t, 0, 2000, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 3000, NULL, 0), 0);
    cr_assert_eq(tp_tree_memory(t, 1000000), 0);
    cr_assert_eq(tp_tree_call(t, 0, 4000, false, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 5000, NULL, 0), 0);
    cr_assert_eq(tp_tree_return(t, 6000, NULL, 0), 0);
    cr_assert_eq(tp_tree_memory(t, -7), 0);
    cr_assert_eq(tp_tree_finish(t, 7000), 0);
    char *a = json_of(t, false);
    cr_assert_not_null(strstr(a, "\"end_ns\":6000,\"active_ns\":5000,\"self_ns\":3000,"
                                 "\"memory_delta_kb\":-0.007,\"memory_delta_bytes\":-7,"),
                       "got %s", a);
    cr_assert_not_null(strstr(a, "\"self_ns\":1000,\"memory_delta_kb\":976.563,"
                                 "\"memory_delta_bytes\":1000000,\"children\""));
    /* The third call was not measured. */
    const char *third = strstr(a, "\"start_ns\":4000");
    cr_assert_not_null(third);
    cr_assert_null(strstr(third, "memory_delta"));
    tp_tree *u = load(a);
    cr_assert_eq(u->nodes[0].mem_delta, -7);
    cr_assert_eq(u->nodes[1].mem_delta, 1000000);
    cr_assert_eq(u->nodes[2].flags & TP_NODE_MEM, 0);
    char *b = json_of(u, false);
    cr_assert_str_eq(b, a);
    free(a);
    free(b);
    tp_tree_free(t);
    tp_tree_free(u);
}
