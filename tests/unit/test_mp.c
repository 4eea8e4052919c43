/* The msgpack cursor, the structural payload check, the EVENTS batch check,
 * framing, and the extension's reply decoder. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex_fixture.h"
#include "tp_err.h"
#include "wire.h"

static int check_hex(const char *h, char *err, size_t errsz)
{
    uint8_t b[256];
    size_t n = hex(h, b);
    return tp_wire_check(b, n, err, errsz);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void rec(uint8_t *p, uint8_t kind, uint8_t flags, uint32_t arg, uint64_t t)
{
    memset(p, 0, 16);
    p[0] = kind;
    p[1] = flags;
    put_le32(p + 4, arg);
    put_le32(p + 8, (uint32_t)t);
    put_le32(p + 12, (uint32_t)(t >> 32));
}

/* ---- Cursor ------------------------------------------------------------- */

Test(mp, next_reads_every_scalar_kind)
{
    uint8_t b[256];
    size_t n = hex("05 e0 cc ff cd 01 00 ce 00 01 00 00 cf ff ff ff ff ff ff ff ff "
                   "d0 80 d0 05 d1 ff 00 d2 80 00 00 00 d3 80 00 00 00 00 00 00 00 "
                   "ca 3f c0 00 00 cb 40 09 21 fb 54 44 2d 18 c0 c2 c3 "
                   "a3 61 62 63 d9 03 78 79 7a c4 02 01 02 c7 01 05 aa d4 f9 bb",
                   b);
    tp_mp_cursor c = {b, b + n};
    tp_mp_item it;

    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_UINT && it.u == 5 && it.i == 5);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_INT && it.i == -32);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_UINT && it.u == 255);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_UINT && it.u == 256);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_UINT && it.u == 65536);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_UINT && it.u == UINT64_MAX && it.i == 0);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_INT && it.i == -128);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_UINT && it.u == 5 && it.i == 5, "int8 5 is normalised to uint");
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_INT && it.i == -256);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_INT && it.i == INT32_MIN);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_INT && it.i == INT64_MIN);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_FLOAT && it.f == 1.5);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_FLOAT && it.f == 3.141592653589793);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert_eq(it.kind, TP_MP_NIL);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_BOOL && !it.b);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_BOOL && it.b);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_STR && it.len == 3 && memcmp(it.ptr, "abc", 3) == 0);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_STR && it.len == 3 && memcmp(it.ptr, "xyz", 3) == 0);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_BIN && it.len == 2 && it.ptr[0] == 1 && it.ptr[1] == 2);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_EXT && it.len == 1 && it.i == 5 && it.ptr[0] == 0xaa);
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_EXT && it.len == 1 && it.i == -7 && it.ptr[0] == 0xbb);
    cr_assert_eq(c.p, c.end);
    cr_assert_eq(tp_mp_next(&c, &it), TP_ERR_TRUNCATED);
}

Test(mp, next_reads_container_headers_without_descending)
{
    uint8_t b[32];
    size_t n = hex("93 01 02 03 de 00 01 a1 6b c0 dc 00 00", b);
    tp_mp_cursor c = {b, b + n};
    tp_mp_item it;

    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_ARRAY && it.len == 3);
    cr_assert_eq(c.p, b + 1, "the elements follow the header");
    c.p = b + 4;
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_MAP && it.len == 1);
    cr_assert_eq(c.p, b + 7);
    c.p = b + 10;
    cr_assert_eq(tp_mp_next(&c, &it), 0);
    cr_assert(it.kind == TP_MP_ARRAY && it.len == 0);
}

Test(mp, next_rejects_declared_sizes_beyond_the_buffer)
{
    static const char *const cases[] = {
        "db ff ff ff ff 61",    /* str32 declaring 4 GiB */
        "c6 ff ff ff ff 00 00", /* bin32 declaring 4 GiB */
        "dd 01 00 00 00 00",    /* array32 of 16M elements */
        "df 00 01 00 00 00",    /* map32 of 64K pairs */
        "de 00 02 01 02 03",    /* map16 of 2 pairs needs 4 bytes, 3 left */
        "a5 61 62",             /* fixstr of 5, 2 left */
        "c8 00 10 01",          /* ext16 of 16 bytes */
        "d8 01 00",             /* fixext16 */
        "cd 01",                /* uint16 cut short */
        "cf 00 00 00",          /* uint64 cut short */
        "da 00",                /* str16 length cut short */
        "c7",                   /* ext8 without length */
        "c7 01",                /* ext8 without type */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[16];
        size_t n = hex(cases[i], b);
        tp_mp_cursor c = {b, b + n};
        tp_mp_item it;
        cr_assert_eq(tp_mp_next(&c, &it), TP_ERR_TRUNCATED, "case %s", cases[i]);
        cr_assert_eq(c.p, b, "the cursor stays on failure (%s)", cases[i]);
    }
}

Test(mp, next_rejects_the_unused_byte)
{
    uint8_t b[] = {0xc1};
    tp_mp_cursor c = {b, b + 1};
    tp_mp_item it;
    cr_assert_eq(tp_mp_next(&c, &it), TP_ERR_MALFORMED);
    cr_assert_eq(c.p, b);
}

Test(mp, skip_steps_over_nested_values)
{
    uint8_t b[32];
    size_t n = hex("92 81 a1 6b 93 01 02 03 c0 07", b);
    tp_mp_cursor c = {b, b + n};

    cr_assert_eq(tp_mp_skip(&c, 2), TP_ERR_LIMIT, "array > map > array is 3 levels");
    cr_assert_eq(c.p, b);
    cr_assert_eq(tp_mp_skip(&c, 3), 0);
    cr_assert_eq(c.p, b + 9);
    cr_assert_eq(tp_mp_skip(&c, 0), 0, "a scalar needs no depth");
    cr_assert_eq(c.p, c.end);
    cr_assert_eq(tp_mp_skip(&c, 3), TP_ERR_TRUNCATED);
}

Test(mp, skip_refuses_1000_deep_nesting)
{
    uint8_t b[1001];
    memset(b, 0x91, 1000);
    b[1000] = 0xc0;
    tp_mp_cursor c = {b, b + sizeof(b)};
    cr_assert_eq(tp_mp_skip(&c, TP_WIRE_MAX_DEPTH), TP_ERR_LIMIT);
    cr_assert_eq(tp_mp_skip(&c, 100000), TP_ERR_LIMIT, "at most 64 levels are honoured");
    tp_mp_cursor c2 = {b + 1000 - 64, b + sizeof(b)};
    cr_assert_eq(tp_mp_skip(&c2, 64), 0);
    cr_assert_eq(c2.p, c2.end);
}

Test(mp, skip_reports_a_truncated_container)
{
    uint8_t b[8];
    size_t n = hex("93 01 02", b);
    tp_mp_cursor c = {b, b + n};
    cr_assert_eq(tp_mp_skip(&c, 8), TP_ERR_TRUNCATED);
    cr_assert_eq(c.p, b);
}

/* ---- tp_wire_check ------------------------------------------------------- */

Test(mp, check_accepts_and_counts_a_payload)
{
    uint8_t b[32];
    size_t n = hex("92 05 82 a1 61 92 01 02 a1 62 c0", b);
    size_t values = 0;
    char err[128] = "x";
    cr_assert_eq(tp_wire_check_values(b, n, &values, err, sizeof(err)), 0);
    cr_assert_eq(values, 9);
    cr_assert_str_eq(err, "");
    cr_assert_eq(check_hex("92 01 80", NULL, 0), 0);
    cr_assert_eq(check_hex("92 cc 7f 80", NULL, 0), 0, "any uint encoding of the type");
}

struct shape_case {
    const char *hex;
    int code;
    const char *msg;
};

Test(mp, check_names_the_offending_part)
{
    static const struct shape_case cases[] = {
        {"80", TP_ERR_TYPE, "payload at offset 0: expected an array [type, body], got map"},
        {"93 01 80 c0", TP_ERR_TYPE,
         "payload at offset 0: expected an array [type, body], got an array of more than 2"},
        {"91 01", TP_ERR_TYPE,
         "payload at offset 0: expected an array [type, body], got an array of fewer than 2"},
        {"92 a1 61 80", TP_ERR_TYPE, "type at offset 1: expected uint, got str"},
        {"92 ff 80", TP_ERR_TYPE, "type at offset 1: expected uint, got int"},
        {"92 00 80", TP_ERR_MALFORMED, "type at offset 1: message type 0 is outside 1..127"},
        {"92 cc 80 80", TP_ERR_MALFORMED, "type at offset 1: message type 128 is outside 1..127"},
        {"92 01 90", TP_ERR_TYPE, "body at offset 2: expected map, got array"},
        {"92 01 81 01 c0", TP_ERR_TYPE, "body key at offset 3: expected str, got uint"},
        {"92 01 80 c0", TP_ERR_MALFORMED,
         "payload at offset 3: 1 trailing bytes after the [type, body] value"},
        {"92 01 81 a1 73 db ff ff ff ff", TP_ERR_TRUNCATED,
         "field 's' at offset 5: str declares 4294967295 bytes but only 0 bytes are left"},
        {"92 01 81 a1 62 c6 ff ff ff ff 00", TP_ERR_TRUNCATED,
         "field 'b' at offset 5: bin declares 4294967295 bytes but only 1 bytes are left"},
        {"92 01 81 a1 61 dd 01 00 00 00", TP_ERR_TRUNCATED,
         "field 'a' at offset 5: array declares 16777216 elements but only 0 bytes are left"},
        {"92 01 81 a1 6d df 00 00 00 02 01 02 03", TP_ERR_TRUNCATED,
         "field 'm' at offset 5: map declares 2 pairs but only 3 bytes are left"},
        {"92 01 81 a1 61 c1", TP_ERR_MALFORMED,
         "field 'a' at offset 5: byte 0xc1 is never used in msgpack"},
        {"92 01 81 a1 61 cd 01", TP_ERR_TRUNCATED,
         "field 'a' at offset 5: value 0xcd cut short (1 bytes left)"},
        {"92 01 81 a1 61", TP_ERR_TRUNCATED,
         "field 'a' at offset 5: input ends where a value should start"},
        {"92 01 82 a1 61 01", TP_ERR_TRUNCATED,
         "body at offset 2: map declares 2 pairs but only 3 bytes are left"},
        {"92 01 81 a2 0a ff c1", TP_ERR_MALFORMED,
         "field '?\?' at offset 6: byte 0xc1 is never used in msgpack"},
        {"", TP_ERR_TRUNCATED, "payload at offset 0: empty payload"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[200];
        cr_assert_eq(check_hex(cases[i].hex, err, sizeof(err)), cases[i].code, "case %s: %s",
                     cases[i].hex, err);
        cr_assert_str_eq(err, cases[i].msg);
    }
}

Test(mp, check_bounds_nesting_depth)
{
    /* payload array (1) > body map (2) > six arrays (3..8): the limit exactly. */
    char err[128];
    cr_assert_eq(check_hex("92 01 81 a1 64 91 91 91 91 91 91 c0", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_hex("92 01 81 a1 64 91 91 91 91 91 91 91 c0", err, sizeof(err)),
                 TP_ERR_LIMIT);
    cr_assert_str_eq(err, "field 'd' at offset 11: nesting deeper than 8 levels");
}

Test(mp, check_refuses_1000_deep_arrays)
{
    uint8_t *b = malloc(1006);
    memcpy(b, "\x92\x01\x81\xa1\x64", 5);
    memset(b + 5, 0x91, 1000);
    b[1005] = 0xc0;
    char err[128];
    cr_assert_eq(tp_wire_check(b, 1006, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert_str_eq(err, "field 'd' at offset 11: nesting deeper than 8 levels");
    free(b);
}

/* A payload {"a": [nil x n]} built in memory. */
static uint8_t *nil_array(uint32_t n, size_t *ret_len)
{
    size_t len = 10 + n;
    uint8_t *b = malloc(len);
    memcpy(b, "\x92\x01\x81\xa1\x61\xdd", 6);
    b[6] = (uint8_t)(n >> 24);
    b[7] = (uint8_t)(n >> 16);
    b[8] = (uint8_t)(n >> 8);
    b[9] = (uint8_t)n;
    memset(b + 10, 0xc0, n);
    *ret_len = len;
    return b;
}

Test(mp, check_bounds_items_per_container)
{
    size_t len, values;
    char err[128];
    uint8_t *b = nil_array(TP_WIRE_MAX_ITEMS, &len);
    cr_assert_eq(tp_wire_check_values(b, len, &values, err, sizeof(err)), 0);
    cr_assert_eq(values, 5 + TP_WIRE_MAX_ITEMS);
    free(b);
    b = nil_array(TP_WIRE_MAX_ITEMS + 1, &len);
    cr_assert_eq(tp_wire_check(b, len, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert_str_eq(err,
                     "field 'a' at offset 5: array of 65537 elements exceeds the limit of 65536");
    free(b);
}

Test(mp, check_bounds_total_values)
{
    /* Nine keys each holding 65536 nils: 9 * 65537 values > 524288. */
    size_t len = 3 + 9 * (2 + 5 + 65536);
    uint8_t *b = malloc(len), *p = b;
    *p++ = 0x92;
    *p++ = 0x01;
    *p++ = 0x89;
    for (int k = 0; k < 9; k++) {
        *p++ = 0xa1;
        *p++ = (uint8_t)('a' + k);
        memcpy(p, "\xdd\x00\x01\x00\x00", 5);
        p += 5;
        memset(p, 0xc0, 65536);
        p += 65536;
    }
    cr_assert_eq((size_t)(p - b), len);
    char err[128];
    cr_assert_eq(tp_wire_check(b, len, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert(strstr(err, "more than 524288 values in one payload"), "%s", err);
    cr_assert(strncmp(err, "field 'h' at offset ", 20) == 0, "%s", err);
    free(b);
}

Test(mp, check_bounds_string_length)
{
    size_t n = TP_WIRE_MAX_STRING + 1;
    uint8_t *b = malloc(10 + n);
    memcpy(b, "\x92\x01\x81\xa1\x73\xdb", 6);
    b[6] = (uint8_t)(n >> 24);
    b[7] = (uint8_t)(n >> 16);
    b[8] = (uint8_t)(n >> 8);
    b[9] = (uint8_t)n;
    memset(b + 10, 'x', n);
    char err[128];
    cr_assert_eq(tp_wire_check(b, 10 + n, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert_str_eq(err,
                     "field 's' at offset 5: str of 1048577 bytes exceeds the limit of 1048576");
    b[9] = (uint8_t)(n - 1);
    cr_assert_eq(tp_wire_check(b, 10 + n - 1, err, sizeof(err)), 0);
    /* A bin may be larger than a str. */
    b[5] = 0xc6;
    b[9] = (uint8_t)n;
    cr_assert_eq(tp_wire_check(b, 10 + n, err, sizeof(err)), 0);
    free(b);
}

Test(mp, check_refuses_a_payload_over_the_frame_limit)
{
    uint8_t b[4] = {0x92, 0x01, 0x80, 0};
    char err[128];
    cr_assert_eq(tp_wire_check(b, (size_t)TP_WIRE_MAX_FRAME + 1, err, sizeof(err)),
                 TP_ERR_FRAME_TOO_LARGE);
    cr_assert_str_eq(
        err, "payload at offset 0: payload of 16777217 bytes exceeds the frame limit of 16777216");
}

Test(mp, check_truncates_long_messages_safely)
{
    char err[8];
    cr_assert_eq(check_hex("92 01 90", err, sizeof(err)), TP_ERR_TYPE);
    cr_assert_str_eq(err, "body at");
    cr_assert_eq(check_hex("92 01 90", err, 1), TP_ERR_TYPE);
    cr_assert_str_eq(err, "");
}

/* ---- EVENTS batches ------------------------------------------------------ */

/* CALL+text, CAUGHT+2 texts, YIELD, RESUME, RETURN+text, THREAD+text, UNWIND without text */
static size_t good_batch(uint8_t *ev, uint8_t *tx, size_t *ret_tx)
{
    size_t t = 0;
    const char *texts[] = {"x=1", "ValueError", "bad", "None", "worker"};
    rec(ev + 0, TP_EV_CALL, TP_EVF_TEXT | TP_EVF_GEN, 0, 10);
    rec(ev + 16, TP_EV_CAUGHT, TP_EVF_TEXT, 0, 11);
    rec(ev + 32, TP_EV_YIELD, 0, 0, 12);
    rec(ev + 48, TP_EV_RESUME, 0, 0, 13);
    rec(ev + 64, TP_EV_RETURN, TP_EVF_TEXT, 0, 14);
    rec(ev + 80, TP_EV_THREAD, TP_EVF_TEXT, 1, 15);
    rec(ev + 96, TP_EV_UNWIND, 0, 0, 16);
    for (int i = 0; i < 5; i++) {
        size_t l = strlen(texts[i]);
        put_le32(tx + t, (uint32_t)l);
        memcpy(tx + t + 4, texts[i], l);
        t += 4 + l;
    }
    *ret_tx = t;
    return 7;
}

Test(mp, events_accepts_a_well_formed_batch)
{
    uint8_t ev[7 * 16 + 1], tx[128];
    size_t tl, n = good_batch(ev + 1, tx, &tl);
    char err[128] = "x";
    /* Records need not be aligned. */
    cr_assert_eq(tp_wire_check_events(ev + 1, n, tx, tl, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(err, "");
    cr_assert_eq(tp_wire_check_events(NULL, 0, NULL, 0, NULL, 0), 0);
}

Test(mp, events_rejects_unknown_kinds_and_flags)
{
    uint8_t ev[7 * 16], tx[128];
    size_t tl, n = good_batch(ev, tx, &tl);
    char err[128];

    ev[16] = 0;
    cr_assert_eq(tp_wire_check_events(ev, n, tx, tl, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "ev[1]: unknown event kind 0");
    ev[16] = TP_EV_MAX + 1;
    cr_assert_eq(tp_wire_check_events(ev, n, tx, tl, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "ev[1]: unknown event kind 10"); /* 9 is MEMORY */
    ev[16] = TP_EV_CAUGHT;
    ev[32 + 1] = 0x84;
    cr_assert_eq(tp_wire_check_events(ev, n, tx, tl, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "ev[2]: unknown flags 0x84");
}

Test(mp, events_rejects_text_overruns)
{
    uint8_t ev[7 * 16], tx[128];
    size_t tl, n = good_batch(ev, tx, &tl);
    char err[160];

    /* The last entry ("worker", 10 bytes with its length) cut by one byte. */
    cr_assert_eq(tp_wire_check_events(ev, n, tx, tl - 1, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(
        err, "ev[5]: text entry of 6 bytes at tx offset 36 runs past the end of tx (45 bytes)");
    /* Without THREAD's entry, nothing is left for it. */
    cr_assert_eq(tp_wire_check_events(ev, n, tx, 36, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err,
                     "ev[5]: text entry 0 starts at tx offset 36, past the end of tx (36 bytes)");
    /* CAUGHT owns two entries: stop after its first. */
    cr_assert_eq(tp_wire_check_events(ev, 2, tx, 21, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err,
                     "ev[1]: text entry 1 starts at tx offset 21, past the end of tx (21 bytes)");
    /* Text nobody owns. */
    cr_assert_eq(tp_wire_check_events(ev, 5, tx, tl, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(err, "tx: 10 bytes after the last text entry are owned by no record");
    /* A length field declaring more than the string limit. */
    put_le32(tx, TP_WIRE_MAX_STRING + 1);
    cr_assert_eq(tp_wire_check_events(ev, n, tx, tl, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert_str_eq(err, "ev[0]: text entry of 1048577 bytes exceeds the limit of 1048576");
    put_le32(tx, UINT32_MAX);
    cr_assert_eq(tp_wire_check_events(ev, n, tx, tl, err, sizeof(err)), TP_ERR_LIMIT);
    put_le32(tx, 50);
    cr_assert_eq(tp_wire_check_events(ev, n, tx, tl, err, sizeof(err)), TP_ERR_MALFORMED);
    cr_assert_str_eq(
        err, "ev[0]: text entry of 50 bytes at tx offset 0 runs past the end of tx (46 bytes)");
}

Test(mp, trace_id_validation)
{
    cr_assert(tp_wire_trace_id_valid("0123456789abcdef0123456789abcdef", 32));
    cr_assert(!tp_wire_trace_id_valid("0123456789ABCDEF0123456789abcdef", 32));
    cr_assert(!tp_wire_trace_id_valid("0123456789abcdef0123456789abcde", 31));
    cr_assert(!tp_wire_trace_id_valid("0123456789abcdef0123456789abcdeg", 32));
    cr_assert(!tp_wire_trace_id_valid(NULL, 32));
}

/* ---- Framing --------------------------------------------------------------- */

Test(mp, frame_waits_for_whole_frames)
{
    uint8_t b[16];
    uint32_t n = 99;
    size_t len = hex("00 00 00 03 92 01 80 ff", b);
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq(tp_wire_frame(b, i, 0, &n), -EAGAIN, "at %zu bytes", i);
        cr_assert_eq(n, 99);
    }
    cr_assert_eq(tp_wire_frame(b, 7, 0, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(tp_wire_frame(b, len, 0, &n), 0, "bytes of the next frame are not its concern");
    cr_assert_eq(tp_wire_frame(b, len, 2, &n), TP_ERR_FRAME_TOO_LARGE);
}

Test(mp, frame_refuses_a_header_over_the_limit)
{
    uint8_t b[4];
    uint32_t n = 99;
    hex("01 00 00 01", b); /* 16 MiB + 1 */
    cr_assert_eq(tp_wire_frame(b, 4, 0, &n), TP_ERR_FRAME_TOO_LARGE);
    hex("01 00 00 00", b);
    cr_assert_eq(tp_wire_frame(b, 4, 0, &n), -EAGAIN, "exactly the limit is fine");
    hex("ff ff ff ff", b);
    cr_assert_eq(tp_wire_frame(b, 4, UINT32_MAX, &n), -EAGAIN);
    cr_assert_eq(tp_wire_frame(b, 4, 0, &n), TP_ERR_FRAME_TOO_LARGE);
    cr_assert_eq(n, 99);
}

/* ---- Replies for the extension ------------------------------------------- */

static const char TRACE[] = "00112233445566778899aabbccddeeff";

static tp_buf encode(const tp_msg *m)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_wire_encode(m, &b), 0);
    return b;
}

#define PAYLOAD(b)                                                                                 \
    ((const uint8_t *)(b).data + TP_WIRE_HEADER_SIZE), ((b).len - TP_WIRE_HEADER_SIZE)

Test(mp, reply_decodes_welcome_ack_and_error)
{
    char store[256];
    tp_msg m = {
        .type = TP_MSG_WELCOME, .version = 1, .caps = 3, .client = "tphd/2.0.0", .pid = 4242};
    tp_buf b = encode(&m);
    tp_msg r;
    memset(&r, 0x55, sizeof(r));
    cr_assert_eq(tp_wire_decode_reply(PAYLOAD(b), &r, store, sizeof(store)), 0);
    cr_assert_eq(r.type, TP_MSG_WELCOME);
    cr_assert_eq(r.version, 1);
    cr_assert_eq(r.caps, 3);
    cr_assert_eq(r.pid, 4242);
    cr_assert_str_eq(r.client, "tphd/2.0.0");
    cr_assert(r.client >= store && r.client < store + sizeof(store));
    cr_assert_null(r.trace);
    cr_assert_null(r.priv);
    tp_buf_free(&b);

    tp_msg a = {.type = TP_MSG_ACK, .trace = TRACE, .url = "http://127.0.0.1:7777/t/0011?k=z"};
    b = encode(&a);
    cr_assert_eq(tp_wire_decode_reply(PAYLOAD(b), &r, store, sizeof(store)), 0);
    cr_assert_eq(r.type, TP_MSG_ACK);
    cr_assert_str_eq(r.trace, TRACE);
    cr_assert_str_eq(r.url, "http://127.0.0.1:7777/t/0011?k=z");
    cr_assert_null(r.client);
    tp_buf_free(&b);

    tp_msg e = {
        .type = TP_MSG_ERROR, .code = TP_ERR_UNKNOWN_FUNC, .message = "function 7", .trace = TRACE};
    b = encode(&e);
    cr_assert_eq(tp_wire_decode_reply(PAYLOAD(b), &r, store, sizeof(store)), 0);
    cr_assert_eq(r.type, TP_MSG_ERROR);
    cr_assert_eq(r.code, TP_ERR_UNKNOWN_FUNC);
    cr_assert_str_eq(r.message, "function 7");
    cr_assert_str_eq(r.trace, TRACE);
    cr_assert_null(r.url);
    tp_buf_free(&b);
}

Test(mp, reply_fails_cleanly_when_the_store_is_small)
{
    char store[64];
    tp_msg a = {.type = TP_MSG_ACK, .trace = TRACE, .url = "http://x/"};
    tp_buf b = encode(&a);
    tp_msg r;
    memset(&r, 0x55, sizeof(r));
    cr_assert_eq(tp_wire_decode_reply(PAYLOAD(b), &r, store, 40), TP_ERR_LIMIT);
    cr_assert_eq(r.type, 0x55555555, "ret untouched on failure");
    cr_assert_eq(tp_wire_decode_reply(PAYLOAD(b), &r, store, 33 + 10), 0);
    cr_assert_eq(tp_wire_decode_reply(PAYLOAD(b), &r, NULL, 0), TP_ERR_LIMIT);
    tp_buf_free(&b);
}

Test(mp, reply_applies_the_field_rules)
{
    static const struct shape_case cases[] = {
        {"92 07 80", TP_ERR_MISSING, NULL},                                  /* ACK without trace */
        {"92 07 81 a5 74 72 61 63 65 c0", TP_ERR_MISSING, NULL},             /* trace: nil */
        {"92 07 81 a5 74 72 61 63 65 01", TP_ERR_TYPE, NULL},                /* trace: 1 */
        {"92 07 81 a5 74 72 61 63 65 a3 61 62 63", TP_ERR_MALFORMED, NULL},  /* trace: "abc" */
        {"92 08 81 a4 63 6f 64 65 01", TP_ERR_MISSING, NULL},                /* ERROR without msg */
        {"92 08 82 a4 63 6f 64 65 a1 31 a3 6d 73 67 a0", TP_ERR_TYPE, NULL}, /* code: "1" */
        {"92 08 82 a4 63 6f 64 65 ce 80 00 00 00 a3 6d 73 67 a0", TP_ERR_TYPE, NULL},
        {"92 08 82 a4 63 6f 64 65 d0 f0 a3 6d 73 67 a2 61 00", TP_ERR_MALFORMED, NULL},
        {"92 02 81 a1 76 01", TP_ERR_MISSING, NULL}, /* WELCOME without client */
        {"92 02 82 a1 76 a1 31 a6 63 6c 69 65 6e 74 a0", TP_ERR_TYPE, NULL},
        {"92 02 83 a1 76 01 a1 76 01 a6 63 6c 69 65 6e 74 a0", TP_ERR_MALFORMED, NULL},
        {"92 02 82 a1 76 01 a1", TP_ERR_TRUNCATED, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t b[64];
        char store[64];
        size_t n = hex(cases[i].hex, b);
        tp_msg r;
        cr_assert_eq(tp_wire_decode_reply(b, n, &r, store, sizeof(store)), cases[i].code, "case %s",
                     cases[i].hex);
    }
}

Test(mp, reply_skips_unknown_keys_and_nested_values)
{
    /* WELCOME {"x": [1, {"y": [2]}], "v": 1, "client": "", "caps": nil} */
    uint8_t b[64];
    char store[8];
    size_t n = hex("92 02 84 a1 78 92 01 81 a1 79 91 02 a1 76 01 a6 63 6c 69 65 6e 74 a0 "
                   "a4 63 61 70 73 c0",
                   b);
    tp_msg r;
    cr_assert_eq(tp_wire_decode_reply(b, n, &r, store, sizeof(store)), 0);
    cr_assert_eq(r.version, 1);
    cr_assert_eq(r.caps, 0);
    cr_assert_str_eq(r.client, "");
}

Test(mp, reply_leaves_other_types_to_the_caller)
{
    uint8_t b[16];
    size_t n = hex("92 05 81 a1 78 01", b);
    tp_msg r;
    char store[8];
    cr_assert_eq(tp_wire_decode_reply(b, n, &r, store, sizeof(store)), 0);
    cr_assert_eq(r.type, TP_MSG_EVENTS);
    cr_assert_null(r.trace);
    n = hex("92 63 80", b);
    cr_assert_eq(tp_wire_decode_reply(b, n, &r, store, sizeof(store)), 0);
    cr_assert_eq(r.type, 99);
}
