/* The events op: a trace's event records and their text as tphd stored them
 * (its EVENTS batches, PROTOCOL.md 4.5), for a streaming client that let go
 * of what tphd had committed and now renders the whole trace itself
 * (docs/QUERY.md). The batches go out one at a time through the body's
 * drain, so an answer of any size costs tphd one batch of memory. */
#include <errno.h>
#include <string.h>

#include "query_ops.h"
#include "tp_err.h"

#define TP_CT_EVENTS "application/x-tracepatch-events"

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int tp_query_events(tp_qctx *q)
{
    int64_t rowid, want;
    if (tp__query_resolve_arg(q, "id", &rowid) < 0)
        return q->res->code;
    if (tp__query_arg_int(q, "records", -1, &want) < 0)
        return q->res->code;
    if (want < -1)
        return tp__query_fail(q, -EINVAL,
                              "records must be a count of records (or -1 for all), got %lld",
                              (long long)want);
    q->res->content_type = TP_CT_EVENTS; /* before the first piece leaves */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT nrecords, records, text FROM chunks WHERE trace = ?1 "
                           "ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return tp__query_dberr(q, "reading events");
    sqlite3_bind_int64(st, 1, rowid);
    uint64_t left = want < 0 ? UINT64_MAX : (uint64_t)want;
    int r = 0, rc = SQLITE_DONE;
    while (left && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t nrec = (size_t)sqlite3_column_bytes(st, 1) / 16;
        const void *rec = sqlite3_column_blob(st, 1);
        size_t tlen = (size_t)sqlite3_column_bytes(st, 2);
        const void *text = sqlite3_column_blob(st, 2);
        if (nrec == 0)
            continue;
        /* A batch the client needs only part of goes whole: the client
         * takes the records it asked for and their text. */
        uint8_t head[8];
        put_u32(head, (uint32_t)nrec);
        put_u32(head + 4, (uint32_t)tlen);
        if (tp_buf_append(&q->res->body, head, sizeof(head)) < 0 ||
            tp_buf_append(&q->res->body, rec, nrec * 16) < 0 ||
            (tlen && tp_buf_append(&q->res->body, text, tlen) < 0)) {
            r = tp__query_fail(q,
                               tp_buf_error(&q->res->body) ? tp_buf_error(&q->res->body) : -ENOMEM,
                               "sending events failed");
            break;
        }
        left = nrec >= left ? 0 : left - nrec;
    }
    if (!r && left && want >= 0 && rc != SQLITE_DONE)
        r = tp__query_dberr(q, "reading events");
    else if (!r && left && want >= 0)
        r = tp__query_fail(q, TP_ERR_NOT_FOUND,
                           "the trace has %lld fewer records stored than asked for",
                           (long long)left);
    sqlite3_finalize(st);
    return r;
}
