/* A small open-addressing hash map from nonzero 64-bit keys to 32-bit values
 * (linear probing, backward-shift deletion, power-of-two capacity). The
 * extension keys it by function gid and by frame address. Memory comes from
 * PyMem_RawMalloc. Not thread-safe. */
#ifndef TP_MAPS_H
#define TP_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Zero-initialise to get an empty map. Fields are private. */
typedef struct tp_u64map {
    uint64_t *keys; /* 0 = empty slot */
    uint32_t *vals;
    size_t cap, n, shift;
} tp_u64map;

static inline size_t tp_u64map_slot(const tp_u64map *m, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
}

/** Look key (nonzero) up: true and *ret_val when present. */
static inline bool tp_u64map_get(const tp_u64map *m, uint64_t key, uint32_t *ret_val)
{
    if (!m->n)
        return false;
    size_t mask = m->cap - 1;
    for (size_t i = tp_u64map_slot(m, key);; i = (i + 1) & mask) {
        uint64_t k = m->keys[i];
        if (k == key) {
            *ret_val = m->vals[i];
            return true;
        }
        if (!k)
            return false;
    }
}

/** Insert or replace key (nonzero). Returns 0 or -ENOMEM (map unchanged). */
int tp_u64map_put(tp_u64map *m, uint64_t key, uint32_t val);
/** Remove key; true and *ret_val (may be NULL) when it was present. */
bool tp_u64map_del(tp_u64map *m, uint64_t key, uint32_t *ret_val);
/** Number of entries. */
static inline size_t tp_u64map_len(const tp_u64map *m)
{
    return m->n;
}
/** Release the memory; the map is empty and reusable. */
void tp_u64map_free(tp_u64map *m);

#endif
