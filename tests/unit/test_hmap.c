/* The hash map (proto/hmap.c). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "failalloc.h"
#include "hmap.h"

/* Fills keys[0..n) with distinct nonzero keys whose probe runs all start at
 * the same slot of a 16-slot table, so that they collide. */
static void colliding_keys(uint64_t *keys, size_t n)
{
    size_t found = 0;
    size_t home = tp_hmap_mix(1, 60);
    for (uint64_t k = 1; found < n; k++)
        if (tp_hmap_mix(k, 60) == home)
            keys[found++] = k;
}

Test(hmap, put_then_get_every_key_across_growth)
{
    tp_hmap m = {0};
    for (uint64_t k = 0; k < 5000; k++)
        cr_assert_eq(tp_hmap_put(&m, k * 4096, k + 7), 0);
    cr_assert_eq(tp_hmap_size(&m), 5000);
    for (uint64_t k = 0; k < 5000; k++) {
        uint64_t v = 0;
        cr_assert(tp_hmap_get(&m, k * 4096, &v), "key %llu", (unsigned long long)k);
        cr_assert_eq(v, k + 7);
    }
    cr_assert_not(tp_hmap_get(&m, 4095, NULL));
    tp_hmap_free(&m);
    cr_assert_eq(tp_hmap_size(&m), 0);
    cr_assert_not(tp_hmap_get(&m, 4096, NULL));
}

/* Moved from tests/daemon/test_util.c, where it tested tphd's idmap (the
 * map ingest.c now keeps function ids in). */
Test(hmap, uint32_ids_put_get_replace_and_grow)
{
    tp_hmap m = {0};
    cr_assert_not(tp_hmap_get(&m, 5, NULL));
    for (uint32_t i = 0; i < 10000; i++)
        cr_assert_eq(tp_hmap_put(&m, i * 7919, i), 0);
    cr_assert_eq(tp_hmap_size(&m), 10000);
    uint64_t v;
    for (uint32_t i = 0; i < 10000; i++) {
        cr_assert(tp_hmap_get(&m, i * 7919, &v));
        cr_assert_eq(v, i);
    }
    cr_assert_not(tp_hmap_get(&m, 3, NULL));
    cr_assert_eq(tp_hmap_put(&m, 7919, 42), 0);
    cr_assert(tp_hmap_get(&m, 7919, &v));
    cr_assert_eq(v, 42);
    cr_assert_eq(tp_hmap_size(&m), 10000);
    tp_hmap_free(&m);
    cr_assert_eq(tp_hmap_size(&m), 0);
}

Test(hmap, empty_map_finds_nothing)
{
    tp_hmap m = {0};
    uint64_t v = 99;
    cr_assert_not(tp_hmap_get(&m, 0, &v));
    cr_assert_not(tp_hmap_get(&m, 1, &v));
    cr_assert_not(tp_hmap_del(&m, 1, &v));
    cr_assert_eq(v, 99);
}

Test(hmap, put_replaces_value_of_existing_key)
{
    tp_hmap m = {0};
    cr_assert_eq(tp_hmap_put(&m, 5, 1), 0);
    cr_assert_eq(tp_hmap_put(&m, 5, 2), 0);
    uint64_t v = 0;
    cr_assert(tp_hmap_get(&m, 5, &v));
    cr_assert_eq(v, 2);
    cr_assert_eq(tp_hmap_size(&m), 1);
    tp_hmap_free(&m);
}

Test(hmap, zero_and_max_are_ordinary_keys)
{
    tp_hmap m = {0};
    cr_assert_eq(tp_hmap_put(&m, 0, 10), 0);
    cr_assert_eq(tp_hmap_put(&m, UINT64_MAX, 20), 0);
    cr_assert_eq(tp_hmap_size(&m), 2);
    uint64_t v = 0;
    cr_assert(tp_hmap_get(&m, 0, &v));
    cr_assert_eq(v, 10);
    cr_assert(tp_hmap_get(&m, UINT64_MAX, &v));
    cr_assert_eq(v, 20);
    cr_assert(tp_hmap_del(&m, 0, &v));
    cr_assert_eq(v, 10);
    cr_assert_not(tp_hmap_get(&m, 0, NULL));
    cr_assert_eq(tp_hmap_size(&m), 1);
    tp_hmap_free(&m);
}

Test(hmap, colliding_keys_are_all_found)
{
    uint64_t keys[6];
    colliding_keys(keys, 6);
    tp_hmap m = {0};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(tp_hmap_put(&m, keys[i], i), 0);
    cr_assert_eq(m.cap, 16); /* still the table the keys collide in */
    for (size_t i = 0; i < 6; i++) {
        uint64_t v = 99;
        cr_assert(tp_hmap_get(&m, keys[i], &v));
        cr_assert_eq(v, i);
    }
    tp_hmap_free(&m);
}

Test(hmap, delete_inside_a_collision_run_keeps_later_members_reachable)
{
    uint64_t keys[6];
    colliding_keys(keys, 6);
    tp_hmap m = {0};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(tp_hmap_put(&m, keys[i], i), 0);
    uint64_t v = 99;
    cr_assert(tp_hmap_del(&m, keys[1], &v));
    cr_assert_eq(v, 1);
    cr_assert(tp_hmap_del(&m, keys[3], NULL));
    cr_assert_not(tp_hmap_del(&m, keys[3], NULL));
    cr_assert_eq(tp_hmap_size(&m), 4);
    const size_t left[] = {0, 2, 4, 5};
    for (size_t i = 0; i < 4; i++) {
        cr_assert(tp_hmap_get(&m, keys[left[i]], &v));
        cr_assert_eq(v, left[i]);
    }
    cr_assert_not(tp_hmap_get(&m, keys[1], NULL));
    tp_hmap_free(&m);
}

Test(hmap, many_deletions_leave_exactly_the_rest)
{
    tp_hmap m = {0};
    for (uint64_t k = 1; k <= 2000; k++)
        cr_assert_eq(tp_hmap_put(&m, k, k), 0);
    for (uint64_t k = 1; k <= 2000; k += 2)
        cr_assert(tp_hmap_del(&m, k, NULL));
    cr_assert_eq(tp_hmap_size(&m), 1000);
    for (uint64_t k = 1; k <= 2000; k++)
        cr_assert_eq(tp_hmap_get(&m, k, NULL), k % 2 == 0, "key %llu", (unsigned long long)k);
    tp_hmap_free(&m);
}

Test(hmap, allocation_failure_on_growth_leaves_map_unchanged)
{
    tp_hmap m = {0};
    for (uint64_t k = 1; k <= 8; k++) /* 8 of 16 slots: the next put grows */
        cr_assert_eq(tp_hmap_put(&m, k, k), 0);
    failalloc_after = 0;
    int r = tp_hmap_put(&m, 9, 9);
    failalloc_after = -1;
    cr_assert_eq(r, -ENOMEM);
    cr_assert_eq(tp_hmap_size(&m), 8);
    cr_assert_not(tp_hmap_get(&m, 9, NULL));
    for (uint64_t k = 1; k <= 8; k++)
        cr_assert(tp_hmap_get(&m, k, NULL));
    cr_assert_eq(tp_hmap_put(&m, 9, 9), 0);
    tp_hmap_free(&m);
}

Test(hmap, hash_bytes_is_fnv1a_64)
{
    /* Reference values of FNV-1a 64. */
    cr_assert_eq(tp_hmap_hash_bytes("", 0), 0xcbf29ce484222325ull);
    cr_assert_eq(tp_hmap_hash_bytes("a", 1), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(tp_hmap_hash_bytes("foobar", 6), 0x85944171f73967e8ull);
}

Test(hmap_bytes, put_then_get_strings_by_content)
{
    tp_hmap_bytes m = {0};
    char key[32];
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(key, sizeof key, "mod.f%d", i);
        cr_assert_eq(tp_hmap_bytes_put(&m, key, (size_t)n, (uint64_t)i), 0);
    }
    cr_assert_eq(tp_hmap_bytes_size(&m), 3000);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(key, sizeof key, "mod.f%d", i);
        uint64_t v = 0;
        cr_assert(tp_hmap_bytes_get(&m, key, (size_t)n, &v));
        cr_assert_eq(v, (uint64_t)i);
    }
    cr_assert_not(tp_hmap_bytes_get(&m, "mod.f", 5, NULL));
    cr_assert_not(tp_hmap_bytes_get(&m, "mod.f1x", 7, NULL));
    tp_hmap_bytes_free(&m);
    cr_assert_eq(tp_hmap_bytes_size(&m), 0);
}

Test(hmap_bytes, keys_are_copied_and_compared_by_length)
{
    tp_hmap_bytes m = {0};
    char key[] = "abc";
    cr_assert_eq(tp_hmap_bytes_put(&m, key, 3, 1), 0);
    cr_assert_eq(tp_hmap_bytes_put(&m, key, 2, 2), 0); /* "ab", a prefix */
    cr_assert_eq(tp_hmap_bytes_put(&m, "", 0, 3), 0);
    key[0] = 'x';
    uint64_t v = 0;
    cr_assert(tp_hmap_bytes_get(&m, "abc", 3, &v));
    cr_assert_eq(v, 1);
    cr_assert(tp_hmap_bytes_get(&m, "ab", 2, &v));
    cr_assert_eq(v, 2);
    cr_assert(tp_hmap_bytes_get(&m, "", 0, &v));
    cr_assert_eq(v, 3);
    cr_assert_not(tp_hmap_bytes_get(&m, "xbc", 3, NULL));
    cr_assert_eq(tp_hmap_bytes_put(&m, "abc", 3, 4), 0);
    cr_assert(tp_hmap_bytes_get(&m, "abc", 3, &v));
    cr_assert_eq(v, 4);
    cr_assert_eq(tp_hmap_bytes_size(&m), 3);
    tp_hmap_bytes_free(&m);
}

Test(hmap_bytes, allocation_failure_leaves_map_unchanged)
{
    tp_hmap_bytes m = {0};
    cr_assert_eq(tp_hmap_bytes_put(&m, "one", 3, 1), 0);
    int failures = 0;
    for (long after = 0; after < 3; after++) {
        failalloc_after = after;
        int r = tp_hmap_bytes_put(&m, "a much longer key than one", 26, 2);
        failalloc_after = -1;
        if (r == 0) {
            cr_assert(tp_hmap_bytes_get(&m, "a much longer key than one", 26, NULL));
            break;
        }
        cr_assert_eq(r, -ENOMEM);
        failures++;
        cr_assert_eq(tp_hmap_bytes_size(&m), 1);
        cr_assert_not(tp_hmap_bytes_get(&m, "a much longer key than one", 26, NULL));
    }
    cr_assert_gt(failures, 0);
    uint64_t v = 0;
    cr_assert(tp_hmap_bytes_get(&m, "one", 3, &v));
    cr_assert_eq(v, 1);
    tp_hmap_bytes_free(&m);
}
