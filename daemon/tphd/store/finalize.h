/* Finalization: once a trace has ended (or was truncated), rebuild it once
 * and store what views need without a rebuild: per-function statistics
 * (func_stats), the folded tree (folded: tp_render_json() text of
 * tp_tree_fold(), format 1; only when the folded tree has at most 20,000
 * nodes, larger ones are folded on demand) and the JSON stats object
 * (traces.stats), and the OpenTelemetry trace id its spans get
 * (traces.otel_trace, otlp.h). */
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

/** Export hook: while fn is set, every trace finalized as done is also
 *  marked for the OTLP exporter (traces.otlp = 1, unless it already has an
 *  export state) in the same transaction, and fn(ud) runs on the finalizer
 *  thread after each batch that marked some. NULL turns it off; fn must
 *  stay callable until this returns. Any thread. */
typedef void (*tp_finalize_export_fn)(void *ud);
void tp_finalize_set_export(tp_finalize_export_fn fn, void *ud);

/** Rowids of finished traces not finalized yet (oldest first, at most max).
 *  *ret is malloc'd. Returns 0 or a code. */
int tp_finalize_pending(tp_store *s, size_t max, int64_t **ret, size_t *ret_n);

#endif
