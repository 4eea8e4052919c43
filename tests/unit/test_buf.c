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
