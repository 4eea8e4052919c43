/* Open-addressing hash map; see maps.h. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>

#include "maps.h"

static int rehash(tp_u64map *m, size_t cap)
{
    uint64_t *keys = PyMem_RawCalloc(cap, sizeof(*keys));
    uint32_t *vals = PyMem_RawMalloc(cap * sizeof(*vals));
    if (!keys || !vals) {
        PyMem_RawFree(keys);
        PyMem_RawFree(vals);
        return -ENOMEM;
    }
    size_t shift = 64;
    for (size_t c = cap; c > 1; c >>= 1)
        shift--;
    tp_u64map nm = {keys, vals, cap, 0, shift};
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = tp_u64map_slot(&nm, m->keys[i]);
        while (nm.keys[j])
            j = (j + 1) & (cap - 1);
        nm.keys[j] = m->keys[i];
        nm.vals[j] = m->vals[i];
        nm.n++;
    }
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->vals);
    *m = nm;
    return 0;
}

int tp_u64map_put(tp_u64map *m, uint64_t key, uint32_t val)
{
    /* Keep the load under 1/2 so that probes stay short. */
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(uint64_t) || rehash(m, cap))
            return -ENOMEM;
    }
    size_t mask = m->cap - 1;
    for (size_t i = tp_u64map_slot(m, key);; i = (i + 1) & mask) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
    }
}

bool tp_u64map_del(tp_u64map *m, uint64_t key, uint32_t *ret_val)
{
    if (!m->n)
        return false;
    size_t mask = m->cap - 1;
    size_t i = tp_u64map_slot(m, key);
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return false;
        i = (i + 1) & mask;
    }
    if (ret_val)
        *ret_val = m->vals[i];
    /* Backward-shift: move later members of the probe run into the hole so
     * that lookups never need tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = tp_u64map_slot(m, m->keys[j]);
        /* Entry j may move to hole when its home is not in (hole, j]. */
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->n--;
    return true;
}

void tp_u64map_free(tp_u64map *m)
{
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->vals);
    memset(m, 0, sizeof(*m));
}
