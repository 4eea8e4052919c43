/* The query ops of the tph <-> tphd contract (docs/QUERY.md): list, get,
 * tree, stats, diff, export, clean, status, import. They run on a worker
 * thread (uv_queue_work), read through the store's reader connections and
 * write through tp_store_call_sync(), so they never block the event loop.
 * The HTTP API (issue 5) calls the same entry point. */
#ifndef TP_QUERY_H
#define TP_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "store.h"
#include "tree.h"

struct tp_otlp;

/** Everything a query may use: the store, who asks, and the server facts that
 *  "status" reports (a snapshot taken on the loop thread before the query). */
typedef struct tp_query_env {
    tp_store *store;
    uint32_t uid; /* the peer's uid (SO_PEERCRED); 0 = root sees all */
    int64_t pid;
    uint64_t pstart;
    const char *version; /* "2.0.0" */
    double uptime_s;
    int64_t daemon_pid;
    const char *socket_path;
    int64_t clients;       /* connected clients (a non-root uid: its own) */
    uint64_t events_total; /* events committed since start (a non-root uid: its own) */
    double events_per_s;   /* over the last 10 s; < 0: not shown (non-root) */
    bool whole_db;         /* root, or tphd's own uid: may see the database's size */
    const char *http_url;  /* "http://127.0.0.1:PORT" or NULL */
    /** The report URL of a trace for uid, when tphd serves HTTP (else NULL):
     *  writes it into buf and returns 0, or returns a negative code. Any thread. */
    int (*trace_url)(void *ud, uint32_t uid, const char *trace_id, char *buf, size_t size);
    void *trace_url_ud;
    struct tp_otlp *otlp; /* the OTLP exporter (status, export format), or NULL */
    const void *body;     /* QUERY body (import: the file), may be NULL */
    size_t body_len;
} tp_query_env;

/** The outcome of one query. code 0: body holds content_type's bytes. */
typedef struct tp_query_result {
    int code;                 /* 0 or a tp_err.h code */
    char message[512];        /* when code < 0: what went wrong, for the user */
    const char *content_type; /* static string */
    tp_buf body;
    int64_t created_rowid; /* import: the new trace (to finalize); 0 otherwise */
} tp_query_result;

/** Run op with its JSON arguments (NULL or "" = {}) and fill *res (which the
 *  caller zero-initialises and later frees with tp_query_result_free()).
 *  The caller may make res->body a stream first (tp_buf_set_drain()): the
 *  ops set res->content_type before they write, so each drained piece can
 *  say what it is, and never read back what they wrote; body then holds
 *  only the tail. Thread-safe; blocks (worker threads only). */
void tp_query_run(const tp_query_env *env, const char *op, const char *args_json,
                  tp_query_result *res);

/** Release the body. */
void tp_query_result_free(tp_query_result *res);

/** Bytes of one function's text the source query answers at most (the
 *  client keeps 64 KiB; a text sent larger is cut at a line's end). */
#define TP_QUERY_SOURCE_MAX 65536u

/** What is wrong with a "source" value (PROTOCOL.md 4.6b: an object whose
 *  "functions" is an array of objects, each with str module, qualname,
 *  file, an integer line, and a str text or missing, an integer truncated
 *  when present), or NULL when nothing is. *ret_index is the bad entry, or
 *  SIZE_MAX when the value itself is wrong. Any thread. */
const char *tp_query_source_bad(const json_t *source, size_t *ret_index);

#endif
