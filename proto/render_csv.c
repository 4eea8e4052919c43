/* CSV: tracepatch 1.0.0's columns plus ours, one row per call (RFC 4180).
 * Times use the JSON trace file's clock (render_trace_json.c): wall_us =
 * wall_start_ns / 1000 and t_us = wall_us + node_ns / 1000. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "render.h"
#include "render_priv.h"
#include "tree_priv.h"

#define NS_PER_US INT64_C(1000)

/* Columns: tracepatch 1.0.0's seven, in its order, then ours. Times use the
 * JSON clock; elapsed_ms and self_ms have 4 decimals like 1.0.0's. */
#define CSV_HEADER                                                                                 \
    "module,function,args,return_value,elapsed_ms,depth,parent,exception,start,end,self_ms,"       \
    "file,lineno\r\n"

/* One RFC 4180 cell. Text starting with = + - @ (or a tab or CR) gets a
 * leading ' so spreadsheets do not run it as a formula; bytes that are not
 * UTF-8 become U+FFFD. */
static void csv_cell(tp_buf *b, const char *a, const char *sep, const char *c)
{
    const char *parts[3] = {a ? a : "", sep ? sep : "", c ? c : ""};
    bool quote = false;
    for (int k = 0; k < 3; k++)
        if (strpbrk(parts[k], ",\"\r\n"))
            quote = true;
    char first = parts[0][0] ? parts[0][0] : parts[1][0] ? parts[1][0] : parts[2][0];
    if (quote)
        tp_buf_putc(b, '"');
    if (first && strchr("=+-@\t\r", first))
        tp_buf_putc(b, '\'');
    for (int k = 0; k < 3; k++) {
        const unsigned char *p = (const unsigned char *)parts[k];
        size_t n = strlen(parts[k]), i = 0;
        while (i < n) {
            size_t run = i;
            while (run < n && p[run] < 0x80 && p[run] != '"')
                run++;
            tp_buf_append(b, p + i, run - i);
            if ((i = run) >= n)
                break;
            uint32_t cp;
            size_t len = p[i] == '"' ? 1 : tp_json_utf8_decode(p + i, n - i, &cp);
            if (p[i] == '"')
                tp_buf_append(b, "\"\"", 2);
            else if (!len)
                tp_buf_puts(b, "\xef\xbf\xbd");
            else
                tp_buf_append(b, p + i, len);
            i += len ? len : 1;
        }
    }
    if (quote)
        tp_buf_putc(b, '"');
}

static void csv_name(tp_buf *b, const tp_tree *t, uint32_t func)
{
    const tp_func *f = &t->funcs[func];
    csv_cell(b, f->module, f->module[0] ? "." : "", f->qualname);
}

static void csv_seconds(tp_buf *b, int64_t us)
{
    tp_json_put_fixed(b, us / 1000000, us % 1000000, 6);
}

static void csv_row(tp_buf *b, const tp_tree *t, const tp_node *n, int64_t wall_us)
{
    const tp_func *f = &t->funcs[n->func];
    bool exc = (n->flags & TP_NODE_EXC) != 0;
    csv_cell(b, f->module, NULL, NULL);
    tp_buf_putc(b, ',');
    csv_cell(b, f->qualname, NULL, NULL);
    tp_buf_putc(b, ',');
    csv_cell(b, n->args, NULL, NULL);
    tp_buf_putc(b, ',');
    csv_cell(b, exc ? NULL : n->ret, NULL, NULL);
    tp_buf_putc(b, ',');
    tp__render_ms(b, n->total_ns, 4);
    tp_buf_putc(b, ',');
    tp_json_put_u64(b, n->depth);
    tp_buf_putc(b, ',');
    if (n->parent != TP_NONE)
        csv_name(b, t, t->nodes[n->parent].func);
    tp_buf_putc(b, ',');
    if (exc)
        csv_cell(b, n->exc_type, n->exc_msg && n->exc_msg[0] ? ": " : NULL, n->exc_msg);
    tp_buf_putc(b, ',');
    csv_seconds(b, wall_us + n->start_ns / NS_PER_US);
    tp_buf_putc(b, ',');
    csv_seconds(b, wall_us + n->end_ns / NS_PER_US);
    tp_buf_putc(b, ',');
    tp__render_ms(b, n->self_ns, 4);
    tp_buf_putc(b, ',');
    csv_cell(b, f->file, NULL, NULL);
    tp_buf_putc(b, ',');
    if (f->lineno > 0)
        tp_json_put_u64(b, (uint64_t)f->lineno);
    tp_buf_append(b, "\r\n", 2);
}

int tp_render_csv(const tp_tree *t, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    int64_t wall_us = t->meta.wall_start_ns > 0 ? t->meta.wall_start_ns / NS_PER_US : 0;
    tp_buf_puts(out, CSV_HEADER);
    uint32_t i = t->first_root;
    while (i != TP_NONE && !tp_buf_error(out)) {
        csv_row(out, t, &t->nodes[i], wall_us);
        i = tp__tree_next(t, i);
    }
    return tp_buf_error(out);
}
