/* The daemon's life: start-up in order (store, socket server, HTTP), the
 * signals that end it, and a shutdown that loses nothing acknowledged. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "tcache.h"
#include "tp_err.h"
#include "tp_version.h"
#include "tphd.h"

static void on_handle_closed(uv_handle_t *h)
{
}

static void stopped_one(void *ud)
{
    tphd *d = ud;
    if (--d->pending_stops > 0)
        return;
    /* Everything that could touch the store is done; the loop ends once the
     * signal handles are closed. */
    for (int i = 0; i < d->nsigs; i++)
        uv_close((uv_handle_t *)&d->sigs[i], on_handle_closed);
}

/* Every signal whose default action would end tphd without a word is
 * either a logged, clean stop or a logged no-op. SIGHUP stops: tphd logs to
 * stderr (the journal under systemd) and has no configuration to re-read, and
 * a terminal that hangs up should not leave a daemon running detached (use
 * systemd or nohup for that). SIGQUIT also stops cleanly rather than dumping
 * core. SIGPWR (the power is failing) and SIGXCPU (past the soft CPU limit;
 * SIGKILL follows at the hard one) stop too: both say the end is near, and
 * a clean stop loses nothing. Signals nothing in tphd uses (the timers, I/O
 * readiness, the real-time ones) change nothing. SIGPIPE and SIGXFSZ are
 * ignored in main() so that writes fail with EPIPE and EFBIG instead (a log
 * line per SIGXFSZ would be a write past the limit, and so another one).
 * The faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS)
 * keep their default: a handler run later on the loop would return to the
 * instruction that faulted. */
static const struct {
    int signum;
    bool stops;
} tphd_signals[] = {
    {SIGTERM, true},    {SIGINT, true},     {SIGHUP, true},   {SIGQUIT, true},
    {SIGPWR, true},     {SIGXCPU, true},    {SIGUSR1, false}, {SIGUSR2, false},
    {SIGALRM, false},   {SIGVTALRM, false}, {SIGPROF, false}, {SIGIO, false},
#ifdef SIGSTKFLT
    {SIGSTKFLT, false},
#endif
};

#define NFIXED (sizeof(tphd_signals) / sizeof(tphd_signals[0]))
_Static_assert(NFIXED + 32 <= TPHD_NSIGNALS, "TPHD_NSIGNALS holds the list and SIGRTMIN..SIGRTMAX");

static bool signal_stops(int signum)
{
    for (size_t i = 0; i < NFIXED; i++)
        if (tphd_signals[i].signum == signum)
            return tphd_signals[i].stops;
    return false; /* SIGRTMIN..SIGRTMAX */
}

/* Stops HTTP and the server; the loop ends once both are done. */
static void begin_stop(tphd *d)
{
    d->stopping = true;
    d->pending_stops = 1;
    if (d->http) {
        d->pending_stops++;
        tphd_http_stop(d, stopped_one);
    }
    tp_server_shutdown(d->server, stopped_one, d);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    tphd *d = sig->data;
    (void)sig;
    if (!signal_stops(signum)) {
        fprintf(stderr,
                "tphd: %s: ignored (only SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPWR and SIGXCPU stop "
                "tphd)\n",
                strsignal(signum));
        return;
    }
    if (d->stopping) {
        fprintf(stderr, "tphd: second %s: exiting at once\n", strsignal(signum));
        _exit(1);
    }
    fprintf(stderr, "tphd: %s: stopping\n", strsignal(signum));
    sd_notify(0, "STOPPING=1\nSTATUS=Stopping: writing what is queued");
    begin_stop(d);
}

static void log_start(const tphd *d, const tp_store_info *info)
{
    const tphd_config *c = d->cfg;
    fprintf(stderr, "tphd %s: listening on %s, database %s (%lld traces", TP_VERSION,
            c->listen_fd >= 0 ? "the socket from systemd" : c->socket_path, c->db_path,
            (long long)info->traces);
    if (info->schema_from > 0 && info->schema_from < TP_STORE_SCHEMA)
        fprintf(stderr, ", schema migrated from %d", info->schema_from);
    if (info->truncated_now > 0)
        fprintf(stderr, ", %lld left open by a crash marked truncated",
                (long long)info->truncated_now);
    fprintf(stderr, ")\n");
}

/* After HTTP: the spans link to the report UI when there is one. */
static int start_otlp(tphd *d)
{
    char err[256];
    tp_query_env env;
    tp_otlp_config oc = d->cfg->otlp;
    tp_server_query_env(d->server, 0, &env);
    oc.report_url = env.http_url;
    int r = tp_otlp_export_start(&d->otlp, d->store, &oc, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "tphd: cannot start the OTLP exporter: %s\n", err);
        return r;
    }
    tp_server_set_otlp(d->server, d->otlp);
    fprintf(stderr, "tphd: exporting traces to %s (%s)\n", tp_otlp_export_url(d->otlp),
            oc.format == TP_OTLP_JSON ? "http/json" : "http/protobuf");
    return 0;
}

/* Installed before anything is opened or accepted: a signal that arrives
 * while tphd starts is then handled (once the loop runs) instead of killing
 * it with the default action. */
static void install_one(tphd *d, int signum)
{
    uv_signal_t *h = &d->sigs[d->nsigs++];
    uv_signal_init(&d->loop, h);
    h->data = d;
    uv_signal_start(h, on_signal, signum);
}

static void install_signals(tphd *d)
{
    for (size_t i = 0; i < NFIXED; i++)
        install_one(d, tphd_signals[i].signum);
    /* SIGRTMIN is a function in glibc (it keeps the first few for threads). */
    for (int signum = SIGRTMIN; signum <= SIGRTMAX && d->nsigs < TPHD_NSIGNALS; signum++)
        install_one(d, signum);
}

static int start(tphd *d)
{
    const tphd_config *c = d->cfg;
    char err[512];
    tp_store_info info;
    install_signals(d);
    tp_server_opts so = {
        .socket_path = c->socket_path,
        .listen_fd = c->listen_fd,
        .max_queue = c->max_queue,
        .frame_timeout_s = c->frame_timeout_s,
        .idle_timeout_s = c->idle_timeout_s,
        .max_buffered = c->max_buffered,
        .max_query_mem = c->max_query_mem,
        .max_conns = c->max_conns,
        .retention_s = c->retention_s,
        .max_db_bytes = c->max_db_bytes,
        .verbose = c->verbose,
    };
    int r = tp_server_new(&d->loop, &so, &d->server);
    if (r < 0) {
        fprintf(stderr, "tphd: %s\n", tp_strerror(r));
        return r;
    }
    tp_store_opts sto = {.path = c->db_path,
                         .done = tp_server_store_done,
                         .done_ud = d->server,
                         .max_bytes = c->max_db_bytes};
    r = tp_store_open(&sto, &d->store, &info, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "tphd: cannot open the database %s: %s\n", c->db_path, err);
        return r;
    }
    tp_server_set_store(d->server, d->store);
    r = tp_server_listen(d->server, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "tphd: %s\n", err);
        return r;
    }
    log_start(d, &info);
    if (c->http) {
        r = tphd_http_start(d);
        if (r < 0)
            return r;
    }
    if (c->otlp.endpoint) {
        r = start_otlp(d);
        if (r < 0)
            return r;
    }
    sd_notifyf(0, "READY=1\nSTATUS=Listening on %s; %lld traces stored",
               c->listen_fd >= 0 ? "the systemd socket" : c->socket_path, (long long)info.traces);
    return 0;
}

int tphd_run(const tphd_config *cfg)
{
    tphd *d = calloc(1, sizeof(*d));
    if (!d) {
        fprintf(stderr, "tphd: out of memory\n");
        return 1;
    }
    d->cfg = cfg;
    uv_loop_init(&d->loop);
    int rc = 0;
    if (start(d) < 0) {
        /* Start-up failed (the socket may already listen and the finalizer
         * read the store): stop as a signal would, so that no thread still
         * uses the store when it is closed and the socket file goes. */
        rc = 1;
        if (!d->server) {
            free(d);
            return rc;
        }
        begin_stop(d);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    /* The exporter reads and marks through the store: it stops first. A
     * request in flight is abandoned; its traces stay pending. */
    tp_server_set_otlp(d->server, NULL);
    tp_otlp_export_stop(d->otlp);
    d->otlp = NULL;
    tp_tcache_clear();
    tp_store_close(d->store);
    d->store = NULL;
    tp_server_free(d->server);
    int lr = uv_loop_close(&d->loop);
    if (lr != 0)
        fprintf(stderr, "tphd: loop closed with handles open (%s)\n", uv_strerror(lr));
    if (rc == 0)
        fprintf(stderr, "tphd: stopped\n");
    free(d);
    return rc;
}
