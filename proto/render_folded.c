/* Folded stacks ("a;b;c <self µs>" per unique stack) for flamegraph.pl and
 * speedscope. */
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

#define FOLDED_MAX_TEXT ((size_t)256 * 1024 * 1024) /* all stack lines together */

/* A unique stack: the stack of its parent plus one function. */
typedef struct fstack {
    uint32_t parent; /* stack id, TP_NONE at a root */
    uint32_t func;
    uint32_t depth;
    int64_t self_ns;
} fstack;

typedef struct fline {
    size_t off; /* into the text buffer, NUL-terminated */
    int64_t self_ns;
} fline;

typedef struct folded_ctx {
    fstack *st;
    size_t nst;
    tp_hmap ids; /* (parent << 32 | func) -> stack id; a root's parent is TP_NONE */
    tp_buf text;
    fline *lines;
    size_t nlines;
} folded_ctx;

/* Finds or adds the stack (parent, func) in *ret_id (at most nnodes of
 * them). Returns 0 or -ENOMEM. */
static int stack_id(folded_ctx *c, uint32_t parent, uint32_t func, uint32_t *ret_id)
{
    uint64_t key = (uint64_t)parent << 32 | func, id;
    if (tp_hmap_get(&c->ids, key, &id)) {
        *ret_id = (uint32_t)id;
        return 0;
    }
    id = c->nst;
    if (tp_hmap_put(&c->ids, key, id) < 0)
        return -ENOMEM;
    c->nst++;
    c->st[id] = (fstack){parent, func, parent == TP_NONE ? 0 : c->st[parent].depth + 1, 0};
    *ret_id = (uint32_t)id;
    return 0;
}

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

static int folded_collect(folded_ctx *c, const tp_tree *t)
{
    uint32_t *sid = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*sid));
    if (!sid)
        return -ENOMEM;
    int r = 0;
    uint32_t i = t->first_root;
    while (i != TP_NONE && !r) {
        const tp_node *n = &t->nodes[i];
        r = stack_id(c, n->parent == TP_NONE ? TP_NONE : sid[n->parent], n->func, &sid[i]);
        if (!r)
            c->st[sid[i]].self_ns = add_sat(c->st[sid[i]].self_ns, n->self_ns);
        i = tp__tree_next(t, i);
    }
    free(sid);
    return r;
}

/* Spells out every stack with time of its own, root first. */
static int folded_spell(folded_ctx *c, const tp_tree *t)
{
    TP_VEC(uint32_t) chain = {0};
    int r = 0;
    for (size_t id = 0; id < c->nst; id++) {
        if (c->st[id].self_ns <= 0)
            continue;
        size_t len = (size_t)c->st[id].depth + 1;
        if ((r = tp_vec_reserve(&chain, len)))
            break;
        size_t k = len;
        for (uint32_t s = (uint32_t)id; s != TP_NONE; s = c->st[s].parent)
            chain.items[--k] = c->st[s].func;
        c->lines[c->nlines++] = (fline){c->text.len, c->st[id].self_ns};
        for (k = 0; k < len; k++) {
            if (k)
                tp_buf_putc(&c->text, ';');
            folded_name(&c->text, t, chain.items[k]);
        }
        tp_buf_putc(&c->text, '\0');
        if ((r = tp_buf_error(&c->text)))
            break;
        if (c->text.len > FOLDED_MAX_TEXT) {
            r = TP_ERR_LIMIT;
            break;
        }
    }
    tp_vec_free(&chain);
    return r;
}

static int cmp_fline(const void *pa, const void *pb, void *text)
{
    const fline *a = pa, *b = pb;
    return strcmp((const char *)text + a->off, (const char *)text + b->off);
}

int tp_render_folded(const tp_tree *t, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    folded_ctx c = {0};
    size_t n = t->nnodes ? t->nnodes : 1;
    c.st = malloc(n * sizeof(*c.st));
    int r = c.st ? folded_collect(&c, t) : -ENOMEM;
    if (!r) {
        c.lines = malloc((c.nst ? c.nst : 1) * sizeof(*c.lines));
        r = c.lines ? folded_spell(&c, t) : -ENOMEM;
    }
    if (r)
        goto cleanup;
    /* Two functions may print alike (same name, other file): sort the lines
     * and merge equal ones before rounding to microseconds. */
    qsort_r(c.lines, c.nlines, sizeof(*c.lines), cmp_fline, c.text.data);
    for (size_t i = 0; i < c.nlines;) {
        const char *s = c.text.data + c.lines[i].off;
        int64_t self = 0;
        size_t j = i;
        for (; j < c.nlines && !strcmp(s, c.text.data + c.lines[j].off); j++)
            self = add_sat(self, c.lines[j].self_ns);
        int64_t us = add_sat(self, NS_PER_US / 2) / NS_PER_US;
        if (us > 0)
            tp_buf_printf(out, "%s %" PRId64 "\n", s, us);
        i = j;
    }
    r = tp_buf_error(out);
cleanup:
    free(c.st);
    tp_hmap_free(&c.ids);
    free(c.lines);
    tp_buf_free(&c.text);
    return r;
}
