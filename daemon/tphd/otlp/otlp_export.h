/* The OTLP exporter: forwards finished traces to an OTLP/HTTP receiver
 * (POST <endpoint>/v1/traces) from a thread of its own.
 *
 * The queue is the database, not memory: the finalizer marks each trace it
 * finishes while export is on (traces.otlp = TP_OTLP_EXPORT_PENDING) and wakes the
 * exporter, which reads pending traces oldest first, rebuilds each, encodes
 * up to a batch's worth into one request and sends it with libcurl. A 2xx
 * marks the batch's traces exported; a failure is retried with exponential
 * backoff (connection errors, timeouts, 429, 502, 503, 504), then the batch
 * counts as lost and is marked so. A slow or absent receiver therefore costs
 * at most one request body of memory (max_batch_bytes plus one trace) while
 * traces wait on disk, and never touches the event loop or the writer queue
 * beyond one small UPDATE per batch. Pending traces survive a restart.
 *
 * Failures are logged on stderr at most once a minute (with a count of the
 * ones not logged) and counted in tp_otlp_stats (`tph status`). */
#ifndef TP_OTLP_EXPORT_H
#define TP_OTLP_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "otlp.h"
#include "store.h"

/* traces.otlp */
#define TP_OTLP_EXPORT_NONE     0 /* finished while export was off */
#define TP_OTLP_EXPORT_PENDING  1 /* waiting for the exporter */
#define TP_OTLP_EXPORT_EXPORTED 2 /* the receiver answered 2xx */
#define TP_OTLP_EXPORT_LOST     3 /* retries exhausted, or refused (4xx) */
#define TP_OTLP_EXPORT_SKIPPED  4 /* did not match --otlp-label / --otlp-min-duration */

/** What --otlp-* asked for. Strings are borrowed for the exporter's life. */
typedef struct tp_otlp_config {
    const char *endpoint;       /* "http://host:4318" (/v1/traces is added) or a full URL */
    int format;                 /* TP_OTLP_PROTOBUF or TP_OTLP_JSON */
    const char *const *headers; /* "Key=Value" each */
    size_t nheaders;
    tp_otlp_opts opts;
    const char *label_glob;    /* fnmatch() pattern a label must match, or NULL */
    int64_t min_duration_ns;   /* shorter traces are skipped (0: none) */
    unsigned retries;          /* attempts after the first (tphd's default is 4) */
    double backoff_s;          /* delay before the first retry, doubled each time; 0.5 */
    double timeout_s;          /* per request; default 10 */
    size_t max_batch_bytes;    /* a request grows up to about this; default 4 MiB */
    unsigned max_batch_traces; /* default 64 */
    const char *report_url;    /* tphd's report UI base ("http://127.0.0.1:7345"), or NULL */
} tp_otlp_config;

/** Counters since the exporter started. */
typedef struct tp_otlp_stats {
    uint64_t exported_traces, exported_spans;
    uint64_t lost_traces, lost_spans;
    uint64_t skipped_traces;
    uint64_t requests, failed_requests, retries;
    uint64_t buffered_bytes;     /* the request body held now */
    uint64_t max_buffered_bytes; /* the largest it has been */
    char last_error[256];        /* "" when the last request succeeded */
} tp_otlp_stats;

typedef struct tp_otlp tp_otlp;

/** Check cfg (endpoint scheme, header syntax) and write the problem into
 *  err. Returns 0 or -EINVAL. */
int tp_otlp_export_check(const tp_otlp_config *cfg, char *err, size_t errsz);

/** Start the exporter thread on store (pending traces from an earlier run
 *  are sent first) and register it with the finalizer. Main thread, before
 *  traces flow. Returns 0 or a code with a message in err. */
int tp_otlp_export_start(tp_otlp **ret, tp_store *store, const tp_otlp_config *cfg, char *err,
                         size_t errsz);

/** Stop: unregister from the finalizer, abort a request in flight (its
 *  traces stay pending for the next start), join the thread, free. Before
 *  tp_store_close(). Accepts NULL. */
void tp_otlp_export_stop(tp_otlp *x);

/** A copy of the counters. Any thread. */
void tp_otlp_export_stats(tp_otlp *x, tp_otlp_stats *ret);

/** The endpoint requests go to (the full URL), without the user:password@
 *  a URL may carry. */
const char *tp_otlp_export_url(const tp_otlp *x);

/** The span selection in use (for `tph export --format otlp-json`). */
const tp_otlp_opts *tp_otlp_export_span_opts(const tp_otlp *x);

/** Append stored trace rowid to b, reading its facts through db (a reader
 *  connection); t is its raw finished tree, or NULL to rebuild it here.
 *  report_base as in tp_otlp_config. Returns 0, TP_ERR_NOT_FOUND, TP_ERR_DB
 *  or -ENOMEM (message in err). */
int tp_otlp_export_add_stored(tp_otlp_body *b, sqlite3 *db, int64_t rowid, const tp_tree *t,
                              const char *report_base, const tp_otlp_opts *o, tp_otlp_counts *ret,
                              char *err, size_t errsz);

/** The report page of a trace without a token ("BASE/t/ID"), for the
 *  tracepatch.url attribute. Returns 0 or -ENOSPC. */
int tp_otlp_export_report_link(const char *base, const char *trace_id, char *buf, size_t size);

#endif
