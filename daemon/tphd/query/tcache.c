#include "tcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rebuild.h"
#include "store.h"
#include "tp_err.h"

/* Pool threads share entries (tphd.h, "Threads"): the key is read-only
 * once made; the list fields are under cache_mu; the trees are used by one
 * query at a time, under the entry's mu. */
struct tp_tcache_entry {
    int64_t rowid, nevents; /* read-only */
    char id[33];            /* read-only */
    bool cached;            /* on the list (else freed at the last put); under cache_mu */
    int refs;               /* under cache_mu */
    size_t cost;            /* estimated bytes; under cache_mu */
    uint64_t used;          /* LRU clock; under cache_mu */
    pthread_mutex_t mu;     /* held while a query uses the trees */
    tp_tree *raw, *folded;  /* under mu */
    tp_tcache_entry *next;  /* under cache_mu */
};

/* The list and its totals, under cache_mu. */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static tp_tcache_entry *cache;
static size_t cache_cost, cache_n;
static uint64_t cache_clock;

static void entry_free(tp_tcache_entry *e)
{
    tp_tree_free(e->raw);
    tp_tree_free(e->folded);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static size_t tree_cost(const tp_tree *t)
{
    if (!t)
        return 0;
    size_t cost = t->nnodes * (sizeof(tp_node) + 48) + t->nfuncs * (sizeof(tp_func) + 64);
    /* A folded tree keeps its calls: a group per node, a member per raw node. */
    if (t->fold_groups)
        cost += t->nnodes * sizeof(tp_fold_group) + t->fold_src->nnodes * sizeof(uint32_t);
    return cost;
}

/* What identifies a trace's contents: finished traces never change. */
static int trace_key(sqlite3 *db, int64_t rowid, char id[33], int64_t *nevents, bool *finished)
{
    sqlite3_stmt *st = NULL;
    int r = TP_ERR_NOT_FOUND;
    if (sqlite3_prepare_v2(db, "SELECT id, nevents, status FROM traces WHERE rowid = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return TP_ERR_DB;
    sqlite3_bind_int64(st, 1, rowid);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(id, 33, "%s", (const char *)sqlite3_column_text(st, 0));
        *nevents = sqlite3_column_int64(st, 1);
        *finished = sqlite3_column_int(st, 2) != TP_TRACE_OPEN;
        r = 0;
    }
    sqlite3_finalize(st);
    return r;
}

/* Evicts least recently used idle entries until the budget holds. Under
 * cache_mu. */
static void evict(void)
{
    while (cache_cost > TP_TCACHE_BUDGET || cache_n > TP_TCACHE_MAX_ENTRIES) {
        tp_tcache_entry **victim = NULL;
        for (tp_tcache_entry **p = &cache; *p; p = &(*p)->next)
            if ((*p)->refs == 0 && (!victim || (*p)->used < (*victim)->used))
                victim = p;
        if (!victim)
            return; /* everything is in use: over budget until released */
        tp_tcache_entry *e = *victim;
        *victim = e->next;
        cache_cost -= e->cost;
        cache_n--;
        entry_free(e);
    }
}

/* Under cache_mu. */
static tp_tcache_entry *find(int64_t rowid, const char *id, int64_t nevents)
{
    for (tp_tcache_entry *e = cache; e; e = e->next)
        if (e->rowid == rowid && e->nevents == nevents && strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

/* A cached entry, referenced and marked used. Under cache_mu. */
static tp_tcache_entry *lookup(int64_t rowid, const char *id, int64_t nevents)
{
    tp_tcache_entry *e = find(rowid, id, nevents);
    if (e) {
        e->refs++;
        e->used = ++cache_clock;
    }
    return e;
}

/* Puts a new entry on the list (the caller evicts next). Under cache_mu. */
static void insert(tp_tcache_entry *e)
{
    e->cached = true;
    e->used = ++cache_clock;
    e->next = cache;
    cache = e;
    cache_cost += e->cost;
    cache_n++;
}

int tp_tcache_get(sqlite3 *db, int64_t rowid, tp_tcache_entry **ret, char *err, size_t errsz)
{
    char id[33];
    int64_t nevents;
    bool finished;
    int r = trace_key(db, rowid, id, &nevents, &finished);
    if (r < 0) {
        snprintf(err, errsz,
                 r == TP_ERR_NOT_FOUND ? "the trace was just deleted" : "cannot read the trace");
        return r;
    }
    if (finished) {
        pthread_mutex_lock(&cache_mu);
        tp_tcache_entry *e = lookup(rowid, id, nevents);
        pthread_mutex_unlock(&cache_mu);
        if (e) {
            pthread_mutex_lock(&e->mu);
            *ret = e;
            return 0;
        }
    }
    tp_tcache_entry *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&e->mu, NULL);
    e->rowid = rowid;
    e->nevents = nevents;
    memcpy(e->id, id, sizeof(id));
    e->refs = 1;
    r = tp_rebuild_tree(db, rowid, &e->raw, err, errsz);
    if (r < 0) {
        entry_free(e);
        return r;
    }
    e->cost = tree_cost(e->raw);
    pthread_mutex_lock(&e->mu);
    if (finished && e->cost <= TP_TCACHE_BUDGET / 2) {
        /* Two queries may have rebuilt the same trace at once; both entries
         * are valid, the older one ages out. */
        pthread_mutex_lock(&cache_mu);
        insert(e);
        evict();
        pthread_mutex_unlock(&cache_mu);
    }
    *ret = e;
    return 0;
}

int tp_tcache_offer(sqlite3 *db, int64_t rowid, tp_tree *raw, tp_tree *folded)
{
    tp_tcache_entry *e = NULL;
    char id[33];
    int64_t nevents;
    bool finished = false;
    int r = trace_key(db, rowid, id, &nevents, &finished);
    /* The same limit as for a rebuilt entry (whose folded tree comes later). */
    if (r < 0 || !finished || !raw || raw->nnodes < TP_TCACHE_OFFER_MIN ||
        tree_cost(raw) > TP_TCACHE_BUDGET / 2)
        goto drop;
    e = calloc(1, sizeof(*e));
    if (!e)
        goto drop;
    pthread_mutex_init(&e->mu, NULL);
    e->rowid = rowid;
    e->nevents = nevents;
    memcpy(e->id, id, sizeof(id));
    e->raw = raw;
    e->folded = folded;
    e->cost = tree_cost(raw) + tree_cost(folded);
    pthread_mutex_lock(&cache_mu);
    /* A query may have rebuilt it first: then that entry stays. */
    bool had = find(rowid, id, nevents) != NULL;
    if (!had) {
        insert(e);
        evict();
    }
    pthread_mutex_unlock(&cache_mu);
    if (!had)
        return 1;
    entry_free(e);
    return 0;
drop:
    tp_tree_free(raw);
    tp_tree_free(folded);
    return 0;
}

const tp_tree *tp_tcache_raw(const tp_tcache_entry *e)
{
    return e->raw;
}

int tp_tcache_folded(tp_tcache_entry *e, const tp_tree **ret)
{
    if (!e->folded) {
        int r = tp_tree_fold(e->raw, NULL, &e->folded);
        if (r < 0)
            return r;
        size_t extra = tree_cost(e->folded);
        pthread_mutex_lock(&cache_mu);
        e->cost += extra;
        if (e->cached)
            cache_cost += extra;
        pthread_mutex_unlock(&cache_mu);
    }
    *ret = e->folded;
    return 0;
}

void tp_tcache_put(tp_tcache_entry *e)
{
    if (!e)
        return;
    pthread_mutex_unlock(&e->mu);
    pthread_mutex_lock(&cache_mu);
    bool drop = --e->refs == 0 && !e->cached;
    if (e->cached)
        evict();
    pthread_mutex_unlock(&cache_mu);
    if (drop)
        entry_free(e);
}

void tp_tcache_clear(void)
{
    pthread_mutex_lock(&cache_mu);
    for (tp_tcache_entry **p = &cache; *p;) {
        tp_tcache_entry *e = *p;
        if (e->refs == 0) {
            *p = e->next;
            cache_cost -= e->cost;
            cache_n--;
            entry_free(e);
        } else {
            p = &e->next;
        }
    }
    pthread_mutex_unlock(&cache_mu);
}
