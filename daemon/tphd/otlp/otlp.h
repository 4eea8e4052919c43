/* OTLP encoding: finished traces as OpenTelemetry spans, in the body of an
 * OTLP/HTTP ExportTraceServiceRequest (POST /v1/traces).
 *
 * One span model serves both wire forms. A trace becomes one ResourceSpans:
 * a resource describing the process, one scope ("tracepatch"), a trace span
 * standing for the whole trace (named by its label, carrying the report URL)
 * and under it one span per selected call, parent and child as in the call
 * tree. The same walk writes protobuf (field numbers of opentelemetry-proto,
 * a hand-written encoder: the request needs a dozen message types, and a
 * generated libprotobuf-c binding would add a library, a code generator and
 * a per-span allocation for what is a few hundred lines of varints) or
 * OTLP/JSON (lowerCamelCase names, ids as hex, 64-bit integers as strings,
 * enums as numbers), so both forms always carry the same fields.
 *
 * Span ids are derived from the tracepatch trace id and the call's index,
 * so a retried export sends identical spans. The trace id is the W3C
 * traceparent's when the trace carries one in its config ("otel_parent"),
 * otherwise the tracepatch trace id itself (both are 16 bytes).
 *
 * Everything here is pure computation: any thread, no I/O. */
#ifndef TP_OTLP_H
#define TP_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"
#include "tree.h"

#define TP_OTLP_PROTOBUF 0 /* application/x-protobuf */
#define TP_OTLP_JSON     1 /* application/json */

#define TP_OTLP_CALLS_ALL   0 /* every recorded call */
#define TP_OTLP_CALLS_ROOTS 1 /* the top-level calls only */
#define TP_OTLP_CALLS_SLOW  2 /* calls of at least slow_ns, with their ancestors */

#define TP_OTLP_DEFAULT_MAX_SPANS 1000
#define TP_OTLP_DEFAULT_SLOW_NS   1000000 /* 1 ms */

/** Which calls become spans and how the resource is named. */
typedef struct tp_otlp_opts {
    int calls;                /* TP_OTLP_CALLS_* */
    int64_t slow_ns;          /* calls == SLOW: the shortest call exported */
    uint32_t max_spans;       /* call spans per trace (the trace span is extra); 0 = default */
    const char *service_name; /* NULL: the trace's label, else "tracepatch" */
} tp_otlp_opts;

/** One stored trace: its raw finished tree (with meta) and the facts of the
 *  process that recorded it. Strings may be NULL. Borrowed for one call. */
typedef struct tp_otlp_trace {
    const tp_tree *tree;
    int64_t pid;
    const char *host;
    const char *python; /* "3.12.1" */
    const char *url;    /* the report page without its token, or NULL */
    bool truncated;     /* the sender went away before the trace ended */
} tp_otlp_trace;

/** What one trace became. */
typedef struct tp_otlp_counts {
    uint32_t spans;        /* spans written, the trace span included */
    uint64_t not_exported; /* calls left out by the selection or the cap */
} tp_otlp_counts;

/** A request body under construction, in place (it points into itself:
 *  never copy one). Fields are read-only for callers. */
typedef struct tp_otlp_body {
    tp_buf buf;      /* the encoded request once tp_otlp_body_finish() returned 0 */
    int format;      /* TP_OTLP_PROTOBUF or TP_OTLP_JSON */
    uint32_t traces; /* ResourceSpans added */
    uint64_t spans;  /* spans added */
    tp_json json;    /* private: the JSON form's writer */
} tp_otlp_body;

/** Start an empty request in format. */
void tp_otlp_body_init(tp_otlp_body *b, int format);
/** Append one trace as a ResourceSpans. On failure (-ENOMEM) the body is
 *  left as it was before the call. ret (may be NULL) gets the counts. */
int tp_otlp_body_add(tp_otlp_body *b, const tp_otlp_trace *tr, const tp_otlp_opts *o,
                     tp_otlp_counts *ret);
/** Close the request (JSON needs its closing brackets). Returns 0 or -ENOMEM. */
int tp_otlp_body_finish(tp_otlp_body *b);
/** Empty it for the next request (keeps the memory). */
void tp_otlp_body_reset(tp_otlp_body *b);
/** Release the memory. Accepts NULL. */
void tp_otlp_body_free(tp_otlp_body *b);

/** Parse a W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>" (version 00, ids
 *  not all zero, lowercase). Returns 0 and the ids, or -EINVAL. */
int tp_otlp_parse_traceparent(const char *s, uint8_t ret_trace[16], uint8_t ret_span[8]);

/** The OpenTelemetry trace id a trace's spans get, as 32 lowercase hex
 *  characters: the traceparent's in config_json ("otel_parent"), else
 *  trace_id. Returns 0, or -EINVAL when neither is usable. */
int tp_otlp_trace_id_hex(const char *config_json, const char *trace_id, char ret[33]);

#endif
