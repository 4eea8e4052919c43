/* tph frames: per-name frame statistics, over the whole time or per window
 * (the "frames" op, docs/QUERY.md). */
#include "tph.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "render.h"

enum { FRAMES_SINCE = TPH_OPT_FIRST, FRAMES_WINDOW };

/* s right-aligned in width columns (a UTF-8 character is one column). */
static void put_right(tp_buf *out, const char *s, int width)
{
    int cols = 0;
    for (const char *p = s; *p; p++)
        cols += ((unsigned char)*p & 0xc0) != 0x80;
    for (; cols < width; cols++)
        tp_buf_putc(out, ' ');
    tp_buf_puts(out, s);
}

/* A duration column: the API's milliseconds in tph's units ("850ns",
 * "1.23µs", "12.3ms"). */
static void put_ms(tp_buf *out, const json_t *f, const char *key)
{
    char buf[32];
    double ms = json_number_value(json_object_get(f, key));
    tp_render_format_duration((int64_t)(ms * 1e6 + 0.5), buf, sizeof(buf));
    tp_buf_putc(out, ' ');
    put_right(out, buf, 9);
}

/* One row per name (per name and window with --window). Names come from
 * the traced program: escaped, as every client text tph prints. */
static int fmt_frames(const json_t *reply, bool windows, tp_buf *out)
{
    static const char *const cols[] = {"min_ms", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"};
    const json_t *frames = json_object_get(reply, "frames");
    size_t i;
    json_t *f;
    if (!json_is_array(frames))
        return -1;
    if (json_array_size(frames) == 0)
        return tp_buf_puts(out, "no frames\n");
    tp_buf_printf(out, "%-24s %s%8s %9s %9s %9s %9s %9s %9s %9s\n", "NAME",
                  windows ? "WINDOW              " : "", "COUNT", "MIN", "AVG", "P50", "P95", "P99",
                  "MAX", "FRAMES/S");
    json_array_foreach(frames, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        const json_t *fps = json_object_get(f, "frames_per_s");
        tp_buf esc = TP_BUF_INIT;
        tp_render_escape(&esc, name ? name : "", name ? strlen(name) : 0);
        const char *e = tp_buf_cstr(&esc);
        tp_buf_printf(out, "%-24s ", e ? e : "-");
        tp_buf_free(&esc);
        if (windows) {
            char when[32] = "-";
            struct tm tm;
            time_t t = (time_t)json_number_value(json_object_get(f, "window_start"));
            if (localtime_r(&t, &tm))
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
            tp_buf_printf(out, "%-19s ", when);
        }
        tp_buf_printf(out, "%8lld", (long long)json_integer_value(json_object_get(f, "count")));
        for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
            put_ms(out, f, cols[k]);
        if (json_is_number(fps))
            tp_buf_printf(out, " %9.2f\n", json_number_value(fps));
        else
            tp_buf_printf(out, " %9s\n", "-");
    }
    return tp_buf_error(out);
}

int tph_cmd_frames(tph_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"since", required_argument, NULL, FRAMES_SINCE},
        {"window", required_argument, NULL, FRAMES_WINDOW},
        {NULL, 0, NULL, 0},
    };
    int64_t since_s = 0, window_s = 0;
    bool since = false;
    tp_buf out = TP_BUF_INIT;
    tph_reply rep;
    json_t *j;
    int c, r;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        r = tph_common_opt(ctx, c, argv);
        if (r == TPH_OWN && c == FRAMES_SINCE) {
            if (tph_parse_duration(optarg, &since_s) < 0)
                return tph_usage(ctx->cmd, "invalid --since '%s' (use e.g. 30m, 1h, 7d)", optarg);
            since = true;
            r = TPH_NEXT;
        } else if (r == TPH_OWN && c == FRAMES_WINDOW) {
            if (tph_parse_duration(optarg, &window_s) < 0 || window_s < 1 || window_s > 31622400)
                return tph_usage(
                    ctx->cmd, "invalid --window '%s' (use e.g. 1m, 10m, 1h; at most 366d)", optarg);
            r = TPH_NEXT;
        } else if (r == TPH_OWN) {
            r = tph_usage(ctx->cmd, "unexpected option");
        }
        if (r != TPH_NEXT)
            return r;
    }
    if (argc - optind > 1)
        return tph_usage(ctx->cmd, "unexpected argument '%s'", argv[optind + 1]);
    json_t *args = json_object();
    if (args && optind < argc)
        json_object_set_new(args, "name", json_string(argv[optind]));
    if (args && since)
        json_object_set_new(args, "since", json_integer((json_int_t)time(NULL) - since_s));
    if (args && window_s)
        json_object_set_new(args, "window", json_integer((json_int_t)window_s));
    r = tph_query_json(ctx, "frames", args, NULL, 0, &rep);
    if (r != TPH_EXIT_OK)
        return r;
    if (ctx->json) {
        r = tph_print(rep.body, rep.body_len);
        tph_reply_free(&rep);
        return r;
    }
    j = tph_reply_json(&rep, "frames");
    tph_reply_free(&rep);
    if (!j)
        return TPH_EXIT_FAIL;
    r = fmt_frames(j, window_s > 0, &out) < 0
            ? tph_fail("tphd's frames answer has an unexpected shape")
            : tph_print(out.data, out.len);
    json_decref(j);
    tp_buf_free(&out);
    return r;
}
