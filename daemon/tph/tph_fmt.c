/* The daemon's JSON answers as text for people: the `tph logs` table and
 * the `tph status` block. A trace summary's keys are docs/QUERY.md's; a key
 * that is missing or of another type shows as "-" in its column rather than
 * failing the command. */
#include "tph.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "render.h"

#define LABEL_MAX 40 /* characters of a label shown in the table */
#define PROC_MAX  32 /* characters of the process column */

const char *tph_json_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A number member (integer or real) under key; false when absent. */
static bool json_num(const json_t *o, const char *key, double *ret)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_number(v))
        return false;
    *ret = json_number_value(v);
    return true;
}

/* Characters (UTF-8 code points) in s. */
static size_t width(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Copy at most max characters of s into dst (size bytes), ending in "..."
 * when cut; never splits a UTF-8 sequence. */
static void clip(char *dst, size_t size, const char *s, size_t max)
{
    size_t chars = 0, i = 0;

    if (width(s) <= max && strlen(s) < size) {
        memcpy(dst, s, strlen(s) + 1);
        return;
    }
    while (s[i] && i + 4 + 3 < size) {
        if (((unsigned char)s[i] & 0xc0) != 0x80 && ++chars > max - 3)
            break;
        i++;
    }
    snprintf(dst, size, "%.*s...", (int)i, s);
}

/* clip() of client text escaped as the tree escapes it: a label or a
 * program name is whatever a client sent, and must not reach the terminal
 * as escape sequences or extra lines. */
static void clip_text(char *dst, size_t size, const char *s, size_t max)
{
    tp_buf b = TP_BUF_INIT;
    const char *e;

    tp_render_escape(&b, s, strlen(s));
    e = tp_buf_cstr(&b);
    clip(dst, size, e ? e : "-", max);
    tp_buf_free(&b);
}

/* ---- logs ------------------------------------------------------------------ */

enum { COL_ID, COL_START, COL_DUR, COL_CALLS, COL_LABEL, COL_PROC, COL_FLAGS, NCOLS };

static const char *const col_names[NCOLS] = {"ID",    "START",   "DURATION", "CALLS",
                                             "LABEL", "PROCESS", "FLAGS"};

typedef struct row {
    char cell[NCOLS][4 * LABEL_MAX + 8];
} row;

static void cell_start(const json_t *s, char *out, size_t size)
{
    struct tm tm;
    double v;
    time_t t;

    if (!json_num(s, "start", &v)) {
        snprintf(out, size, "-");
        return;
    }
    t = (time_t)v;
    if (!localtime_r(&t, &tm) || !strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(out, size, "-");
}

static void cell_process(const json_t *s, char *out, size_t size)
{
    const json_t *argv = json_object_get(s, "argv");
    const char *a0 = json_string_value(json_array_get(argv, 0)), *slash;
    char buf[512];
    double pid;

    const char *client = tph_json_str(s, "client");

    /* An imported trace's pid is the importing tph's: say where it came from. */
    if (!a0 && client && strncmp(client, "tph", 3) == 0) {
        clip(out, size, "imported", PROC_MAX);
        return;
    }
    if (a0 && (slash = strrchr(a0, '/')) && slash[1])
        a0 = slash + 1;
    if (json_num(s, "pid", &pid))
        snprintf(buf, sizeof buf, "%.0f%s%s", pid, a0 ? " " : "", a0 ? a0 : "");
    else
        snprintf(buf, sizeof buf, "%s", a0 ? a0 : "-");
    clip_text(out, size, buf, PROC_MAX);
}

/* LIMITED (a limit stopped recording), DROPPED (events lost on the way),
 * TRUNCATED (the client went away mid-trace), RUNNING (still being
 * recorded: its DURATION is its age so far). */
static void cell_flags(const json_t *s, char *out, size_t size)
{
    const char *reason = tph_json_str(s, "limit_reason");
    const char *status = tph_json_str(s, "status");
    bool truncated = (reason && strcmp(reason, "disconnected") == 0) ||
                     (status && strcmp(status, "truncated") == 0);
    bool open = !truncated && status && strcmp(status, "open") == 0;
    bool limited = reason && !truncated;
    double dropped = 0;

    json_num(s, "dropped", &dropped);
    snprintf(out, size, "%s%s%s%s", limited ? "LIMITED " : "", dropped > 0 ? "DROPPED " : "",
             truncated ? "TRUNCATED " : "", open ? "RUNNING " : "");
    if (*out)
        out[strlen(out) - 1] = '\0';
}

static void fill_row(const json_t *s, row *r)
{
    const char *id = tph_json_str(s, "id");
    const char *label = tph_json_str(s, "label");
    double v;

    snprintf(r->cell[COL_ID], sizeof r->cell[0], "%.8s", id ? id : "-");
    cell_start(s, r->cell[COL_START], sizeof r->cell[0]);
    /* A running trace's age (tphd's clock) says more than the time of the
     * last call that arrived. */
    if (json_num(s, "age_ms", &v) || json_num(s, "duration_ms", &v))
        tp_render_format_duration((int64_t)(v * 1e6 + 0.5), r->cell[COL_DUR], sizeof r->cell[0]);
    else
        snprintf(r->cell[COL_DUR], sizeof r->cell[0], "-");
    if (json_num(s, "calls", &v))
        snprintf(r->cell[COL_CALLS], sizeof r->cell[0], "%.0f", v);
    else
        snprintf(r->cell[COL_CALLS], sizeof r->cell[0], "-");
    clip_text(r->cell[COL_LABEL], sizeof r->cell[0], label && *label ? label : "-", LABEL_MAX);
    cell_process(s, r->cell[COL_PROC], sizeof r->cell[0]);
    cell_flags(s, r->cell[COL_FLAGS], sizeof r->cell[0]);
}

/* Numbers line up on the right, text on the left; the last column is not padded. */
static void put_row(tp_buf *out, const char *const *cells, const size_t *w)
{
    for (int c = 0; c < NCOLS; c++) {
        size_t pad = w[c] - width(cells[c]);
        bool last = c == NCOLS - 1 || (c == NCOLS - 2 && !*cells[NCOLS - 1]);

        if (c == COL_CALLS)
            tp_buf_printf(out, "%*s%s", (int)pad, "", cells[c]);
        else
            tp_buf_printf(out, "%s%*s", cells[c], last ? 0 : (int)pad, "");
        if (last)
            break;
        tp_buf_puts(out, "  ");
    }
    tp_buf_putc(out, '\n');
}

static void put_table(tp_buf *out, const row *rows, size_t n)
{
    size_t w[NCOLS];
    const char *cells[NCOLS];

    for (int c = 0; c < NCOLS; c++) {
        w[c] = width(col_names[c]);
        for (size_t i = 0; i < n; i++)
            if (width(rows[i].cell[c]) > w[c])
                w[c] = width(rows[i].cell[c]);
    }
    put_row(out, col_names, w);
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < NCOLS; c++)
            cells[c] = rows[i].cell[c];
        put_row(out, cells, w);
    }
}

static void put_empty(tp_buf *out, int64_t offset, bool filtered)
{
    if (filtered)
        tp_buf_puts(out, "no traces match (`tph logs` without filters lists them all)\n");
    else if (offset > 0)
        tp_buf_printf(out, "no traces past the newest %lld\n", (long long)offset);
    else
        tp_buf_puts(out, "no traces yet: record one with `tph run script.py`, or wrap code in "
                         "`with tracepatch.trace(): ...` while tphd is running\n");
}

static void put_footer(tp_buf *out, const json_t *reply, size_t n, int64_t offset)
{
    double total;

    if (json_num(reply, "total", &total) && (double)offset + (double)n < total)
        tp_buf_printf(out, "showing %lld-%lld of %.0f traces; --offset %lld for older ones\n",
                      (long long)offset + 1, (long long)offset + (long long)n, total,
                      (long long)offset + (long long)n);
}

int tph_fmt_logs(const json_t *reply, int64_t offset, bool filtered, tp_buf *out)
{
    const json_t *list = json_object_get(reply, "traces");
    size_t n = json_array_size(list);
    row *rows;

    if (!json_is_array(list))
        return -EINVAL;
    if (n == 0) {
        put_empty(out, offset, filtered);
        return tp_buf_error(out);
    }
    rows = calloc(n, sizeof *rows);
    if (!rows)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        fill_row(json_array_get(list, i), &rows[i]);
    put_table(out, rows, n);
    put_footer(out, reply, n, offset);
    free(rows);
    return tp_buf_error(out);
}

/* ---- status ------------------------------------------------------------------ */

static void put_uptime(tp_buf *out, double s)
{
    long long t = (long long)s;

    if (t >= 86400)
        tp_buf_printf(out, "%lldd %lldh %lldm", t / 86400, t % 86400 / 3600, t % 3600 / 60);
    else if (t >= 3600)
        tp_buf_printf(out, "%lldh %lldm", t / 3600, t % 3600 / 60);
    else if (t >= 60)
        tp_buf_printf(out, "%lldm %llds", t / 60, t % 60);
    else
        tp_buf_printf(out, "%llds", t);
}

static void put_bytes(tp_buf *out, double b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;

    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    if (u == 0)
        tp_buf_printf(out, "%.0f B", b);
    else
        tp_buf_printf(out, "%.1f %s", b, units[u]);
}

static void put_line_num(tp_buf *out, const json_t *st, const char *name, const char *key)
{
    double v;

    if (json_num(st, key, &v))
        tp_buf_printf(out, "%-13s%.0f\n", name, v);
}

/* The exporter's lines: where to, what went, what was lost and why ("off"
 * when tphd exports nothing). */
static void put_otlp(tp_buf *out, const json_t *o)
{
    double exported = 0, spans = 0, lost = 0, pending = 0, retries = 0;
    const char *url = tph_json_str(o, "endpoint"), *err;

    if (!o)
        return; /* a tphd from before OTLP export */
    if (!json_is_object(o) || !url) {
        tp_buf_printf(out, "%-13s%s\n", "otlp:", "off");
        return;
    }
    json_num(o, "exported_traces", &exported);
    json_num(o, "exported_spans", &spans);
    json_num(o, "lost_traces", &lost);
    json_num(o, "pending", &pending);
    json_num(o, "retries", &retries);
    tp_buf_printf(out, "%-13s%s\n", "otlp:", url);
    if (!json_is_number(json_object_get(o, "exported_traces"))) {
        json_num(o, "pending", &pending);
        tp_buf_printf(out, "%-13s%.0f of your traces pending (the exporter's counts: root only)\n",
                      "", pending);
        return;
    }
    tp_buf_printf(out,
                  "%-13s%.0f traces (%.0f spans) exported, %.0f pending, %.0f lost, %.0f retries\n",
                  "", exported, spans, pending, lost, retries);
    if ((err = tph_json_str(o, "last_error")))
        tp_buf_printf(out, "%-13slast error: %s\n", "", err);
}

int tph_fmt_status(const json_t *st, tp_buf *out)
{
    const char *ver = tph_json_str(st, "version");
    const char *s;
    double v, rate;

    if (!json_is_object(st))
        return -EINVAL;
    tp_buf_printf(out, "tphd %s", ver ? ver : "(unknown version)");
    if (json_num(st, "pid", &v))
        tp_buf_printf(out, ", pid %.0f", v);
    if (json_num(st, "uptime_s", &v)) {
        tp_buf_puts(out, ", up ");
        put_uptime(out, v);
    }
    tp_buf_putc(out, '\n');
    put_line_num(out, st, "protocol:", "protocol");
    if ((s = tph_json_str(st, "socket")))
        tp_buf_printf(out, "%-13s%s\n", "socket:", s);
    if ((s = tph_json_str(st, "db"))) {
        tp_buf_printf(out, "%-13s%s", "database:", s);
        if (json_num(st, "db_bytes", &v)) {
            tp_buf_puts(out, " (");
            put_bytes(out, v);
            tp_buf_putc(out, ')');
        }
        tp_buf_putc(out, '\n');
    }
    put_line_num(out, st, "traces:", "traces");
    put_line_num(out, st, "connections:", "clients");
    if (json_num(st, "events_total", &v)) {
        tp_buf_printf(out, "%-13s%.0f", "events:", v);
        if (json_num(st, "events_per_s", &rate))
            tp_buf_printf(out, " (%.1f/s)", rate);
        tp_buf_putc(out, '\n');
    }
    put_line_num(out, st, "dropped:", "dropped");
    s = tph_json_str(st, "http");
    tp_buf_printf(out, "%-13s%s\n", "http:", s ? s : "off");
    put_otlp(out, json_object_get(st, "otlp"));
    return tp_buf_error(out);
}
