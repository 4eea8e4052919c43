#include "idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline size_t slot_of(uint32_t key, size_t cap)
{
    /* Fibonacci hashing spreads dense small ids over the table. */
    return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

uint32_t tp_idmap_get(const tp_idmap *m, uint32_t key)
{
    if (m->cap == 0)
        return TP_IDMAP_EMPTY;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == TP_IDMAP_EMPTY)
            return TP_IDMAP_EMPTY;
    }
}

static int grow(tp_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    uint32_t *keys = malloc(cap * sizeof(*keys));
    uint32_t *vals = malloc(cap * sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    memset(keys, 0xff, cap * sizeof(*keys));
    for (size_t j = 0; j < m->cap; j++) {
        if (m->keys[j] == TP_IDMAP_EMPTY)
            continue;
        size_t i = slot_of(m->keys[j], cap);
        while (keys[i] != TP_IDMAP_EMPTY)
            i = (i + 1) & (cap - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

int tp_idmap_put(tp_idmap *m, uint32_t key, uint32_t val)
{
    if (key == TP_IDMAP_EMPTY)
        return -EINVAL;
    /* Keep the load under 1/2 so probes stay short. */
    if ((m->len + 1) * 2 > m->cap) {
        int r = grow(m);
        if (r < 0)
            return r;
    }
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] != TP_IDMAP_EMPTY && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == TP_IDMAP_EMPTY) {
        m->keys[i] = key;
        m->len++;
    }
    m->vals[i] = val;
    return 0;
}

size_t tp_idmap_len(const tp_idmap *m)
{
    return m->len;
}

void tp_idmap_free(tp_idmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}
