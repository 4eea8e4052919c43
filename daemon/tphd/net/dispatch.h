/* What a connection's frames do, and the work that comes back to the loop
 * (dispatch.c). Internal to daemon/tphd/net; loop thread unless noted. */
#ifndef TP_DISPATCH_H
#define TP_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "server_priv.h"

/** Handle one whole frame's payload. */
void tp_dispatch_frame(tp_conn *c, const uint8_t *payload, size_t len);
/** Drain the store's completions (async callback). */
void tp_dispatch_completions(uv_async_t *a);
/** Queue finalization of a trace (and start the worker). */
void tp_dispatch_finalize(tp_server *s, int64_t rowid);
/** Start the startup finalization scan and a retention pass. */
void tp_dispatch_start_background(tp_server *s);
/** The finalizer thread finished (async callback). */
void tp_dispatch_finalized(uv_async_t *a);
/** Retention timer. */
void tp_dispatch_retention_tick(uv_timer_t *t);

#endif
