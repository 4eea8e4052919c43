/* Internals shared by tree.c, tree_fold.c, tree_stats.c and tree_diff.c (tp__tree_*).
 * Not a contract: nothing outside proto/tree*.c, the renderers and their unit tests
 * includes this header. */
#ifndef TP_TREE_PRIV_H
#define TP_TREE_PRIV_H

#include "tp_err.h"
#include "tree.h"

/** Append a zeroed node (links TP_NONE, count 1) to t and return its index in
 *  *ret_idx. May move t->nodes. Returns 0, -ENOMEM or TP_ERR_LIMIT. */
int tp__tree_add_node(tp_tree *t, uint32_t *ret_idx);

/** Give dst the same function table as src (same indices, strings copied).
 *  dst must have no functions yet. Returns 0 or -ENOMEM. */
int tp__tree_copy_funcs(tp_tree *dst, const tp_tree *src);

/** Copy src's meta (strings into dst's arena). Returns 0 or -ENOMEM. */
int tp__tree_copy_meta(tp_tree *dst, const tp_tree *src);

/** Mark a tree built by hand (fold, loader) as finished: no builder state. */
void tp__tree_set_finished(tp_tree *t);

/** Whether tp_tree_finish() (or tp__tree_set_finished()) ran. */
bool tp__tree_is_finished(const tp_tree *t);

/** How many RETURN/UNWIND/CAUGHT events found no open call and were ignored. */
uint64_t tp__tree_stray(const tp_tree *t);

/** Link node idx as the last child of parent (or the last root when parent
 *  is TP_NONE) and set its parent and depth. idx has no siblings yet. Used
 *  wherever trees are built (tree.c, tree_fold.c), on hot paths: inline. */
static inline void tp__tree_link(tp_tree *t, uint32_t parent, uint32_t idx)
{
    tp_node *n = &t->nodes[idx];
    n->parent = parent;
    if (parent == TP_NONE) {
        n->depth = 0;
        if (t->last_root == TP_NONE)
            t->first_root = idx;
        else
            t->nodes[t->last_root].next = idx;
        t->last_root = idx;
        return;
    }
    tp_node *p = &t->nodes[parent];
    n->depth = p->depth + 1;
    if (p->last_child == TP_NONE)
        p->first_child = idx;
    else
        t->nodes[p->last_child].next = idx;
    p->last_child = idx;
}

/** The first node after i's subtree in depth-first pre-order: the next
 *  sibling of i or of its nearest ancestor that has one; TP_NONE after the
 *  last. Walks up, never recurses, so any depth is fine. */
static inline uint32_t tp__tree_after(const tp_tree *t, uint32_t i)
{
    while (i != TP_NONE && t->nodes[i].next == TP_NONE)
        i = t->nodes[i].parent;
    return i == TP_NONE ? TP_NONE : t->nodes[i].next;
}

/** The node after i in depth-first pre-order (its first child, else
 *  tp__tree_after()). A whole tree: from t->first_root until TP_NONE. */
static inline uint32_t tp__tree_next(const tp_tree *t, uint32_t i)
{
    uint32_t c = t->nodes[i].first_child;
    return c != TP_NONE ? c : tp__tree_after(t, i);
}

/** strdup into the arena that keeps NULL as NULL. */
static inline const char *tp__tree_dup(tp_tree *t, const char *s, size_t len, int *err)
{
    if (!s)
        return NULL;
    const char *d = tp_tree_strdup(t, s, len);
    if (!d)
        *err = -ENOMEM;
    return d;
}

#endif
