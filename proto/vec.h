/* The one growable array of the C tree, in the style of h2o's H2O_VECTOR.
 *
 * TP_VEC(T) declares an anonymous struct {T *items; size_t size, capacity;}
 * that callers embed by value and zero-initialise ({0} or TP_VEC_INIT) to get
 * an empty vector. items and size are public (read and write: callers append
 * by writing items[size++] after a successful reserve); capacity is private.
 *
 *     TP_VEC(uint32_t) ids = TP_VEC_INIT;
 *     if (tp_vec_reserve(&ids, ids.size + 1) < 0)
 *         return -ENOMEM;
 *     ids.items[ids.size++] = 7;
 *     tp_vec_free(&ids);
 *
 * Memory comes from realloc() and goes back through free(). Growth never
 * aborts: an overflow of the byte count or a failed allocation returns
 * -ENOMEM and leaves the vector as it was, which is what code inside the
 * user's Python process needs (see STYLE.md, Memory). Not thread-safe. */
#ifndef TP_VEC_H
#define TP_VEC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/** The struct type of a vector of T: items, size (public), capacity (private). */
#define TP_VEC(type)                                                                               \
    struct {                                                                                       \
        type *items;                                                                               \
        size_t size;                                                                               \
        size_t capacity;                                                                           \
    }

/** An empty vector, for initialisers. */
#define TP_VEC_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* The smallest capacity a growing vector takes, so that pushing one item at a
 * time costs a handful of reallocations rather than one per item. */
#define TP_VEC__MIN_CAPACITY 8

/** tp_vec_reserve() for an array whose pointer and capacity are separate
 *  fields (tp_tree.nodes is public API and predates TP_VEC): make room for
 *  want elements of elem_size bytes at *items. *items and *capacity are
 *  written only on success. Returns 0 or -ENOMEM. */
static inline int tp_vec_reserve_array(void **items, size_t elem_size, size_t *capacity,
                                       size_t want)
{
    if (want <= *capacity)
        return 0;
    size_t cap = *capacity ? *capacity : TP_VEC__MIN_CAPACITY;
    while (cap < want) {
        /* Doubling past SIZE_MAX/2 would wrap; settle for exactly want. */
        if (cap > SIZE_MAX / 2) {
            cap = want;
            break;
        }
        cap *= 2;
    }
    if (cap > SIZE_MAX / elem_size)
        return -ENOMEM;
    void *p = realloc(*items, cap * elem_size);
    if (!p)
        return -ENOMEM;
    *items = p;
    *capacity = cap;
    return 0;
}

/** Make room for at least want items in total (not want more), growing the
 *  capacity geometrically. Returns 0, or -ENOMEM on overflow or allocation
 *  failure (the vector is unchanged). Items beyond size are uninitialised. */
#define tp_vec_reserve(v, want)                                                                    \
    tp_vec_reserve_array((void **)&(v)->items, sizeof(*(v)->items), &(v)->capacity, (want))

/** Make room for one more item: tp_vec_reserve(v, v->size + 1). */
#define tp_vec_grow1(v) tp_vec_reserve((v), (v)->size + 1)

/** Release the memory; the vector is empty and reusable. */
#define tp_vec_free(v)                                                                             \
    do {                                                                                           \
        free((v)->items);                                                                          \
        (v)->items = NULL;                                                                         \
        (v)->size = (v)->capacity = 0;                                                             \
    } while (0)

#endif
