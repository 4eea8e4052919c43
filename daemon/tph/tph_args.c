/* Command-line helpers shared by every tph command: the common options,
 * numbers, durations, and telling a trace file from a trace ID. */
#include "tph.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void tph_getopt_reset(void)
{
    optind = 0;
    opterr = 0;
}

/* Length of an option word up to any "=value". */
static int optlen(const char *word)
{
    const char *eq = strchr(word, '=');
    return eq ? (int)(eq - word) : (int)strlen(word);
}

/* Word the error is about: getopt has already moved optind past it. */
static const char *bad_word(char **argv)
{
    return optind > 0 ? argv[optind - 1] : "";
}

int tph_common_opt(tph_ctx *ctx, int c, char **argv)
{
    const char *w;

    switch (c) {
    case 'h':
    case TPH_OPT_HELP:
        return tph_help(ctx->cmd);
    case TPH_OPT_JSON:
        ctx->json = true;
        return TPH_NEXT;
    case TPH_OPT_SOCKET:
        ctx->socket_opt = optarg;
        return TPH_NEXT;
    case ':':
        w = bad_word(argv);
        return tph_usage(ctx->cmd, "option '%.*s' needs an argument", optlen(w), w);
    case '?':
        w = bad_word(argv);
        if (optopt >= 0x100)
            return tph_usage(ctx->cmd, "option '%.*s' takes no argument", optlen(w), w);
        if (optopt != 0)
            return tph_usage(ctx->cmd, "unknown option '-%c'", optopt);
        return tph_usage(ctx->cmd, "unknown option '%.*s'", optlen(w), w);
    default:
        return TPH_OWN;
    }
}

int tph_parse_uint(const char *s, int64_t max, int64_t *ret)
{
    int64_t v = 0;

    if (!s || !*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        if (v > (max - (*s - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (*s - '0');
    }
    *ret = v;
    return 0;
}

static int64_t unit_seconds(char u)
{
    switch (u) {
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    case 'w':
        return 7 * 86400;
    default:
        return 0;
    }
}

int tph_parse_duration(const char *s, int64_t *ret_seconds)
{
    const int64_t max = INT64_C(1) << 40; /* ~35,000 years: far past any trace */
    int64_t total = 0, n, unit;
    int digits;

    if (!s || !*s)
        return -EINVAL;
    while (*s) {
        for (n = 0, digits = 0; *s >= '0' && *s <= '9'; s++, digits++) {
            if (n > max)
                return -EINVAL;
            n = n * 10 + (*s - '0');
        }
        if (digits == 0)
            return -EINVAL;
        /* A bare number is seconds, but only as the last (or only) part. */
        unit = *s ? unit_seconds(*s++) : 1;
        if (unit == 0 || n > max / unit)
            return -EINVAL;
        total += n * unit;
        if (total > max)
            return -EINVAL;
    }
    *ret_seconds = total;
    return 0;
}

bool tph_is_file_arg(const char *arg)
{
    size_t n = strlen(arg);
    struct stat st;

    if (strcmp(arg, "-") == 0)
        return true;
    if (n >= 5 && strcmp(arg + n - 5, ".json") == 0)
        return true;
    return stat(arg, &st) == 0;
}

static int read_stream(FILE *f, char **ret_text, size_t *ret_len)
{
    tp_buf b = TP_BUF_INIT;
    char chunk[65536];
    size_t n;

    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        tp_buf_append(&b, chunk, n);
    if (ferror(f)) {
        tp_buf_free(&b);
        return errno ? -errno : -EIO;
    }
    if (tp_buf_error(&b) < 0) {
        tp_buf_free(&b);
        return -ENOMEM;
    }
    tp_buf_cstr(&b);
    *ret_text = tp_buf_steal(&b, ret_len);
    return *ret_text ? 0 : -ENOMEM;
}

int tph_read_file(const char *path, char **ret_text, size_t *ret_len)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    struct stat st;
    FILE *f;
    int r;

    if (!is_stdin && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return tph_fail("%s: is a directory, not a trace file", name);
    f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return tph_fail("%s: %s", name, strerror(errno));
    errno = 0;
    r = read_stream(f, ret_text, ret_len);
    if (!is_stdin)
        fclose(f);
    if (r < 0)
        return tph_fail("%s: %s", name, strerror(-r));
    return TPH_EXIT_OK;
}
