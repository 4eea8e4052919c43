/* Finalization: once a trace has ended (or was truncated), rebuild it once
 * and store what views need without a rebuild: per-function statistics
 * (func_stats), the folded tree (folded: tp_render_json() text of
 * tp_tree_fold(), format 1; only when the folded tree has at most 20,000
 * nodes, larger ones are folded on demand) and the JSON stats object
 * (traces.stats). */
#ifndef TP_FINALIZE_H
#define TP_FINALIZE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tree.h"

/** Finalize traces: rebuild each, compute tp_tree_stats and tp_tree_fold,
 *  and store func_stats, the folded tree and traces.stats (finalized = 1; 2
 *  when the rebuild failed). Stops early, leaving the rest pending, once
 *  *cancel (may be NULL) becomes true. Worker threads only. Returns 0,
 *  -ECANCELED, or the first store failure. */
int tp_finalize_traces(tp_store *s, const int64_t *rowids, size_t n, const atomic_bool *cancel);

/** Rowids of finished traces not finalized yet (oldest first, at most max).
 *  *ret is malloc'd. Returns 0 or a code. */
int tp_finalize_pending(tp_store *s, size_t max, int64_t **ret, size_t *ret_n);

#endif
