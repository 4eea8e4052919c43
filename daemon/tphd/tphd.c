/* tphd: the tracepatch daemon. Parses options, prepares directories, opens
 * the store, runs the socket server (and the HTTP server when built in) on
 * one libuv loop, talks to systemd (socket activation, sd_notify) and shuts
 * down cleanly on SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <uv.h>

#include "paths.h"
#include "server.h"
#include "store.h"
#include "tp_err.h"
#include "tp_version.h"
#include "tphd.h"
#include "util.h"
#include "wire.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: tphd [OPTIONS]\n"
            "\n"
            "The tracepatch daemon: stores traces sent by the tracepatch extension in SQLite\n"
            "and answers tph's queries (and the report UI) about them.\n"
            "\n"
            "Options:\n"
            "  --socket PATH         Unix socket to listen on (default: $TRACEPATCH_SOCKET,\n"
            "                        else $XDG_RUNTIME_DIR/tracepatch/tphd.sock, else\n"
            "                        /tmp/tracepatch-$UID/tphd.sock)\n"
            "  --db PATH             database file (default: $XDG_STATE_HOME/tracepatch/\n"
            "                        traces.db, else ~/.local/state/tracepatch/traces.db)\n"
            "  --http HOST:PORT      serve the report UI there (default 127.0.0.1:%d)\n"
            "  --http-allow-remote   allow a non-loopback --http address (reports and the\n"
            "                        token-protected API become reachable from the network)\n"
            "  --no-http             do not serve HTTP\n"
            "  --retention DURATION  delete traces older than this (e.g. 7d, 12h; default: keep)\n"
            "  --max-db-size SIZE    delete the oldest traces beyond this size (e.g. 1G, 500M)\n"
            "  --max-queue SIZE      memory for batches waiting to be written (default 256M);\n"
            "                        clients beyond it are slowed down, never dropped by tphd\n"
            "  --frame-timeout SECS  close a client whose frame does not arrive in time (30)\n"
            "  --idle-timeout SECS   close a client that sends nothing for this long (600)\n"
            "  --max-buffered SIZE   memory for partial frames of all clients (default 256M);\n"
            "                        a frame beyond it is refused with ERROR ENOBUFS\n"
            "  --max-query-memory S  memory for the replies of the queries running at once\n"
            "                        (default 256M; 4M each); more wait for their turn\n"
            "  --max-connections N   clients at once (default: the descriptor limit, raised\n"
            "                        to its hard limit, less 256); more are refused (EMFILE)\n"
            "  --otlp-endpoint URL   forward finished traces to this OTLP/HTTP receiver as\n"
            "                        OpenTelemetry spans (e.g. http://127.0.0.1:4318; /v1/traces\n"
            "                        is added unless the URL ends with it)\n"
            "  --otlp-protocol P     http/protobuf (default) or http/json\n"
            "  --otlp-header K=V     add this header to every export request (repeatable)\n"
            "  --otlp-calls WHICH    all (default), slow (calls of at least --otlp-slow, with\n"
            "                        their callers) or roots (top-level calls only)\n"
            "  --otlp-slow DURATION  what slow means (default 1ms)\n"
            "  --otlp-max-spans N    call spans per trace (default 1000); a bigger trace\n"
            "                        exports its slowest subtrees and says so\n"
            "  --otlp-label GLOB     export only traces whose label matches\n"
            "  --otlp-min-duration D export only traces lasting at least D (e.g. 100ms)\n"
            "  --otlp-service-name N service.name of the spans (default: the trace's label)\n"
            "  --otlp-retries N      retries of a failed request, with backoff (default 4)\n"
            "  --otlp-backoff SECS   delay before the first retry, doubled each time (0.5)\n"
            "  --otlp-timeout SECS   give up on one request after this long (10)\n"
            "  --foreground          stay in the foreground (the default; tphd never forks)\n"
            "  -v, --verbose         log connections and protocol errors\n"
            "  -h, --help            show this help\n"
            "  -V, --version         show the version\n",
            TPHD_DEFAULT_HTTP_PORT);
}

enum {
    OPT_SOCKET = 256,
    OPT_DB,
    OPT_HTTP,
    OPT_NO_HTTP,
    OPT_HTTP_ALLOW_REMOTE,
    OPT_RETENTION,
    OPT_MAX_DB,
    OPT_MAX_QUEUE,
    OPT_FRAME_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_MAX_BUFFERED,
    OPT_MAX_QUERY_MEM,
    OPT_MAX_CONNS,
    OPT_FOREGROUND,
    OPT_OTLP_ENDPOINT,
    OPT_OTLP_PROTOCOL,
    OPT_OTLP_HEADER,
    OPT_OTLP_CALLS,
    OPT_OTLP_SLOW,
    OPT_OTLP_MAX_SPANS,
    OPT_OTLP_LABEL,
    OPT_OTLP_MIN_DURATION,
    OPT_OTLP_SERVICE,
    OPT_OTLP_RETRIES,
    OPT_OTLP_BACKOFF,
    OPT_OTLP_TIMEOUT,
};

static int bad_value(const char *opt, const char *value, const char *hint)
{
    fprintf(stderr, "tphd: invalid %s '%s' (%s)\nTry 'tphd --help'.\n", opt, value, hint);
    return EXIT_USAGE;
}

/* One --otlp-* option into cfg->otlp. Returns 0, or EXIT_USAGE after the message. */
static int parse_otlp(int opt, const char *v, tphd_config *cfg)
{
    tp_otlp_config *o = &cfg->otlp;
    double d;
    char *end;
    unsigned long n;
    switch (opt) {
    case OPT_OTLP_ENDPOINT:
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return bad_value("--otlp-endpoint", v, "use an http:// or https:// URL");
        if (strpbrk(v, "?#"))
            return bad_value("--otlp-endpoint", v,
                             "no query or fragment; put credentials in --otlp-header");
        o->endpoint = v;
        return 0;
    case OPT_OTLP_PROTOCOL:
        if (strcmp(v, "http/protobuf") == 0)
            o->format = TP_OTLP_PROTOBUF;
        else if (strcmp(v, "http/json") == 0)
            o->format = TP_OTLP_JSON;
        else
            return bad_value("--otlp-protocol", v, "http/protobuf or http/json");
        return 0;
    case OPT_OTLP_HEADER: {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || strpbrk(v, "\r\n") || (strchr(v, ':') && strchr(v, ':') < eq))
            return bad_value("--otlp-header", v, "use KEY=VALUE");
        if (o->nheaders == sizeof(cfg->otlp_headers) / sizeof(cfg->otlp_headers[0])) {
            fprintf(stderr, "tphd: too many --otlp-header options\n");
            return EXIT_USAGE;
        }
        cfg->otlp_headers[o->nheaders++] = v;
        o->headers = cfg->otlp_headers;
        return 0;
    }
    case OPT_OTLP_CALLS:
        if (strcmp(v, "all") == 0)
            o->opts.calls = TP_OTLP_CALLS_ALL;
        else if (strcmp(v, "slow") == 0)
            o->opts.calls = TP_OTLP_CALLS_SLOW;
        else if (strcmp(v, "roots") == 0)
            o->opts.calls = TP_OTLP_CALLS_ROOTS;
        else
            return bad_value("--otlp-calls", v, "all, slow or roots");
        return 0;
    case OPT_OTLP_SLOW:
    case OPT_OTLP_MIN_DURATION:
        if (tp_util_parse_duration(v, &d) < 0 || d < 0)
            return bad_value(opt == OPT_OTLP_SLOW ? "--otlp-slow" : "--otlp-min-duration", v,
                             "use e.g. 1ms, 250ms, 2s");
        if (opt == OPT_OTLP_SLOW)
            o->opts.slow_ns = (int64_t)(d * 1e9);
        else
            o->min_duration_ns = (int64_t)(d * 1e9);
        return 0;
    case OPT_OTLP_MAX_SPANS:
    case OPT_OTLP_RETRIES:
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-' ||
            (opt == OPT_OTLP_MAX_SPANS ? n < 1 || n > 1000000 : n > 100))
            return bad_value(opt == OPT_OTLP_MAX_SPANS ? "--otlp-max-spans" : "--otlp-retries", v,
                             opt == OPT_OTLP_MAX_SPANS ? "1 to 1000000" : "0 to 100");
        if (opt == OPT_OTLP_MAX_SPANS)
            o->opts.max_spans = (uint32_t)n;
        else
            o->retries = (unsigned)n;
        return 0;
    case OPT_OTLP_LABEL:
        o->label_glob = v;
        return 0;
    case OPT_OTLP_SERVICE:
        if (!*v)
            return bad_value("--otlp-service-name", v, "not empty");
        o->opts.service_name = v;
        return 0;
    case OPT_OTLP_BACKOFF:
    case OPT_OTLP_TIMEOUT:
        if (tp_util_parse_duration(v, &d) < 0 || d <= 0 || d > 3600)
            return bad_value(opt == OPT_OTLP_BACKOFF ? "--otlp-backoff" : "--otlp-timeout", v,
                             "use e.g. 0.5s, 10s");
        if (opt == OPT_OTLP_BACKOFF)
            o->backoff_s = d;
        else
            o->timeout_s = d;
        return 0;
    }
    return EXIT_USAGE;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, tphd_config *cfg)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"db", required_argument, NULL, OPT_DB},
        {"http", required_argument, NULL, OPT_HTTP},
        {"no-http", no_argument, NULL, OPT_NO_HTTP},
        {"http-allow-remote", no_argument, NULL, OPT_HTTP_ALLOW_REMOTE},
        {"retention", required_argument, NULL, OPT_RETENTION},
        {"max-db-size", required_argument, NULL, OPT_MAX_DB},
        {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
        {"frame-timeout", required_argument, NULL, OPT_FRAME_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"max-buffered", required_argument, NULL, OPT_MAX_BUFFERED},
        {"max-query-memory", required_argument, NULL, OPT_MAX_QUERY_MEM},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
        {"foreground", no_argument, NULL, OPT_FOREGROUND},
        {"otlp-endpoint", required_argument, NULL, OPT_OTLP_ENDPOINT},
        {"otlp-protocol", required_argument, NULL, OPT_OTLP_PROTOCOL},
        {"otlp-header", required_argument, NULL, OPT_OTLP_HEADER},
        {"otlp-calls", required_argument, NULL, OPT_OTLP_CALLS},
        {"otlp-slow", required_argument, NULL, OPT_OTLP_SLOW},
        {"otlp-max-spans", required_argument, NULL, OPT_OTLP_MAX_SPANS},
        {"otlp-label", required_argument, NULL, OPT_OTLP_LABEL},
        {"otlp-min-duration", required_argument, NULL, OPT_OTLP_MIN_DURATION},
        {"otlp-service-name", required_argument, NULL, OPT_OTLP_SERVICE},
        {"otlp-retries", required_argument, NULL, OPT_OTLP_RETRIES},
        {"otlp-backoff", required_argument, NULL, OPT_OTLP_BACKOFF},
        {"otlp-timeout", required_argument, NULL, OPT_OTLP_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    uint64_t size;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vhV", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET:
            cfg->socket_path = optarg;
            break;
        case OPT_DB:
            cfg->db_path = optarg;
            break;
        case OPT_HTTP: {
            char host[256];
            uint16_t port;
            if (tphd_http_parse(optarg, host, sizeof(host), &port) < 0)
                return bad_value("--http", optarg, "use HOST:PORT, e.g. 127.0.0.1:7345");
            cfg->http_spec = optarg;
            cfg->http = true;
            break;
        }
        case OPT_NO_HTTP:
            cfg->http = false;
            break;
        case OPT_HTTP_ALLOW_REMOTE:
            cfg->http_allow_remote = true;
            break;
        case OPT_RETENTION:
            if (tp_util_parse_duration(optarg, &cfg->retention_s) < 0 || cfg->retention_s <= 0)
                return bad_value("--retention", optarg, "use e.g. 7d, 12h, 30m");
            break;
        case OPT_MAX_DB:
            if (tp_util_parse_size(optarg, &cfg->max_db_bytes) < 0 || cfg->max_db_bytes == 0)
                return bad_value("--max-db-size", optarg, "use e.g. 1G, 500M");
            break;
        case OPT_MAX_QUEUE:
            if (tp_util_parse_size(optarg, &size) < 0 || size < (1u << 20) || size > SIZE_MAX / 2)
                return bad_value("--max-queue", optarg, "use e.g. 256M; at least 1M");
            cfg->max_queue = (size_t)size;
            break;
        case OPT_FRAME_TIMEOUT:
            if (tp_util_parse_duration(optarg, &cfg->frame_timeout_s) < 0 ||
                cfg->frame_timeout_s <= 0)
                return bad_value("--frame-timeout", optarg, "use e.g. 30s");
            break;
        case OPT_IDLE_TIMEOUT:
            if (tp_util_parse_duration(optarg, &cfg->idle_timeout_s) < 0 ||
                cfg->idle_timeout_s <= 0)
                return bad_value("--idle-timeout", optarg, "use e.g. 600s, 10m");
            break;
        case OPT_MAX_BUFFERED:
            if (tp_util_parse_size(optarg, &size) < 0 || size < (1u << 20) || size > SIZE_MAX / 2)
                return bad_value("--max-buffered", optarg, "use e.g. 256M; at least 1M");
            cfg->max_buffered = (size_t)size;
            break;
        case OPT_MAX_QUERY_MEM:
            if (tp_util_parse_size(optarg, &size) < 0 || size < TP_SERVER_QUERY_RESERVE ||
                size > SIZE_MAX / 2)
                return bad_value("--max-query-memory", optarg, "use e.g. 256M; at least 4M");
            cfg->max_query_mem = (size_t)size;
            break;
        case OPT_MAX_CONNS: {
            char *end;
            long long n = strtoll(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end || n < 1 || n > (1ll << 30))
                return bad_value("--max-connections", optarg, "a number of connections, e.g. 1000");
            cfg->max_conns = n;
            break;
        }
        case OPT_FOREGROUND:
            break;
        case OPT_OTLP_ENDPOINT ... OPT_OTLP_TIMEOUT:
            if (parse_otlp(c, optarg, cfg) != 0)
                return EXIT_USAGE;
            break;
        case 'v':
            cfg->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tphd %s (protocol %u)\n", TP_VERSION, TP_WIRE_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "tphd: option '%s' needs a value\nTry 'tphd --help'.\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "tphd: unknown option '%s'\nTry 'tphd --help'.\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (!cfg->otlp.endpoint && (cfg->otlp.nheaders || cfg->otlp.label_glob)) {
        fprintf(stderr, "tphd: --otlp-* options need --otlp-endpoint\nTry 'tphd --help'.\n");
        return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "tphd: unexpected argument '%s'\nTry 'tphd --help'.\n", argv[optind]);
        return EXIT_USAGE;
    }
    return -1;
}

/* Every client holds a descriptor: take the hard limit (systemd's default
 * soft limit of 1024 would cap tphd near a thousand clients). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t want = rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "tphd: cannot raise the descriptor limit to %llu: %s\n",
                (unsigned long long)want, strerror(errno));
}

/* Creates the parent directory of path (0700 for the parts created here). */
static int prepare_dir(const char *what, const char *path)
{
    char dir[PATH_MAX];
    int r = tp_util_dirname(path, dir, sizeof(dir));
    if (r == 0)
        r = tp_util_mkdir_p(dir, 0700);
    if (r < 0) {
        fprintf(stderr, "tphd: cannot create the %s directory %s: %s\n", what, dir, strerror(-r));
        return r;
    }
    char why[PATH_MAX + 256];
    r = tp_util_dir_check_private(dir, why, sizeof(why));
    if (r < 0)
        fprintf(stderr, "tphd: refusing the %s directory %s\n", what, why);
    return r;
}

/* Socket activation: one listening Unix stream socket from systemd. */
static int systemd_socket(void)
{
    int n = sd_listen_fds(1);
    if (n <= 0)
        return -1;
    if (n > 1)
        fprintf(stderr, "tphd: systemd passed %d sockets; using the first\n", n);
    if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
        fprintf(stderr, "tphd: the socket from systemd is not a listening Unix stream socket\n");
        return -2;
    }
    return SD_LISTEN_FDS_START;
}

static int resolve_paths(tphd_config *cfg, char *sock, size_t socksz, char *db, size_t dbsz)
{
    if (!cfg->socket_path && cfg->listen_fd < 0) {
        const char *env = getenv(TP_PATHS_SOCKET_ENV);
        if (env && *env) {
            cfg->socket_path = env;
        } else if (tp_paths_user_socket(sock, socksz) < 0) {
            fprintf(stderr, "tphd: the default socket path is too long; use --socket\n");
            return 1;
        } else {
            cfg->socket_path = sock;
        }
    }
    if (!cfg->db_path) {
        if (tp_paths_user_db(db, dbsz) < 0) {
            fprintf(stderr, "tphd: no default database location (neither XDG_STATE_HOME nor "
                            "HOME is set); use --db\n");
            return 1;
        }
        cfg->db_path = db;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tphd_config cfg = {
        .listen_fd = -1,
        .http = true,
        .otlp = {.retries = 4, .opts = {.slow_ns = TP_OTLP_DEFAULT_SLOW_NS}},
    };
    char sock[TP_PATHS_SOCKET_MAX], db[PATH_MAX];
    int r = parse_args(argc, argv, &cfg);
    if (r >= 0)
        return r;
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* past a file size limit, write() fails with EFBIG */
    /* Big blocks (a rebuilt tree's node array, a batch) come from mmap and go
     * back to the system when freed. glibc would otherwise raise this
     * threshold after the first such free and keep the memory in the heap,
     * where only malloc_trim() (which stalls every thread) returns it. */
    mallopt(M_MMAP_THRESHOLD, 512 * 1024);
    cfg.listen_fd = systemd_socket();
    if (cfg.listen_fd == -2)
        return 1;
    if (resolve_paths(&cfg, sock, sizeof(sock), db, sizeof(db)) != 0)
        return 1;
    if (cfg.listen_fd < 0 && prepare_dir("socket", cfg.socket_path) < 0)
        return 1;
    if (prepare_dir("database", cfg.db_path) < 0)
        return 1;
    return tphd_run(&cfg);
}
