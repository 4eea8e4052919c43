#include "rebuild.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_err.h"

/* ---- Events -> tree ---------------------------------------------------------------- */

/* Reads a record's text entries; returns false when they run past the end. */
static bool take_text(const uint8_t *text, size_t text_len, size_t *pos, unsigned n, const char **p,
                      size_t *len)
{
    for (unsigned k = 0; k < n; k++) {
        uint32_t l;
        if (text_len - *pos < 4)
            return false;
        memcpy(&l, text + *pos, 4);
        l = le32toh(l);
        *pos += 4;
        if (text_len - *pos < l)
            return false;
        p[k] = (const char *)text + *pos;
        len[k] = l;
        *pos += l;
    }
    return true;
}

int tp_rebuild_feed(tp_tree *t, const void *records, size_t nrecords, const void *text,
                    size_t text_len)
{
    const uint8_t *rec = records, *tx = text;
    size_t tpos = 0;
    for (size_t i = 0; i < nrecords; i++) {
        tp_event e;
        memcpy(&e, rec + i * sizeof(e), sizeof(e));
        uint32_t arg = le32toh(e.arg);
        uint16_t rsv = le16toh(e.rsv);
        uint64_t tns = le64toh(e.t_ns);
        const char *s[2] = {NULL, NULL};
        size_t l[2] = {0, 0};
        if ((e.flags & TP_EVF_TEXT) &&
            !take_text(tx, text_len, &tpos, tp_event_text_entries(e.kind), s, l))
            return TP_ERR_MALFORMED;
        int r = tp_tree_event(t, e.kind, e.flags, rsv, arg, tns, s[0], l[0], s[1], l[1]);
        /* Only running out of memory stops a rebuild; an event the builder
         * cannot place (validated at ingest, so rare) is skipped. */
        if (r == -ENOMEM)
            return r;
    }
    return 0;
}

static int load_meta(sqlite3 *db, int64_t rowid, tp_tree *t, uint64_t *ret_end, char *err,
                     size_t errsz)
{
    sqlite3_stmt *st = NULL;
    int r = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, label, wall_start_ns, end_ns, last_ns, calls, dropped,"
                                " limit_reason, config, status, host, python, platform, cwd"
                                " FROM traces WHERE rowid = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(st, 1, rowid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        snprintf(err, errsz, "trace not found");
        r = TP_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW)
        goto dberr;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(t->meta.trace_id, sizeof(t->meta.trace_id), "%s", id ? id : "");
    t->meta.wall_start_ns = sqlite3_column_int64(st, 2);
    int64_t end = sqlite3_column_type(st, 3) == SQLITE_NULL ? sqlite3_column_int64(st, 4)
                                                            : sqlite3_column_int64(st, 3);
    *ret_end = end > 0 ? (uint64_t)end : 0;
    t->meta.call_count = (uint64_t)sqlite3_column_int64(st, 5);
    t->meta.dropped = (uint64_t)sqlite3_column_int64(st, 6);
    t->meta.running = sqlite3_column_int(st, 9) == TP_TRACE_OPEN;
    if ((sqlite3_column_type(st, 1) != SQLITE_NULL &&
         tp_tree_set_label(t, (const char *)sqlite3_column_text(st, 1)) < 0) ||
        (sqlite3_column_type(st, 7) != SQLITE_NULL &&
         tp_tree_set_limit_reason(t, (const char *)sqlite3_column_text(st, 7)) < 0) ||
        (sqlite3_column_type(st, 8) != SQLITE_NULL &&
         tp_tree_set_config_json(t, (const char *)sqlite3_column_text(st, 8)) < 0) ||
        tp_tree_set_env(t, (const char *)sqlite3_column_text(st, 10),
                        (const char *)sqlite3_column_text(st, 11),
                        (const char *)sqlite3_column_text(st, 12),
                        (const char *)sqlite3_column_text(st, 13)) < 0) {
        snprintf(err, errsz, "out of memory");
        r = -ENOMEM;
    }
    goto out;
dberr:
    r = tp_store_sqlite_err(db, rc, "reading a trace", err, errsz);
out:
    sqlite3_finalize(st);
    return r;
}

static int load_funcs(sqlite3 *db, int64_t rowid, tp_tree *t, char *err, size_t errsz)
{
    sqlite3_stmt *st = NULL;
    int r = 0, rc = sqlite3_prepare_v2(
                   db, "SELECT fid, module, qualname, file, lineno FROM funcs WHERE trace = ?1", -1,
                   &st, NULL);
    if (rc != SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(st, 1, rowid);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        r = tp_tree_def_func(
            t, (uint32_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
            (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
            (int32_t)sqlite3_column_int(st, 4));
        if (r < 0) {
            snprintf(err, errsz, "cannot describe a function: %s", tp_strerror(r));
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        goto dberr;
    goto out;
dberr:
    r = tp_store_sqlite_err(db, rc, "reading functions", err, errsz);
out:
    sqlite3_finalize(st);
    return r;
}

static int last_chunk(sqlite3 *db, int64_t rowid, int64_t *ret, char *err, size_t errsz)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT max(seq) FROM chunks WHERE trace = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, rowid);
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        int r = tp_store_sqlite_err(db, rc, "reading events", err, errsz);
        sqlite3_finalize(st);
        return r;
    }
    *ret = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Reads the chunks one at a time, each copied out and its statement reset
 * before it is fed: building a big tree takes a while, and a read
 * transaction held that long would keep the WAL from being checkpointed.
 * The chunks of a trace are append-only, so this reads a consistent prefix.
 * *ret_max_t gets the largest event time seen. */
static int load_chunks(sqlite3 *db, int64_t rowid, int64_t last_seq, tp_tree *t,
                       uint64_t *ret_max_t, char *err, size_t errsz)
{
    sqlite3_stmt *st = NULL;
    tp_buf rec = TP_BUF_INIT, text = TP_BUF_INIT;
    int64_t next = 0;
    uint64_t max_t = 0;
    int r = 0, rc = sqlite3_prepare_v2(db,
                                       "SELECT seq, records, text FROM chunks WHERE trace = ?1"
                                       " AND seq >= ?2 AND seq <= ?3 ORDER BY seq LIMIT 1",
                                       -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto dberr;
    for (;;) {
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_int64(st, 2, next);
        sqlite3_bind_int64(st, 3, last_seq);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW)
            goto dberr;
        next = sqlite3_column_int64(st, 0) + 1;
        tp_buf_reset(&rec);
        tp_buf_reset(&text);
        tp_buf_append(&rec, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
        tp_buf_append(&text, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
        sqlite3_reset(st);
        if (tp_buf_error(&rec) || tp_buf_error(&text)) {
            r = -ENOMEM;
            snprintf(err, errsz, "out of memory rebuilding the tree");
            goto out;
        }
        size_t n = rec.len / sizeof(tp_event);
        for (size_t i = 0; i < n; i++) {
            uint64_t tns;
            memcpy(&tns, rec.data + i * sizeof(tp_event) + 8, 8);
            tns = le64toh(tns);
            if (tns > max_t)
                max_t = tns;
        }
        r = tp_rebuild_feed(t, rec.data, n, text.data, text.len);
        if (r == -ENOMEM) {
            snprintf(err, errsz, "out of memory rebuilding the tree");
            goto out;
        }
        r = 0; /* a damaged chunk loses its own events, not the trace */
    }
    *ret_max_t = max_t;
    goto out;
dberr:
    r = tp_store_sqlite_err(db, rc, "reading events", err, errsz);
out:
    sqlite3_finalize(st);
    tp_buf_free(&rec);
    tp_buf_free(&text);
    return r;
}

int tp_rebuild_tree(sqlite3 *db, int64_t rowid, tp_tree **ret, char *err, size_t errsz)
{
    tp_tree *t = NULL;
    uint64_t end = 0, max_t = 0, calls;
    int r = tp_tree_new(&t);
    if (r < 0) {
        snprintf(err, errsz, "out of memory");
        return r;
    }
    /* No transaction around the three: a trace only grows (a row, then
     * functions before the chunks that use them), and a long read
     * transaction would pin the WAL (see load_chunks). */
    int64_t last_seq = -1;
    r = load_meta(db, rowid, t, &end, err, errsz);
    /* The chunks that exist now, then the functions: a chunk's functions
     * are committed with it, so they are all there. */
    if (r == 0)
        r = last_chunk(db, rowid, &last_seq, err, errsz);
    if (r == 0)
        r = load_funcs(db, rowid, t, err, errsz);
    if (r == 0)
        r = load_chunks(db, rowid, last_seq, t, &max_t, err, errsz);
    if (r < 0)
        goto out;
    /* An open trace may have grown after its row was read. */
    if (max_t > end)
        end = max_t;
    calls = t->meta.call_count;
    r = tp_tree_finish(t, end);
    if (r < 0) {
        snprintf(err, errsz, "cannot finish the tree: %s", tp_strerror(r));
        goto out;
    }
    /* END's count is exact even when events were dropped in transit. */
    t->meta.call_count = calls > t->nnodes ? calls : t->nnodes;
    *ret = t;
    t = NULL;
out:
    tp_tree_free(t);
    return r;
}

/* ---- Tree -> events -------------------------------------------------------------- */

typedef struct emitter {
    tp_buf *rec, *text;
    uint32_t thread;
} emitter;

static void emit_rsv(emitter *em, uint8_t kind, uint8_t flags, uint16_t rsv, uint32_t arg,
                     int64_t t_ns)
{
    tp_event e = {.kind = kind,
                  .flags = flags,
                  .rsv = htole16(rsv),
                  .arg = htole32(arg),
                  .t_ns = htole64((uint64_t)(t_ns < 0 ? 0 : t_ns))};
    tp_buf_append(em->rec, &e, sizeof(e));
}

static void emit(emitter *em, uint8_t kind, uint8_t flags, uint32_t arg, int64_t t_ns)
{
    emit_rsv(em, kind, flags, 0, arg, t_ns);
}

static void emit_text(emitter *em, const char *s)
{
    size_t n = strlen(s);
    uint32_t l = htole32((uint32_t)n);
    tp_buf_append(em->text, &l, 4);
    tp_buf_append(em->text, s, n);
}

static void emit_open(const tp_tree *t, uint32_t n, bool is_top, emitter *em)
{
    const tp_node *nd = &t->nodes[n];
    if (is_top && nd->thread != em->thread) {
        /* The thread's name travels with it, so the views can show it. */
        const char *name = tp_tree_thread_name(t, nd->thread);
        emit(em, TP_EV_THREAD, name ? TP_EVF_TEXT : 0, nd->thread, nd->start_ns);
        if (name)
            emit_text(em, name);
        em->thread = nd->thread;
    }
    uint8_t fl = (nd->args ? TP_EVF_TEXT : 0) | ((nd->flags & TP_NODE_GEN) ? TP_EVF_GEN : 0);
    emit(em, TP_EV_CALL, fl, nd->func, nd->start_ns);
    if (nd->args)
        emit_text(em, nd->args);
}

static void emit_close(const tp_tree *t, uint32_t n, bool last, emitter *em)
{
    const tp_node *nd = &t->nodes[n];
    if ((nd->flags & TP_NODE_CAUGHT) && nd->exc_type) {
        emit(em, TP_EV_CAUGHT, TP_EVF_TEXT, 0, nd->end_ns);
        emit_text(em, nd->exc_type);
        emit_text(em, nd->exc_msg ? nd->exc_msg : "");
    }
    if (nd->flags & TP_NODE_EXC) {
        emit(em, TP_EV_UNWIND, TP_EVF_TEXT, 0, nd->end_ns);
        emit_text(em, nd->exc_type ? nd->exc_type : "Exception");
        emit_text(em, nd->exc_msg ? nd->exc_msg : "");
    } else if (!((nd->flags & TP_NODE_OPEN) && last)) {
        /* An open call stays open (the finish closes it at the end) unless
         * a sibling follows it, which only a hand-made file can say. */
        emit(em, TP_EV_RETURN, nd->ret ? TP_EVF_TEXT : 0, 0, nd->end_ns);
        if (nd->ret)
            emit_text(em, nd->ret);
    } else {
        return; /* still open: nothing ended to measure */
    }
    if (nd->flags & TP_NODE_MEM) {
        uint16_t rsv;
        uint32_t arg;
        tp_event_memory_split(nd->mem_delta, &rsv, &arg);
        emit_rsv(em, TP_EV_MEMORY, 0, rsv, arg, nd->end_ns);
    }
}

/* Iterative walk (pre-order CALL, post-order RETURN): a deep recursion in the
 * traced program must not become a deep recursion in tphd. With siblings,
 * root's following siblings (the other roots) are emitted too. */
static void emit_subtree(const tp_tree *t, uint32_t root, bool siblings, emitter *em)
{
    uint32_t n = root;
    uint32_t top_depth = t->nodes[root].depth;
    for (;;) {
        emit_open(t, n, t->nodes[n].depth == top_depth, em);
        if (t->nodes[n].first_child != TP_NONE) {
            n = t->nodes[n].first_child;
            continue;
        }
        for (;;) {
            const tp_node *nd = &t->nodes[n];
            bool is_root = n == root || (siblings && nd->depth == top_depth);
            bool last = nd->next == TP_NONE || (n == root && !siblings);
            emit_close(t, n, last, em);
            if (n == root && !siblings)
                return;
            if (nd->next != TP_NONE) {
                n = nd->next;
                break;
            }
            if (is_root || nd->parent == TP_NONE)
                return;
            n = nd->parent;
        }
    }
}

int tp_rebuild_events(const tp_tree *t, uint32_t root, tp_buf *records, tp_buf *text)
{
    emitter em = {.rec = records, .text = text, .thread = 0};
    if (root == TP_NONE) {
        if (t->first_root != TP_NONE)
            emit_subtree(t, t->first_root, true, &em);
    } else {
        if (root >= t->nnodes)
            return -EINVAL;
        emit_subtree(t, root, false, &em);
    }
    if (tp_buf_error(records) || tp_buf_error(text))
        return -ENOMEM;
    return 0;
}

/* The node after n in pre-order within root's subtree, TP_NONE after it. */
static uint32_t next_in(const tp_tree *t, uint32_t root, uint32_t n)
{
    if (t->nodes[n].first_child != TP_NONE)
        return t->nodes[n].first_child;
    while (n != root && t->nodes[n].next == TP_NONE)
        n = t->nodes[n].parent;
    return n == root ? TP_NONE : t->nodes[n].next;
}

/* The emitted events nest every call in its parent and replay no resumes:
 * the rebuilt nodes (in the same pre-order) take their times, suspensions and
 * spawned marks from the originals. */
static void copy_times(const tp_tree *t, uint32_t root, tp_tree *s)
{
    uint32_t o = root;
    for (size_t i = 0; i < s->nnodes && o != TP_NONE; i++, o = next_in(t, root, o)) {
        const tp_node *a = &t->nodes[o];
        tp_node *b = &s->nodes[i];
        b->total_ns = a->total_ns;
        b->self_ns = a->self_ns;
        b->min_ns = a->min_ns;
        b->max_ns = a->max_ns;
        b->suspends = a->suspends;
        b->flags |= a->flags & TP_NODE_SPAWNED;
    }
}

int tp_rebuild_subtree(const tp_tree *t, uint32_t root, tp_tree **ret)
{
    tp_tree *s = NULL;
    tp_buf rec = TP_BUF_INIT, text = TP_BUF_INIT;
    if (root >= t->nnodes)
        return TP_ERR_NOT_FOUND;
    int r = tp_tree_new(&s);
    if (r < 0)
        return r;
    for (size_t i = 0; i < t->nfuncs && r == 0; i++)
        r = tp_tree_def_func(s, (uint32_t)i, t->funcs[i].module, t->funcs[i].qualname,
                             t->funcs[i].file, t->funcs[i].lineno);
    if (r == 0 && t->meta.label)
        r = tp_tree_set_label(s, t->meta.label);
    if (r == 0 && t->meta.config_json)
        r = tp_tree_set_config_json(s, t->meta.config_json);
    if (r == 0 && t->meta.limit_reason)
        r = tp_tree_set_limit_reason(s, t->meta.limit_reason);
    if (r == 0)
        r = tp_rebuild_events(t, root, &rec, &text);
    if (r == 0)
        r = tp_rebuild_feed(s, rec.data, rec.len / sizeof(tp_event), text.data, text.len);
    if (r == 0)
        r = tp_tree_finish(s, (uint64_t)t->nodes[root].end_ns);
    if (r < 0) {
        tp_tree_free(s);
        goto out;
    }
    copy_times(t, root, s);
    memcpy(s->meta.trace_id, t->meta.trace_id, sizeof(s->meta.trace_id));
    s->meta.wall_start_ns = t->meta.wall_start_ns;
    s->meta.dropped = t->meta.dropped;
    s->meta.call_count = s->nnodes;
    s->meta.duration_ns = t->nodes[root].total_ns;
    *ret = s;
out:
    tp_buf_free(&rec);
    tp_buf_free(&text);
    return r;
}
