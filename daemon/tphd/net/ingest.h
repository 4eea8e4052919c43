/* The trace-upload side of one client connection: HELLO facts, the
 * connection's function table, the traces it has open, and the validation of
 * FUNCS/BEGIN/EVENTS/LINES/END into store ops. No I/O and no libuv: the server feeds
 * decoded messages in and submits the ops that come out.
 *
 * Function ids are the client's (one table per connection). Each trace gets
 * its own dense, trace-local ids in order of first use: EVENTS records are
 * copied, validated and their CALL ids rewritten, and the descriptors a batch
 * uses for the first time travel with it, so a stored trace is
 * self-contained. */
#ifndef TP_INGEST_H
#define TP_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "wire.h"

#define TP_INGEST_MAX_FUNC_ID  (1u << 24)  /* the tree's limit on function ids */
#define TP_INGEST_MAX_FUNC_MEM (64u << 20) /* descriptor bytes per connection */
#define TP_INGEST_MAX_OPEN     256u        /* traces open at once per connection */
#define TP_INGEST_MAX_DEAD     64u         /* discarded trace ids remembered per connection */

/** Who is on the other end, from SO_PEERCRED (never from the client's claims). */
typedef struct tp_ingest_peer {
    uint32_t uid;
    int64_t pid;
    uint64_t pstart; /* process start, clock ticks since boot; 0 when unknown */
} tp_ingest_peer;

typedef struct tp_ingest tp_ingest;

/** New per-connection state. Returns 0 or -ENOMEM. */
int tp_ingest_new(const tp_ingest_peer *peer, tp_ingest **ret);
/** Free the state. Call after tp_ingest_abort_all() and once no op from it is
 *  queued any more (the ops point at its traces). Accepts NULL. */
void tp_ingest_free(tp_ingest *g);

/** Take the process facts of a HELLO (python, hostname, client, argv). The
 *  version check is the caller's. Returns 0 or a code with a message. */
int tp_ingest_hello(tp_ingest *g, const tp_msg *m, char *err, size_t errsz);

/** Add or replace function descriptors. Returns 0, TP_ERR_LIMIT (id too
 *  large, too much descriptor memory) or -ENOMEM, with a message. */
int tp_ingest_funcs(tp_ingest *g, const tp_msg *m, char *err, size_t errsz);

/** BEGIN/EVENTS/END: validate m against the connection's state and build the
 *  store op to submit (its ->owner is left NULL for the caller).
 *
 *  Returns 0 with *ret_op set, or with *ret_op NULL when the frame is to be
 *  ignored (it names a trace discarded earlier, PROTOCOL.md 5.4). On failure
 *  returns a code (TP_ERR_SEQUENCE, TP_ERR_UNKNOWN_FUNC, TP_ERR_MALFORMED,
 *  TP_ERR_TYPE, TP_ERR_LIMIT, -ENOMEM) with a message, and *ret_trace_error
 *  says whether it is a trace error: then the trace is discarded (an ABORT op
 *  in *ret_op, when some of it was queued, keeps what was stored as
 *  truncated), its later frames are ignored, and the connection goes on;
 *  otherwise the connection should be closed. */
int tp_ingest_begin(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                    char *err, size_t errsz);
int tp_ingest_events(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                     char *err, size_t errsz);
int tp_ingest_end(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                  char *err, size_t errsz);
/** LINES or SOURCE, like the three above: one JSON text per trace, each
 *  kind at most once (TP_ERR_SEQUENCE). LINES must parse as a JSON array of
 *  objects; SOURCE as PROTOCOL.md 4.6b's object (its "functions" an array
 *  of entries with str module, qualname, file, an integer line, and a str
 *  text, an integer truncated when present); TP_ERR_JSON otherwise. Both
 *  are trace errors. The op carries a copy of the text, stored as sent.
 *  Parsing costs jansson's memory for at most TP_WIRE_MAX_LINES or
 *  TP_WIRE_MAX_SOURCE bytes, once, on the caller's thread. */
int tp_ingest_text(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                   char *err, size_t errsz);

/** The connection is gone: call submit(op, ud) with an ABORT op for every
 *  open trace (they become truncated). Returns 0 or -ENOMEM (the traces whose
 *  op could not be allocated stay open in the database until the next start). */
int tp_ingest_abort_all(tp_ingest *g, void (*submit)(tp_store_op *op, void *ud), void *ud);

/** Release an op made here, after its completion or when it could not be
 *  submitted; an END/ABORT op also frees its trace. Accepts NULL. */
void tp_ingest_op_free(tp_store_op *op);

/** The store refused a batch (EVENTS or LINES) of op's trace, which it
 *  ended as truncated: when the trace is still open here, discard it (its
 *  later frames and its END are ignored; *ret_op gets an ABORT op to
 *  submit, or NULL) and return 1 so the caller reports it once; else 0. */
int tp_ingest_refused(tp_ingest *g, const tp_store_op *op, tp_store_op **ret_op);

/** The client's id of the trace an op belongs to ("" for none). */
const char *tp_ingest_op_client_id(const tp_store_op *op);

/** Traces open on this connection. */
size_t tp_ingest_open_count(const tp_ingest *g);

#endif
