/* The line data of trace(lines=...) (PROTOCOL.md 4.6a) and the functions'
 * source text (4.6b): the lines and source ops, and the "lines" and
 * "source" keys that export and import carry in trace files. The texts are
 * kept as they arrived (tphd checked their shape when they came in); readers
 * take the keys they know. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "json_jansson.h"
#include "query_ops.h"
#include "tp_err.h"
#include "wire.h"

/* The JSON text of one trace in trace_lines or trace_source (sql). */
static int read_text(tp_qctx *q, const char *sql, const char *what, int64_t rowid, tp_buf *out,
                     bool *ret_found)
{
    sqlite3_stmt *st = NULL;
    int r = 0;
    *ret_found = false;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return tp__query_dberr(q, what);
    sqlite3_bind_int64(st, 1, rowid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *text = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *ret_found = n > 0;
        if (n && tp_buf_append(out, text, n) < 0)
            r = tp__query_fail(q, -ENOMEM, "out of memory");
    } else if (rc != SQLITE_DONE) {
        r = tp__query_dberr(q, what);
    }
    sqlite3_finalize(st);
    return r;
}

int tp_query_lines_read(tp_qctx *q, int64_t rowid, tp_buf *out, bool *ret_found)
{
    return read_text(q, "SELECT json FROM trace_lines WHERE trace = ?1", "reading line data", rowid,
                     out, ret_found);
}

int tp_query_source_read(tp_qctx *q, int64_t rowid, tp_buf *out, bool *ret_found)
{
    return read_text(q, "SELECT json FROM trace_source WHERE trace = ?1", "reading source text",
                     rowid, out, ret_found);
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

/* ---- source ------------------------------------------------------------------------- */

static const char *bad_entry(const json_t *f)
{
    if (!json_is_object(f))
        return "is not an object";
    static const char *const strs[] = {"module", "qualname", "file"};
    for (size_t k = 0; k < 3; k++)
        if (!json_is_string(json_object_get(f, strs[k])))
            return "lacks a str module, qualname or file";
    if (!json_is_integer(json_object_get(f, "line")))
        return "lacks an integer line";
    const json_t *text = json_object_get(f, "text"), *missing = json_object_get(f, "missing");
    const json_t *cut = json_object_get(f, "truncated");
    if ((text && !json_is_string(text)) || (missing && !json_is_string(missing)))
        return "has a text or missing that is not a str";
    if (cut && !json_is_integer(cut))
        return "has a truncated that is not an integer";
    return NULL;
}

const char *tp_query_source_bad(const json_t *source, size_t *ret_index)
{
    *ret_index = SIZE_MAX;
    const json_t *fs = json_object_get(source, "functions");
    if (!json_is_object(source) || !json_is_array(fs))
        return "is not an object with a \"functions\" array";
    for (size_t i = 0; i < json_array_size(fs); i++) {
        const char *why = bad_entry(json_array_get(fs, i));
        if (why) {
            *ret_index = i;
            return why;
        }
    }
    return NULL;
}

/* Function fid of the trace: its module, qualname, file and line, as a new
 * object with "func" first. TP_ERR_NOT_FOUND when the trace has no such
 * function. */
static int func_row(tp_qctx *q, int64_t rowid, int64_t fid, json_t **ret)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT module, qualname, file, lineno FROM funcs"
                           " WHERE trace = ?1 AND fid = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return tp__query_dberr(q, "reading a function");
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int64(st, 2, fid);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        *ret = json_pack("{s:I, s:s, s:s, s:s, s:I}", "func", (json_int_t)fid, "module",
                         (const char *)sqlite3_column_text(st, 0), "qualname",
                         (const char *)sqlite3_column_text(st, 1), "file",
                         (const char *)sqlite3_column_text(st, 2), "line",
                         (json_int_t)sqlite3_column_int64(st, 3));
        if (!*ret)
            r = tp__query_fail(q, -ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        r = tp__query_fail(q, TP_ERR_NOT_FOUND, "trace has no function %lld", (long long)fid);
    } else {
        r = tp__query_dberr(q, "reading a function");
    }
    sqlite3_finalize(st);
    return r;
}

static bool same_str(const json_t *a, const json_t *b)
{
    return json_is_string(a) && json_is_string(b) &&
           json_string_length(a) == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
}

/* The entry of functions that stands for the function fn describes: the
 * first with its module, qualname, file and line (one code object starts at
 * one line of one file), or NULL. */
static const json_t *find_entry(const json_t *functions, const json_t *fn)
{
    for (size_t i = 0; i < json_array_size(functions); i++) {
        const json_t *e = json_array_get(functions, i);
        if (same_str(json_object_get(e, "module"), json_object_get(fn, "module")) &&
            same_str(json_object_get(e, "qualname"), json_object_get(fn, "qualname")) &&
            same_str(json_object_get(e, "file"), json_object_get(fn, "file")) &&
            json_integer_value(json_object_get(e, "line")) ==
                json_integer_value(json_object_get(fn, "line")))
            return e;
    }
    return NULL;
}

/* text cut to TP_QUERY_SOURCE_MAX bytes at a line's end (a first line
 * longer than that: at a UTF-8 character's start); *ret_cut counts the lines
 * left out. */
static json_t *bounded_text(const char *text, size_t n, int64_t *ret_cut)
{
    *ret_cut = 0;
    if (n <= TP_QUERY_SOURCE_MAX)
        return json_stringn(text, n);
    size_t keep = TP_QUERY_SOURCE_MAX;
    while (keep > 0 && text[keep - 1] != '\n')
        keep--;
    if (keep == 0) {
        keep = TP_QUERY_SOURCE_MAX;
        while (keep > 0 && ((unsigned char)text[keep] & 0xc0) == 0x80)
            keep--;
    }
    int64_t lines = 0;
    for (size_t i = keep; i < n; i++)
        lines += text[i] == '\n';
    *ret_cut = lines + (text[n - 1] != '\n');
    return json_stringn(text, keep);
}

int tp_query_source(tp_qctx *q)
{
    int64_t rowid, fid;
    json_t *ans = NULL, *doc = NULL;
    tp_buf text = TP_BUF_INIT;
    bool found = false;
    if (tp__query_resolve_arg(q, "id", &rowid) < 0 || tp__query_arg_int(q, "func", -1, &fid) < 0)
        return q->res->code;
    if (fid < 0)
        return tp__query_fail(q, TP_ERR_MISSING, "source needs func: a function id of the trace");
    if (func_row(q, rowid, fid, &ans) < 0 || tp_query_source_read(q, rowid, &text, &found) < 0)
        goto out;
    /* The text was checked when it came in (tp_query_source_bad). */
    doc = found ? json_loadb(text.data, text.len, 0, NULL) : NULL;
    const json_t *e = doc ? find_entry(json_object_get(doc, "functions"), ans) : NULL;
    const json_t *t = e ? json_object_get(e, "text") : NULL;
    int64_t cut = 0;
    json_object_set_new(ans, "text",
                        t ? bounded_text(json_string_value(t), json_string_length(t), &cut)
                          : json_null());
    json_object_set_new(ans, "truncated",
                        json_integer(json_integer_value(json_object_get(e, "truncated")) + cut));
    const json_t *missing = e ? json_object_get(e, "missing") : NULL;
    json_object_set_new(ans, "missing",
                        e ? (missing ? json_copy((json_t *)missing) : json_null())
                          : json_string("not in the trace"));
    q->res->content_type = TP_CT_JSON;
    tp__query_reply_json(q, ans);
    ans = NULL;
out:
    json_decref(ans);
    json_decref(doc);
    tp_buf_free(&text);
    return q->res->code;
}

/* ---- trace files ------------------------------------------------------------------------- */

/* The file's "lines": an array of objects, kept unless empty. */
static int file_lines(const json_t *lines, char **ret, char *err, size_t errsz)
{
    if (!lines || json_is_null(lines))
        return 0;
    bool ok = json_is_array(lines);
    for (size_t i = 0; ok && i < json_array_size(lines); i++)
        ok = json_is_object(json_array_get(lines, i));
    if (!ok)
        return tp_err_set(err, errsz, TP_ERR_JSON,
                          "the file's \"lines\" is not an array of objects");
    if (json_array_size(lines) == 0)
        return 0;
    *ret = tp_json_jansson_dumps(lines);
    return *ret ? 0 : tp_err_set(err, errsz, -ENOMEM, "out of memory");
}

/* The file's "source": 4.6b's shape, at most TP_WIRE_MAX_SOURCE bytes of
 * JSON as a SOURCE message would carry. */
static int file_source(const json_t *source, char **ret, char *err, size_t errsz)
{
    if (!source || json_is_null(source))
        return 0;
    size_t bad;
    const char *why = tp_query_source_bad(source, &bad);
    if (why && bad == SIZE_MAX)
        return tp_err_set(err, errsz, TP_ERR_JSON, "the file's \"source\" %s", why);
    if (why)
        return tp_err_set(err, errsz, TP_ERR_JSON, "the file's \"source\": function %zu %s", bad,
                          why);
    *ret = tp_json_jansson_dumps(source);
    if (!*ret)
        return tp_err_set(err, errsz, -ENOMEM, "out of memory");
    size_t n = strlen(*ret);
    if (n > TP_WIRE_MAX_SOURCE) {
        free(*ret);
        *ret = NULL;
        return tp_err_set(err, errsz, TP_ERR_LIMIT,
                          "the file's \"source\" is %zu bytes of JSON, more than %u", n,
                          TP_WIRE_MAX_SOURCE);
    }
    return 0;
}

int tp_query_sections_of_file(const char *text, size_t len, char **ret_lines, char **ret_source,
                              char *err, size_t errsz)
{
    *ret_lines = *ret_source = NULL;
    /* Most files have neither: they are not parsed a second time. */
    if (!memmem(text, len, "\"lines\"", 7) && !memmem(text, len, "\"source\"", 8))
        return 0;
    json_t *doc = json_loadb(text, len, 0, NULL);
    int r = file_lines(json_object_get(doc, "lines"), ret_lines, err, errsz);
    if (r == 0)
        r = file_source(json_object_get(doc, "source"), ret_source, err, errsz);
    json_decref(doc);
    if (r < 0) {
        free(*ret_lines);
        *ret_lines = NULL;
    }
    return r;
}
