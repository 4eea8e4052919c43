/* Chrome trace-event JSON ({"traceEvents":[...]}, "X" events in µs since the
 * trace start), which opens in Perfetto and chrome://tracing. One event per
 * line, each written by the one JSON writer (json.h). */
#include <errno.h>
#include <stdint.h>

#include "json.h"
#include "render.h"
#include "render_priv.h"
#include "tree_priv.h"

#define NS_PER_US INT64_C(1000)

/* Microseconds with nanosecond decimals. */
static void put_us(tp_json *w, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    tp_json_fixed(w, ns / NS_PER_US, ns % NS_PER_US, 3);
}

static void event(tp_buf *out, const tp_tree *t, const tp_node *n, tp_buf *tmp)
{
    const tp_func *f = &t->funcs[n->func];
    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_kstr(&w, "name", f->qualname);
    tp_json_kstr(&w, "cat", f->module);
    tp_json_kstr(&w, "ph", "X");
    tp_json_key(&w, "ts");
    put_us(&w, n->start_ns);
    tp_json_key(&w, "dur");
    put_us(&w, n->end_ns - n->start_ns);
    tp_json_ku64(&w, "pid", 1);
    tp_json_ku64(&w, "tid", n->thread);
    tp_json_key(&w, "args");
    tp_json_obj(&w);
    if (n->args) {
        tp_json_kstr(&w, "args", n->args);
    }
    if (n->ret && !(n->flags & TP_NODE_EXC)) {
        tp_json_kstr(&w, "return_value", n->ret);
    }
    if (n->flags & TP_NODE_EXC) {
        tp_json_key(&w, "exception");
        tp__render_json_exc(&w, n, tmp);
    } else if ((n->flags & TP_NODE_CAUGHT) && n->exc_type) {
        tp_json_kstr(&w, "caught", n->exc_type);
    }
    if (n->flags & TP_NODE_OPEN) {
        tp_json_kbool(&w, "unfinished", true);
    }
    if (n->flags & TP_NODE_FOLDED) {
        tp_json_ku64(&w, "count", n->count);
    }
    tp_json_obj_end(&w);
    tp_json_obj_end(&w);
}

/* The process-name metadata event that titles the trace with its label. */
static void process_name(tp_buf *out, const char *label)
{
    tp_json w;
    tp_json_init(&w, out, false);
    tp_json_obj(&w);
    tp_json_kstr(&w, "name", "process_name");
    tp_json_kstr(&w, "ph", "M");
    tp_json_ku64(&w, "pid", 1);
    tp_json_ku64(&w, "tid", 0);
    tp_json_key(&w, "args");
    tp_json_obj(&w);
    tp_json_kstr(&w, "name", label);
    tp_json_obj_end(&w);
    tp_json_obj_end(&w);
}

int tp_render_chrome(const tp_tree *t, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    tp_buf tmp = TP_BUF_INIT;
    bool first = true;
    /* The envelope is written here so that each event gets a line of its
     * own: a file of millions of events stays readable with head and grep. */
    tp_buf_puts(out, "{\"traceEvents\":[");
    if (t->meta.label) {
        tp_buf_putc(out, '\n');
        process_name(out, t->meta.label);
        first = false;
    }
    uint32_t i = t->first_root;
    while (i != TP_NONE && !tp_buf_error(out)) {
        tp_buf_puts(out, first ? "\n" : ",\n");
        first = false;
        event(out, t, &t->nodes[i], &tmp);
        i = tp__tree_next(t, i);
    }
    tp_buf_puts(out,
                first ? "],\"displayTimeUnit\":\"ms\"}\n" : "\n],\"displayTimeUnit\":\"ms\"}\n");
    tp_buf_free(&tmp);
    return tp_buf_error(out);
}
