/* jansson values written through the one JSON writer (json.h).
 *
 * tphd and tph build some answers as jansson values (json_pack() and the
 * like); this writes them with tracepatch's escaper instead of jansson's, so
 * a string gives the same bytes in a query answer as in a trace file.
 * Lives in tpproto_json (jansson), linked by tphd and tph, not the
 * extension. */
#ifndef TP_JSON_JANSSON_H
#define TP_JSON_JANSSON_H

#include <jansson.h>

#include "json.h"

#define TP_JSON_JANSSON_DEPTH 2048 /* nesting written; jansson's parser stops there too */

/** Write v as the next value of w: objects in jansson's (insertion) order,
 *  integers in decimal, reals as jansson writes them ("%.17g", with ".0"
 *  added when that reads as an integer). Returns 0, -EINVAL (v is NULL or
 *  nests deeper than TP_JSON_JANSSON_DEPTH; nothing is written then) or
 *  -ENOMEM. */
int tp_json_jansson(tp_json *w, const json_t *v);

/** v as one line of compact JSON in a malloc'd NUL-terminated string the
 *  caller frees with free(): json_dumps(v, JSON_COMPACT) with tracepatch's
 *  escaper. NULL when v is NULL, too deep, or memory ran out. */
char *tp_json_jansson_dumps(const json_t *v);

#endif
