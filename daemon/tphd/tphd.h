/* tphd's top level: the configuration from the command line and the object
 * that ties the loop, the store, the socket server and the HTTP server
 * together. The HTTP server (issue 5) hooks in through tphd_http_start() and
 * tphd_http_stop() when it is built in. */
#ifndef TPHD_H
#define TPHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "server.h"
#include "store.h"

#define TPHD_DEFAULT_HTTP_PORT 7345

/** What the command line asked for (strings point into argv/environ). */
typedef struct tphd_config {
    const char *socket_path; /* NULL with listen_fd >= 0 */
    int listen_fd;           /* socket from systemd, or -1 */
    const char *db_path;
    bool http;              /* serve HTTP */
    const char *http_spec;  /* "HOST:PORT" from --http, or NULL for the default */
    bool http_allow_remote; /* --http-allow-remote: a non-loopback --http address */
    double retention_s;     /* 0 = keep */
    uint64_t max_db_bytes;  /* 0 = no limit */
    size_t max_queue;       /* 0 = default */
    double frame_timeout_s; /* 0 = default */
    bool verbose;
} tphd_config;

/** The running daemon: what the HTTP server needs to reach (loop, store,
 *  server) and its own handle. Loop thread only, except where noted. */
typedef struct tphd {
    uv_loop_t loop;
    const tphd_config *cfg;
    tp_store *store;
    tp_server *server;
    void *http; /* the HTTP server (tp_http *) when running */
    uv_signal_t sigterm, sigint;
    bool stopping;
    int pending_stops; /* server and HTTP shutdowns still running */
    int exit_code;
} tphd;

/** Open everything, serve until SIGTERM/SIGINT, shut down cleanly. Returns
 *  the process exit status (0 after a clean shutdown, 1 when start-up failed). */
int tphd_run(const tphd_config *cfg);

/** Start the HTTP server on d->loop per d->cfg (called once the socket
 *  server listens). Returns 0 or a code after printing the reason. */
int tphd_http_start(tphd *d);
/** Check an --http value ("HOST:PORT", "[V6]:PORT", "HOST", ":PORT").
 *  Returns 0 or -EINVAL. */
int tphd_http_parse(const char *spec, char *host, size_t hostsz, uint16_t *ret_port);
/** Stop it; calls done(d) on the loop when it has stopped. */
void tphd_http_stop(tphd *d, void (*done)(void *d));

#endif
