/* Trees from stored chunks and chunks from trees.
 *
 * A stored trace is its function table plus its event chunks; the call tree
 * is rebuilt with proto/ (tp_tree_def_func, the events of each chunk in
 * order, tp_tree_finish) whenever a query needs it. Finalization runs the
 * same rebuild once at trace end (finalize.h). The reverse direction, tree -> events, serves
 * imports (a JSON file becomes chunks like any upload) and subtree queries. */
#ifndef TP_REBUILD_H
#define TP_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"
#include "tree.h"

/** Rebuild the raw, finished tree of trace rowid with its meta (trace id,
 *  label, wall start, duration, call count, dropped, limit reason, config),
 *  reading through db (a reader connection, or the writer inside an fn).
 *  Events the builder rejects (a RESUME of nothing, ...) are skipped, not
 *  fatal. Returns 0, TP_ERR_NOT_FOUND, TP_ERR_DB or -ENOMEM with a message. */
int tp_rebuild_tree(sqlite3 *db, int64_t rowid, tp_tree **ret, char *err, size_t errsz);

/** Feed one chunk (records in wire layout, text stream) into a tree under
 *  construction, skipping events the builder rejects as out of sequence.
 *  Returns 0, -ENOMEM or TP_ERR_MALFORMED (records or text cut short). */
int tp_rebuild_feed(tp_tree *t, const void *records, size_t nrecords, const void *text,
                    size_t text_len);

/** The event stream that rebuilds node root and its descendants of a finished
 *  tree (root TP_NONE: every root), with function ids = t's function indices:
 *  appends records to *records and their text to *text. Feeding them into a
 *  tree with the same functions and finishing it at the subtree's end gives
 *  the same nodes (times, args, returns, exceptions, threads). */
int tp_rebuild_events(const tp_tree *t, uint32_t root, tp_buf *records, tp_buf *text);

/** A new finished tree with t's functions and meta holding only the subtree
 *  under node root (which becomes the only root). */
int tp_rebuild_subtree(const tp_tree *t, uint32_t root, tp_tree **ret);

#endif
