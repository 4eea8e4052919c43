/* The call tree builder: events in, one node per call out.
 *
 * Nodes live in one growing array and link by index, strings live in an arena
 * of large blocks, and functions are a table indexed by the producer's id, so
 * building a 1M-call tree costs a handful of reallocations rather than a
 * million mallocs. Every walk is iterative: a 100k-deep trace must not
 * overflow the C stack. */
#include "tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "tp_err.h"
#include "tree_priv.h"
#include "vec.h"

#define ARENA_MIN_BLOCK ((size_t)64 * 1024)
#define ARENA_MAX_BLOCK ((size_t)4 * 1024 * 1024)
#define MAX_FUNC_ID     (1u << 24)

typedef struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    char data[];
} arena_block;

/* Builder state of a node: closed calls need nothing more; running ones are on
 * some thread's stack; suspended generators wait for a RESUME. */
enum { ST_CLOSED = 0, ST_RUNNING = 1, ST_SUSPENDED = 2 };

typedef struct thread_state {
    uint32_t id;
    TP_VEC(uint32_t) stack; /* open calls, innermost last */
    int64_t last_ns;        /* time of this thread's latest event (clamping, self time) */
    uint32_t spawn;         /* 1 + the creator of the next call (TP_EV_SPAWN), 0 when none */
    uint32_t ended;         /* 1 + the call that ended last here (TP_EV_MEMORY), 0 when none */
} thread_state;

typedef struct tree_priv {
    arena_block *arena;           /* current block first */
    size_t next_block;            /* size of the next regular block */
    size_t nodes_cap;             /* of tp_tree.nodes */
    size_t funcs_cap;             /* of tp_tree.funcs */
    uint8_t *state;               /* ST_* per node; builder only */
    size_t state_cap;             /* of state */
    TP_VEC(thread_state) threads; /* in order of first appearance */
    tp_hmap thread_ids;           /* thread id -> index in threads (all but thread 0) */
    size_t cur;                   /* index of the current thread in threads */
    uint64_t stray;               /* ends with no open call, ignored */
    tp_hmap name_ids;             /* thread -> index in tp_tree.threads (kept after finishing) */
    size_t names_cap;             /* of tp_tree.threads */
    bool finished;
} tree_priv;

static tree_priv *priv(const tp_tree *t)
{
    return (tree_priv *)t->priv;
}

/* ---- Arena -------------------------------------------------------------- */

static char *arena_alloc(tree_priv *p, size_t n)
{
    arena_block *b = p->arena;
    if (b && b->cap - b->used >= n) {
        char *s = b->data + b->used;
        b->used += n;
        return s;
    }
    if (n > SIZE_MAX - sizeof(arena_block))
        return NULL;
    /* A string bigger than a quarter block gets a block of its own, linked
     * behind the current one so the current block keeps filling. */
    bool own = n > p->next_block / 4;
    size_t cap = own ? n : p->next_block;
    arena_block *nb = malloc(sizeof(arena_block) + cap);
    if (!nb)
        return NULL;
    nb->cap = cap;
    nb->used = n;
    if (own && b) {
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        p->arena = nb;
        if (!own && p->next_block < ARENA_MAX_BLOCK)
            p->next_block *= 2;
    }
    return nb->data;
}

const char *tp_tree_strdup(tp_tree *t, const char *s, size_t len)
{
    if (!t || (!s && len))
        return NULL;
    if (len == SIZE_MAX)
        return NULL;
    char *d = arena_alloc(priv(t), len + 1);
    if (!d)
        return NULL;
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static int set_string(tp_tree *t, const char **field, const char *s)
{
    if (!s) {
        *field = NULL;
        return 0;
    }
    const char *d = tp_tree_strdup(t, s, strlen(s));
    if (!d)
        return -ENOMEM;
    *field = d;
    return 0;
}

int tp_tree_set_label(tp_tree *t, const char *label)
{
    return set_string(t, &t->meta.label, label);
}

int tp_tree_set_config_json(tp_tree *t, const char *json)
{
    return set_string(t, &t->meta.config_json, json);
}

int tp_tree_set_env(tp_tree *t, const char *hostname, const char *python_version,
                    const char *platform, const char *working_directory)
{
    int r = set_string(t, &t->meta.hostname, hostname);
    if (!r)
        r = set_string(t, &t->meta.python_version, python_version);
    if (!r)
        r = set_string(t, &t->meta.platform, platform);
    if (!r)
        r = set_string(t, &t->meta.working_directory, working_directory);
    return r;
}

int tp_tree_set_limit_reason(tp_tree *t, const char *reason)
{
    return set_string(t, &t->meta.limit_reason, reason);
}

/* ---- Lifetime ----------------------------------------------------------- */

int tp_tree_new(tp_tree **ret)
{
    tp_tree *t = calloc(1, sizeof(*t));
    tree_priv *p = calloc(1, sizeof(*p));
    if (!t || !p || tp_vec_reserve(&p->threads, 4) < 0) {
        free(t);
        free(p);
        return -ENOMEM;
    }
    p->next_block = ARENA_MIN_BLOCK;
    /* Thread 0 is current until a THREAD event says otherwise. */
    p->threads.items[0] = (thread_state){.id = 0};
    p->threads.size = 1;
    t->priv = p;
    t->first_root = TP_NONE;
    t->last_root = TP_NONE;
    *ret = t;
    return 0;
}

static void free_builder(tree_priv *p)
{
    for (size_t i = 0; i < p->threads.size; i++)
        tp_vec_free(&p->threads.items[i].stack);
    tp_vec_free(&p->threads);
    tp_hmap_free(&p->thread_ids);
    free(p->state);
    p->state = NULL;
    p->state_cap = 0;
}

void tp_tree_free(tp_tree *t)
{
    if (!t)
        return;
    tree_priv *p = priv(t);
    if (p) {
        free_builder(p);
        tp_hmap_free(&p->name_ids);
        arena_block *b = p->arena;
        while (b) {
            arena_block *next = b->next;
            free(b);
            b = next;
        }
        free(p);
    }
    free(t->funcs);
    free(t->nodes);
    free(t->fold_members);
    free(t->fold_groups);
    free(t->threads);
    free(t);
}

/* ---- Private helpers for tree_fold.c / tree_stats.c / tree_diff.c -------- */

int tp__tree_add_node(tp_tree *t, uint32_t *ret_idx)
{
    tree_priv *p = priv(t);
    if (t->nnodes >= (size_t)TP_NONE - 1)
        return TP_ERR_LIMIT;
    if (tp_vec_reserve_array((void **)&t->nodes, sizeof(*t->nodes), &p->nodes_cap, t->nnodes + 1) <
        0)
        return -ENOMEM;
    if (!p->finished &&
        tp_vec_reserve_array((void **)&p->state, 1, &p->state_cap, t->nnodes + 1) < 0)
        return -ENOMEM;
    uint32_t i = (uint32_t)t->nnodes++;
    t->nodes[i] = (tp_node){
        .parent = TP_NONE,
        .first_child = TP_NONE,
        .last_child = TP_NONE,
        .next = TP_NONE,
        .count = 1,
    };
    if (!p->finished)
        p->state[i] = ST_CLOSED;
    *ret_idx = i;
    return 0;
}

static int reserve_funcs(tp_tree *t, size_t n)
{
    tree_priv *p = priv(t);
    return tp_vec_reserve_array((void **)&t->funcs, sizeof(*t->funcs), &p->funcs_cap, n);
}

int tp__tree_copy_funcs(tp_tree *dst, const tp_tree *src)
{
    int r = reserve_funcs(dst, src->nfuncs);
    if (r)
        return r;
    for (size_t i = 0; i < src->nfuncs; i++) {
        const tp_func *s = &src->funcs[i];
        tp_func *d = &dst->funcs[i];
        *d = (tp_func){
            .module = "", .qualname = "", .file = "", .lineno = s->lineno, .defined = s->defined};
        if (!s->defined)
            continue;
        d->module = tp_tree_strdup(dst, s->module, strlen(s->module));
        d->qualname = tp_tree_strdup(dst, s->qualname, strlen(s->qualname));
        d->file = tp_tree_strdup(dst, s->file, strlen(s->file));
        if (!d->module || !d->qualname || !d->file) {
            dst->nfuncs = 0;
            return -ENOMEM;
        }
    }
    dst->nfuncs = src->nfuncs;
    return 0;
}

int tp__tree_copy_meta(tp_tree *dst, const tp_tree *src)
{
    tp_trace_meta m = src->meta;
    int r = set_string(dst, &m.label, src->meta.label);
    if (!r)
        r = set_string(dst, &m.limit_reason, src->meta.limit_reason);
    if (!r)
        r = set_string(dst, &m.config_json, src->meta.config_json);
    if (!r)
        r = set_string(dst, &m.hostname, src->meta.hostname);
    if (!r)
        r = set_string(dst, &m.python_version, src->meta.python_version);
    if (!r)
        r = set_string(dst, &m.platform, src->meta.platform);
    if (!r)
        r = set_string(dst, &m.working_directory, src->meta.working_directory);
    for (size_t i = 0; !r && i < src->nthreads; i++)
        r = tp_tree_set_thread_name(dst, src->threads[i].thread, src->threads[i].name,
                                    strlen(src->threads[i].name));
    if (r)
        return r;
    dst->meta = m;
    return 0;
}

void tp__tree_set_finished(tp_tree *t)
{
    tree_priv *p = priv(t);
    free_builder(p);
    p->finished = true;
}

bool tp__tree_is_finished(const tp_tree *t)
{
    return priv(t)->finished;
}

uint64_t tp__tree_stray(const tp_tree *t)
{
    return priv(t)->stray;
}

/* ---- Thread names --------------------------------------------------------- */

int tp_tree_set_thread_name(tp_tree *t, uint32_t thread, const char *name, size_t len)
{
    tree_priv *p = priv(t);
    const char *d = tp_tree_strdup(t, name ? name : "", name ? len : 0);
    if (!d)
        return -ENOMEM;
    uint64_t idx;
    if (tp_hmap_get(&p->name_ids, thread, &idx)) {
        t->threads[idx].name = d;
        return 0;
    }
    if (tp_vec_reserve_array((void **)&t->threads, sizeof(*t->threads), &p->names_cap,
                             t->nthreads + 1) < 0 ||
        tp_hmap_put(&p->name_ids, thread, t->nthreads) < 0)
        return -ENOMEM;
    t->threads[t->nthreads++] = (tp_thread_name){.thread = thread, .name = d};
    return 0;
}

const char *tp_tree_thread_name(const tp_tree *t, uint32_t thread)
{
    uint64_t idx;
    if (!t || !tp_hmap_get(&priv(t)->name_ids, thread, &idx))
        return NULL;
    return t->threads[idx].name;
}

/* ---- Functions ---------------------------------------------------------- */

int tp_tree_def_func(tp_tree *t, uint32_t id, const char *module, const char *qualname,
                     const char *file, int32_t lineno)
{
    if (id >= MAX_FUNC_ID)
        return TP_ERR_LIMIT;
    int r = reserve_funcs(t, (size_t)id + 1);
    if (r)
        return r;
    module = module ? module : "";
    qualname = qualname ? qualname : "";
    file = file ? file : "";
    const char *m = tp_tree_strdup(t, module, strlen(module));
    const char *q = tp_tree_strdup(t, qualname, strlen(qualname));
    const char *f = tp_tree_strdup(t, file, strlen(file));
    if (!m || !q || !f)
        return -ENOMEM;
    /* Ids the producer skipped stay undescribed: calls naming them fail. */
    for (size_t i = t->nfuncs; i < id; i++)
        t->funcs[i] = (tp_func){.module = "", .qualname = "", .file = ""};
    t->funcs[id] =
        (tp_func){.module = m, .qualname = q, .file = f, .lineno = lineno, .defined = true};
    if (id >= t->nfuncs)
        t->nfuncs = (size_t)id + 1;
    return 0;
}

const char *tp_tree_func_name(const tp_tree *t, uint32_t func, char *buf, size_t size)
{
    if (!buf || !size)
        return buf;
    if (!t || func >= t->nfuncs) {
        snprintf(buf, size, "?");
        return buf;
    }
    const tp_func *f = &t->funcs[func];
    if (f->module[0])
        snprintf(buf, size, "%s.%s", f->module, f->qualname);
    else
        snprintf(buf, size, "%s", f->qualname);
    return buf;
}

/* ---- Builder ------------------------------------------------------------ */

static thread_state *cur_thread(tree_priv *p)
{
    return &p->threads.items[p->cur];
}

/* Moves a thread's clock to t_ns (a smaller value is clamped) and charges the
 * time since its previous event to the call on top of its stack: self time is
 * the time a call was the innermost running one. Measured this way, a
 * suspended generator is charged nothing while it waits, the self times of a
 * thread never overlap, and their sum never exceeds the thread's time. */
static int64_t advance(tp_tree *t, thread_state *th, uint64_t t_ns)
{
    int64_t v = t_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)t_ns;
    if (v < th->last_ns)
        v = th->last_ns;
    if (th->stack.size)
        t->nodes[th->stack.items[th->stack.size - 1]].self_ns += v - th->last_ns;
    th->last_ns = v;
    return v;
}

/* While a tree is built, a node's total_ns sums its finished running
 * intervals and its max_ns holds the start of the interval in progress (a
 * generator runs once per resume). tp_tree_finish() sets both to their
 * documented meanings. */
static void run_from(tp_node *n, int64_t ts)
{
    n->max_ns = ts;
}

static void run_until(tp_node *n, int64_t ts)
{
    n->total_ns += ts - n->max_ns;
}

static int stack_reserve(thread_state *th)
{
    return tp_vec_grow1(&th->stack);
}

int tp_tree_call(tp_tree *t, uint32_t func, uint64_t t_ns, bool is_gen, const char *args,
                 size_t args_len)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    if (func >= t->nfuncs || !t->funcs[func].defined)
        return TP_ERR_UNKNOWN_FUNC;
    thread_state *th = cur_thread(p);
    int r = stack_reserve(th);
    if (r)
        return r;
    const char *a = tp__tree_dup(t, args, args_len, &r);
    if (r)
        return r;
    uint32_t idx;
    r = tp__tree_add_node(t, &idx);
    if (r)
        return r;
    int64_t ts = advance(t, th, t_ns);
    tp_node *n = &t->nodes[idx];
    run_from(n, ts);
    n->func = func;
    n->flags = is_gen ? TP_NODE_GEN : 0;
    n->thread = th->id;
    n->start_ns = ts;
    n->end_ns = ts;
    n->args = a;
    uint32_t parent = th->stack.size ? th->stack.items[th->stack.size - 1] : TP_NONE;
    if (th->spawn) {
        parent = th->spawn - 1;
        n->flags |= TP_NODE_SPAWNED;
        th->spawn = 0;
    }
    tp__tree_link(t, parent, idx);
    p->state[idx] = ST_RUNNING;
    th->stack.items[th->stack.size++] = idx;
    return 0;
}

/* Pops the current call, or counts a stray end and returns TP_NONE. */
static uint32_t end_current(tp_tree *t, uint64_t t_ns)
{
    tree_priv *p = priv(t);
    thread_state *th = cur_thread(p);
    int64_t ts = advance(t, th, t_ns);
    if (!th->stack.size) {
        p->stray++;
        return TP_NONE;
    }
    uint32_t idx = th->stack.items[--th->stack.size];
    th->ended = idx + 1;
    p->state[idx] = ST_CLOSED;
    t->nodes[idx].end_ns = ts;
    run_until(&t->nodes[idx], ts);
    return idx;
}

int tp_tree_return(tp_tree *t, uint64_t t_ns, const char *ret, size_t ret_len)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    int r = 0;
    const char *s = NULL;
    if (cur_thread(p)->stack.size) {
        s = tp__tree_dup(t, ret, ret_len, &r);
        if (r)
            return r;
    }
    uint32_t idx = end_current(t, t_ns);
    if (idx != TP_NONE)
        t->nodes[idx].ret = s;
    return 0;
}

/* Copies an exception's type and message ("" when not captured). */
static int dup_exc(tp_tree *t, const char *type, size_t type_len, const char *msg, size_t msg_len,
                   const char **ret_type, const char **ret_msg)
{
    const char *ty = type ? tp_tree_strdup(t, type, type_len) : "";
    const char *ms = msg ? tp_tree_strdup(t, msg, msg_len) : "";
    if (!ty || !ms)
        return -ENOMEM;
    *ret_type = ty;
    *ret_msg = ms;
    return 0;
}

int tp_tree_unwind(tp_tree *t, uint64_t t_ns, const char *type, size_t type_len, const char *msg,
                   size_t msg_len)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    const char *ty = NULL, *ms = NULL;
    if (cur_thread(p)->stack.size) {
        int r = dup_exc(t, type, type_len, msg, msg_len, &ty, &ms);
        if (r)
            return r;
    }
    uint32_t idx = end_current(t, t_ns);
    if (idx == TP_NONE)
        return 0;
    tp_node *n = &t->nodes[idx];
    n->flags |= TP_NODE_EXC;
    n->exc_type = ty;
    n->exc_msg = ms;
    n->ret = NULL;
    return 0;
}

int tp_tree_caught(tp_tree *t, uint64_t t_ns, const char *type, size_t type_len, const char *msg,
                   size_t msg_len)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    thread_state *th = cur_thread(p);
    advance(t, th, t_ns);
    if (!th->stack.size) {
        p->stray++;
        return 0;
    }
    const char *ty, *ms;
    int r = dup_exc(t, type, type_len, msg, msg_len, &ty, &ms);
    if (r)
        return r;
    tp_node *n = &t->nodes[th->stack.items[th->stack.size - 1]];
    n->flags |= TP_NODE_CAUGHT;
    n->exc_type = ty;
    n->exc_msg = ms;
    return 0;
}

int tp_tree_yield(tp_tree *t, uint32_t seq, uint64_t t_ns)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    thread_state *th = cur_thread(p);
    if (!th->stack.size || th->stack.items[th->stack.size - 1] != seq)
        return TP_ERR_SEQUENCE;
    int64_t ts = advance(t, th, t_ns);
    th->stack.size--;
    p->state[seq] = ST_SUSPENDED;
    t->nodes[seq].suspends++;
    t->nodes[seq].end_ns = ts;
    run_until(&t->nodes[seq], ts);
    return 0;
}

int tp_tree_resume(tp_tree *t, uint32_t seq, uint64_t t_ns)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    if (seq >= t->nnodes || p->state[seq] != ST_SUSPENDED)
        return TP_ERR_SEQUENCE;
    thread_state *th = cur_thread(p);
    int r = stack_reserve(th);
    if (r)
        return r;
    int64_t ts = advance(t, th, t_ns);
    p->state[seq] = ST_RUNNING;
    run_from(&t->nodes[seq], ts);
    th->stack.items[th->stack.size++] = seq;
    return 0;
}

int tp_tree_thread(tp_tree *t, uint32_t thread)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    if (p->threads.items[p->cur].id == thread)
        return 0;
    /* Threads are found through a hash of their ids, not a sorted table:
     * ids arrive in any order (a client may number 100k threads downwards),
     * and a sorted insert moves the whole table each time, O(n^2). Thread 0
     * (index 0) is not in the map: it exists from the start. */
    uint64_t idx;
    if (thread == 0) {
        p->cur = 0;
        return 0;
    }
    if (tp_hmap_get(&p->thread_ids, thread, &idx)) {
        p->cur = (size_t)idx;
        return 0;
    }
    if (tp_vec_grow1(&p->threads) < 0)
        return -ENOMEM;
    if (tp_hmap_put(&p->thread_ids, thread, p->threads.size) < 0)
        return -ENOMEM;
    p->threads.items[p->threads.size] = (thread_state){.id = thread};
    p->cur = p->threads.size++;
    return 0;
}

int tp_tree_spawn(tp_tree *t, uint32_t seq)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    cur_thread(p)->spawn = seq < t->nnodes ? seq + 1 : 0;
    return 0;
}

int tp_tree_memory(tp_tree *t, int64_t delta)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    thread_state *th = cur_thread(p);
    if (!th->ended) {
        p->stray++;
        return 0;
    }
    tp_node *n = &t->nodes[th->ended - 1];
    n->flags |= TP_NODE_MEM;
    n->mem_delta = delta;
    return 0;
}

/* ---- Feeding wire batches ----------------------------------------------- */

static uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint16_t rd16(const uint8_t *b)
{
    return (uint16_t)(b[0] | b[1] << 8);
}

static uint64_t rd64(const uint8_t *b)
{
    return (uint64_t)rd32(b) | (uint64_t)rd32(b + 4) << 32;
}

typedef struct text_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
} text_reader;

static int read_text(text_reader *r, const char **ret_s, size_t *ret_len)
{
    if (r->len - r->off < 4)
        return TP_ERR_MALFORMED;
    size_t n = rd32(r->p + r->off);
    r->off += 4;
    if (r->len - r->off < n)
        return TP_ERR_MALFORMED;
    *ret_s = (const char *)r->p + r->off;
    *ret_len = n;
    r->off += n;
    return 0;
}

int tp_tree_event(tp_tree *t, uint8_t kind, uint8_t flags, uint16_t rsv, uint32_t arg, uint64_t ts,
                  const char *s1, size_t l1, const char *s2, size_t l2)
{
    switch (kind) {
    case TP_EV_CALL:
        return tp_tree_call(t, arg, ts, (flags & TP_EVF_GEN) != 0, s1, l1);
    case TP_EV_RETURN:
        return tp_tree_return(t, ts, s1, l1);
    case TP_EV_UNWIND:
        return tp_tree_unwind(t, ts, s1, l1, s2, l2);
    case TP_EV_CAUGHT:
        return tp_tree_caught(t, ts, s1, l1, s2, l2);
    case TP_EV_YIELD:
        return tp_tree_yield(t, arg, ts);
    case TP_EV_RESUME:
        return tp_tree_resume(t, arg, ts);
    case TP_EV_THREAD: {
        int r = tp_tree_thread(t, arg);
        if (!r && s1)
            r = tp_tree_set_thread_name(t, arg, s1, l1);
        return r;
    }
    case TP_EV_SPAWN:
        return tp_tree_spawn(t, arg);
    case TP_EV_MEMORY:
        return tp_tree_memory(t, tp_event_memory_delta(rsv, arg));
    default:
        return TP_ERR_MALFORMED;
    }
}

int tp_tree_feed(tp_tree *t, const void *records, size_t n, const void *text, size_t text_len)
{
    if ((n && !records) || (text_len && !text) || n > SIZE_MAX / sizeof(tp_event))
        return TP_ERR_MALFORMED;
    const uint8_t *rec = records;
    text_reader tr = {text, text_len, 0};
    for (size_t i = 0; i < n; i++, rec += sizeof(tp_event)) {
        uint8_t kind = rec[0], flags = rec[1];
        if (kind < TP_EV_CALL || kind > TP_EV_MAX || (flags & ~TP_EVF_ALL))
            return TP_ERR_MALFORMED;
        const char *s1 = NULL, *s2 = NULL;
        size_t l1 = 0, l2 = 0;
        if (flags & TP_EVF_TEXT) {
            int r = read_text(&tr, &s1, &l1);
            if (!r && tp_event_text_entries(kind) == 2)
                r = read_text(&tr, &s2, &l2);
            if (r)
                return r;
        }
        int r = tp_tree_event(t, kind, flags, rd16(rec + 2), rd32(rec + 4), rd64(rec + 8), s1, l1,
                              s2, l2);
        if (r)
            return r;
    }
    return 0;
}

/* ---- Finishing ---------------------------------------------------------- */

static int cmp_root(const void *pa, const void *pb)
{
    const int64_t *a = pa, *b = pb; /* {start, index} pairs */
    if (a[0] != b[0])
        return a[0] < b[0] ? -1 : 1;
    return a[1] < b[1] ? -1 : a[1] > b[1];
}

/* Roots of different threads may interleave out of start order; sort them
 * (stably, by start then call order) only when they do. */
static int sort_roots(tp_tree *t)
{
    size_t nroots = 0;
    bool sorted = true;
    int64_t prev = INT64_MIN;
    for (uint32_t i = t->first_root; i != TP_NONE; i = t->nodes[i].next) {
        if (t->nodes[i].start_ns < prev)
            sorted = false;
        prev = t->nodes[i].start_ns;
        nroots++;
    }
    if (sorted)
        return 0;
    int64_t *keys = malloc(nroots * 2 * sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    size_t k = 0;
    for (uint32_t i = t->first_root; i != TP_NONE; i = t->nodes[i].next, k++) {
        keys[2 * k] = t->nodes[i].start_ns;
        keys[2 * k + 1] = i;
    }
    qsort(keys, nroots, 2 * sizeof(*keys), cmp_root);
    t->first_root = (uint32_t)keys[1];
    for (k = 0; k + 1 < nroots; k++)
        t->nodes[keys[2 * k + 1]].next = (uint32_t)keys[2 * k + 3];
    t->last_root = (uint32_t)keys[2 * (nroots - 1) + 1];
    t->nodes[t->last_root].next = TP_NONE;
    free(keys);
    return 0;
}

int tp_tree_finish(tp_tree *t, uint64_t end_ns)
{
    tree_priv *p = priv(t);
    if (p->finished)
        return TP_ERR_SEQUENCE;
    int r = sort_roots(t);
    if (r)
        return r;
    int64_t end = end_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)end_ns;
    /* The calls still running stop at the trace's end: charge each thread's
     * innermost one its last stretch. */
    for (size_t i = 0; i < p->threads.size; i++) {
        thread_state *th = &p->threads.items[i];
        if (th->stack.size && end > th->last_ns)
            advance(t, th, (uint64_t)end);
    }
    for (size_t i = 0; i < t->nnodes; i++) {
        tp_node *n = &t->nodes[i];
        if (p->state[i] != ST_CLOSED) {
            n->flags |= TP_NODE_OPEN;
            /* A suspended generator's last interval ended at its yield. */
            if (p->state[i] == ST_RUNNING && end > n->max_ns)
                run_until(n, end);
            n->end_ns = end;
        }
        if (n->end_ns < n->start_ns)
            n->end_ns = n->start_ns;
        if (n->total_ns < n->self_ns) /* end clamped below a call's start */
            n->total_ns = n->self_ns;
        n->min_ns = n->max_ns = n->total_ns;
    }
    t->meta.duration_ns = end;
    if (!t->meta.call_count)
        t->meta.call_count = t->nnodes;
    tp__tree_set_finished(t);
    return 0;
}
