/* The one JSON writer and escaper (proto/json.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "tp_err.h"

/* s[0..n) through tp_json_string(), as a C string owned by the caller. */
static char *lit(const char *s, size_t n)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_json_string(&b, s, n), 0);
    return tp_buf_steal(&b, NULL);
}

#define ASSERT_LIT(in, n, want)                                                                    \
    do {                                                                                           \
        char *got_ = lit((in), (n));                                                               \
        cr_assert_str_eq(got_, (want));                                                            \
        free(got_);                                                                                \
    } while (0)

Test(json, escape_every_c0_control_by_one_rule)
{
    static const char *const shorts[32] = {['\b'] = "\"\\b\"",
                                           ['\f'] = "\"\\f\"",
                                           ['\n'] = "\"\\n\"",
                                           ['\r'] = "\"\\r\"",
                                           ['\t'] = "\"\\t\""};
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c, want[16];
        if (shorts[c])
            snprintf(want, sizeof(want), "%s", shorts[c]);
        else
            snprintf(want, sizeof(want), "\"\\u00%02x\"", c);
        ASSERT_LIT(&in, 1, want);
    }
}

Test(json, escape_quote_and_backslash_keep_slash_and_del)
{
    ASSERT_LIT("a\"b\\c/d\x7f", 8, "\"a\\\"b\\\\c/d\x7f\"");
}

Test(json, escape_keeps_valid_utf8_bytes)
{
    /* é, €, U+1F600, C1 U+0085, U+2028 */
    const char *s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\x85\xe2\x80\xa8";
    char want[64];
    snprintf(want, sizeof(want), "\"%s\"", s);
    ASSERT_LIT(s, strlen(s), want);
}

Test(json, escape_invalid_utf8_bytes_become_u_fffd_each)
{
    /* lone continuation, truncated 2-byte, overlong '/', surrogate, past U+10FFFF, 0xff */
    ASSERT_LIT("\x80", 1, "\"\xef\xbf\xbd\"");
    ASSERT_LIT("a\xc3", 2, "\"a\xef\xbf\xbd\"");
    ASSERT_LIT("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    ASSERT_LIT("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ASSERT_LIT("\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ASSERT_LIT("\xff"
               "b",
               2,
               "\"\xef\xbf\xbd"
               "b\"");
}

Test(json, string_of_null_pointer_is_null_and_nul_byte_is_escaped)
{
    ASSERT_LIT(NULL, 0, "null");
    ASSERT_LIT("a\0b", 3, "\"a\\u0000b\"");
}

/* A small document with every kind of value, nested, compact or pretty. */
static char *doc(bool pretty)
{
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, pretty);
    tp_json_obj(&w);
    tp_json_key(&w, "s");
    tp_json_str(&w, "x\ty");
    tp_json_key(&w, "n");
    tp_json_null(&w);
    tp_json_key(&w, "a");
    tp_json_arr(&w);
    tp_json_u64(&w, 18446744073709551615ULL);
    tp_json_i64(&w, INT64_MIN);
    tp_json_bool(&w, true);
    tp_json_arr(&w);
    tp_json_arr_end(&w);
    tp_json_obj(&w);
    tp_json_key(&w, "k\"ey");
    tp_json_ms(&w, 1500);
    tp_json_obj_end(&w);
    tp_json_arr_end(&w);
    tp_json_key(&w, "f");
    tp_json_fixed(&w, 12, 5, 3);
    tp_json_key(&w, "e");
    tp_json_obj(&w);
    tp_json_obj_end(&w);
    tp_json_obj_end(&w);
    cr_assert_eq(tp_json_error(&w), 0);
    return tp_buf_steal(&b, NULL);
}

Test(json, compact_document_has_no_whitespace)
{
    char *s = doc(false);
    cr_assert_str_eq(s, "{\"s\":\"x\\ty\",\"n\":null,\"a\":[18446744073709551615,"
                        "-9223372036854775808,true,[],{\"k\\\"ey\":0.0015}],\"f\":12.005,"
                        "\"e\":{}}");
    free(s);
}

Test(json, pretty_document_indents_two_spaces_per_level)
{
    char *s = doc(true);
    cr_assert_str_eq(s, "{\n"
                        "  \"s\": \"x\\ty\",\n"
                        "  \"n\": null,\n"
                        "  \"a\": [\n"
                        "    18446744073709551615,\n"
                        "    -9223372036854775808,\n"
                        "    true,\n"
                        "    [],\n"
                        "    {\n"
                        "      \"k\\\"ey\": 0.0015\n"
                        "    }\n"
                        "  ],\n"
                        "  \"f\": 12.005,\n"
                        "  \"e\": {}\n"
                        "}");
    free(s);
}

Test(json, pretty_indentation_stops_at_the_cap)
{
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, true);
    for (int i = 0; i < TP_JSON_INDENT_CAP + 10; i++)
        tp_json_arr(&w);
    tp_json_u64(&w, 7);
    /* The value's line is indented TP_JSON_INDENT_CAP levels, not 74. */
    const char *nl = strrchr(tp_buf_cstr(&b), '\n');
    cr_assert_eq(strlen(nl), 1 + TP_JSON_INDENT_CAP * 2 + 1);
    tp_buf_free(&b);
}

Test(json, ms_is_exact_without_trailing_zeros)
{
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {0, "0"}, {1, "0.000001"}, {1500, "0.0015"}, {2000000, "2"}, {1234567890, "1234.56789"},
        {-5, "0"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_buf b = TP_BUF_INIT;
        tp_json_put_ms(&b, cases[i].ns);
        cr_assert_str_eq(tp_buf_cstr(&b), cases[i].want, "ns=%lld", (long long)cases[i].ns);
        tp_buf_free(&b);
    }
}

Test(json, long_and_escaped_keys_match_the_short_key_path)
{
    char key[100];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, false);
    tp_json_obj(&w);
    tp_json_key(&w, key);
    tp_json_u64(&w, 1);
    tp_json_key(&w, "\xff");
    tp_json_u64(&w, 2);
    tp_json_obj_end(&w);
    char want[160];
    snprintf(want, sizeof(want), "{\"%s\":1,\"\xef\xbf\xbd\":2}", key);
    cr_assert_str_eq(tp_buf_cstr(&b), want);
    tp_buf_free(&b);
}

static char *copied(const char *in, bool pretty, bool any, int *ret)
{
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, pretty);
    tp_json_obj(&w);
    tp_json_key(&w, "c");
    *ret = tp_json_copy(&w, in, strlen(in), any);
    if (*ret)
        tp_json_null(&w);
    tp_json_obj_end(&w);
    return tp_buf_steal(&b, NULL);
}

Test(json, copy_reindents_and_reescapes_an_object)
{
    int r;
    char *s = copied("{ \"a\" : [1, -2.5e+3, {\"b\": null}], \"c\": \"\\u00e9\\ud83d\\ude00\\b\"}",
                     true, false, &r);
    cr_assert_eq(r, 0);
    cr_assert_str_eq(s, "{\n  \"c\": {\n    \"a\": [\n      1,\n      -2.5e+3,\n      {\n"
                        "        \"b\": null\n      }\n    ],\n"
                        "    \"c\": \"\xc3\xa9\xf0\x9f\x98\x80\\b\"\n  }\n}");
    free(s);
    s = copied("{\"k\\u0000\":\"\\ud800\"}", false, false, &r);
    cr_assert_eq(r, 0);
    cr_assert_str_eq(s, "{\"c\":{\"k\\u0000\":\"\xef\xbf\xbd\"}}");
    free(s);
}

Test(json, copy_rejects_invalid_text_and_writes_nothing)
{
    static const char *const bad[] = {"",           "[1]",         "{",
                                      "{\"a\":}",   "{\"a\":1,}",  "{\"a\" 1}",
                                      "{\"a\":01}", "{\"a\":1} x", "{\"a\":\"\n\"}",
                                      "{} {}",      "{\"a\":tru}", "{\"a\":[1 2]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r;
        char *s = copied(bad[i], false, false, &r);
        cr_assert_eq(r, TP_ERR_JSON, "accepted: %s", bad[i]);
        cr_assert_str_eq(s, "{\"c\":null}", "for %s", bad[i]);
        free(s);
    }
}

Test(json, copy_any_accepts_a_scalar_and_limits_nesting)
{
    int r;
    char *s = copied(" \"x\" ", false, true, &r);
    cr_assert_eq(r, 0);
    cr_assert_str_eq(s, "{\"c\":\"x\"}");
    free(s);
    char deep[2 * TP_JSON_COPY_DEPTH + 3];
    size_t n = 0;
    for (int i = 0; i <= TP_JSON_COPY_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i <= TP_JSON_COPY_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    s = copied(deep, false, true, &r);
    cr_assert_eq(r, TP_ERR_JSON);
    free(s);
    deep[n - 1] = '\0';
    s = copied(deep + 1, false, true, &r); /* exactly TP_JSON_COPY_DEPTH levels */
    cr_assert_eq(r, 0);
    free(s);
}

Test(json, failed_allocation_is_sticky_in_the_buffer)
{
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, false);
    tp_json_arr(&w);
    cr_assert_eq(tp_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    tp_json_str(&w, "x");
    cr_assert_eq(tp_json_error(&w), -ENOMEM);
    tp_buf_free(&b);
}

Test(json, member_helpers_write_key_then_value)
{
    tp_buf b = TP_BUF_INIT;
    tp_json w;
    tp_json_init(&w, &b, false);
    tp_json_obj(&w);
    tp_json_kstr(&w, "s", NULL);
    tp_json_kbool(&w, "b", false);
    tp_json_ku64(&w, "u", 3);
    tp_json_ki64(&w, "i", -3);
    tp_json_kms(&w, "ms", 2500000);
    tp_json_obj_end(&w);
    cr_assert_str_eq(tp_buf_cstr(&b), "{\"s\":null,\"b\":false,\"u\":3,\"i\":-3,\"ms\":2.5}");
    tp_buf_free(&b);
}

Test(json, kib_is_signed_with_three_rounded_decimals)
{
    static const struct {
        int64_t bytes;
        const char *want;
    } cases[] = {{0, "0.000"},         {1, "0.001"},          {-1, "-0.001"},
                 {-512, "-0.500"},     {1024, "1.000"},       {1000000, "976.563"},
                 {1023999, "999.999"}, {1048575, "1023.999"}, {INT64_MIN, "9007199254740992.000"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_buf b = TP_BUF_INIT;
        tp_json w;
        tp_json_init(&w, &b, false);
        tp_json_kib(&w, cases[i].bytes);
        const char *want = cases[i].want;
        char neg[64];
        if (cases[i].bytes == INT64_MIN) {
            snprintf(neg, sizeof(neg), "-%s", want);
            want = neg;
        }
        cr_assert_str_eq(tp_buf_cstr(&b), want, "bytes=%lld", (long long)cases[i].bytes);
        tp_buf_free(&b);
    }
}
