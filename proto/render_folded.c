/* Folded stacks ("a;b;c <self µs>" per unique stack) for flamegraph.pl and
 * speedscope, in the byte order of the lines (what `sort` gives), written
 * as they are spelled: memory is the unique stacks and one path, however
 * long the output (a chain 20,000 calls deep spells 800 MB of it).
 *
 * Stacks are unique by their printed names (two functions may print alike:
 * same name, other file), so equal lines are one stack. The line order is a
 * walk of the stacks: under one parent, each child stack gives two items,
 * its own line (its name then the line's end) and its subtree (its name
 * then ';'), and the items sort by those keys, which no name can make a
 * prefix of one another (names hold no ';' and no NUL): exactly the order
 * of the lines they start. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "render.h"
#include "render_priv.h"
#include "tp_err.h"
#include "hmap.h"
#include "tree_priv.h"
#include "vec.h"

#define NS_PER_US INT64_C(1000)

/* A unique stack: the stack of its parent plus one printed name. */
typedef struct fstack {
    uint32_t parent; /* stack id, TP_NONE at a root */
    uint32_t name;   /* into names */
    int64_t self_ns;
    uint32_t first_item, nitems; /* its children's items, in items */
} fstack;

/* An item under a stack: a child's own line (own) or its subtree. */
typedef struct fitem {
    uint32_t stack;
    bool subtree;
} fitem;

typedef struct fname {
    size_t off, len; /* into text */
} fname;

typedef struct folded_ctx {
    const tp_tree *t;
    fstack *st;
    size_t nst;
    tp_hmap ids; /* (parent << 32 | name) -> stack id; a root's parent is TP_NONE */
    tp_buf text; /* the printed names */
    fname *names;
    uint32_t *name_of; /* function -> name */
    fitem *items;
    uint32_t roots_first, roots_n; /* the roots' items (at the end of items) */
} folded_ctx;

/* "module.qualname" for a frame: ';' would split the stack and control bytes
 * would break the line, so they become ':' and '?'. */
static void folded_name(tp_buf *b, const tp_tree *t, uint32_t func)
{
    const tp_func *f = &t->funcs[func];
    const char *parts[3] = {f->module, f->module[0] ? "." : "", f->qualname};
    for (int k = 0; k < 3; k++) {
        const unsigned char *p = (const unsigned char *)parts[k];
        size_t n = strlen(parts[k]), i = 0;
        while (i < n) {
            size_t run = i;
            while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != ';')
                run++;
            tp_buf_append(b, p + i, run - i);
            if ((i = run) >= n)
                break;
            uint32_t cp;
            size_t len = p[i] >= 0x80 ? tp_json_utf8_decode(p + i, n - i, &cp) : 1;
            if (p[i] == ';')
                tp_buf_putc(b, ':');
            else if (p[i] < 0x80)
                tp_buf_putc(b, '?');
            else if (!len)
                tp_buf_puts(b, "\xef\xbf\xbd");
            else
                tp_buf_append(b, p + i, len);
            i += len ? len : 1;
        }
    }
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Each function's printed name, one entry per distinct text. */
static int folded_names(folded_ctx *c)
{
    const tp_tree *t = c->t;
    tp_hmap_bytes seen = {0}; /* a printed text -> its name */
    c->name_of = malloc((t->nfuncs ? t->nfuncs : 1) * sizeof(*c->name_of));
    c->names = malloc((t->nfuncs ? t->nfuncs : 1) * sizeof(*c->names));
    if (!c->name_of || !c->names)
        return -ENOMEM;
    uint32_t n = 0;
    int r = 0;
    for (size_t f = 0; f < t->nfuncs && !r; f++) {
        size_t off = c->text.len;
        folded_name(&c->text, t, (uint32_t)f);
        if ((r = tp_buf_error(&c->text)))
            break;
        size_t len = c->text.len - off;
        uint64_t id;
        if (tp_hmap_bytes_get(&seen, c->text.data + off, len, &id)) {
            c->text.len = off; /* printed alike: one name */
        } else {
            id = n;
            c->names[n++] = (fname){off, len};
            r = tp_hmap_bytes_put(&seen, c->text.data + off, len, id);
        }
        c->name_of[f] = (uint32_t)id;
    }
    tp_hmap_bytes_free(&seen);
    return r;
}

/* Finds or adds the stack (parent, name) in *ret_id (at most nnodes of
 * them). Returns 0 or -ENOMEM. */
static int stack_id(folded_ctx *c, uint32_t parent, uint32_t name, uint32_t *ret_id)
{
    uint64_t key = (uint64_t)parent << 32 | name, id;
    if (tp_hmap_get(&c->ids, key, &id)) {
        *ret_id = (uint32_t)id;
        return 0;
    }
    id = c->nst;
    if (tp_hmap_put(&c->ids, key, id) < 0)
        return -ENOMEM;
    c->nst++;
    c->st[id] = (fstack){parent, name, 0, 0, 0};
    *ret_id = (uint32_t)id;
    return 0;
}

static int folded_collect(folded_ctx *c)
{
    const tp_tree *t = c->t;
    uint32_t *sid = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*sid));
    if (!sid)
        return -ENOMEM;
    int r = 0;
    uint32_t i = t->first_root;
    while (i != TP_NONE && !r) {
        const tp_node *n = &t->nodes[i];
        r = stack_id(c, n->parent == TP_NONE ? TP_NONE : sid[n->parent], c->name_of[n->func],
                     &sid[i]);
        if (!r)
            c->st[sid[i]].self_ns = add_sat(c->st[sid[i]].self_ns, n->self_ns);
        i = tp__tree_next(t, i);
    }
    free(sid);
    return r;
}

static bool printed(const fstack *s)
{
    return add_sat(s->self_ns, NS_PER_US / 2) / NS_PER_US > 0;
}

/* The key an item sorts by: its name, then NUL (own line) or ';'. */
static int cmp_item(const void *pa, const void *pb, void *arg)
{
    const folded_ctx *c = arg;
    const fitem *a = pa, *b = pb;
    const fname *na = &c->names[c->st[a->stack].name], *nb = &c->names[c->st[b->stack].name];
    size_t n = na->len < nb->len ? na->len : nb->len;
    int d = memcmp(c->text.data + na->off, c->text.data + nb->off, n);
    if (d)
        return d;
    unsigned char ea =
        na->len > n ? (unsigned char)c->text.data[na->off + n] : (a->subtree ? ';' : '\0');
    unsigned char eb =
        nb->len > n ? (unsigned char)c->text.data[nb->off + n] : (b->subtree ? ';' : '\0');
    return (int)ea - (int)eb;
}

/* Two items per stack (own line, subtree), grouped by parent and sorted. */
static int folded_items(folded_ctx *c)
{
    uint32_t *count = calloc(c->nst + 1, sizeof(*count)); /* [nst]: the roots */
    c->items = malloc((2 * c->nst + 1) * sizeof(*c->items));
    if (!count || !c->items) {
        free(count);
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->nst; i++)
        count[c->st[i].parent == TP_NONE ? c->nst : c->st[i].parent] += 2;
    uint32_t at = 0;
    for (size_t p = 0; p <= c->nst; p++) {
        uint32_t k = count[p];
        count[p] = at;
        if (p < c->nst)
            c->st[p] = (fstack){c->st[p].parent, c->st[p].name, c->st[p].self_ns, at, k};
        else
            c->roots_first = at, c->roots_n = k;
        at += k;
    }
    for (size_t i = 0; i < c->nst; i++) {
        uint32_t p = c->st[i].parent == TP_NONE ? (uint32_t)c->nst : c->st[i].parent;
        c->items[count[p]++] = (fitem){(uint32_t)i, false};
        c->items[count[p]++] = (fitem){(uint32_t)i, true};
    }
    free(count);
    for (size_t p = 0; p < c->nst; p++)
        if (c->st[p].nitems > 2)
            qsort_r(c->items + c->st[p].first_item, c->st[p].nitems, sizeof(*c->items), cmp_item,
                    c);
    if (c->roots_n > 2)
        qsort_r(c->items + c->roots_first, c->roots_n, sizeof(*c->items), cmp_item, c);
    return 0;
}

/* Walks the items depth first, spelling each printed stack's line. */
static int folded_walk(folded_ctx *c, tp_buf *out)
{
    typedef struct {
        uint32_t next, end; /* items left at this level */
        size_t path_len;    /* path's length before this level's name */
    } level;
    TP_VEC(level) todo = TP_VEC_INIT;
    tp_buf path = TP_BUF_INIT;
    int r = tp_vec_reserve(&todo, 1);
    if (r)
        return r;
    todo.items[todo.size++] = (level){c->roots_first, c->roots_first + c->roots_n, 0};
    while (todo.size && !r) {
        level *lv = &todo.items[todo.size - 1];
        if (lv->next == lv->end) {
            todo.size--;
            continue;
        }
        const fitem *it = &c->items[lv->next++];
        const fstack *s = &c->st[it->stack];
        const fname *nm = &c->names[s->name];
        path.len = lv->path_len;
        if (path.len)
            tp_buf_putc(&path, ';');
        tp_buf_append(&path, c->text.data + nm->off, nm->len);
        if ((r = tp_buf_error(&path)))
            break;
        if (!it->subtree) {
            if (printed(s)) {
                tp_buf_append(out, path.data, path.len);
                tp_buf_printf(out, " %" PRId64 "\n",
                              add_sat(s->self_ns, NS_PER_US / 2) / NS_PER_US);
                r = tp_buf_error(out);
            }
        } else if (s->nitems) {
            size_t len = path.len;
            if (!(r = tp_vec_reserve(&todo, todo.size + 1)))
                todo.items[todo.size++] = (level){s->first_item, s->first_item + s->nitems, len};
        }
    }
    tp_vec_free(&todo);
    tp_buf_free(&path);
    return r;
}

int tp_render_folded(const tp_tree *t, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    folded_ctx c = {.t = t};
    c.st = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*c.st));
    int r = c.st ? folded_names(&c) : -ENOMEM;
    if (!r)
        r = folded_collect(&c);
    if (!r)
        r = folded_items(&c);
    if (!r)
        r = folded_walk(&c, out);
    free(c.st);
    tp_hmap_free(&c.ids);
    free(c.names);
    free(c.name_of);
    free(c.items);
    tp_buf_free(&c.text);
    return r;
}
