/* Loading tracepatch JSON trace files (1.0.0's schema and ours) into a tree.
 * Lives in tpproto_json (jansson), linked by tphd and tph, not the extension. */
#ifndef TP_LOAD_H
#define TP_LOAD_H

#include <stddef.h>

#include "tree.h"

/** Parse a JSON trace document into a finished raw tree with its meta
 *  (label, trace_id, timestamp, call_count, limit_reason, config). Node
 *  times come from start/end (seconds, floats) or elapsed_ms; function
 *  descriptors are interned by (module, name, file, lineno). On failure
 *  returns TP_ERR_JSON (or -ENOMEM) and writes a message naming the problem
 *  (with line/column for syntax errors) into err; TP_ERR_LIMIT when the
 *  document nests deeper than the JSON parser allows (about 1020 nested
 *  calls); -EINVAL for a NULL text or ret. err may be NULL (errsz 0). *ret is
 *  written only on success. */
int tp_load_json(const char *text, size_t len, tp_tree **ret, char *err, size_t errsz);

#endif
