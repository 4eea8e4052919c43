/* tph: the command-line client of tphd, which also reads trace files.
 *
 *   tph [--socket PATH] [--json] [--help] [--version] COMMAND [ARGS]
 *
 * This file holds the global options, the command table and help, the
 * lazily opened daemon connection, and the commands handed to Python. */
#include "tph.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "render.h"
#include "tp_err.h"
#include "tp_version.h"

static int cmd_python(tph_ctx *ctx, int argc, char **argv);
static int cmd_python_trace(tph_ctx *ctx, int argc, char **argv);
static int cmd_setup(tph_ctx *ctx, int argc, char **argv);
static int cmd_disable(tph_ctx *ctx, int argc, char **argv);
static int cmd_help(tph_ctx *ctx, int argc, char **argv);

#define TREE_HELP                                                                                  \
    "  --color[=WHEN]      colour by duration: always (no WHEN), auto (when stdout is a\n"         \
    "                      terminal) or never (the default)\n"                                     \
    "  --self-time         add each call's self time: [1.20ms / self: 0.10ms]\n"                   \
    "  --style STYLE       unicode (default), ascii (7-bit) or ansi (unicode in colour)\n"         \
    "  --no-args           hide arguments\n"                                                       \
    "  --no-return         hide return values\n"                                                   \
    "  --show-source       add (file:line) to each call\n"                                         \
    "  --filter PATTERN    keep calls matching the glob, or drop them with !glob; matched\n"       \
    "                      against module.qualname and the module; repeatable\n"                   \
    "  --depth N           show N levels (roots are level 1)\n"                                    \
    "  --no-fold           show repeated calls one by one instead of [xN]\n"                       \
    "  --no-stats          leave out the statistics header\n"                                      \
    "  --units UNITS       auto (the default: 850ns, 1.23\u00b5s, 12.3ms, 1.23s) or ms\n"          \
    "                      (tracepatch 1.0.0's fixed 0.01ms)\n"                                    \
    "  --lines             then the line hits and values of trace(lines=...) functions\n"          \
    "                      (of a trace file, or of a stored trace from tphd)\n"                    \
    "  --fold-threshold N  fold runs of N or more repeated calls (default 2)\n"                    \
    "  --collapse N        show levels 0..N, summarise what is below them\n"                       \
    "  --format FORMAT     text (default), json (as --json) or html (the report)\n"                \
    "  -o, --output FILE   write to FILE instead of stdout (0600 when new)\n"

#define COMMON_HELP                                                                                \
    "  --json              machine-readable output\n"                                              \
    "  --socket PATH       tphd's socket (default: $TRACEPATCH_SOCKET, else the\n"                 \
    "                      user daemon's socket)\n"                                                \
    "  -h, --help          this help\n"

#define TARGET_NOTE                                                                                \
    "\nID is a trace ID or any unique prefix of one (ask tphd: `tph logs`). FILE is a\n"           \
    "tracepatch JSON file (an existing path, a name ending in .json, or - for stdin);\n"           \
    "files need no daemon.\n"

static const tph_cmd commands[] = {
    {"logs", tph_cmd_logs,
     "tph logs [--label GLOB] [--since DUR] [--limited] [--otel-trace ID] [--limit N]"
     " [--offset N] [--cache-dir DIR]",
     "list stored traces and trace files, newest first",
     "  --label GLOB        only traces whose label matches (e.g. 'api-*')\n"
     "  --since DUR         only traces started within DUR: 30m, 1h, 7d, 2w, 1h30m\n"
     "  --limited           only traces that hit a limit (max_calls, max_depth, ...)\n"
     "  --otel-trace ID     only traces whose spans have this OpenTelemetry trace id\n"
     "                      (or a prefix of it), as Jaeger or Tempo show it\n"
     "  --limit N           show at most N traces (default 50)\n"
     "  --offset N          skip the N newest first (tphd's list)\n"
     "  --cache-dir DIR     where .tracepatch/traces/ is (default: here)\n" COMMON_HELP
     "\nLists tphd's traces, then the trace files under .tracepatch/traces/ (marked\n"
     "\"file\"); either alone is enough.\n"},
    {"view", cmd_python_trace, "tph view [--json] ID|FILE",
     "show a trace's metadata and summary (python3 -m tracepatch view)",
     "  --json              add the whole trace as JSON\n" TARGET_NOTE},
    {"explain", cmd_python_trace, "tph explain [--verbose] ID|FILE",
     "explain a trace in sentences (python3 -m tracepatch explain)",
     "  --verbose           add complexity hints\n" TARGET_NOTE},
    {"tree", tph_cmd_tree, "tph tree [OPTIONS] ID|FILE", "print a trace's call tree",
     TREE_HELP COMMON_HELP TARGET_NOTE},
    {"stats", tph_cmd_stats, "tph stats [--color[=WHEN]] ID|FILE",
     "detailed statistics: slowest functions, call counts, modules",
     "  --color[=WHEN]      always, auto or never (default)\n" COMMON_HELP TARGET_NOTE},
    {"diff", tph_cmd_diff, "tph diff [--color[=WHEN]] A B",
     "compare two traces (IDs, files, or one of each)",
     "  --color[=WHEN]      always, auto or never (default)\n" COMMON_HELP TARGET_NOTE},
    {"export", tph_cmd_export, "tph export ID|FILE [--format FORMAT] [-o OUT]",
     "write a trace as CSV, JSON, an HTML report, Chrome trace events, folded stacks, an SVG "
     "flame graph or OTLP/JSON",
     "  --format FORMAT     csv, json (tracepatch's schema), html (a self-contained\n"
     "                      report), chrome (Perfetto, chrome://tracing), folded\n"
     "                      (flamegraph.pl, speedscope), flamegraph (SVG) or otlp-json\n"
     "                      (the OpenTelemetry request tphd's exporter sends); default:\n"
     "                      from OUT's extension (.json, .html, .chrome, .folded, .svg),\n"
     "                      else csv (as tracepatch 1.0.0)\n"
     "  -o, --output OUT    write to OUT (a new file is 0600); - is stdout\n" COMMON_HELP
         TARGET_NOTE},
    {"open", tph_cmd_open, "tph open ID", "print the URL of a trace's report in tphd's web UI",
     COMMON_HELP},
    {"clean", tph_cmd_clean,
     "tph clean --older-than DUR | --traces | --all [--daemon] [--cache-dir DIR]",
     "delete trace files and stored traces",
     "  --older-than DUR    delete trace files and tphd's traces older than DUR: 12h,\n"
     "                      7d, 2w\n"
     "  --traces            delete the trace files in .tracepatch/traces/\n"
     "  --all               delete the .tracepatch/ directory (as tracepatch 1.0.0);\n"
     "                      with --daemon also every trace you own in tphd\n"
     "  --daemon, -y, --yes with --all: delete tphd's traces too\n"
     "  --cache-dir DIR     where .tracepatch/ is (default: here)\n" COMMON_HELP},
    {"status", tph_cmd_status, "tph status", "show what tphd is doing", COMMON_HELP},
    {"frames", tph_cmd_frames, "tph frames [--since DUR] [--window DUR] [NAME]",
     "frame statistics per name: count, min/avg/max, p50/p95/p99 (exact), frames/s",
     "  --since DUR         only frames that began less than DUR ago: 30m, 1h, 7d\n"
     "  --window DUR        one row per name and window of this length (1m, 10m,\n"
     "                      1h), windows aligned to the epoch, oldest first\n"
     "  NAME                only this frame name\n" COMMON_HELP},
    {"import", tph_cmd_import, "tph import [--label LABEL] FILE",
     "store a tracepatch JSON file in tphd",
     "  --label LABEL       store it under this label instead of the file's\n" COMMON_HELP
     "\nPrints the new trace's ID.\n"},
    {"run", cmd_python, "tph run SCRIPT.py [ARGS] | tph run -m MODULE [ARGS] | tph run",
     "trace a Python program, or the config's [test] setup (python3 -m tracepatch run)",
     "Hands over to the tracepatch package: `python3 -m tracepatch run ...`, with the\n"
     "interpreter from $TRACEPATCH_PYTHON (default: python3 on PATH). --socket, when\n"
     "given before the command, is passed on as $TRACEPATCH_SOCKET.\n"},
    {"init", cmd_python, "tph init [--yes] [--force] [ARGS]",
     "create tracepatch.toml (python3 -m tracepatch init)",
     "Hands over to `python3 -m tracepatch init` ($TRACEPATCH_PYTHON overrides python3).\n"},
    {"setup", cmd_setup, "tph setup", "tracepatch 1.0.0's name for `tph run` with no arguments",
     "Runs the [[test.files]] / [[test.inputs]] / [test.custom] setup of the config.\n"},
    {"disable", cmd_disable, "tph disable",
     "tracepatch 1.0.0's setup cleanup (there is nothing to undo here)",
     "tph keeps no setup state: `tph run` generates no files. `tph clean --traces`\n"
     "deletes trace files.\n"},
    {"config", cmd_python, "tph config [--validate] [ARGS]",
     "show or validate the configuration (python3 -m tracepatch config)",
     "Hands over to `python3 -m tracepatch config` ($TRACEPATCH_PYTHON overrides\n"
     "python3).\n"},
    {"help", cmd_help, "tph help [COMMAND]", "show help for a command", ""},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const tph_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* ---- Messages ------------------------------------------------------------ */

/* "tph: " and the message on stderr, after what stdout holds so far. */
__attribute__((format(printf, 1, 0))) static void say(const char *fmt, va_list ap)
{
    fflush(stdout);
    fputs("tph: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int tph_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return TPH_EXIT_FAIL;
}

static const char global_usage[] =
    "tph [--socket PATH] [--json] [--help] [--version] COMMAND [ARGS]";

int tph_usage(const tph_cmd *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", cmd ? cmd->usage : global_usage);
    if (cmd)
        fprintf(stderr, "Try 'tph help %s' for more.\n", cmd->name);
    else
        fputs("Try 'tph help' for more.\n", stderr);
    return TPH_EXIT_USAGE;
}

static int global_help(void)
{
    printf("usage: %s\n\n"
           "Query tphd, the tracepatch daemon, and read tracepatch trace files.\n\n"
           "commands:\n",
           global_usage);
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %-8s %s\n", commands[i].name, commands[i].summary);
    printf("\noptions:\n"
           "  --socket PATH       tphd's socket (default: $TRACEPATCH_SOCKET, else\n"
           "                      $XDG_RUNTIME_DIR/tracepatch/tphd.sock, else\n"
           "                      /tmp/tracepatch-$UID/tphd.sock)\n"
           "  --json              machine-readable output (every query command)\n"
           "  --version           print the version\n"
           "  -h, --help          this help\n\n"
           "A trace ID may be abbreviated to any unique prefix. tree, stats, diff and\n"
           "export also read tracepatch JSON files and then need no daemon.\n"
           "`tph help COMMAND` or `tph COMMAND --help` describes one command.\n"
           "Exit status: 0 ok, 1 failure, 2 bad usage. $TPH_TIMEOUT sets how many seconds\n"
           "to wait for tphd (default %g).\n",
           TPH_TIMEOUT_S);
    return TPH_EXIT_OK;
}

int tph_help(const tph_cmd *cmd)
{
    if (!cmd || strcmp(cmd->name, "help") == 0)
        return global_help();
    printf("usage: %s\n\n%s.\n", cmd->usage, cmd->summary);
    if (cmd->help[0])
        printf("\n%s%s", cmd->help[0] == ' ' ? "options:\n" : "", cmd->help);
    return TPH_EXIT_OK;
}

int tph_print(const char *text, size_t n)
{
    if (n)
        fwrite(text, 1, n, stdout);
    if (n && text[n - 1] != '\n')
        fputc('\n', stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        return tph_fail("cannot write the output: %s", strerror(errno));
    return TPH_EXIT_OK;
}

/* ---- The daemon connection ---------------------------------------------- */

/* A message from tphd can quote what some client sent (a label, an ID, a
 * file's text): printed escaped, like every client string. Returns a string
 * owned by b. */
static const char *escaped(tp_buf *b, const char *s)
{
    const char *e;

    tp_render_escape(b, s ? s : "", s ? strlen(s) : 0);
    e = tp_buf_cstr(b);
    return e ? e : "(out of memory)";
}

static const char *socket_path(tph_ctx *ctx)
{
    if (ctx->socket[0])
        return ctx->socket;
    if (ctx->socket_opt)
        snprintf(ctx->socket, sizeof ctx->socket, "%s", ctx->socket_opt);
    else if (tp_paths_client_socket(ctx->socket, sizeof ctx->socket) < 0)
        snprintf(ctx->socket, sizeof ctx->socket, "%s", "(socket path too long)");
    return ctx->socket;
}

static int connect_daemon(tph_ctx *ctx)
{
    const char *path = socket_path(ctx);
    char err[512] = "";
    int r;

    r = tph_client_connect(path, ctx->timeout_s, &ctx->client, err, sizeof err);
    if (r == 0)
        return TPH_EXIT_OK;
    if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTSOCK)
        return tph_fail("no tphd at %s (start one with `tphd &` or `systemctl --user start tphd`)",
                        path);
    if (r == -ETIMEDOUT)
        return tph_fail("tphd at %s did not answer within %g s", path, ctx->timeout_s);
    tp_buf b = TP_BUF_INIT;
    r = tph_fail("cannot talk to tphd at %s: %s", path, escaped(&b, err));
    tp_buf_free(&b);
    return r;
}

int tph_daemon_probe(tph_ctx *ctx)
{
    char err[512] = "";
    int r;

    if (ctx->client)
        return TPH_EXIT_OK;
    r = tph_client_connect(socket_path(ctx), ctx->timeout_s, &ctx->client, err, sizeof err);
    if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTSOCK)
        return TPH_NO_DAEMON;
    if (r == 0)
        return TPH_EXIT_OK;
    if (r == -ETIMEDOUT)
        return tph_fail("tphd at %s did not answer within %g s", socket_path(ctx), ctx->timeout_s);
    tp_buf b = TP_BUF_INIT;
    r = tph_fail("cannot talk to tphd at %s: %s", socket_path(ctx), escaped(&b, err));
    tp_buf_free(&b);
    return r;
}

const char *tph_socket_path(tph_ctx *ctx)
{
    return socket_path(ctx);
}

int tph_query(tph_ctx *ctx, const char *op, const char *args_json, const void *body,
              size_t body_len, tph_reply *ret)
{
    char err[512] = "";
    tph_reply rep;
    int r;

    if (!ctx->client && connect_daemon(ctx) != TPH_EXIT_OK)
        return TPH_EXIT_FAIL;
    r = tph_client_query(ctx->client, op, args_json, body, body_len, &rep, err, sizeof err);
    if (r == -ETIMEDOUT)
        return tph_fail("tphd at %s did not answer within %g s", socket_path(ctx), ctx->timeout_s);
    if (r < 0) {
        tp_buf b = TP_BUF_INIT;
        tph_fail("%s (tphd at %s)", escaped(&b, err), socket_path(ctx));
        tp_buf_free(&b);
        return TPH_EXIT_FAIL;
    }
    if (!rep.ok) {
        tp_buf b = TP_BUF_INIT;
        tph_fail("%s", escaped(&b, rep.message));
        tp_buf_free(&b);
        tph_reply_free(&rep);
        return TPH_EXIT_FAIL;
    }
    *ret = rep;
    return TPH_EXIT_OK;
}

/* ---- Commands that hand over to Python or to help ------------------------ */

static int cmd_python(tph_ctx *ctx, int argc, char **argv)
{
    const char *py = getenv("TRACEPATCH_PYTHON");
    char **args;

    if (!py || !*py)
        py = "python3";
    args = calloc((size_t)argc + 4, sizeof *args);
    if (!args)
        return tph_fail("out of memory");
    args[0] = (char *)py;
    args[1] = (char *)"-m";
    args[2] = (char *)"tracepatch";
    for (int i = 0; i < argc; i++)
        args[3 + i] = argv[i];
    if (ctx->socket_opt && setenv(TP_PATHS_SOCKET_ENV, ctx->socket_opt, 1) < 0)
        return tph_fail("setenv: %s", strerror(errno));
    fflush(NULL);
    execvp(py, args);
    tph_fail("cannot run %s: %s (set TRACEPATCH_PYTHON to a Python with tracepatch installed)", py,
             strerror(errno));
    free(args);
    return TPH_EXIT_FAIL;
}

/* view and explain: a FILE goes to Python as it is; an ID is fetched from
 * tphd as tracepatch JSON and given to Python on its standard input. */
static int cmd_python_trace(tph_ctx *ctx, int argc, char **argv)
{
    const char *target = NULL;
    int at = -1, status;
    tph_reply rep;
    pid_t pid;
    int fds[2], r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return cmd_python(ctx, argc, argv);
        if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            target = argv[i];
            at = i;
        }
    }
    if (!target || tph_is_file_arg(target))
        return cmd_python(ctx, argc, argv);
    r = tph_query_json(ctx, "export", json_pack("{s:s, s:s}", "id", target, "format", "json"), NULL,
                       0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    if (pipe(fds) < 0) {
        tph_reply_free(&rep);
        return tph_fail("pipe: %s", strerror(errno));
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(fds[0], STDIN_FILENO);
        close(fds[0]);
        close(fds[1]);
        argv[at] = (char *)"-";
        _exit(cmd_python(ctx, argc, argv));
    }
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        tph_reply_free(&rep);
        return tph_fail("fork: %s", strerror(errno));
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t off = 0; off < rep.body_len;) {
        ssize_t w = write(fds[1], rep.body + off, rep.body_len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fds[1]);
    tph_reply_free(&rep);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return tph_fail("waitpid: %s", strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : TPH_EXIT_FAIL;
}

static int cmd_setup(tph_ctx *ctx, int argc, char **argv)
{
    char *run[] = {(char *)"run", NULL};

    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return tph_help(ctx->cmd);
    if (argc > 1)
        return tph_usage(ctx->cmd, "unexpected argument '%s'", argv[1]);
    return cmd_python(ctx, 1, run);
}

static int cmd_disable(tph_ctx *ctx, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return tph_help(ctx->cmd);
    if (argc > 1)
        return tph_usage(ctx->cmd, "unexpected argument '%s'", argv[1]);
    printf("nothing to disable: `tph run` leaves no setup behind "
           "(`tph clean --traces` deletes trace files)\n");
    return tph_print("", 0);
}

static int cmd_help(tph_ctx *ctx, int argc, char **argv)
{
    const tph_cmd *cmd;

    if (argc < 2)
        return global_help();
    if (argc > 2)
        return tph_usage(ctx->cmd, "too many arguments");
    cmd = find_command(argv[1]);
    if (!cmd)
        return tph_usage(ctx->cmd, "unknown command '%s'", argv[1]);
    return tph_help(cmd);
}

/* ---- main ------------------------------------------------------------------ */

static int timeout_from_env(double *ret)
{
    const char *s = getenv("TPH_TIMEOUT");
    char *end;
    double v;

    *ret = TPH_TIMEOUT_S;
    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v > 0) || v > 1e6)
        return tph_usage(NULL, "TPH_TIMEOUT='%s' is not a number of seconds", s);
    *ret = v;
    return 0;
}

#define OPT_VERSION 0x120

static int parse_global(tph_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int c, r;

    tph_getopt_reset();
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c == OPT_VERSION) {
            printf("tph %s\n", TP_VERSION);
            return TPH_EXIT_OK;
        }
        r = tph_common_opt(ctx, c, argv);
        if (r != TPH_NEXT)
            return r;
    }
    return TPH_NEXT;
}

int main(int argc, char **argv)
{
    tph_ctx ctx = {0};
    int r;

    r = parse_global(&ctx, argc, argv);
    if (r != TPH_NEXT)
        return r;
    if (optind >= argc)
        return tph_usage(NULL, "missing command");
    ctx.cmd = find_command(argv[optind]);
    if (!ctx.cmd)
        return tph_usage(NULL, "unknown command '%s'", argv[optind]);
    r = timeout_from_env(&ctx.timeout_s);
    if (r != 0)
        return r;
    argc -= optind;
    argv += optind;
    tph_getopt_reset();
    r = ctx.cmd->run(&ctx, argc, argv);
    tph_client_free(ctx.client);
    return r;
}
