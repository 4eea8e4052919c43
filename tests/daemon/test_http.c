/* tphd's HTTP helpers that decide before any query runs: which trace IDs a
 * route accepts, which Host headers are ours (DNS rebinding), and how --http
 * is read. End-to-end tests reach them only through a running server. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "http_priv.h"

static h2o_iovec_t iov(const char *s)
{
    return h2o_iovec_init(s, strlen(s));
}

/* ---- trace IDs ---------------------------------------------------------- */

Test(http, valid_id_accepts_one_to_32_hex_digits_lowercased)
{
    char id[33];

    cr_assert(tp_http_valid_id("a", 1, id));
    cr_assert_str_eq(id, "a");
    cr_assert(tp_http_valid_id("5A2D69F7", 8, id));
    cr_assert_str_eq(id, "5a2d69f7");
    cr_assert(tp_http_valid_id("0123456789abcdefABCDEF0123456789", 32, id));
    cr_assert_str_eq(id, "0123456789abcdefabcdef0123456789");
}

Test(http, valid_id_rejects_empty_and_33_digits)
{
    char id[33] = "untouched";

    cr_assert_not(tp_http_valid_id("", 0, id));
    cr_assert_not(tp_http_valid_id("0123456789abcdef0123456789abcdef0", 33, id));
    cr_assert_str_eq(id, "untouched");
}

Test(http, valid_id_rejects_non_hex_without_writing_id)
{
    char id[33] = "untouched";

    cr_assert_not(tp_http_valid_id("abcg", 4, id));
    cr_assert_not(tp_http_valid_id("ab/..", 5, id));
    cr_assert_not(tp_http_valid_id("ab cd", 5, id));
    cr_assert_not(tp_http_valid_id("ab\0cd", 5, id));
    cr_assert_str_eq(id, "untouched");
}

Test(http, valid_id_reads_only_n_bytes)
{
    char id[33];

    cr_assert(tp_http_valid_id("abc/not-hex", 3, id));
    cr_assert_str_eq(id, "abc");
}

/* ---- Host check ------------------------------------------------------------ */

Test(http, host_ok_accepts_loopback_names_with_our_port)
{
    cr_assert(tp_http_host_ok(iov("127.0.0.1:7345"), NULL, 7345, false));
    cr_assert(tp_http_host_ok(iov("localhost:7345"), NULL, 7345, false));
    cr_assert(tp_http_host_ok(iov("LocalHost:7345"), NULL, 7345, false));
    cr_assert(tp_http_host_ok(iov("[::1]:7345"), NULL, 7345, false));
}

Test(http, host_ok_rejects_another_port_or_none)
{
    cr_assert_not(tp_http_host_ok(iov("127.0.0.1:7346"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov("127.0.0.1:73450"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov("127.0.0.1"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov("localhost:"), NULL, 7345, false));
}

Test(http, host_ok_accepts_no_port_only_for_port_80)
{
    cr_assert(tp_http_host_ok(iov("localhost"), NULL, 80, false));
    cr_assert(tp_http_host_ok(iov("localhost:80"), NULL, 80, false));
    cr_assert_not(tp_http_host_ok(iov("localhost"), NULL, 8080, false));
}

Test(http, host_ok_rejects_foreign_and_lookalike_names)
{
    cr_assert_not(tp_http_host_ok(iov("evil.example:7345"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov("localhost.evil.example:7345"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov("127.0.0.1.nip.io:7345"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov("127.0.0.2:7345"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov("::1:7345"), NULL, 7345, false));
    cr_assert_not(tp_http_host_ok(iov(""), NULL, 7345, false));
}

Test(http, host_ok_accepts_the_bound_address_exactly)
{
    cr_assert(tp_http_host_ok(iov("127.0.0.2:7345"), "127.0.0.2:7345", 7345, false));
    cr_assert(tp_http_host_ok(iov("LOCALHOST:7345"), "127.0.0.2:7345", 7345, false));
    cr_assert_not(tp_http_host_ok(iov("127.0.0.2:7346"), "127.0.0.2:7345", 7345, false));
    cr_assert_not(tp_http_host_ok(iov("127.0.0.2"), "127.0.0.2:7345", 7345, false));
    cr_assert_not(tp_http_host_ok(iov("127.0.0.3:7345"), "127.0.0.2:7345", 7345, false));
    cr_assert_not(tp_http_host_ok(iov(""), "", 7345, false));
}

Test(http, host_ok_accepts_anything_when_remote_is_allowed)
{
    cr_assert(tp_http_host_ok(iov("evil.example:1"), NULL, 7345, true));
    cr_assert(tp_http_host_ok(iov(""), NULL, 7345, true));
}

/* ---- --http HOST:PORT --------------------------------------------------------- */

Test(http, parse_listen_host_and_port)
{
    char host[64];
    uint16_t port = 0;

    cr_assert_eq(tp_http_parse_listen("127.0.0.1:8080", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 8080);
    cr_assert_eq(tp_http_parse_listen("localhost:0", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "localhost");
    cr_assert_eq(port, 0);
    cr_assert_eq(tp_http_parse_listen("127.0.0.1:65535", host, sizeof(host), &port), 0);
    cr_assert_eq(port, 65535);
}

Test(http, parse_listen_ipv6_in_brackets_loses_them)
{
    char host[64];
    uint16_t port = 0;

    cr_assert_eq(tp_http_parse_listen("[::1]:7345", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 7345);
    cr_assert_eq(tp_http_parse_listen("[::1]", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, TP_HTTP_DEFAULT_PORT);
}

Test(http, parse_listen_defaults_the_missing_half)
{
    char host[64];
    uint16_t port = 0;

    cr_assert_eq(tp_http_parse_listen(":9000", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 9000);
    cr_assert_eq(tp_http_parse_listen("localhost", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "localhost");
    cr_assert_eq(port, TP_HTTP_DEFAULT_PORT);
}

Test(http, parse_listen_rejects_bad_specs_and_leaves_outputs)
{
    static const char *const bad[] = {
        "",           "::1:80",  "[::1",     "[::1]x",   "[::1]:",   "host:",
        "host:65536", "host:-1", "host:80x", "host:+80", "host: 80",
    };
    char host[64] = "untouched";
    uint16_t port = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(tp_http_parse_listen(bad[i], host, sizeof(host), &port), -EINVAL, "%s",
                     bad[i]);
    cr_assert_eq(tp_http_parse_listen(NULL, host, sizeof(host), &port), -EINVAL);
    cr_assert_str_eq(host, "untouched");
    cr_assert_eq(port, 42);
}

Test(http, parse_listen_rejects_a_host_longer_than_the_buffer)
{
    char host[10];
    uint16_t port = 0;

    cr_assert_eq(tp_http_parse_listen("1234567890:80", host, sizeof(host), &port), -EINVAL);
    cr_assert_eq(tp_http_parse_listen("123456789:80", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "123456789");
}
