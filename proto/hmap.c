/* The one hash map; see hmap.h. */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 16

uint64_t tp_hmap_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static unsigned shift_for(size_t cap)
{
    unsigned shift = 64;
    for (size_t c = cap; c > 1; c >>= 1)
        shift--;
    return shift;
}

static int rehash(tp_hmap *m, size_t cap)
{
    if (cap > SIZE_MAX / sizeof(tp_hmap_slot))
        return -ENOMEM;
    tp_hmap_slot *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    unsigned shift = shift_for(cap);
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = tp_hmap_mix(m->slots[i].key, shift);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->shift = shift;
    return 0;
}

int tp_hmap_put(tp_hmap *m, uint64_t key, uint64_t val)
{
    if (!key) {
        if (!m->has_zero)
            m->size++;
        m->has_zero = true;
        m->zero_val = val;
        return 0;
    }
    size_t in_table = m->size - m->has_zero;
    /* Keep the load at most 1/2 so that probe runs stay short. */
    if ((in_table + 1) * 2 > m->cap) {
        if (m->cap > SIZE_MAX / 2)
            return -ENOMEM;
        int r = rehash(m, m->cap ? m->cap * 2 : MIN_CAP);
        if (r < 0)
            return r;
    }
    size_t mask = m->cap - 1;
    for (size_t i = tp_hmap_mix(key, m->shift);; i = (i + 1) & mask) {
        if (m->slots[i].key == key) {
            m->slots[i].val = val;
            return 0;
        }
        if (!m->slots[i].key) {
            m->slots[i].key = key;
            m->slots[i].val = val;
            m->size++;
            return 0;
        }
    }
}

bool tp_hmap_del(tp_hmap *m, uint64_t key, uint64_t *ret_val)
{
    if (!key) {
        if (!m->has_zero)
            return false;
        if (ret_val)
            *ret_val = m->zero_val;
        m->has_zero = false;
        m->size--;
        return true;
    }
    if (!m->cap)
        return false;
    size_t mask = m->cap - 1;
    size_t i = tp_hmap_mix(key, m->shift);
    while (m->slots[i].key != key) {
        if (!m->slots[i].key)
            return false;
        i = (i + 1) & mask;
    }
    if (ret_val)
        *ret_val = m->slots[i].val;
    /* Backward shift: move later members of the probe run into the hole so
     * that lookups never need tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = tp_hmap_mix(m->slots[j].key, m->shift);
        /* Entry j must stay when its home lies in (hole, j] (cyclically):
         * moving it before its home would hide it from lookups. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->size--;
    return true;
}

void tp_hmap_free(tp_hmap *m)
{
    if (!m)
        return;
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* One key of a tp_hmap_bytes. Keys with the same digest chain through next. */
struct tp_hmap_bytes_ent {
    uint64_t digest;
    size_t off, len; /* in bytes */
    uint64_t val;
    size_t next; /* index + 1 of the next entry with this digest, 0 = none */
};

static struct tp_hmap_bytes_ent *bytes_find(const tp_hmap_bytes *m, const void *key, size_t n,
                                            uint64_t digest)
{
    uint64_t first;
    if (!tp_hmap_get(&m->idx, digest, &first))
        return NULL;
    for (size_t e = (size_t)first; e; e = m->ents.items[e - 1].next) {
        struct tp_hmap_bytes_ent *ent = &m->ents.items[e - 1];
        if (ent->len == n && (n == 0 || memcmp(m->bytes.items + ent->off, key, n) == 0))
            return ent;
    }
    return NULL;
}

bool tp_hmap_bytes_get(const tp_hmap_bytes *m, const void *key, size_t n, uint64_t *ret_val)
{
    const struct tp_hmap_bytes_ent *ent = bytes_find(m, key, n, tp_hmap_hash_bytes(key, n));
    if (ent && ret_val)
        *ret_val = ent->val;
    return ent != NULL;
}

int tp_hmap_bytes_put(tp_hmap_bytes *m, const void *key, size_t n, uint64_t val)
{
    uint64_t digest = tp_hmap_hash_bytes(key, n);
    struct tp_hmap_bytes_ent *ent = bytes_find(m, key, n, digest);
    if (ent) {
        ent->val = val;
        return 0;
    }
    if (n > SIZE_MAX - m->bytes.size)
        return -ENOMEM;
    /* Reserve everything first: a failure after this point would leave a
     * half-inserted key. */
    int r = tp_vec_grow1(&m->ents);
    if (r == 0)
        r = tp_vec_reserve(&m->bytes, m->bytes.size + n);
    if (r < 0)
        return r;
    uint64_t first = 0;
    bool chained = tp_hmap_get(&m->idx, digest, &first);
    /* The newest entry heads its digest's chain, so the index is written
     * (and may fail) before anything else changes. */
    r = tp_hmap_put(&m->idx, digest, (uint64_t)m->ents.size + 1);
    if (r < 0)
        return r;
    ent = &m->ents.items[m->ents.size++];
    ent->digest = digest;
    ent->off = m->bytes.size;
    ent->len = n;
    ent->val = val;
    ent->next = chained ? (size_t)first : 0;
    if (n)
        memcpy(m->bytes.items + m->bytes.size, key, n);
    m->bytes.size += n;
    return 0;
}

void tp_hmap_bytes_free(tp_hmap_bytes *m)
{
    if (!m)
        return;
    tp_hmap_free(&m->idx);
    tp_vec_free(&m->ents);
    tp_vec_free(&m->bytes);
    memset(m, 0, sizeof(*m));
}
