/* The growable array (proto/vec.h). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>

#include "failalloc.h"
#include "vec.h"

Test(vec, push_keeps_every_item_in_order_across_growth)
{
    TP_VEC(uint32_t) v = TP_VEC_INIT;
    for (uint32_t i = 0; i < 1000; i++) {
        cr_assert_eq(tp_vec_grow1(&v), 0);
        v.items[v.size++] = i * 3;
    }
    cr_assert_eq(v.size, 1000);
    cr_assert_eq(v.capacity, 1024);
    for (uint32_t i = 0; i < 1000; i++)
        cr_assert_eq(v.items[i], i * 3);
    tp_vec_free(&v);
    cr_assert_null(v.items);
    cr_assert_eq(v.size, 0);
    cr_assert_eq(v.capacity, 0);
}

Test(vec, first_growth_takes_minimum_capacity)
{
    TP_VEC(char) v = TP_VEC_INIT;
    cr_assert_eq(tp_vec_reserve(&v, 1), 0);
    cr_assert_eq(v.capacity, 8);
    tp_vec_free(&v);
}

Test(vec, reserve_within_capacity_does_not_reallocate)
{
    TP_VEC(int) v = TP_VEC_INIT;
    cr_assert_eq(tp_vec_reserve(&v, 20), 0);
    int *before = v.items;
    cr_assert_eq(v.capacity, 32);
    failalloc_after = 0; /* any allocation now fails */
    cr_assert_eq(tp_vec_reserve(&v, 32), 0);
    failalloc_after = -1;
    cr_assert_eq(v.items, before);
    tp_vec_free(&v);
}

Test(vec, reserve_jumps_straight_to_a_large_request)
{
    TP_VEC(uint64_t) v = TP_VEC_INIT;
    cr_assert_eq(tp_vec_reserve(&v, 1000), 0);
    cr_assert_eq(v.capacity, 1024);
    tp_vec_free(&v);
}

Test(vec, byte_count_overflow_fails_and_leaves_vector_unchanged)
{
    TP_VEC(uint64_t) v = TP_VEC_INIT;
    cr_assert_eq(tp_vec_grow1(&v), 0);
    v.items[v.size++] = 42;
    uint64_t *before = v.items;
    /* SIZE_MAX / 8 + 1 items of 8 bytes wrap a size_t. */
    cr_assert_eq(tp_vec_reserve(&v, SIZE_MAX / sizeof(uint64_t) + 1), -ENOMEM);
    cr_assert_eq(tp_vec_reserve(&v, SIZE_MAX), -ENOMEM);
    cr_assert_eq(v.items, before);
    cr_assert_eq(v.size, 1);
    cr_assert_eq(v.capacity, 8);
    cr_assert_eq(v.items[0], 42);
    tp_vec_free(&v);
}

Test(vec, allocation_failure_returns_enomem_and_keeps_items)
{
    TP_VEC(uint32_t) v = TP_VEC_INIT;
    for (uint32_t i = 0; i < 8; i++) {
        cr_assert_eq(tp_vec_grow1(&v), 0);
        v.items[v.size++] = i;
    }
    failalloc_after = 0;
    int r = tp_vec_grow1(&v);
    failalloc_after = -1;
    cr_assert_eq(r, -ENOMEM);
    cr_assert_eq(v.size, 8);
    cr_assert_eq(v.capacity, 8);
    for (uint32_t i = 0; i < 8; i++)
        cr_assert_eq(v.items[i], i);
    /* The next attempt, with memory back, succeeds. */
    cr_assert_eq(tp_vec_grow1(&v), 0);
    cr_assert_eq(v.capacity, 16);
    tp_vec_free(&v);
}

Test(vec, first_allocation_failure_leaves_vector_empty)
{
    TP_VEC(char) v = TP_VEC_INIT;
    failalloc_after = 0;
    int r = tp_vec_reserve(&v, 3);
    failalloc_after = -1;
    cr_assert_eq(r, -ENOMEM);
    cr_assert_null(v.items);
    cr_assert_eq(v.capacity, 0);
}
