/* tph, the command-line client: what its source files share.
 *
 * tph.c parses the global options and dispatches; tph_args.c holds the
 * option-parsing helpers every command uses; tph_client.c talks to tphd;
 * tph_query.c holds the commands that only make sense with a daemon (logs,
 * open, clean, status, import); tph_view.c the ones that also work on JSON
 * files (tree, stats, diff, export); tph_fmt.c turns the daemon's JSON into
 * tables. Everything here prints: tph is the boundary where errors become
 * messages and exit codes. */
#ifndef TPH_H
#define TPH_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "paths.h"
#include "tph_client.h"
#include "tree.h"

#define TPH_EXIT_OK    0 /* success */
#define TPH_EXIT_FAIL  1 /* the command ran and failed (no daemon, bad file, not found) */
#define TPH_EXIT_USAGE 2 /* the command line is wrong */

#define TPH_TIMEOUT_S 10.0 /* default wait for tphd; TPH_TIMEOUT overrides */

/* Long-only option values shared by every command (above any char). */
#define TPH_OPT_HELP   0x100 /* --help */
#define TPH_OPT_JSON   0x101 /* --json */
#define TPH_OPT_SOCKET 0x102 /* --socket PATH */
#define TPH_OPT_FIRST  0x110 /* first value free for a command's own options */

/* The options every command accepts besides its own (spread into each
 * command's getopt table). */
#define TPH_COMMON_OPTS                                                                            \
    {"help", no_argument, NULL, TPH_OPT_HELP}, {"json", no_argument, NULL, TPH_OPT_JSON},          \
    {                                                                                              \
        "socket", required_argument, NULL, TPH_OPT_SOCKET                                          \
    }

typedef struct tph_ctx tph_ctx;

/** A command: its name, entry point and help. run gets argv with argv[0]
 *  the command name and returns a TPH_EXIT_* code. */
typedef struct tph_cmd {
    const char *name;
    int (*run)(tph_ctx *ctx, int argc, char **argv);
    const char *usage;   /* "tph tree [OPTIONS] ID|FILE" */
    const char *summary; /* one line for `tph help` */
    const char *help;    /* the option list and notes for `tph help CMD` */
} tph_cmd;

/** State shared by the whole run: global options and the lazy connection. */
struct tph_ctx {
    const tph_cmd *cmd;     /* the command being run */
    const char *socket_opt; /* --socket, or NULL */
    char socket[TP_PATHS_SOCKET_MAX + 256];
    bool json;          /* --json */
    double timeout_s;   /* per wait for tphd */
    tph_client *client; /* NULL until the first query */
};

/* ---- tph.c --------------------------------------------------------------- */

/** Print "tph: <message>" to stderr; returns TPH_EXIT_FAIL. */
int tph_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Print "tph: <message>", the command's usage line and a pointer to its
 *  help to stderr; returns TPH_EXIT_USAGE. */
int tph_usage(const tph_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Print a command's full help to stdout; returns TPH_EXIT_OK. */
int tph_help(const tph_cmd *cmd);
/** Write n bytes to stdout, adding a newline when text does not end in one.
 *  Returns TPH_EXIT_OK, or TPH_EXIT_FAIL (with a message) when stdout fails. */
int tph_print(const char *text, size_t n);

/* ---- tph_args.c ---------------------------------------------------------- */

#define TPH_OWN  (-2) /* tph_common_opt: the command's own option, handle it */
#define TPH_NEXT (-1) /* tph_common_opt: handled, keep parsing */

/** Handle a getopt_long result every command shares (--help, --json,
 *  --socket, unknown options, missing arguments). Returns TPH_OWN, TPH_NEXT,
 *  or an exit code to return at once: TPH_EXIT_OK after --help printed the
 *  help, TPH_EXIT_USAGE after a usage error was reported. */
int tph_common_opt(tph_ctx *ctx, int c, char **argv);
/** Reset getopt for a new argv (GNU: optind = 0 reinitialises). */
void tph_getopt_reset(void);

/** Parse a duration: "90s", "15m", "1h", "7d", "2w", "1h30m", or plain
 *  seconds. Returns 0 and the seconds, or -EINVAL. */
int tph_parse_duration(const char *s, int64_t *ret_seconds);
/** Parse a non-negative decimal integer up to max. Returns 0 or -EINVAL. */
int tph_parse_uint(const char *s, int64_t max, int64_t *ret);

/** True when arg names a trace file rather than a trace ID: "-" (stdin),
 *  an existing path, or anything ending in ".json". */
bool tph_is_file_arg(const char *arg);

/** Read a whole file ("-" is stdin) into a NUL-terminated malloc'd buffer.
 *  On failure prints "tph: PATH: reason" and returns TPH_EXIT_FAIL. */
int tph_read_file(const char *path, char **ret_text, size_t *ret_len);

/* ---- the daemon connection (tph.c, tph_query.c) ------------------------- */

/** Run one query against the daemon, connecting on first use. On a transport
 *  failure or a failed reply prints the message and returns TPH_EXIT_FAIL;
 *  otherwise TPH_EXIT_OK and *ret (free with tph_reply_free()). args_json
 *  may be NULL for "{}"; body (may be NULL) goes in the QUERY's bin body. */
int tph_query(tph_ctx *ctx, const char *op, const char *args_json, const void *body,
              size_t body_len, tph_reply *ret);
/** tph_query() with the arguments as a JSON object, which this call takes
 *  (decrefs) whatever happens. A NULL args (a failed allocation) fails. */
int tph_query_json(tph_ctx *ctx, const char *op, json_t *args, const void *body, size_t body_len,
                   tph_reply *ret);
/** Parse a reply body as JSON; prints a message and returns NULL when it is
 *  not JSON. */
json_t *tph_reply_json(const tph_reply *rep, const char *op);

/** tph_daemon_probe(): no daemon listens (nothing printed). */
#define TPH_NO_DAEMON 3

/** Connect to tphd if it listens. TPH_EXIT_OK when connected, TPH_NO_DAEMON
 *  when nothing listens at the socket (quietly), else TPH_EXIT_FAIL after
 *  printing why. For commands that also work without a daemon. */
int tph_daemon_probe(tph_ctx *ctx);
/** The socket path in use (--socket, $TRACEPATCH_SOCKET or the default). */
const char *tph_socket_path(tph_ctx *ctx);

/* ---- tph_local.c: trace files under .tracepatch/traces/ ------------------ */

typedef struct tph_local_filter {
    const char *label; /* fnmatch glob on the label, or NULL */
    int64_t since_s;   /* only files modified within this many seconds (0: all) */
    int64_t limit;     /* at most this many */
    bool limited;      /* only traces that hit a limit */
} tph_local_filter;

/** "<cache_dir or .>/.tracepatch/traces" (or "<cache_dir>/traces" when
 *  cache_dir is itself a .tracepatch directory), as the package saves. */
int tph_local_dir(const char *cache_dir, char *ret, size_t size);
/** The trace files there, newest first, filtered: a JSON array in *ret_json
 *  (file, timestamp, label, trace_id, call_count, was_limited) and, when
 *  text is not NULL, the lines `tph logs` prints. A missing directory is an
 *  empty list. Returns 0 or a negative errno. */
int tph_local_logs(const char *cache_dir, const tph_local_filter *f, json_t **ret_json,
                   tp_buf *text, size_t *ret_count);
/** Delete the .json trace files there (older than older_than_s seconds when
 *  that is > 0). Returns 0 or a negative errno. */
int tph_local_clean(const char *cache_dir, int64_t older_than_s, size_t *ret_removed);
/** Delete the whole .tracepatch/ directory, as tracepatch 1.0.0's `clean
 *  --all`. Returns 0 (also when there is none) or a negative errno. */
int tph_local_remove_all(const char *cache_dir, bool *ret_existed);

/* ---- tph_fmt.c: the daemon's JSON as text ------------------------------- */

/** The string member o[key]; NULL when it is absent or not a string. */
const char *tph_json_str(const json_t *o, const char *key);
/** The `tph logs` table for a list reply ({"total", "traces"}, docs/QUERY.md).
 *  offset is what was asked; filtered says whether --label/--since/--limited
 *  narrowed the list (for the message when it is empty). Returns 0 or
 *  -ENOMEM / -EINVAL (not that shape). */
int tph_fmt_logs(const json_t *reply, int64_t offset, bool filtered, tp_buf *out);
/** The `tph status` text for a status reply. Returns 0 or -ENOMEM/-EINVAL. */
int tph_fmt_status(const json_t *status, tp_buf *out);

/* ---- commands ------------------------------------------------------------ */

int tph_cmd_logs(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_open(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_clean(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_status(tph_ctx *ctx, int argc, char **argv);
/** tph frames [NAME] [--since DUR] (tph_frames.c). */
int tph_cmd_frames(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_import(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_tree(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_stats(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_diff(tph_ctx *ctx, int argc, char **argv);
int tph_cmd_export(tph_ctx *ctx, int argc, char **argv);

#endif
