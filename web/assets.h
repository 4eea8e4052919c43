/* The report UI (web/) embedded into the binaries: generated at build time by
 * web/embed.py into assets.c. Everything here is static, read-only data;
 * any thread may call these functions. */
#ifndef TP_ASSETS_H
#define TP_ASSETS_H

#include <stddef.h>

#include "render_web.h"

/** One embedded file. */
typedef struct tp_asset {
    const char *path;          /* URL path: "/index.html", "/assets/app.js", ... */
    const unsigned char *data; /* the bytes as served */
    size_t len;
    const unsigned char *gz; /* gzip-compressed copy (mtime 0), NULL when not smaller */
    size_t gz_len;
    const char *content_type; /* "text/javascript; charset=utf-8", ... */
    const char *etag;         /* strong validator with its quotes: "\"1a2b...\"" */
} tp_asset;

/** The asset at exactly path[0..len) (no query string), or NULL. */
const tp_asset *tp_assets_find(const char *path, size_t len);

/** The pieces tp_render_html() inlines (index.html, app.js, style.css and
 *  their CSP hashes). The pointers are static. */
void tp_assets_report(tp_web_assets *ret);

#endif
