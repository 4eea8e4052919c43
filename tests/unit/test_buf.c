/* The growable byte buffer every renderer writes into (proto/buf.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

Test(buf, empty_buffer_reads_as_empty_string)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_str_eq(tp_buf_cstr(&b), "");
    cr_assert_eq(b.len, 0);
    cr_assert_eq(tp_buf_error(&b), 0);
    tp_buf_free(&b);
}

Test(buf, appends_concatenate_and_stay_nul_terminated)
{
    tp_buf b = TP_BUF_INIT;
    cr_assert_eq(tp_buf_append(&b, "ab\0c", 4), 0);
    cr_assert_eq(tp_buf_puts(&b, "de"), 0);
    cr_assert_eq(tp_buf_putc(&b, 'f'), 0);
    cr_assert_eq(tp_buf_printf(&b, "%d-%s", 42, "x"), 0);
    cr_assert_eq(b.len, 11);
    cr_assert_eq(memcmp(b.data, "ab\0cdef42-x", 12), 0); /* the NUL after len included */
    tp_buf_free(&b);
}

Test(buf, growth_past_the_first_block_keeps_every_byte)
{
    tp_buf b = TP_BUF_INIT;
    for (int i = 0; i < 100000; i++)
        tp_buf_putc(&b, (char)('a' + i % 26));
    cr_assert_eq(tp_buf_error(&b), 0);
    cr_assert_eq(b.len, 100000);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq(b.data[i], (char)('a' + i % 26), "byte %d", i);
    cr_assert_eq(b.data[100000], '\0');
    tp_buf_free(&b);
}

Test(buf, printf_longer_than_the_free_space_is_complete)
{
    tp_buf b = TP_BUF_INIT;
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(tp_buf_printf(&b, "<%s>", big), 0);
    cr_assert_eq(b.len, sizeof(big) + 1);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[b.len - 1], '>');
    tp_buf_free(&b);
}

Test(buf, failed_reserve_is_sticky_and_leaves_contents)
{
    tp_buf b = TP_BUF_INIT;
    tp_buf_puts(&b, "keep");
    cr_assert_eq(tp_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    cr_assert_eq(tp_buf_puts(&b, "more"), -ENOMEM);
    cr_assert_eq(tp_buf_printf(&b, "%d", 1), -ENOMEM);
    cr_assert_eq(tp_buf_error(&b), -ENOMEM);
    cr_assert_str_eq(tp_buf_cstr(&b), "keep");
    cr_assert_null(tp_buf_steal(&b, NULL));
    tp_buf_free(&b);
}

Test(buf, reset_keeps_memory_and_clears_the_error)
{
    tp_buf b = TP_BUF_INIT;
    tp_buf_puts(&b, "abc");
    char *mem = b.data;
    tp_buf_reserve(&b, SIZE_MAX);
    tp_buf_reset(&b);
    cr_assert_eq(tp_buf_error(&b), 0);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(tp_buf_cstr(&b), "");
    cr_assert_eq(tp_buf_puts(&b, "x"), 0);
    cr_assert_eq(b.data, mem);
    tp_buf_free(&b);
}

Test(buf, steal_hands_over_the_data_and_resets)
{
    tp_buf b = TP_BUF_INIT;
    tp_buf_puts(&b, "owned");
    size_t n = 0;
    char *s = tp_buf_steal(&b, &n);
    cr_assert_str_eq(s, "owned");
    cr_assert_eq(n, 5);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    free(s);
}

Test(buf, free_accepts_null_and_an_empty_buffer)
{
    tp_buf b = TP_BUF_INIT;
    tp_buf_free(NULL);
    tp_buf_free(&b);
    tp_buf_free(&b);
    cr_assert_null(b.data);
}

/* ---- Streams (tp_buf_set_drain) ----------------------------------------------------- */

typedef struct sink {
    tp_buf got;     /* everything drained, in order */
    size_t calls;   /* drain calls */
    size_t largest; /* longest piece */
    size_t fail_at; /* the call that fails (1-based), 0: never */
} sink;

static int sink_drain(void *ctx, const char *p, size_t n)
{
    sink *s = ctx;
    s->calls++;
    if (s->fail_at && s->calls == s->fail_at)
        return -EPIPE;
    if (n > s->largest)
        s->largest = n;
    tp_buf_append(&s->got, p, n);
    return 0;
}

Test(buf, drain_hands_over_pieces_of_at_most_the_piece_size)
{
    tp_buf b = TP_BUF_INIT;
    sink s = {.got = TP_BUF_INIT};
    cr_assert_eq(tp_buf_set_drain(&b, 10, sink_drain, &s), 0);
    for (int i = 0; i < 7; i++)
        tp_buf_puts(&b, "abcd"); /* 28 bytes: pieces of 8 (a third 4 would make 12) */
    cr_assert_eq(s.calls, 3);
    cr_assert_eq(s.largest, 8);
    cr_assert_eq(b.len, 4);
    cr_assert_eq(b.drained, 24);
    cr_assert_eq(tp_buf_total(&b), 28);
    cr_assert_eq(tp_buf_flush(&b), 0);
    cr_assert_eq(s.calls, 4);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(tp_buf_cstr(&s.got), "abcdabcdabcdabcdabcdabcdabcd");
    cr_assert_eq(tp_buf_flush(&b), 0); /* empty: no call */
    cr_assert_eq(s.calls, 4);
    tp_buf_free(&b);
    tp_buf_free(&s.got);
}

Test(buf, drain_keeps_the_buffer_at_one_piece)
{
    tp_buf b = TP_BUF_INIT;
    sink s = {.got = TP_BUF_INIT};
    cr_assert_eq(tp_buf_set_drain(&b, 256, sink_drain, &s), 0);
    for (int i = 0; i < 10000; i++) {
        tp_buf_printf(&b, "%d,", i); /* reserves 64 bytes first */
        tp_buf_putc(&b, ';');
        cr_assert_leq(b.len, 256);
    }
    cr_assert_eq(b.cap, 257);
    tp_buf_flush(&b);
    tp_buf ref = TP_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        tp_buf_printf(&ref, "%d,;", i);
    cr_assert_eq(s.got.len, ref.len);
    cr_assert_eq(memcmp(s.got.data, ref.data, ref.len), 0);
    cr_assert_leq(s.largest, 256);
    cr_assert_geq(s.largest, 256 - 64);
    tp_buf_free(&b);
    tp_buf_free(&ref);
    tp_buf_free(&s.got);
}

Test(buf, drain_takes_a_long_append_directly_after_what_was_held)
{
    tp_buf b = TP_BUF_INIT;
    sink s = {.got = TP_BUF_INIT};
    char big[100];
    memset(big, 'x', sizeof(big));
    cr_assert_eq(tp_buf_set_drain(&b, 16, sink_drain, &s), 0);
    tp_buf_puts(&b, "head");
    cr_assert_eq(tp_buf_append(&b, big, sizeof(big)), 0);
    cr_assert_eq(s.calls, 8); /* "head", then the 100 bytes uncopied: 6 x 16 + 4 */
    cr_assert_eq(s.largest, 16);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 17);
    tp_buf_puts(&b, "tail");
    cr_assert_eq(tp_buf_total(&b), 108);
    tp_buf_flush(&b);
    cr_assert_eq(s.got.len, 108);
    cr_assert_eq(memcmp(s.got.data, "head", 4), 0);
    cr_assert_eq(memcmp(s.got.data + 104, "tail", 4), 0);
    tp_buf_free(&b);
    tp_buf_free(&s.got);
}

Test(buf, drain_error_is_sticky_and_stops_the_stream)
{
    tp_buf b = TP_BUF_INIT;
    sink s = {.got = TP_BUF_INIT, .fail_at = 2};
    cr_assert_eq(tp_buf_set_drain(&b, 8, sink_drain, &s), 0);
    for (int i = 0; i < 100; i++)
        tp_buf_puts(&b, "abcdef");
    cr_assert_eq(tp_buf_error(&b), -EPIPE);
    cr_assert_eq(s.calls, 2); /* nothing more is drained after the failure */
    cr_assert_str_eq(tp_buf_cstr(&s.got), "abcdef");
    cr_assert_eq(tp_buf_flush(&b), -EPIPE);
    cr_assert_eq(tp_buf_printf(&b, "%d", 5), -EPIPE);
    cr_assert_eq(tp_buf_reserve(&b, 1), -EPIPE);
    tp_buf_free(&b);
    tp_buf_free(&s.got);
}

Test(buf, drain_reserve_drains_before_the_caller_writes)
{
    tp_buf b = TP_BUF_INIT;
    sink s = {.got = TP_BUF_INIT};
    cr_assert_eq(tp_buf_set_drain(&b, 8, sink_drain, &s), 0);
    tp_buf_puts(&b, "12345");
    cr_assert_eq(tp_buf_reserve(&b, 4), 0); /* 5 + 4 > 8: the 5 go first */
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(tp_buf_reserve(&b, 20), 0); /* a reserve past a piece grows the buffer */
    cr_assert_geq(b.cap, 21);
    cr_assert_eq(s.calls, 1);
    tp_buf_free(&b);
    tp_buf_free(&s.got);
}

Test(buf, set_drain_refuses_a_used_buffer_and_a_zero_piece)
{
    tp_buf b = TP_BUF_INIT;
    sink s = {.got = TP_BUF_INIT};
    cr_assert_eq(tp_buf_set_drain(&b, 0, sink_drain, &s), -EINVAL);
    tp_buf_puts(&b, "x");
    cr_assert_eq(tp_buf_set_drain(&b, 8, sink_drain, &s), -EINVAL);
    tp_buf_reset(&b);
    cr_assert_eq(tp_buf_set_drain(&b, 8, sink_drain, &s), 0);
    cr_assert_eq(tp_buf_set_drain(&b, 8, sink_drain, &s), -EINVAL);
    tp_buf_free(&b);
    cr_assert_null(b.drain); /* free forgets the drain too */
    tp_buf_free(&s.got);
}

Test(buf, reset_of_a_stream_keeps_its_drain_and_restarts_the_count)
{
    tp_buf b = TP_BUF_INIT;
    sink s = {.got = TP_BUF_INIT};
    cr_assert_eq(tp_buf_set_drain(&b, 4, sink_drain, &s), 0);
    tp_buf_puts(&b, "abcdefgh");
    cr_assert_eq(b.drained, 8);
    tp_buf_reset(&b);
    cr_assert_eq(tp_buf_total(&b), 0);
    cr_assert_eq(s.calls, 2); /* "abcd", "efgh" */
    tp_buf_puts(&b, "ijkl");  /* fits in the piece: held */
    cr_assert_eq(s.calls, 2);
    cr_assert_eq(tp_buf_total(&b), 4);
    tp_buf_free(&b);
    tp_buf_free(&s.got);
}
