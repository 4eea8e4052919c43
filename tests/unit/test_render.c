/* The text renderers: tree (unicode, ascii, ansi), header, filters, depth
 * limit, escaping, stats and diff reports. Golden files live in
 * TP_TEST_DATA (tests/unit/data/render_*.txt). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_fixture.h"
#include "tree.h"

static char *render(const tp_tree *t, const tp_render_opts *o)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_text(t, o, &b), 0);
    char *s = tp_buf_steal(&b, NULL);
    cr_assert_not_null(s);
    return s;
}

static void check_text(const tp_tree *t, const tp_render_opts *o, const char *want)
{
    char *s = render(t, o);
    cr_assert_str_eq(s, want);
    free(s);
}

static void check_golden(const tp_tree *t, const tp_render_opts *o, const char *name)
{
    char *s = render(t, o);
    fx_golden(name, s);
    free(s);
}

/* ---- Durations ------------------------------------------------------------ */

/* Three significant digits in the largest unit reached, each boundary on
 * both sides (a value that rounds up to 1000 of a unit takes the next). */
Test(render, format_duration_has_three_significant_digits)
{
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {-5, "0ns"},
        {0, "0ns"},
        {999, "999ns"},
        {1000, "1.00\u00b5s"},
        {1234, "1.23\u00b5s"},
        {1235, "1.24\u00b5s"},
        {9994, "9.99\u00b5s"},
        {9995, "10.0\u00b5s"},
        {99949, "99.9\u00b5s"},
        {99950, "100\u00b5s"},
        {999499, "999\u00b5s"},
        {999500, "1.00ms"},
        {1234567, "1.23ms"},
        {12345678, "12.3ms"},
        {123456789, "123ms"},
        {999499999, "999ms"},
        {999500000, "1.00s"},
        {1234567890, "1.23s"},
        {61000000000, "61.0s"},
        {1234000000000, "1234s"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_str_eq(tp_render_format_duration(cases[i].ns, buf, sizeof(buf)), cases[i].want,
                         "ns=%lld", (long long)cases[i].ns);
}

/* tracepatch 1.0.0's look (ms_units): hundredths of a millisecond, seconds
 * from 1000 ms; in ascii the microsecond is "us". */
Test(render, ms_units_and_ascii_microseconds)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "f", "", 0), 0);
    static const int64_t ends[] = {4999, 5000, 999994999, 999995000};
    int64_t at = 0;
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(tp_tree_call(t, 0, (uint64_t)at, false, NULL, 0), 0);
        cr_assert_eq(tp_tree_return(t, (uint64_t)(at + ends[i]), NULL, 0), 0);
        at += ends[i] + 1000000000;
    }
    cr_assert_eq(tp_tree_finish(t, (uint64_t)at), 0);
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.header = false;
    o.fold = false;
    o.ms_units = true;
    check_text(t, &o,
               "\u251c\u2500\u2500 m.f()  [0.00ms]\n\u251c\u2500\u2500 m.f()  [0.01ms]\n"
               "\u251c\u2500\u2500 m.f()  [999.99ms]\n\u2514\u2500\u2500 m.f()  [1.00s]\n");
    o.ms_units = false;
    o.style = TP_STYLE_ASCII;
    check_text(
        t, &o,
        "|-- m.f()  [5.00us]\n|-- m.f()  [5.00us]\n|-- m.f()  [1.00s]\n`-- m.f()  [1.00s]\n");
    tp_tree_free(t);
}

Test(render, opts_init_gives_tracepatch_defaults)
{
    tp_render_opts o;
    memset(&o, 0xff, sizeof(o));
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    cr_assert_eq(o.style, TP_STYLE_UNICODE);
    cr_assert(!o.color && o.args && o.returns && !o.self_time && !o.source);
    cr_assert(o.header && o.fold);
    cr_assert_eq(o.fold_threshold, 0);
    cr_assert_eq(o.max_depth, -1);
    cr_assert_null(o.filters);
}

/* ---- The README example ------------------------------------------------------ */

/* tracepatch 1.0.0's README quick start, character for character, except the
 * "Most called" column: every function ran once, and tp_tree_stats() breaks
 * that tie by time (handle_request), where the README shows load_user. */
Test(render, readme_example_matches)
{
    tp_tree *t = fx_readme_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    check_golden(t, &o, "render_readme.txt");
    tp_tree_free(t);
}

Test(render, readme_tree_without_header)
{
    tp_tree *t = fx_readme_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.header = false;
    check_text(t, &o,
               "└── __main__.handle_request(uid=42) -> {'id': 42, 'name': 'Alice'}  [0.05ms]\n"
               "    ├── __main__.load_user(uid=42) -> {'id': 42, 'name': 'Alice'}  [0.01ms]\n"
               "    └── __main__.validate(user={'id': 42, ...}) -> True  [0.01ms]\n");
    o.args = false;
    o.returns = false;
    check_text(t, &o,
               "└── __main__.handle_request()  [0.05ms]\n"
               "    ├── __main__.load_user()  [0.01ms]\n"
               "    └── __main__.validate()  [0.01ms]\n");
    tp_tree_free(t);
}

/* ---- Golden trees --------------------------------------------------------------- */

Test(render, unicode_golden_with_self_time_and_source)
{
    tp_tree *t = fx_rich_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.self_time = true;
    o.source = true;
    check_golden(t, &o, "render_unicode.txt");
    tp_tree_free(t);
}

Test(render, ascii_golden_is_seven_bit)
{
    tp_tree *t = fx_rich_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.style = TP_STYLE_ASCII;
    char *s = render(t, &o);
    for (const char *p = s; *p; p++)
        cr_assert_lt((unsigned char)*p, 0x80, "non-ASCII byte at offset %td", p - s);
    fx_golden("render_ascii.txt", s);
    free(s);
    tp_tree_free(t);
}

Test(render, ansi_golden_colours_by_duration)
{
    tp_tree *t = fx_rich_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.color = true;
    check_golden(t, &o, "render_ansi.txt");
    tp_tree_free(t);
}

Test(render, no_fold_shows_every_call)
{
    tp_tree *t = fx_rich_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.header = false;
    o.fold = false;
    const char *filters[] = {"app.item", "app.retry", NULL};
    o.filters = filters;
    check_text(t, &o,
               "├── app.item(i=0) -> None  [0.01ms]\n"
               "├── app.item(i=1) -> None  [0.02ms]\n"
               "├── app.item(i=2) -> None  [0.02ms]\n"
               "├── app.retry(n=1) !! TimeoutError: slow  [0.05ms]\n"
               "└── app.retry(n=2) -> True  [0.10ms]\n"
               "(trace limited: max_time; 12 calls recorded)\n"
               "(trace incomplete: 3 events dropped)\n");
    tp_tree_free(t);
}

Test(render, fold_threshold_is_honoured)
{
    tp_tree *t = fx_rich_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.header = false;
    o.fold_threshold = 3; /* item ran 3 times in a row, retry twice */
    const char *filters[] = {"app.item", "app.retry", NULL};
    o.filters = filters;
    check_text(t, &o,
               "├── app.item(...) -> None  [×3]  [0.05ms total, avg 0.02ms, min 0.01ms, max "
               "0.02ms]\n"
               "├── app.retry(n=1) !! TimeoutError: slow  [0.05ms]\n"
               "└── app.retry(n=2) -> True  [0.10ms]\n"
               "(trace limited: max_time; 12 calls recorded)\n"
               "(trace incomplete: 3 events dropped)\n");
    tp_tree_free(t);
}

/* A tree folded by the caller is shown as it is. */
Test(render, prefolded_tree_is_not_refolded)
{
    tp_tree *t = fx_readme_tree(), *f;
    cr_assert_eq(tp_tree_fold(t, NULL, &f), 0);
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    char *a = render(t, &o), *b = render(f, &o);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    tp_tree_free(f);
    tp_tree_free(t);
}

/* ---- Filters and depth ------------------------------------------------------------ */

/* a.main > lib.wrap > a.work > lib.util > a.leaf, and a.main > a.other. */
static tp_tree *layered_tree(void)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "a", "main", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "lib", "wrap", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "a", "work", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 3, "lib", "util", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 4, "a", "leaf", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 5, "a", "other", "", 0), 0);
    fx_call(t, 0, 0, NULL);
    fx_call(t, 1, 10, NULL);
    fx_call(t, 2, 20, NULL);
    fx_call(t, 3, 30, NULL);
    fx_call(t, 4, 40, NULL);
    fx_ret(t, 50, NULL);
    fx_ret(t, 60, NULL);
    fx_ret(t, 70, NULL);
    fx_ret(t, 80, NULL);
    fx_call(t, 5, 90, NULL);
    fx_ret(t, 100, NULL);
    fx_ret(t, 110, NULL);
    cr_assert_eq(tp_tree_finish(t, 110 * US), 0);
    return t;
}

static void layered_check(const char *const *filters, int max_depth, const char *want)
{
    tp_tree *t = layered_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.header = false;
    o.filters = filters;
    o.max_depth = max_depth;
    check_text(t, &o, want);
    tp_tree_free(t);
}

Test(render, drop_filter_lifts_descendants_at_every_depth)
{
    const char *drop[] = {"!lib", NULL};
    layered_check(drop, -1,
                  "└── a.main()  [0.11ms]\n"
                  "    ├── a.work()  [0.05ms]\n"
                  "    │   └── a.leaf()  [0.01ms]\n"
                  "    └── a.other()  [0.01ms]\n");
}

Test(render, keep_filter_matches_full_name_or_module)
{
    const char *by_module[] = {"a", NULL};
    const char *by_glob[] = {"a.*", NULL};
    const char *want = "└── a.main()  [0.11ms]\n"
                       "    ├── a.work()  [0.05ms]\n"
                       "    │   └── a.leaf()  [0.01ms]\n"
                       "    └── a.other()  [0.01ms]\n";
    layered_check(by_module, -1, want);
    layered_check(by_glob, -1, want);
}

Test(render, keep_and_drop_filters_mix)
{
    const char *mixed[] = {"a.*", "!a.other", "!*.m?in", NULL};
    layered_check(mixed, -1,
                  "└── a.work()  [0.05ms]\n"
                  "    └── a.leaf()  [0.01ms]\n");
}

Test(render, filter_hiding_everything_says_so)
{
    const char *none[] = {"nomatch.*", NULL};
    layered_check(none, -1, "No calls match the filter criteria.\n");
}

Test(render, depth_limit_counts_cut_calls)
{
    layered_check(NULL, 2,
                  "└── a.main()  [0.11ms]\n"
                  "    ├── lib.wrap()  [0.07ms]\n"
                  "    │   └── [1 nested calls...]\n"
                  "    └── a.other()  [0.01ms]\n");
    layered_check(NULL, 1,
                  "└── a.main()  [0.11ms]\n"
                  "    └── [2 nested calls...]\n");
    layered_check(NULL, 0, "└── [1 nested calls...]\n");
}

/* The depth limit counts shown levels, after the filters. */
Test(render, depth_limit_applies_after_filters)
{
    const char *drop[] = {"!lib", NULL};
    layered_check(drop, 2,
                  "└── a.main()  [0.11ms]\n"
                  "    ├── a.work()  [0.05ms]\n"
                  "    │   └── [1 nested calls...]\n"
                  "    └── a.other()  [0.01ms]\n");
}

/* A 100k-deep chain: filters and the depth limit walk it without recursion. */
Test(render, deep_chain_renders_iteratively)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "m", "rec", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "m", "hidden", "", 0), 0);
    const uint32_t depth = 100000;
    for (uint32_t i = 0; i < depth; i++)
        cr_assert_eq(tp_tree_call(t, i % 2, i, false, NULL, 0), 0);
    for (uint32_t i = 0; i < depth; i++)
        cr_assert_eq(tp_tree_return(t, depth + i, NULL, 0), 0);
    cr_assert_eq(tp_tree_finish(t, 2 * depth), 0);
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.header = false;
    o.max_depth = 3;
    const char *drop[] = {"!m.hidden", NULL};
    o.filters = drop;
    check_text(t, &o,
               "└── m.rec()  [0.20ms]\n"
               "    └── m.rec()  [0.20ms]\n"
               "        └── m.rec()  [0.20ms]\n"
               "            └── [1 nested calls...]\n");
    tp_tree_free(t);
}

/* ---- Escaping ------------------------------------------------------------------------ */

static tp_tree *hostile_tree(void)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "evil\x1b[2J", "f\nake", "x\ty.py", 1), 0);
    fx_call(t, 0, 0, "s='\x1b[31mred\x1b[0m', b='\xff\xfe', c1='\xc2\x9b', bidi='\xe2\x80\xae'");
    fx_ret(t, 10, "'line1\nline2\r\x7f\x01'");
    fx_call(t, 0, 20, "caf\xc3\xa9, \xf0\x9f\x98\x80");
    fx_unwind(t, 30, "Bad\x1b]0;title\x07", "msg\nfake line");
    cr_assert_eq(tp_tree_finish(t, 30 * US), 0);
    cr_assert_eq(tp_tree_set_label(t, "label\x1b[5m"), 0);
    return t;
}

Test(render, hostile_text_is_escaped_in_unicode)
{
    tp_tree *t = hostile_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.source = true;
    o.fold = false;
    char *s = render(t, &o);
    cr_assert_null(strchr(s, '\x1b'), "an ESC byte reached the output");
    cr_assert_null(strchr(s, '\r'));
    fx_golden("render_hostile_unicode.txt", s);
    free(s);
    tp_tree_free(t);
}

Test(render, hostile_text_is_escaped_in_ascii)
{
    tp_tree *t = hostile_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.style = TP_STYLE_ASCII;
    o.header = false;
    o.fold = false;
    check_text(t, &o,
               "|-- evil\\x1b[2J.f\\nake(s='\\x1b[31mred\\x1b[0m', b='\\xff\\xfe', c1='\\u009b', "
               "bidi='\\u202e') -> 'line1\\nline2\\r\\x7f\\x01'  [0.01ms]\n"
               "`-- evil\\x1b[2J.f\\nake(caf\\u00e9, \\U0001f600) !! Bad\\x1b]0;title\\x07: "
               "msg\\nfake line  [0.01ms]\n");
    tp_tree_free(t);
}

/* Colour adds escape sequences only around whole tokens; without it there
 * is no ESC at all, even with hostile text (checked above). */
Test(render, colour_wraps_tokens_and_resets)
{
    tp_tree *t = fx_readme_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.header = false;
    o.color = true;
    o.max_depth = 1;
    check_text(t, &o,
               "└── \x1b[1m__main__.handle_request\x1b[0m(uid=42) -> {'id': 42, 'name': "
               "'Alice'}  \x1b[32m[0.05ms]\x1b[0m\n"
               "    └── [2 nested calls...]\n");
    tp_tree_free(t);
}

/* ---- Edge cases -------------------------------------------------------------------------- */

Test(render, empty_tree_has_header_and_message)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_finish(t, 0), 0);
    tp_render_opts o;
    tp_render_opts_init(&o);
    check_golden(t, &o, "render_empty.txt");
    tp_tree_free(t);
}

Test(render, bad_style_is_rejected)
{
    tp_tree *t = fx_readme_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.ms_units = true; /* tracepatch 1.0.0's look */
    o.style = 7;
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_text(t, &o, &b), -EINVAL);
    cr_assert_eq(tp_render_text(NULL, &o, &b), -EINVAL);
    tp_buf_free(&b);
    tp_tree_free(t);
}

Test(render, null_opts_mean_defaults)
{
    tp_tree *t = fx_readme_tree();
    tp_render_opts o;
    tp_render_opts_init(&o);
    char *a = render(t, NULL), *b = render(t, &o);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    tp_tree_free(t);
}

/* ---- Stats header and report ---------------------------------------------------------------- */

Test(render, stats_header_alone)
{
    tp_tree *t = fx_readme_tree();
    tp_stats *s;
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_stats_header(t, s, &b), 0);
    char *tree = render(t, NULL);
    /* The header is the default tree's first six lines. */
    char *end = tree;
    for (int i = 0; i < 6; i++)
        end = strchr(end, '\n') + 1;
    *end = '\0';
    cr_assert_str_eq(tp_buf_cstr(&b), tree);
    cr_assert_not_null(strstr(tree, "Duration: 50.0\u00b5s"));
    free(tree);
    tp_buf_free(&b);
    tp_tree_stats_free(s);
    tp_tree_free(t);
}

Test(render, stats_report_golden)
{
    tp_tree *t = fx_rich_tree();
    tp_stats *s;
    cr_assert_eq(tp_tree_stats(t, &s), 0);
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_render_stats(t, s, false, &b), 0);
    fx_golden("render_stats.txt", tp_buf_cstr(&b));
    tp_buf_reset(&b);
    cr_assert_eq(tp_render_stats(t, s, true, &b), 0);
    cr_assert_not_null(strstr(tp_buf_cstr(&b), "\x1b[1mapp.handle\x1b[0m"));
    tp_buf_free(&b);
    tp_tree_stats_free(s);
    tp_tree_free(t);
}

/* ---- Diff report --------------------------------------------------------------------------------
 */

/* before: main > {load, save, check ×2}; after: main > {load (slower),
 * check ×5, audit}. */
static tp_tree *diff_tree(bool after)
{
    tp_tree *t;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, 0, "app", "main", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 1, "app", "load", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 2, "app", "save", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 3, "app", "check", "", 0), 0);
    cr_assert_eq(tp_tree_def_func(t, 4, "app", "audit", "", 0), 0);
    uint64_t now = 0;
    fx_call(t, 0, now, NULL);
    fx_call(t, 1, now += 10, NULL);
    fx_ret(t, now += after ? 3000 : 1000, NULL);
    if (!after) {
        fx_call(t, 2, now += 10, NULL);
        fx_ret(t, now += 500, NULL);
    }
    for (int i = 0; i < (after ? 5 : 2); i++) {
        fx_call(t, 3, now += 10, NULL);
        fx_ret(t, now += 10, NULL);
    }
    if (after) {
        fx_call(t, 4, now += 10, NULL);
        fx_ret(t, now += 200, NULL);
    }
    fx_ret(t, now += 10, NULL);
    cr_assert_eq(tp_tree_finish(t, now * US), 0);
    return t;
}

Test(render, diff_report_golden)
{
    tp_tree *a = diff_tree(false), *b = diff_tree(true);
    tp_diff *d;
    cr_assert_eq(tp_tree_diff(a, b, NULL, &d), 0);
    tp_buf out = TP_BUF_INIT;
    cr_assert_eq(tp_render_diff(d, false, &out), 0);
    cr_assert_null(strchr(tp_buf_cstr(&out), '\x1b'));
    fx_golden("render_diff.txt", tp_buf_cstr(&out));
    tp_buf_reset(&out);
    cr_assert_eq(tp_render_diff(d, true, &out), 0);
    cr_assert_not_null(strstr(tp_buf_cstr(&out), "\x1b[31m- app.save\x1b[0m\n"));
    tp_buf_free(&out);
    tp_tree_diff_free(d);
    tp_tree_free(a);
    tp_tree_free(b);
}

Test(render, diff_of_identical_traces_says_so)
{
    tp_tree *a = diff_tree(false), *b = diff_tree(false);
    tp_diff *d;
    cr_assert_eq(tp_tree_diff(a, b, NULL, &d), 0);
    tp_buf out = TP_BUF_INIT;
    cr_assert_eq(tp_render_diff(d, false, &out), 0);
    cr_assert_str_eq(tp_buf_cstr(&out), "Calls:     5 -> 5 (+0)\n"
                                        "Duration:  1.57ms -> 1.57ms (+0%)\n"
                                        "\n"
                                        "No significant differences found.\n");
    tp_buf_free(&out);
    tp_tree_diff_free(d);
    tp_tree_free(a);
    tp_tree_free(b);
}

/* A 100k-deep chain prints one line per call whose indentation stops at 64
 * levels ("[+N] " says how many are left out), so the text grows linearly
 * with the calls, not with their square. */
Test(render, very_deep_lines_show_their_last_64_levels)
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
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.header = false;
    o.style = TP_STYLE_ASCII;
    char *s = render(t, &o);
    size_t lines = 0, longest = 0, len = 0;
    for (const char *p = s; *p; p++, len++)
        if (*p == '\n') {
            lines++;
            longest = len > longest ? len : longest;
            len = 0;
        }
    cr_assert_eq(lines, depth);
    /* The deepest line: marker, 64 levels of 4 columns, connector, the call. */
    const char *last = strrchr(s, '[');
    while (last > s && last[-1] != '\n')
        last--;
    char want[600];
    int n = snprintf(want, sizeof(want), "[+%u] ", depth - 1 - 64);
    for (int k = 0; k < 64; k++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "    ");
    snprintf(want + n, sizeof(want) - (size_t)n, "`-- m.r()  [1ns]\n");
    cr_assert_str_eq(last, want);
    cr_assert_leq(longest, strlen(want) + 8); /* other lines have longer times */
    free(s);
    tp_tree_free(t);
}

/* ---- Threads and sequences -------------------------------------------------- */

enum { R_MAIN, R_PARSE, R_PRICE, R_WORK };

static tp_tree *named_funcs(void)
{
    tp_tree *t = NULL;
    cr_assert_eq(tp_tree_new(&t), 0);
    cr_assert_eq(tp_tree_def_func(t, R_MAIN, "app", "main", "app.py", 1), 0);
    cr_assert_eq(tp_tree_def_func(t, R_PARSE, "app", "parse", "app.py", 5), 0);
    cr_assert_eq(tp_tree_def_func(t, R_PRICE, "app", "price", "app.py", 9), 0);
    cr_assert_eq(tp_tree_def_func(t, R_WORK, "app", "work", "app.py", 13), 0);
    return t;
}

static void thread_ev(tp_tree *t, uint32_t id, const char *name)
{
    cr_assert_eq(tp_tree_event(t, TP_EV_THREAD, name ? TP_EVF_TEXT : 0, 0, id, 0, name,
                               name ? strlen(name) : 0, NULL, 0),
                 0);
}

/* main on thread 0, work on two named threads: each named thread's calls
 * hang under one line with their count and summed time; thread 0's stay. */
Test(render, threads_get_a_root_line_each)
{
    tp_tree *t = named_funcs();
    thread_ev(t, 0, "MainThread");
    fx_call(t, R_MAIN, 0, NULL);
    thread_ev(t, 1, "Thread-1 (worker)");
    fx_call(t, R_WORK, 10, "n=1");
    fx_call(t, R_PARSE, 20, NULL);
    fx_ret(t, 30, NULL);
    fx_ret(t, 110, "1");
    thread_ev(t, 2, "Thread-2 (worker)");
    fx_call(t, R_WORK, 15, "n=2");
    fx_ret(t, 215, "2");
    fx_call(t, R_WORK, 300, "n=3");
    fx_ret(t, 400, "3");
    thread_ev(t, 0, NULL);
    fx_ret(t, 500, NULL);
    cr_assert_eq(tp_tree_finish(t, 600 * US), 0);
    cr_assert_str_eq(tp_tree_thread_name(t, 1), "Thread-1 (worker)");
    cr_assert_null(tp_tree_thread_name(t, 7));
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.header = false;
    check_text(t, &o,
               "├── app.main()  [500µs]\n"
               "├── thread Thread-1 (worker)  [2 calls, 100µs]\n"
               "│   └── app.work(n=1) -> 1  [100µs]\n"
               "│       └── app.parse()  [10.0µs]\n"
               "└── thread Thread-2 (worker)  [2 calls, 300µs]\n"
               "    └── app.work(...)  [×2]  [300µs total, avg 150µs, min 100µs, max 200µs]\n");
    /* The depth limit counts calls, not the thread lines. */
    o.max_depth = 1;
    check_text(t, &o,
               "├── app.main()  [500µs]\n"
               "├── thread Thread-1 (worker)  [2 calls, 100µs]\n"
               "│   └── app.work(n=1) -> 1  [100µs]\n"
               "│       └── [1 nested calls...]\n"
               "└── thread Thread-2 (worker)  [2 calls, 300µs]\n"
               "    └── app.work(...)  [×2]  [300µs total, avg 150µs, min 100µs, max 200µs]\n");
    /* A thread whose calls are all filtered out has no line. */
    o.max_depth = -1;
    const char *filters[] = {"!app.work", NULL};
    o.filters = filters;
    o.style = TP_STYLE_ASCII;
    check_text(t, &o,
               "|-- app.main()  [500us]\n"
               "`-- thread Thread-1 (worker)  [2 calls, 100us]\n"
               "    `-- app.parse()  [10.0us]\n");
    tp_tree_free(t);
}

/* One thread, named or not: no thread line, the same bytes as ever. */
Test(render, one_thread_has_no_thread_line)
{
    tp_tree *t = named_funcs();
    thread_ev(t, 3, "Thread-9 (only)");
    fx_call(t, R_MAIN, 0, NULL);
    fx_ret(t, 5, NULL);
    cr_assert_eq(tp_tree_finish(t, 5 * US), 0);
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.header = false;
    check_text(t, &o, "└── app.main()  [5.00µs]\n");
    tp_tree_free(t);
}

/* A thread's name is client text: escaped like every other. */
Test(render, thread_name_is_escaped)
{
    tp_tree *t = named_funcs();
    fx_call(t, R_MAIN, 0, NULL);
    fx_ret(t, 5, NULL);
    thread_ev(t, 1, "evil\x1b[2J\n");
    fx_call(t, R_WORK, 1, NULL);
    fx_ret(t, 2, NULL);
    cr_assert_eq(tp_tree_finish(t, 5 * US), 0);
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.header = false;
    check_text(t, &o,
               "├── app.main()  [5.00µs]\n"
               "└── thread evil\\x1b[2J\\n  [1 call, 1.00µs]\n"
               "    └── app.work()  [1.00µs]\n");
    tp_tree_free(t);
}

/* (parse, price) three times: one line for the sequence, its positions
 * below it, each with all its calls. */
Test(render, repeated_sequence_is_one_line)
{
    tp_tree *t = named_funcs();
    fx_call(t, R_MAIN, 0, NULL);
    uint64_t us = 0;
    for (int i = 0; i < 3; i++) {
        char a[8];
        snprintf(a, sizeof(a), "i=%d", i);
        fx_call(t, R_PARSE, us += 1, a);
        if (i == 2) {
            fx_call(t, R_WORK, us += 1, NULL);
            fx_ret(t, us += 1, NULL);
        }
        fx_ret(t, us += 10, "1");
        fx_call(t, R_PRICE, us += 1, NULL);
        fx_ret(t, us += 20, "2.5");
    }
    fx_ret(t, us += 1, NULL);
    cr_assert_eq(tp_tree_finish(t, us * US), 0);
    tp_render_opts o;
    tp_render_opts_init(&o);
    o.header = false;
    check_text(t, &o,
               "└── app.main()  [99.0µs]\n"
               "    └── [app.parse, app.price]  (calls differ)  [×3]  [92.0µs total, avg "
               "30.7µs]\n"
               "        ├── app.parse(...) -> 1  (calls differ)  [×3]  [32.0µs total, avg "
               "10.7µs, min 10.0µs, max 12.0µs]\n"
               "        │   └── app.work()  [1.00µs]\n"
               "        └── app.price() -> 2.5  [×3]  [60.0µs total, avg 20.0µs, min 20.0µs, "
               "max 20.0µs]\n");
    o.style = TP_STYLE_ASCII;
    o.self_time = true;
    const char *filters[] = {"!app.parse", NULL};
    o.filters = filters;
    check_text(t, &o,
               "`-- app.main()  [99.0us / self: 7.00us]\n"
               "    `-- [app.parse, app.price]  (calls differ)  [x3]  [92.0us total / self: "
               "91.0us, avg 30.7us]\n"
               "        |-- app.work()  [1.00us / self: 1.00us]\n"
               "        `-- app.price() -> 2.5  [x3]  [60.0us total / self: 60.0us, avg 20.0us, "
               "min 20.0us, max 20.0us]\n");
    tp_tree_free(t);
}
