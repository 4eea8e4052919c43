/* A small cache of rebuilt call trees, shared by the query workers.
 *
 * Rebuilding a trace from its chunks costs about half a second per million
 * calls; the report UI asks for one subtree at a time, so without a cache
 * every click would pay it again. A finished trace never changes, so its
 * raw tree (and, on first use, its folded tree) is kept, keyed by rowid,
 * id and event count, within a memory budget (least recently used goes
 * first). Open traces are rebuilt every time and not kept. Finalization
 * rebuilds and folds every trace once when it ends; it offers big ones
 * here, so that opening one in the report UI right after does not pay it
 * again.
 *
 * An entry is used under its own lock (trees are one-thread-at-a-time
 * objects): tp_tcache_get() returns it locked, tp_tcache_put() unlocks and
 * releases it. Thread-safe otherwise. */
#ifndef TP_TCACHE_H
#define TP_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "tree.h"

#define TP_TCACHE_BUDGET      (384u << 20) /* estimated bytes of cached trees */
#define TP_TCACHE_MAX_ENTRIES 16
/* Smaller traces rebuild in a few milliseconds: finalization does not put
 * them in the cache, where they would push out the big ones. */
#define TP_TCACHE_OFFER_MIN 50000

typedef struct tp_tcache_entry tp_tcache_entry;

/** The tree of trace rowid, from the cache or rebuilt through db (a reader
 *  connection). Returns 0 and a locked entry, or a code with a message. */
int tp_tcache_get(sqlite3 *db, int64_t rowid, tp_tcache_entry **ret, char *err, size_t errsz);

/** Hand over the trees of trace rowid that the caller has just rebuilt and
 *  folded (default threshold) for another reason (finalization), so that the
 *  first look at a big trace need not rebuild it. Takes ownership of raw and
 *  folded (NULL allowed) whatever happens: they are cached when the trace is
 *  finished, has at least TP_TCACHE_OFFER_MIN calls, fits the budget and is
 *  not cached yet; otherwise freed. db is a reader connection of the calling
 *  thread. Returns 1 when cached, 0 otherwise. */
int tp_tcache_offer(sqlite3 *db, int64_t rowid, tp_tree *raw, tp_tree *folded);

/** The raw, finished tree of a locked entry. */
const tp_tree *tp_tcache_raw(const tp_tcache_entry *e);

/** Its folded tree (default threshold), folded on first use. Returns 0 or
 *  -ENOMEM. */
int tp_tcache_folded(tp_tcache_entry *e, const tp_tree **ret);

/** Unlock and release an entry from tp_tcache_get(). Accepts NULL. */
void tp_tcache_put(tp_tcache_entry *e);

/** Drop every cached tree not in use (at shutdown, and in tests). */
void tp_tcache_clear(void);

#endif
