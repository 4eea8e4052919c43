/* An SVG flame graph: one bar per call, its width its active time, callers
 * below their callees, a tooltip per bar. Self-contained (no script, no
 * external reference), so it opens in any browser or image viewer. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "render_priv.h"
#include "tp_err.h"
#include "tree_priv.h"

#define SVG_WIDTH     1200 /* drawing width in px, bars included */
#define SVG_MARGIN    10   /* left and right */
#define SVG_ROW       16   /* one call depth */
#define SVG_TOP       40   /* room for the title */
#define SVG_CHAR_PX   7    /* average glyph width at font-size 12, to cut labels */
#define SVG_MIN_BAR   0.1  /* px: narrower bars are left out (they cannot be seen) */
#define SVG_MAX_DEPTH 4096 /* rows drawn; deeper calls are left out */

/* Appends s[0..n) as XML character data or attribute text: the terminal
 * escaper first (control characters and invalid UTF-8, which XML forbids,
 * become visible escapes), then the five XML specials. */
static void put_xml(tp_buf *b, tp_buf *tmp, const char *s, size_t n)
{
    tp_buf_reset(tmp);
    tp__render_text(tmp, s, n, false);
    tp__render_markup(b, tmp->data ? tmp->data : "", tmp->len);
}

/* A warm colour per function, stable across runs (from its name's bytes),
 * so one function has one colour everywhere in the graph. */
static void put_colour(tp_buf *b, const tp_func *f)
{
    uint32_t h = 2166136261u;
    for (const char *s = f->qualname; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    tp_buf_printf(b, "rgb(%u,%u,%u)", 205 + h % 50, 80 + (h >> 8) % 150, 40 + (h >> 16) % 50);
}

static void put_bar(tp_buf *b, tp_buf *tmp, tp_buf *name, const tp_tree *t, const tp_node *n,
                    double x, double w, int y, int64_t total)
{
    const tp_func *f = &t->funcs[n->func];
    tp_buf_reset(name);
    if (f->module[0]) {
        tp_buf_puts(name, f->module);
        tp_buf_putc(name, '.');
    }
    tp_buf_puts(name, f->qualname);
    tp_buf_puts(b, "<g><title>");
    put_xml(b, tmp, name->data, name->len);
    if (n->count > 1)
        tp_buf_printf(b, " [\u00d7%" PRIu32 "]", n->count);
    tp_buf_puts(b, " (");
    tp__render_duration(b, n->total_ns, 0);
    tp_buf_printf(b, ", %.2f%%", total > 0 ? 100.0 * (double)n->total_ns / (double)total : 0.0);
    if (n->flags & TP_NODE_EXC) {
        tp_buf_puts(b, ", raised ");
        put_xml(b, tmp, n->exc_type ? n->exc_type : "", n->exc_type ? strlen(n->exc_type) : 0);
    }
    tp_buf_puts(b, ")</title><rect x=\"");
    tp_buf_printf(b, "%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"", x, y, w, SVG_ROW - 1);
    put_colour(b, f);
    tp_buf_puts(b, "\" rx=\"2\"/>");
    size_t fits = w > 2 * SVG_CHAR_PX ? (size_t)((w - 6) / SVG_CHAR_PX) : 0;
    if (fits >= 3) {
        tp_buf_printf(b, "<text x=\"%.2f\" y=\"%d\">", x + 3, y + SVG_ROW - 4);
        if (name->len <= fits) {
            put_xml(b, tmp, name->data, name->len);
        } else {
            /* Cut on a character boundary, then mark the cut. */
            size_t cut = fits - 2;
            while (cut > 0 && ((unsigned char)name->data[cut] & 0xc0) == 0x80)
                cut--;
            put_xml(b, tmp, name->data, cut);
            tp_buf_puts(b, "..");
        }
        tp_buf_puts(b, "</text>");
    }
    tp_buf_puts(b, "</g>\n");
}

int tp_render_svg(const tp_tree *t, const char *title, tp_buf *out)
{
    if (!t || !out)
        return -EINVAL;
    int r = 0;
    tp_buf tmp = TP_BUF_INIT, name = TP_BUF_INIT;
    /* x of each node's next child, so siblings sit side by side. */
    double *next_x = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*next_x));
    if (!next_x)
        return -ENOMEM;
    int64_t total = 0;
    uint32_t rows = 1;
    for (uint32_t i = t->first_root; i != TP_NONE; i = t->nodes[i].next)
        total += t->nodes[i].total_ns > 0 ? t->nodes[i].total_ns : 0;
    for (uint32_t i = t->first_root; i != TP_NONE; i = tp__tree_next(t, i))
        if (t->nodes[i].depth + 1 > rows && t->nodes[i].depth < SVG_MAX_DEPTH)
            rows = t->nodes[i].depth + 1;
    int height = SVG_TOP + (int)rows * SVG_ROW + SVG_MARGIN;
    double scale = total > 0 ? (double)(SVG_WIDTH - 2 * SVG_MARGIN) / (double)total : 0;

    tp_buf_printf(out,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
                  "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"monospace\" "
                  "font-size=\"12\">\n"
                  "<rect width=\"100%%\" height=\"100%%\" fill=\"#fdf6e3\"/>\n"
                  "<text x=\"%d\" y=\"24\" font-size=\"16\">",
                  SVG_WIDTH, height, SVG_WIDTH, height, SVG_WIDTH / 2);
    const char *head = title ? title : t->meta.label ? t->meta.label : "Flame graph";
    put_xml(out, &tmp, head, strlen(head));
    tp_buf_puts(out, " (");
    tp__render_duration(out, total, 0);
    tp_buf_printf(out, ", %" PRIu64 " calls)</text>\n", t->meta.call_count);

    double root_x = SVG_MARGIN;
    for (uint32_t i = t->first_root; i != TP_NONE;) {
        const tp_node *n = &t->nodes[i];
        double x = n->parent == TP_NONE ? root_x : next_x[n->parent];
        double w = (double)(n->total_ns > 0 ? n->total_ns : 0) * scale;
        if (n->parent == TP_NONE)
            root_x += w;
        else
            next_x[n->parent] += w;
        next_x[i] = x;
        if (w < SVG_MIN_BAR || n->depth >= SVG_MAX_DEPTH) {
            i = tp__tree_after(t, i); /* its callees are narrower still */
            continue;
        }
        int y = SVG_TOP + (int)(rows - 1 - n->depth) * SVG_ROW;
        put_bar(out, &tmp, &name, t, n, x, w, y, total);
        if ((r = tp_buf_error(out)) || (r = tp_buf_error(&tmp)) || (r = tp_buf_error(&name)))
            goto cleanup;
        i = tp__tree_next(t, i);
    }
    tp_buf_puts(out, "</svg>\n");
    r = tp_buf_error(out);
cleanup:
    free(next_x);
    tp_buf_free(&tmp);
    tp_buf_free(&name);
    return r;
}
