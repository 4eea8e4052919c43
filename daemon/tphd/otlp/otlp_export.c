/* The OTLP exporter thread (otlp_export.h): pending traces from the
 * database, one request at a time through a reused libcurl easy handle, so
 * connections are kept alive between batches. */
#include "otlp_export.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "finalize.h"
#include "rebuild.h"
#include "tp_err.h"
#include "util.h"

#define DEFAULT_BACKOFF_S    0.5
#define MAX_BACKOFF_S        30.0
#define DEFAULT_TIMEOUT_S    10.0
#define DEFAULT_BATCH_BYTES  (4u << 20)
#define DEFAULT_BATCH_TRACES 64
#define IDLE_POLL_S          5.0 /* looks for pending traces even without a wake-up */
#define LOG_INTERVAL_NS      (60ll * 1000000000ll)
#define ERR_BODY_MAX         160 /* bytes of a failed response kept for the message */

struct tp_otlp {
    tp_store *store;         /* set at start, read-only */
    tp_otlp_config cfg;      /* read-only after start */
    char url[1024];          /* read-only after start */
    char shown[1024];        /* url without user:password@, for logs and status */
    struct curl_slist *hdrs; /* exporter thread */
    CURL *curl;              /* exporter thread */
    pthread_t thread;
    pthread_mutex_t mu;  /* guards wake, stats */
    pthread_cond_t cond; /* signalled on wake and stop */
    bool wake;           /* mu: the finalizer marked traces pending */
    atomic_bool stop;    /* any thread: set once by tp_otlp_export_stop() */
    tp_otlp_stats stats; /* mu */
    /* Exporter thread only: the log throttle. */
    int64_t last_log_ns;
    uint64_t unlogged;
    bool failing;
    char resp[ERR_BODY_MAX + 1]; /* the start of the last response body */
    size_t resp_len;
};

/* ---- Stored traces --------------------------------------------------------------------- */

int tp_otlp_export_report_link(const char *base, const char *trace_id, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/t/%s", base, trace_id);
    return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

int tp_otlp_export_add_stored(tp_otlp_body *b, sqlite3 *db, int64_t rowid, const tp_tree *t,
                              const char *report_base, const tp_otlp_opts *o, tp_otlp_counts *ret,
                              char *err, size_t errsz)
{
    sqlite3_stmt *st = NULL;
    tp_tree *own = NULL;
    char url[512];
    int r = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, pid, host, python, status FROM traces WHERE rowid = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        r = tp_store_sqlite_err(db, sqlite3_errcode(db), "reading a trace", err, errsz);
        goto out;
    }
    sqlite3_bind_int64(st, 1, rowid);
    if (sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errsz, "trace %lld is gone", (long long)rowid);
        r = TP_ERR_NOT_FOUND;
        goto out;
    }
    if (!t) {
        r = tp_rebuild_tree(db, rowid, &own, err, errsz);
        if (r < 0)
            goto out;
        t = own;
    }
    const char *id = (const char *)sqlite3_column_text(st, 0);
    tp_otlp_trace tr = {
        .tree = t,
        .pid = sqlite3_column_int64(st, 1),
        .host = (const char *)sqlite3_column_text(st, 2),
        .python = (const char *)sqlite3_column_text(st, 3),
        .truncated = sqlite3_column_int(st, 4) == TP_TRACE_TRUNCATED,
    };
    if (report_base && id && tp_otlp_export_report_link(report_base, id, url, sizeof(url)) == 0)
        tr.url = url;
    r = tp_otlp_body_add(b, &tr, o, ret);
    if (r < 0)
        snprintf(err, errsz, "encoding trace %s: %s", id ? id : "?", tp_strerror(r));
out:
    sqlite3_finalize(st);
    tp_tree_free(own);
    return r;
}

/* ---- Configuration ----------------------------------------------------------------- */

int tp_otlp_export_check(const tp_otlp_config *cfg, char *err, size_t errsz)
{
    const char *e = cfg->endpoint;
    if (!e || (strncmp(e, "http://", 7) != 0 && strncmp(e, "https://", 8) != 0) ||
        strlen(e) > 900) {
        snprintf(err, errsz, "--otlp-endpoint must be an http:// or https:// URL");
        return -EINVAL;
    }
    if (strpbrk(e, "?#")) {
        snprintf(err, errsz,
                 "--otlp-endpoint takes no query or fragment (put credentials in "
                 "--otlp-header)");
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->nheaders; i++) {
        const char *h = cfg->headers[i], *eq = strchr(h, '='), *colon = strchr(h, ':');
        /* A colon in the name or a line break would forge other headers. */
        if (!eq || eq == h || (colon && colon < eq) || strpbrk(h, "\r\n")) {
            snprintf(err, errsz, "--otlp-header '%.60s' must be KEY=VALUE on one line", h);
            return -EINVAL;
        }
    }
    return 0;
}

static int build_url(tp_otlp *x)
{
    const char *e = x->cfg.endpoint;
    size_t n = strlen(e);
    while (n > 0 && e[n - 1] == '/')
        n--;
    /* The OTEL_EXPORTER_OTLP_ENDPOINT convention: a base URL gets the
     * signal's path; a URL that already names /v1/traces is used as is. */
    bool full = n >= 10 && memcmp(e + n - 10, "/v1/traces", 10) == 0;
    int w = snprintf(x->url, sizeof(x->url), "%.*s%s", (int)n, e, full ? "" : "/v1/traces");
    if (w < 0 || (size_t)w >= sizeof(x->url))
        return -ENAMETOOLONG;
    /* Credentials in the URL (http://user:password@host) stay out of the
     * log and of `tph status`, which every user may run. */
    const char *host = strstr(x->url, "://") + 3, *end = host + strcspn(host, "/");
    const char *at = memchr(host, '@', (size_t)(end - host));
    while (at && memchr(at + 1, '@', (size_t)(end - at - 1)))
        at = memchr(at + 1, '@', (size_t)(end - at - 1));
    snprintf(x->shown, sizeof(x->shown), "%.*s%s", (int)(host - x->url), x->url,
             at ? at + 1 : host);
    return 0;
}

static int build_headers(tp_otlp *x)
{
    char line[1024];
    struct curl_slist *l = curl_slist_append(NULL, x->cfg.format == TP_OTLP_JSON
                                                       ? "Content-Type: application/json"
                                                       : "Content-Type: application/x-protobuf");
    /* No "Expect: 100-continue" round trip before big bodies. */
    l = l ? curl_slist_append(l, "Expect:") : NULL;
    for (size_t i = 0; l && i < x->cfg.nheaders; i++) {
        const char *h = x->cfg.headers[i], *eq = strchr(h, '=');
        snprintf(line, sizeof(line), "%.*s: %s", (int)(eq - h), h, eq + 1);
        struct curl_slist *n = curl_slist_append(l, line);
        if (!n) {
            curl_slist_free_all(l);
            l = NULL;
        } else {
            l = n;
        }
    }
    x->hdrs = l;
    return l ? 0 : -ENOMEM;
}

/* ---- One request ---------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    tp_otlp *x = ud;
    size_t len = size * n, room = ERR_BODY_MAX - x->resp_len;
    memcpy(x->resp + x->resp_len, p, len < room ? len : room);
    x->resp_len += len < room ? len : room;
    x->resp[x->resp_len] = '\0';
    return len;
}

/* Lets tp_otlp_export_stop() end a request in flight at once. */
static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    tp_otlp *x = ud;
    return atomic_load(&x->stop) ? 1 : 0;
}

#define SEND_OK    0
#define SEND_RETRY 1 /* worth trying again */
#define SEND_FATAL 2 /* the receiver refused this body: retrying cannot help */

static int send_once(tp_otlp *x, const tp_buf *body, char *err, size_t errsz)
{
    CURL *c = x->curl;
    long status = 0;
    x->resp_len = 0;
    x->resp[0] = '\0';
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(err, errsz, "%s", curl_easy_strerror(rc));
        return SEND_RETRY;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return SEND_OK;
    for (size_t i = 0; i < x->resp_len; i++)
        if ((unsigned char)x->resp[i] < 0x20 || (unsigned char)x->resp[i] >= 0x7f)
            x->resp[i] = ' ';
    snprintf(err, errsz, "HTTP %ld%s%s", status, x->resp_len ? ": " : "", x->resp);
    /* The OTLP/HTTP specification names these as retryable. */
    return status == 429 || status == 502 || status == 503 || status == 504 ? SEND_RETRY
                                                                            : SEND_FATAL;
}

/* Sleep up to s seconds; false when stopped meanwhile. */
static bool pause_for(tp_otlp *x, double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)s;
    ts.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&x->mu);
    while (!atomic_load(&x->stop))
        if (pthread_cond_timedwait(&x->cond, &x->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&x->mu);
    return !atomic_load(&x->stop);
}

/* Returns SEND_OK, SEND_FATAL after the retries, or -ECANCELED when stopped. */
static int send_with_retries(tp_otlp *x, const tp_buf *body, char *err, size_t errsz)
{
    double delay = x->cfg.backoff_s;
    for (unsigned attempt = 0;; attempt++) {
        int r = send_once(x, body, err, errsz);
        pthread_mutex_lock(&x->mu);
        x->stats.requests++;
        if (r != SEND_OK)
            x->stats.failed_requests++;
        pthread_mutex_unlock(&x->mu);
        if (atomic_load(&x->stop))
            return -ECANCELED;
        if (r != SEND_RETRY)
            return r;
        if (attempt >= x->cfg.retries)
            return SEND_FATAL;
        if (!pause_for(x, delay))
            return -ECANCELED;
        delay = delay * 2 > MAX_BACKOFF_S ? MAX_BACKOFF_S : delay * 2;
        pthread_mutex_lock(&x->mu);
        x->stats.retries++;
        pthread_mutex_unlock(&x->mu);
    }
}

/* ---- Logging without flooding ---------------------------------------------------------- */

static void log_failure(tp_otlp *x, const char *err, uint32_t ntraces)
{
    int64_t now = tp_util_mono_ns();
    if (x->failing && now - x->last_log_ns < LOG_INTERVAL_NS) {
        x->unlogged++;
        return;
    }
    if (x->unlogged)
        fprintf(stderr,
                "tphd: OTLP export to %s failed: %s; %u traces lost (%llu more failed "
                "batches since the last message)\n",
                x->shown, err, ntraces, (unsigned long long)x->unlogged);
    else
        fprintf(stderr, "tphd: OTLP export to %s failed: %s; %u traces lost\n", x->shown, err,
                ntraces);
    x->failing = true;
    x->last_log_ns = now;
    x->unlogged = 0;
}

static void log_success(tp_otlp *x)
{
    if (!x->failing)
        return;
    fprintf(stderr, "tphd: OTLP export to %s works again\n", x->shown);
    x->failing = false;
    x->unlogged = 0;
}

/* ---- Marking traces ------------------------------------------------------------------- */

typedef struct mark_job {
    const int64_t *rowids;
    size_t n;
    int state;
} mark_job;

static int mark_fn(sqlite3 *db, tp_store_op *op, void *arg)
{
    mark_job *j = arg;
    sqlite3_stmt *st = NULL;
    int r = 0;
    (void)op;
    if (sqlite3_prepare_v2(db, "UPDATE traces SET otlp = ?2 WHERE rowid = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return TP_ERR_DB;
    for (size_t i = 0; i < j->n && r == 0; i++) {
        sqlite3_bind_int64(st, 1, j->rowids[i]);
        sqlite3_bind_int(st, 2, j->state);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = TP_ERR_DB;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return r;
}

static int mark(tp_otlp *x, const int64_t *rowids, size_t n, int state)
{
    if (n == 0)
        return 0;
    mark_job j = {rowids, n, state};
    char msg[200];
    int r = tp_store_call_sync(x->store, mark_fn, &j, msg, sizeof(msg));
    if (r < 0 && r != -ESHUTDOWN)
        fprintf(stderr, "tphd: OTLP export: cannot record the export state: %s\n", msg);
    return r;
}

/* ---- The thread -------------------------------------------------------------------------- */

typedef struct batch {
    int64_t rowids[256]; /* the traces in the body */
    uint32_t spans[256]; /* their span counts */
    size_t n;
    int64_t skipped[256]; /* filtered out */
    size_t nskipped;
    int64_t gone[256]; /* could not be rebuilt: counted lost */
    size_t ngone;
} batch;

static bool matches(const tp_otlp *x, const char *label, int64_t end_ns)
{
    if (x->cfg.label_glob && fnmatch(x->cfg.label_glob, label ? label : "", 0) != 0)
        return false;
    return end_ns >= x->cfg.min_duration_ns;
}

static void set_buffered(tp_otlp *x, size_t bytes)
{
    pthread_mutex_lock(&x->mu);
    x->stats.buffered_bytes = bytes;
    if (bytes > x->stats.max_buffered_bytes)
        x->stats.max_buffered_bytes = bytes;
    pthread_mutex_unlock(&x->mu);
}

/* Fill b and body with pending traces. Returns how many rows were looked at
 * (0: nothing pending), or a negative code. */
static int collect(tp_otlp *x, sqlite3 *db, batch *b, tp_otlp_body *body)
{
    sqlite3_stmt *st = NULL;
    char err[256];
    int seen = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT rowid, label, coalesce(end_ns, 0) FROM traces WHERE otlp = 1"
                           " ORDER BY rowid LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return TP_ERR_DB;
    sqlite3_bind_int(st, 1, (int)x->cfg.max_batch_traces);
    while (sqlite3_step(st) == SQLITE_ROW && !atomic_load(&x->stop)) {
        int64_t rowid = sqlite3_column_int64(st, 0);
        seen++;
        if (!matches(x, (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2))) {
            b->skipped[b->nskipped++] = rowid;
            continue;
        }
        tp_otlp_counts cnt = {0};
        int r = tp_otlp_export_add_stored(body, db, rowid, NULL, x->cfg.report_url, &x->cfg.opts,
                                          &cnt, err, sizeof(err));
        if (r == TP_ERR_NOT_FOUND)
            continue; /* deleted meanwhile */
        if (r < 0) {
            fprintf(stderr, "tphd: OTLP export: %s\n", err);
            b->gone[b->ngone++] = rowid;
            continue;
        }
        b->rowids[b->n] = rowid;
        b->spans[b->n++] = cnt.spans;
        set_buffered(x, body->buf.len);
        if (body->buf.len >= x->cfg.max_batch_bytes)
            break; /* the rest goes in the next request */
    }
    sqlite3_finalize(st);
    return seen;
}

static void account(tp_otlp *x, const batch *b, bool ok)
{
    uint64_t spans = 0;
    for (size_t i = 0; i < b->n; i++)
        spans += b->spans[i];
    pthread_mutex_lock(&x->mu);
    if (ok) {
        x->stats.exported_traces += b->n;
        x->stats.exported_spans += spans;
    } else {
        x->stats.lost_traces += b->n;
        x->stats.lost_spans += spans;
    }
    x->stats.lost_traces += b->ngone;
    x->stats.skipped_traces += b->nskipped;
    pthread_mutex_unlock(&x->mu);
}

/* One round: returns false when nothing was pending. */
static bool run_once(tp_otlp *x, batch *b, tp_otlp_body *body)
{
    sqlite3 *db = NULL;
    char err[256];
    memset(b, 0, sizeof(*b));
    tp_otlp_body_reset(body);
    if (tp_store_reader_get(x->store, &db, err, sizeof(err)) < 0) {
        fprintf(stderr, "tphd: OTLP export: %s\n", err);
        return false;
    }
    int seen = collect(x, db, b, body);
    tp_store_reader_put(x->store, db);
    if (seen <= 0)
        return false;
    if (mark(x, b->skipped, b->nskipped, TP_OTLP_EXPORT_SKIPPED) < 0 ||
        mark(x, b->gone, b->ngone, TP_OTLP_EXPORT_LOST) < 0)
        pause_for(x, IDLE_POLL_S); /* see below */
    if (b->n == 0 || atomic_load(&x->stop)) {
        account(x, b, false);
        return true;
    }
    int r = tp_otlp_body_finish(body);
    set_buffered(x, body->buf.len);
    if (r == 0)
        r = send_with_retries(x, &body->buf, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "out of memory");
    if (r == -ECANCELED)
        return false; /* stays pending for the next start */
    bool ok = r == SEND_OK;
    /* Unmarked, the batch would be picked (and sent) again at once: give
     * the database a moment to recover instead of spinning. */
    if (mark(x, b->rowids, b->n, ok ? TP_OTLP_EXPORT_EXPORTED : TP_OTLP_EXPORT_LOST) < 0)
        pause_for(x, IDLE_POLL_S);
    account(x, b, ok);
    pthread_mutex_lock(&x->mu);
    snprintf(x->stats.last_error, sizeof(x->stats.last_error), "%s", ok ? "" : err);
    pthread_mutex_unlock(&x->mu);
    if (ok)
        log_success(x);
    else
        log_failure(x, err, (uint32_t)b->n);
    tp_otlp_body_reset(body);
    set_buffered(x, 0);
    return true;
}

static void *export_thread(void *arg)
{
    tp_otlp *x = arg;
    batch *b = malloc(sizeof(*b));
    tp_otlp_body body;
    tp_otlp_body_init(&body, x->cfg.format);
    while (b && !atomic_load(&x->stop)) {
        if (run_once(x, b, &body))
            continue;
        /* Nothing pending: wait for the finalizer (or look again later). */
        pthread_mutex_lock(&x->mu);
        if (!x->wake && !atomic_load(&x->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)IDLE_POLL_S;
            pthread_cond_timedwait(&x->cond, &x->mu, &ts);
        }
        x->wake = false;
        pthread_mutex_unlock(&x->mu);
    }
    tp_otlp_body_free(&body);
    free(b);
    return NULL;
}

static void on_finalized(void *ud)
{
    tp_otlp *x = ud;
    pthread_mutex_lock(&x->mu);
    x->wake = true;
    pthread_cond_signal(&x->cond);
    pthread_mutex_unlock(&x->mu);
}

static int setup_curl(tp_otlp *x)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -ENOMEM;
    x->curl = c;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tracepatch-tphd");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(x->cfg.timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(x->cfg.timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    /* Only the endpoint's own protocols, no redirects to elsewhere. */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    return 0;
}

int tp_otlp_export_start(tp_otlp **ret, tp_store *store, const tp_otlp_config *cfg, char *err,
                         size_t errsz)
{
    err[0] = '\0';
    int r = tp_otlp_export_check(cfg, err, errsz);
    if (r < 0)
        return r;
    tp_otlp *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->store = store;
    x->cfg = *cfg;
    if (x->cfg.backoff_s <= 0)
        x->cfg.backoff_s = DEFAULT_BACKOFF_S;
    if (x->cfg.timeout_s <= 0)
        x->cfg.timeout_s = DEFAULT_TIMEOUT_S;
    if (!x->cfg.max_batch_bytes)
        x->cfg.max_batch_bytes = DEFAULT_BATCH_BYTES;
    if (!x->cfg.max_batch_traces || x->cfg.max_batch_traces > 256)
        x->cfg.max_batch_traces = DEFAULT_BATCH_TRACES;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cond, NULL);
    /* Main thread, before any other thread uses libcurl. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errsz, "cannot initialise libcurl");
        r = -ENOMEM;
    }
    if (r == 0 && build_url(x) < 0) {
        snprintf(err, errsz, "--otlp-endpoint is too long");
        r = -EINVAL;
    }
    if (r == 0)
        r = build_headers(x);
    if (r == 0)
        r = setup_curl(x);
    if (r == 0 && pthread_create(&x->thread, NULL, export_thread, x) != 0)
        r = -EAGAIN;
    if (r < 0) {
        if (!err[0])
            snprintf(err, errsz, "%s", tp_strerror(r));
        curl_easy_cleanup(x->curl);
        curl_slist_free_all(x->hdrs);
        free(x);
        return r;
    }
    tp_finalize_set_export(on_finalized, x);
    *ret = x;
    return 0;
}

void tp_otlp_export_stop(tp_otlp *x)
{
    if (!x)
        return;
    tp_finalize_set_export(NULL, NULL);
    pthread_mutex_lock(&x->mu);
    atomic_store(&x->stop, true);
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->thread, NULL);
    curl_easy_cleanup(x->curl);
    curl_slist_free_all(x->hdrs);
    curl_global_cleanup();
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

void tp_otlp_export_stats(tp_otlp *x, tp_otlp_stats *ret)
{
    pthread_mutex_lock(&x->mu);
    *ret = x->stats;
    pthread_mutex_unlock(&x->mu);
}

const char *tp_otlp_export_url(const tp_otlp *x)
{
    return x->shown;
}

const tp_otlp_opts *tp_otlp_export_span_opts(const tp_otlp *x)
{
    return &x->cfg.opts;
}
