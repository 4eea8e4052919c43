/* Comparing two traces call path by call path.
 *
 * A call path is the chain of "module.qualname" names from a root. Paths are
 * interned as (parent path, name) pairs in one hash table shared by both
 * trees, so a node's path costs one lookup whatever its depth, and the path
 * text is only spelled out for the entries reported. A path only in one tree
 * whose parent path is also only in that tree is not reported on its own:
 * the topmost added or removed path stands for its whole subtree (and keeps a
 * removed 100k-deep recursion from producing 100k ever longer paths). */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hmap.h"
#include "tp_err.h"
#include "tree.h"
#include "tree_priv.h"
#include "vec.h"

#define SEP            " > "
#define SEP_LEN        3
#define MAX_PATH_BYTES ((size_t)128 * 1024 * 1024) /* all reported paths together */

typedef struct path_ent {
    uint32_t parent; /* path id, TP_NONE at a root */
    uint32_t name;   /* name id */
    uint64_t count[2];
    int64_t total[2];
} path_ent;

/* One interned name: its text (NUL-terminated) in diff_ctx.text. */
typedef struct name_ent {
    size_t off;
    uint32_t len;
    uint64_t calls[2]; /* per side */
} name_ent;

typedef struct diff_ctx {
    /* Names: text in one buffer, addressed by offset. */
    tp_buf text;
    TP_VEC(name_ent) names;
    tp_hmap_bytes name_ids; /* text -> name id */
    /* Paths. */
    TP_VEC(path_ent) paths;
    tp_hmap path_ids; /* parent << 32 | name -> path id */
} diff_ctx;

static const char *name_text(const diff_ctx *c, uint32_t id)
{
    return c->text.data + c->names.items[id].off;
}

static int intern_name(diff_ctx *c, const char *s, size_t n, uint32_t *ret_id)
{
    uint64_t found;
    if (tp_hmap_bytes_get(&c->name_ids, s, n, &found)) {
        *ret_id = (uint32_t)found;
        return 0;
    }
    if (c->names.size >= UINT32_MAX || n > UINT32_MAX)
        return TP_ERR_LIMIT;
    if (tp_vec_grow1(&c->names) < 0)
        return -ENOMEM;
    uint32_t id = (uint32_t)c->names.size;
    size_t off = c->text.len;
    tp_buf_append(&c->text, s, n);
    tp_buf_putc(&c->text, '\0');
    if (tp_buf_error(&c->text) || tp_hmap_bytes_put(&c->name_ids, s, n, id) < 0)
        return -ENOMEM;
    c->names.items[c->names.size++] = (name_ent){.off = off, .len = (uint32_t)n};
    *ret_id = id;
    return 0;
}

static int intern_path(diff_ctx *c, uint32_t parent, uint32_t name, uint32_t *ret_id)
{
    uint64_t key = (uint64_t)parent << 32 | name, found;
    if (tp_hmap_get(&c->path_ids, key, &found)) {
        *ret_id = (uint32_t)found;
        return 0;
    }
    if (c->paths.size >= TP_NONE - 1)
        return TP_ERR_LIMIT;
    if (tp_vec_grow1(&c->paths) < 0)
        return -ENOMEM;
    uint32_t id = (uint32_t)c->paths.size;
    if (tp_hmap_put(&c->path_ids, key, id) < 0)
        return -ENOMEM;
    c->paths.items[c->paths.size++] = (path_ent){.parent = parent, .name = name};
    *ret_id = id;
    return 0;
}

/* Name ids of a tree's functions, interned in the shared table. */
static int func_names(diff_ctx *c, const tp_tree *t, uint32_t *ids)
{
    tp_buf b = TP_BUF_INIT;
    int r = 0;
    for (size_t f = 0; f < t->nfuncs && !r; f++) {
        const tp_func *fn = &t->funcs[f];
        tp_buf_reset(&b);
        if (fn->module[0]) {
            tp_buf_puts(&b, fn->module);
            tp_buf_putc(&b, '.');
        }
        tp_buf_puts(&b, fn->qualname);
        r = tp_buf_error(&b);
        if (!r)
            r = intern_name(c, tp_buf_cstr(&b), b.len, &ids[f]);
    }
    tp_buf_free(&b);
    return r;
}

/* Adds every node of tree `side` to its path, walking the links depth first
 * so a parent's path id is known before its children's. */
static int add_tree(diff_ctx *c, const tp_tree *t, int side)
{
    uint32_t *names = malloc((t->nfuncs ? t->nfuncs : 1) * sizeof(*names));
    uint32_t *pid = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*pid));
    int r = -ENOMEM;
    if (!names || !pid)
        goto cleanup;
    r = func_names(c, t, names);
    uint32_t i = t->first_root;
    while (!r && i != TP_NONE) {
        const tp_node *n = &t->nodes[i];
        uint32_t parent = n->parent == TP_NONE ? TP_NONE : pid[n->parent];
        r = intern_path(c, parent, names[n->func], &pid[i]);
        if (r)
            break;
        path_ent *p = &c->paths.items[pid[i]];
        p->count[side] += n->count;
        p->total[side] += n->total_ns;
        c->names.items[names[n->func]].calls[side] += n->count;
        i = tp__tree_next(t, i);
    }
cleanup:
    free(names);
    free(pid);
    return r;
}

static int classify(const diff_ctx *c, const path_ent *p, const tp_diff_opts *o)
{
    if (p->count[0] && !p->count[1]) {
        bool parent_gone = p->parent != TP_NONE && !c->paths.items[p->parent].count[1];
        return parent_gone ? 0 : TP_DIFF_REMOVED;
    }
    if (!p->count[0] && p->count[1]) {
        bool parent_new = p->parent != TP_NONE && !c->paths.items[p->parent].count[0];
        return parent_new ? 0 : TP_DIFF_ADDED;
    }
    if (p->count[0] != p->count[1])
        return TP_DIFF_COUNT;
    double d = (double)p->total[1] - (double)p->total[0];
    if (d < 0)
        d = -d;
    if (d >= (double)o->time_abs_ns && d * 100.0 >= o->time_pct * (double)p->total[0] && d > 0)
        return TP_DIFF_TIME;
    return 0;
}

/* Spells out a path: names from the root, joined by " > ". */
static int path_text(const diff_ctx *c, uint32_t id, size_t *budget, char **ret_path,
                     char **ret_name)
{
    size_t len = 0;
    for (uint32_t p = id; p != TP_NONE; p = c->paths.items[p].parent)
        len += c->names.items[c->paths.items[p].name].len + (p == id ? 0 : SEP_LEN);
    if (len + 1 > *budget)
        return TP_ERR_LIMIT;
    *budget -= len + 1;
    uint32_t nlen = c->names.items[c->paths.items[id].name].len;
    char *s = malloc(len + 1);
    char *name = malloc(nlen + 1);
    if (!s || !name) {
        free(s);
        free(name);
        return -ENOMEM;
    }
    memcpy(name, name_text(c, c->paths.items[id].name), nlen + 1);
    char *w = s + len;
    *w = '\0';
    for (uint32_t p = id; p != TP_NONE; p = c->paths.items[p].parent) {
        uint32_t nl = c->names.items[c->paths.items[p].name].len;
        w -= nl;
        memcpy(w, name_text(c, c->paths.items[p].name), nl);
        if (c->paths.items[p].parent != TP_NONE) {
            w -= SEP_LEN;
            memcpy(w, SEP, SEP_LEN);
        }
    }
    *ret_path = s;
    *ret_name = name;
    return 0;
}

static int kind_rank(int kind)
{
    switch (kind) {
    case TP_DIFF_REMOVED:
        return 0;
    case TP_DIFF_ADDED:
        return 1;
    case TP_DIFF_COUNT:
        return 2;
    default:
        return 3;
    }
}

static int cmp_entry(const void *pa, const void *pb)
{
    const tp_diff_entry *a = pa, *b = pb;
    int ka = kind_rank(a->kind), kb = kind_rank(b->kind);
    if (ka != kb)
        return ka - kb;
    return strcmp(a->path, b->path);
}

static int cmp_str(const void *pa, const void *pb)
{
    return strcmp(*(char *const *)pa, *(char *const *)pb);
}

static int entries(const diff_ctx *c, const tp_diff_opts *o, tp_diff *d)
{
    size_t n = 0;
    for (size_t i = 0; i < c->paths.size; i++)
        n += classify(c, &c->paths.items[i], o) != 0;
    if (!n)
        return 0;
    d->entries = calloc(n, sizeof(*d->entries));
    if (!d->entries)
        return -ENOMEM;
    size_t budget = MAX_PATH_BYTES;
    for (uint32_t i = 0; i < c->paths.size; i++) {
        const path_ent *p = &c->paths.items[i];
        int kind = classify(c, p, o);
        if (!kind)
            continue;
        tp_diff_entry *e = &d->entries[d->n];
        int r = path_text(c, i, &budget, &e->path, &e->name);
        if (r)
            return r;
        d->n++;
        e->kind = kind;
        e->count_a = p->count[0];
        e->count_b = p->count[1];
        e->total_a_ns = p->total[0];
        e->total_b_ns = p->total[1];
    }
    qsort(d->entries, d->n, sizeof(*d->entries), cmp_entry);
    return 0;
}

/* Function names called in only one of the trees, sorted. */
static int func_sets(const diff_ctx *c, tp_diff *d)
{
    size_t na = 0, nr = 0;
    for (size_t i = 0; i < c->names.size; i++) {
        na += !c->names.items[i].calls[0] && c->names.items[i].calls[1];
        nr += c->names.items[i].calls[0] && !c->names.items[i].calls[1];
    }
    d->funcs_added = calloc(na ? na : 1, sizeof(char *));
    d->funcs_removed = calloc(nr ? nr : 1, sizeof(char *));
    if (!d->funcs_added || !d->funcs_removed)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->names.size; i++) {
        bool in_a = c->names.items[i].calls[0], in_b = c->names.items[i].calls[1];
        if (in_a == in_b)
            continue;
        char *s = strdup(name_text(c, i));
        if (!s)
            return -ENOMEM;
        if (in_b)
            d->funcs_added[d->nfuncs_added++] = s;
        else
            d->funcs_removed[d->nfuncs_removed++] = s;
    }
    qsort(d->funcs_added, d->nfuncs_added, sizeof(char *), cmp_str);
    qsort(d->funcs_removed, d->nfuncs_removed, sizeof(char *), cmp_str);
    return 0;
}

static uint64_t calls_of(const tp_tree *t)
{
    uint64_t n = 0;
    for (size_t i = 0; i < t->nnodes; i++)
        n += t->nodes[i].count;
    return n;
}

int tp_tree_diff(const tp_tree *a, const tp_tree *b, const tp_diff_opts *opts, tp_diff **ret)
{
    if (!a || !b || !ret)
        return -EINVAL;
    if (!tp__tree_is_finished(a) || !tp__tree_is_finished(b))
        return TP_ERR_SEQUENCE;
    tp_diff_opts o = {.time_pct = 20.0, .time_abs_ns = 100000};
    if (opts)
        o = *opts;
    diff_ctx c = {.text = TP_BUF_INIT};
    tp_diff *d = calloc(1, sizeof(*d));
    int r = d ? 0 : -ENOMEM;
    if (!r)
        r = add_tree(&c, a, 0);
    if (!r)
        r = add_tree(&c, b, 1);
    if (!r)
        r = entries(&c, &o, d);
    if (!r)
        r = func_sets(&c, d);
    if (r)
        goto cleanup;
    d->calls_a = calls_of(a);
    d->calls_b = calls_of(b);
    d->duration_a_ns = a->meta.duration_ns;
    d->duration_b_ns = b->meta.duration_ns;
    *ret = d;
    d = NULL;
cleanup:
    tp_tree_diff_free(d);
    tp_buf_free(&c.text);
    tp_vec_free(&c.names);
    tp_hmap_bytes_free(&c.name_ids);
    tp_vec_free(&c.paths);
    tp_hmap_free(&c.path_ids);
    return r;
}

void tp_tree_diff_free(tp_diff *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->entries[i].path);
        free(d->entries[i].name);
    }
    free(d->entries);
    for (size_t i = 0; i < d->nfuncs_added; i++)
        free(d->funcs_added[i]);
    for (size_t i = 0; i < d->nfuncs_removed; i++)
        free(d->funcs_removed[i]);
    free(d->funcs_added);
    free(d->funcs_removed);
    free(d);
}
