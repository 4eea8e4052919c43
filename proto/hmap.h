/* The one hash map of the C tree: open addressing with linear probing, a
 * power-of-two capacity kept at most half full, and backward-shift deletion
 * (no tombstones, so lookups stay short after many deletions).
 *
 * One hash function serves every key: tp_hmap_mix() (Fibonacci hashing of a
 * 64-bit key), fed either the key itself (tp_hmap, uint64 keys) or the 64-bit
 * FNV-1a digest of a byte string (tp_hmap_bytes, which compares the bytes too, so
 * two strings with the same digest are still two keys).
 *
 * Both maps are embedded by value and zero-initialised ({0}) to get an empty
 * map; their fields are private. Memory comes from malloc() and is returned
 * by the _free() functions. Growth never aborts: it returns -ENOMEM and
 * leaves the map as it was. Lookups allocate nothing, so the extension may
 * call tp_hmap_get() on its per-call hot path. Not thread-safe. */
#ifndef TP_HMAP_H
#define TP_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vec.h"

/* One slot. A key of 0 marks an empty slot; the map keeps key 0 itself
 * beside the table (has_zero, zero_val) so that every uint64 is a key. */
typedef struct tp_hmap_slot {
    uint64_t key;
    uint64_t val;
} tp_hmap_slot;

/** A map from uint64 keys (any value) to uint64 values. */
typedef struct tp_hmap {
    tp_hmap_slot *slots; /* private */
    size_t cap;          /* private: 0 or a power of two */
    size_t size;         /* private: entries, key 0 included */
    unsigned shift;      /* private: 64 - log2(cap) */
    bool has_zero;       /* private */
    uint64_t zero_val;   /* private */
} tp_hmap;

/** The slot where key's probe run starts, for a table of 2^(64 - shift)
 *  slots: the one hash of the tree. */
static inline size_t tp_hmap_mix(uint64_t key, unsigned shift)
{
    /* Multiplying by 2^64/phi and keeping the top bits spreads dense small
     * ids and aligned addresses alike over the whole table. */
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> shift);
}

/** The 64-bit FNV-1a digest of n bytes (n may be 0). */
uint64_t tp_hmap_hash_bytes(const void *p, size_t n);

/** Look key up: true and *ret_val (may be NULL) when present. */
static inline bool tp_hmap_get(const tp_hmap *m, uint64_t key, uint64_t *ret_val)
{
    if (!key) {
        if (m->has_zero && ret_val)
            *ret_val = m->zero_val;
        return m->has_zero;
    }
    if (!m->cap)
        return false;
    size_t mask = m->cap - 1;
    for (size_t i = tp_hmap_mix(key, m->shift);; i = (i + 1) & mask) {
        uint64_t k = m->slots[i].key;
        if (k == key) {
            if (ret_val)
                *ret_val = m->slots[i].val;
            return true;
        }
        if (!k)
            return false;
    }
}

/** Insert or replace. Returns 0, or -ENOMEM (the map is unchanged). */
int tp_hmap_put(tp_hmap *m, uint64_t key, uint64_t val);
/** Remove key: true and *ret_val (may be NULL) when it was present. */
bool tp_hmap_del(tp_hmap *m, uint64_t key, uint64_t *ret_val);
/** Number of entries. */
static inline size_t tp_hmap_size(const tp_hmap *m)
{
    return m->size;
}
/** Release the memory; the map is empty and reusable. Accepts NULL. */
void tp_hmap_free(tp_hmap *m);

/** A map from byte strings to uint64 values. The map keeps its own copy of
 *  every key. Entries cannot be removed (interning tables never need it). */
typedef struct tp_hmap_bytes {
    tp_hmap idx;                           /* private: digest -> entry index + 1 */
    TP_VEC(struct tp_hmap_bytes_ent) ents; /* private: chained by digest */
    TP_VEC(char) bytes;                    /* private: every key, back to back */
} tp_hmap_bytes;

/** Look the n bytes at key up: true and *ret_val (may be NULL) when
 *  present. */
bool tp_hmap_bytes_get(const tp_hmap_bytes *m, const void *key, size_t n, uint64_t *ret_val);
/** Insert or replace; the map copies the key. Returns 0, or -ENOMEM (the
 *  map is unchanged). */
int tp_hmap_bytes_put(tp_hmap_bytes *m, const void *key, size_t n, uint64_t val);
/** Number of entries. */
static inline size_t tp_hmap_bytes_size(const tp_hmap_bytes *m)
{
    return m->ents.size;
}
/** Release the memory; the map is empty and reusable. Accepts NULL. */
void tp_hmap_bytes_free(tp_hmap_bytes *m);

#endif
