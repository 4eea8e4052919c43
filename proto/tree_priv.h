/* Internals shared by tree.c, fold.c, stats.c and diff.c. Not a contract:
 * nothing outside proto/tree*.c, fold.c, stats.c, diff.c and their unit tests
 * includes this header. */
#ifndef TP_TREE_PRIV_H
#define TP_TREE_PRIV_H

#include "tp_err.h"
#include "tree.h"

/** Append a zeroed node (links TP_NONE, count 1) to t and return its index in
 *  *ret_idx. May move t->nodes. Returns 0, -ENOMEM or TP_ERR_LIMIT. */
int tp_tree_priv_add_node(tp_tree *t, uint32_t *ret_idx);

/** Give dst the same function table as src (same indices, strings copied).
 *  dst must have no functions yet. Returns 0 or -ENOMEM. */
int tp_tree_priv_copy_funcs(tp_tree *dst, const tp_tree *src);

/** Copy src's meta (strings into dst's arena). Returns 0 or -ENOMEM. */
int tp_tree_priv_copy_meta(tp_tree *dst, const tp_tree *src);

/** Mark a tree built by hand (fold, loader) as finished: no builder state. */
void tp_tree_priv_set_finished(tp_tree *t);

/** Whether tp_tree_finish() (or tp_tree_priv_set_finished()) ran. */
bool tp_tree_priv_is_finished(const tp_tree *t);

/** How many RETURN/UNWIND/CAUGHT events found no open call and were ignored. */
uint64_t tp_tree_priv_stray(const tp_tree *t);

/** strdup into the arena that keeps NULL as NULL. */
static inline const char *tp_tree_priv_dup(tp_tree *t, const char *s, size_t len, int *err)
{
    if (!s)
        return NULL;
    const char *d = tp_tree_strdup(t, s, len);
    if (!d)
        *err = -ENOMEM;
    return d;
}

#endif
