/* tph frames: per-name frame statistics (the "frames" op, docs/QUERY.md). */
#include "tph.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { FRAMES_SINCE = TPH_OPT_FIRST };

/* One row per name; times in ms with microsecond resolution, so that a
 * frame of a known sleep reads back as the sleep plus its overhead. */
static int fmt_frames(const json_t *reply, tp_buf *out)
{
    const json_t *frames = json_object_get(reply, "frames");
    size_t i;
    json_t *f;
    if (!json_is_array(frames))
        return -1;
    if (json_array_size(frames) == 0)
        return tp_buf_puts(out, "no frames\n");
    tp_buf_printf(out, "%-24s %8s %10s %10s %10s %10s %10s %10s %9s\n", "NAME", "COUNT", "MIN",
                  "AVG", "P50", "P95", "P99", "MAX", "FRAMES/S");
    json_array_foreach(frames, i, f)
    {
        const json_t *fps = json_object_get(f, "frames_per_s");
        char rate[32];
        if (json_is_number(fps))
            snprintf(rate, sizeof(rate), "%.2f", json_number_value(fps));
        else
            snprintf(rate, sizeof(rate), "-");
        tp_buf_printf(out, "%-24s %8lld %8.3fms %8.3fms %8.3fms %8.3fms %8.3fms %8.3fms %9s\n",
                      json_string_value(json_object_get(f, "name")),
                      (long long)json_integer_value(json_object_get(f, "count")),
                      json_number_value(json_object_get(f, "min_ms")),
                      json_number_value(json_object_get(f, "avg_ms")),
                      json_number_value(json_object_get(f, "p50_ms")),
                      json_number_value(json_object_get(f, "p95_ms")),
                      json_number_value(json_object_get(f, "p99_ms")),
                      json_number_value(json_object_get(f, "max_ms")), rate);
    }
    return tp_buf_error(out);
}

int tph_cmd_frames(tph_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        TPH_COMMON_OPTS,
        {"since", required_argument, NULL, FRAMES_SINCE},
        {NULL, 0, NULL, 0},
    };
    int64_t since_s = 0;
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
    r = fmt_frames(j, &out) < 0 ? tph_fail("tphd's frames answer has an unexpected shape")
                                : tph_print(out.data, out.len);
    json_decref(j);
    tp_buf_free(&out);
    return r;
}
