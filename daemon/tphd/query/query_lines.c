/* The line data of trace(lines=...) (PROTOCOL.md 4.6a): the lines op, and
 * the "lines" key that export and import carry in trace files. The text is
 * kept as it arrived (tphd checked its shape when it came in); readers take
 * the keys they know. */
#include <errno.h>
#include <string.h>

#include "json_jansson.h"
#include "query_ops.h"
#include "tp_err.h"

int tp_query_lines_read(tp_qctx *q, int64_t rowid, tp_buf *out, bool *ret_found)
{
    sqlite3_stmt *st = NULL;
    int r = 0;
    *ret_found = false;
    if (sqlite3_prepare_v2(q->db, "SELECT json FROM trace_lines WHERE trace = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return tp__query_dberr(q, "reading line data");
    sqlite3_bind_int64(st, 1, rowid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *text = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *ret_found = n > 0;
        if (n && tp_buf_append(out, text, n) < 0)
            r = tp__query_fail(q, -ENOMEM, "out of memory");
    } else if (rc != SQLITE_DONE) {
        r = tp__query_dberr(q, "reading line data");
    }
    sqlite3_finalize(st);
    return r;
}

int tp_query_lines(tp_qctx *q)
{
    int64_t rowid;
    bool found;
    if (tp__query_resolve_arg(q, "id", &rowid) < 0)
        return q->res->code;
    q->res->content_type = TP_CT_JSON; /* before the first piece leaves */
    if (tp_query_lines_read(q, rowid, &q->res->body, &found) < 0)
        return q->res->code;
    if (!found && tp_buf_puts(&q->res->body, "[]") < 0)
        return tp__query_fail(q, -ENOMEM, "out of memory");
    return 0;
}

int tp_query_lines_of_file(const char *text, size_t len, char **ret, char *err, size_t errsz)
{
    *ret = NULL;
    /* Most files have none: they are not parsed a second time. */
    if (!memmem(text, len, "\"lines\"", 7))
        return 0;
    json_t *doc = json_loadb(text, len, 0, NULL);
    json_t *lines = doc ? json_object_get(doc, "lines") : NULL;
    int r = 0;
    if (lines && !json_is_null(lines)) {
        bool ok = json_is_array(lines);
        for (size_t i = 0; ok && i < json_array_size(lines); i++)
            ok = json_is_object(json_array_get(lines, i));
        if (!ok) {
            r = tp_err_set(err, errsz, TP_ERR_JSON,
                           "the file's \"lines\" is not an array of objects");
        } else if (json_array_size(lines) > 0) {
            *ret = tp_json_jansson_dumps(lines);
            if (!*ret)
                r = tp_err_set(err, errsz, -ENOMEM, "out of memory");
        }
    }
    json_decref(doc);
    return r;
}
