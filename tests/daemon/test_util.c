/* tphd's small helpers: option values, directories, ids, UTF-8 repair,
 * process start times, the id map. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

Test(util, durations_parse_with_units)
{
    static const struct {
        const char *s;
        double secs;
    } ok[] = {{"7d", 604800},  {"12h", 43200}, {"30m", 1800},  {"45s", 45},
              {"2w", 1209600}, {"3600", 3600}, {"1.5h", 5400}, {"1D", 86400}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        double v = -1;
        cr_assert_eq(tp_util_parse_duration(ok[i].s, &v), 0, "%s", ok[i].s);
        cr_assert_float_eq(v, ok[i].secs, 1e-9, "%s", ok[i].s);
    }
    static const char *const bad[] = {"", "d", "-1d", "7x", "1e3", "nan", "inf", " 7d", "7 d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v = 123;
        cr_assert_eq(tp_util_parse_duration(bad[i], &v), -EINVAL, "%s", bad[i]);
        cr_assert_float_eq(v, 123, 0, "ret untouched on failure");
    }
}

Test(util, sizes_parse_with_binary_units)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } ok[] = {{"1G", 1ull << 30},   {"500M", 500ull << 20}, {"64K", 65536}, {"4096", 4096},
              {"2GiB", 2ull << 30}, {"10MB", 10ull << 20},  {"1.5K", 1536}, {"7B", 7}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 0;
        cr_assert_eq(tp_util_parse_size(ok[i].s, &v), 0, "%s", ok[i].s);
        cr_assert_eq(v, ok[i].bytes, "%s", ok[i].s);
    }
    static const char *const bad[] = {"", "G", "-1G", "1X", "1GX", "99999999999999999999T"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        cr_assert_eq(tp_util_parse_size(bad[i], &v), -EINVAL, "%s", bad[i]);
    }
}

Test(util, mkdir_p_creates_missing_parents_with_the_mode)
{
    char base[] = "/tmp/tp_util_test.XXXXXX", path[256], cmd[300];
    struct stat st;
    cr_assert_not_null(mkdtemp(base));
    snprintf(path, sizeof(path), "%s/a/b/c/", base);
    cr_assert_eq(tp_util_mkdir_p(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/a/b/c", base);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(tp_util_mkdir_p(path, 0700), 0, "existing is fine");
    snprintf(path, sizeof(path), "%s/file", base);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof(path), "%s/file/sub", base);
    cr_assert_eq(tp_util_mkdir_p(path, 0700), -ENOTDIR);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    cr_assert_eq(system(cmd), 0);
}

Test(util, dirname_of_paths)
{
    char buf[64];
    cr_assert_eq(tp_util_dirname("/a/b/c.db", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "/a/b");
    cr_assert_eq(tp_util_dirname("/x", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "/");
    cr_assert_eq(tp_util_dirname("x", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, ".");
    cr_assert_eq(tp_util_dirname("/aaaa/b", buf, 4), -ENAMETOOLONG);
}

Test(util, ids)
{
    char a[33], b[33], n[33];
    cr_assert_eq(tp_util_random_id(a), 0);
    cr_assert_eq(tp_util_random_id(b), 0);
    cr_assert_eq(strlen(a), 32);
    cr_assert_str_neq(a, b);
    cr_assert(tp_util_id_normalize(a, n));
    cr_assert_str_eq(n, a);
    cr_assert(tp_util_id_normalize("ABCDEF0123456789ABCDEF0123456789", n));
    cr_assert_str_eq(n, "abcdef0123456789abcdef0123456789");
    cr_assert_not(tp_util_id_normalize("abc", n));
    cr_assert_not(tp_util_id_normalize("abcdef0123456789abcdef01234567890", n));
    cr_assert_not(tp_util_id_normalize("zbcdef0123456789abcdef0123456789", n));
    cr_assert_not(tp_util_id_normalize(NULL, n));
}

Test(util, utf8_fix_replaces_only_bad_bytes)
{
    char s1[] = "caf\xc3\xa9 \xe2\x82\xac ok";
    tp_util_utf8_fix(s1, strlen(s1));
    cr_assert_str_eq(s1, "caf\xc3\xa9 \xe2\x82\xac ok");
    char s2[] = "a\xff"
                "b\xc3"
                "c\xed\xa0\x80"
                "d\xc0\xaf"
                "e\xf4\x90\x80\x80";
    tp_util_utf8_fix(s2, strlen(s2));
    cr_assert_str_eq(s2, "a?b?c???d??e????");
}

Test(util, process_start_time_is_field_22)
{
    uint64_t t = 0, again = 0;
    cr_assert_eq(tp_util_proc_start_time(getpid(), &t), 0);
    cr_assert_gt(t, 0);
    cr_assert_eq(tp_util_proc_start_time(getpid(), &again), 0);
    cr_assert_eq(t, again);
    cr_assert_eq(tp_util_proc_start_time(0x7ffffff0, &t), -ESRCH);
}
