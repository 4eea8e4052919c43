/* tph's text for people from tphd's JSON (daemon/tph/tph_fmt.c): the
 * `tph logs` table (columns, widths, clipping, flags, the footer and the
 * empty messages) and the `tph status` block. Times are shown in local
 * time; every test runs with TZ=UTC. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tph.h"

static void utc(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
}

TestSuite(tph_fmt, .init = utc);

/* tph_fmt_logs of the JSON text list, as a string to compare. A bare array
 * is sent as the list reply {"total": its length, "traces": it}. */
static char *logs(const char *list, int64_t offset, bool filtered, int want)
{
    json_error_t je;
    json_t *j = json_loads(list, JSON_DECODE_ANY, &je);
    tp_buf out = TP_BUF_INIT;
    char *s;

    cr_assert_not_null(j, "%s", je.text);
    if (json_is_array(j))
        j = json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(j), "traces", j);
    cr_assert_eq(tph_fmt_logs(j, offset, filtered, &out), want);
    s = strndup(out.data ? out.data : "", out.len);
    tp_buf_free(&out);
    json_decref(j);
    return s;
}

#define S1                                                                                         \
    "{\"id\": \"3f2a9c1b5d7e4f60a1b2c3d4e5f60718\", \"label\": \"debug-request\","                 \
    " \"start\": 1770906622.1, \"duration_ms\": 0.05, \"calls\": 3, \"limit_reason\": null,"       \
    " \"dropped\": 0, \"status\": \"complete\", \"pid\": 4242,"                                    \
    " \"argv\": [\"/srv/app/server.py\", \"--port\", \"80\"], \"client\": \"tracepatch/2.0.0\"}"

Test(tph_fmt, logs_table_columns_flags_and_clipping)
{
    char *s = logs(
        "{\"total\": 4, \"traces\": [" S1 ","
        "{\"id\": \"9b1c0de2f3a4b5c6d7e8f90a1b2c3d4e\", \"label\": null, \"start\": 1770906660.0,"
        " \"duration_ms\": 2500.0, \"calls\": 10000, \"limit_reason\": \"max_calls\","
        " \"dropped\": 5, \"status\": \"complete\", \"pid\": 77, \"argv\": []},"
        "{\"id\": \"aaaabbbbccccddddeeeeffff00001111\", \"label\": "
        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
        " \"start\": 1770906700.0, \"duration_ms\": 12.344, \"calls\": 120,"
        " \"limit_reason\": \"disconnected\", \"dropped\": 0, \"status\": \"truncated\","
        " \"pid\": 9, \"argv\": [\"-c\"]},"
        "{\"id\": \"0123456789abcdef0123456789abcdef\", \"label\": \"live\", \"start\": "
        "1770906800.0,"
        " \"duration_ms\": 1.0, \"calls\": 7, \"limit_reason\": null, \"dropped\": 0,"
        " \"status\": \"open\", \"pid\": 1, \"argv\": [\"python3\"]}]}",
        0, false, 0);

    cr_assert_str_eq(
        s,
        "ID        START                DURATION  CALLS  LABEL                                     "
        "PROCESS         FLAGS\n"
        "3f2a9c1b  2026-02-12 14:30:22  50.0µs        3  debug-request                             "
        "4242 server.py\n"
        "9b1c0de2  2026-02-12 14:31:00  2.50s     10000  -                                         "
        "77              LIMITED DROPPED\n"
        "aaaabbbb  2026-02-12 14:31:40  12.3ms      120  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...  "
        "9 -c            TRUNCATED\n"
        "01234567  2026-02-12 14:33:20  1.00ms        7  live                                      "
        "1 python3       RUNNING\n");
    free(s);
}

Test(tph_fmt, logs_label_of_exactly_40_characters_is_not_clipped)
{
    char *s = logs("[{\"id\": \"ab\", \"label\": \"0123456789012345678901234567890123456789\","
                   " \"calls\": 1}]",
                   0, false, 0);

    cr_assert(strstr(s, "  0123456789012345678901234567890123456789  "), "%s", s);
    free(s);
    s = logs("[{\"id\": \"ab\", \"label\": \"01234567890123456789012345678901234567890\","
             " \"calls\": 1}]",
             0, false, 0);
    cr_assert(strstr(s, "  0123456789012345678901234567890123456...  "), "%s", s);
    free(s);
}

Test(tph_fmt, logs_clips_utf8_labels_by_characters)
{
    /* 41 two-byte characters: cut to 37 of them and "...". */
    char list[256] = "[{\"id\": \"ab\", \"calls\": 1, \"label\": \"";
    char want[128] = "";

    for (int i = 0; i < 41; i++)
        strcat(list, "\xc3\xa9");
    strcat(list, "\"}]");
    for (int i = 0; i < 37; i++)
        strcat(want, "\xc3\xa9");
    strcat(want, "...");
    char *s = logs(list, 0, false, 0);
    cr_assert(strstr(s, want), "%s", s);
    free(s);
}

Test(tph_fmt, logs_missing_keys_show_a_dash)
{
    char *s = logs("[{\"id\": \"ab\"}]", 0, false, 0);

    cr_assert_str_eq(s, "ID  START  DURATION  CALLS  LABEL  PROCESS  FLAGS\n"
                        "ab  -      -             -  -      -\n");
    free(s);
}

Test(tph_fmt, logs_an_imported_trace_says_so)
{
    char *s = logs("[{\"id\": \"ab\", \"calls\": 1, \"pid\": 5, \"argv\": [],"
                   " \"client\": \"tph/2.0.0\"}]",
                   0, false, 0);

    cr_assert(strstr(s, "  imported\n"), "%s", s);
    free(s);
}

Test(tph_fmt, logs_footer_counts_what_is_left)
{
    char *s = logs("{\"total\": 30, \"traces\": [" S1 "]}", 10, false, 0);

    cr_assert(strstr(s, "\nshowing 11-11 of 30 traces; --offset 11 for older ones\n"), "%s", s);
    free(s);
    /* The last page: no footer. */
    s = logs("{\"total\": 11, \"traces\": [" S1 "]}", 10, false, 0);
    cr_assert_null(strstr(s, "showing"), "%s", s);
    free(s);
    /* Without a total nothing says there are more. */
    s = logs("{\"traces\": [" S1 "]}", 0, false, 0);
    cr_assert_null(strstr(s, "showing"), "%s", s);
    free(s);
}

Test(tph_fmt, logs_empty_messages)
{
    char *s = logs("[]", 0, false, 0);

    cr_assert_str_eq(s, "no traces yet: record one with `tph run script.py`, or wrap code in "
                        "`with tracepatch.trace(): ...` while tphd is running\n");
    free(s);
    s = logs("{\"total\": 0, \"traces\": []}", 0, true, 0);
    cr_assert_str_eq(s, "no traces match (`tph logs` without filters lists them all)\n");
    free(s);
    s = logs("[]", 20, false, 0);
    cr_assert_str_eq(s, "no traces past the newest 20\n");
    free(s);
}

Test(tph_fmt, logs_of_another_shape_is_einval)
{
    tp_buf out = TP_BUF_INIT;
    json_t *bare = json_array();

    free(logs("{\"traces\": 3}", 0, false, -EINVAL));
    free(logs("\"list\"", 0, false, -EINVAL));
    /* The list reply is an object (docs/QUERY.md); a bare array is not it. */
    cr_assert_eq(tph_fmt_logs(bare, 0, false, &out), -EINVAL);
    json_decref(bare);
    tp_buf_free(&out);
}

/* ---- status ------------------------------------------------------------------ */

static char *status(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    tp_buf out = TP_BUF_INIT;
    char *s;

    cr_assert_not_null(j);
    cr_assert_eq(tph_fmt_status(j, &out), 0);
    s = strndup(out.data, out.len);
    tp_buf_free(&out);
    json_decref(j);
    return s;
}

Test(tph_fmt, status_block)
{
    char *s =
        status("{\"version\": \"2.0.0\", \"protocol\": 1, \"pid\": 321, \"uptime_s\": 3725,"
               " \"socket\": \"/run/t.sock\", \"db\": \"/var/t.db\", \"db_bytes\": 12897484,"
               " \"traces\": 42, \"clients\": 3, \"events_total\": 1000,"
               " \"events_per_s\": 12.25, \"dropped\": 2, \"http\": \"http://127.0.0.1:8421\"}");

    cr_assert_str_eq(s, "tphd 2.0.0, pid 321, up 1h 2m\n"
                        "protocol:    1\n"
                        "socket:      /run/t.sock\n"
                        "database:    /var/t.db (12.3 MiB)\n"
                        "traces:      42\n"
                        "connections: 3\n"
                        "events:      1000 (12.2/s)\n"
                        "dropped:     2\n"
                        "http:        http://127.0.0.1:8421\n");
    free(s);
}

Test(tph_fmt, status_uptime_units_and_no_http)
{
    char *s = status("{\"version\": \"2.0.0\", \"uptime_s\": 59, \"http\": null}");

    cr_assert_str_eq(s, "tphd 2.0.0, up 59s\nhttp:        off\n");
    free(s);
    s = status("{\"version\": \"2.0.0\", \"uptime_s\": 60}");
    cr_assert_str_eq(s, "tphd 2.0.0, up 1m 0s\nhttp:        off\n");
    free(s);
    s = status("{\"version\": \"2.0.0\", \"uptime_s\": 90061}");
    cr_assert_str_eq(s, "tphd 2.0.0, up 1d 1h 1m\nhttp:        off\n");
    free(s);
}

Test(tph_fmt, status_bytes_below_a_kib_are_whole)
{
    char *s = status("{\"db\": \"d\", \"db_bytes\": 1023}");

    cr_assert_str_eq(s, "tphd (unknown version)\ndatabase:    d (1023 B)\nhttp:        off\n");
    free(s);
}
