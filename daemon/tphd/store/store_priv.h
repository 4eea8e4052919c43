/* Internals shared by store.c (connections, queue, writer thread) and
 * store_ops.c (the SQL of each op). Not a contract. */
#ifndef TP_STORE_PRIV_H
#define TP_STORE_PRIV_H

#include "store.h"

/* Larger pages keep a 64 KiB chunk to a few overflow pages. */
#define TP_STORE_PAGE_SIZE_STR "16384"

/* PRAGMA application_id of a tphd database ("TPHD"). */
#define TP_STORE_APP_ID     0x54504844
#define TP_STORE_APP_ID_STR "1414547524"

/** Before anything changes db (opened on path): refuse a file that is not
 *  tphd's (TP_ERR_VERSION) or that SQLite's quick_check finds damaged
 *  (TP_ERR_DB, with what can still be read), leaving it untouched. Empty
 *  files and tphd databases pass; *ret_stamp says the application id is
 *  still to be written (new, or from before tphd wrote one). Returns 0 or a
 *  code with a message in err (store_check.c). */
int tp__store_check(sqlite3 *db, const char *path, bool *ret_stamp, char *err, size_t errsz);

/** The writer's prepared statements. */
typedef struct tp_store_stmts {
    sqlite3_stmt *begin, *commit, *savepoint, *release, *rollback_to;
    sqlite3_stmt *ins_trace, *ins_func, *ins_chunk, *upd_chunk, *end, *abort, *ins_lines,
        *ins_source;
} tp_store_stmts;

/** Prepare every statement on db. Returns 0 or TP_ERR_DB with a message. */
int tp__store_stmts_prepare(sqlite3 *db, tp_store_stmts *st, char *err, size_t errsz);
/** Finalize the statements (NULL ones are skipped) and zero the struct. */
void tp__store_stmts_finalize(tp_store_stmts *st);

/** The SQL of one op, run by the writer inside a savepoint. Each returns 0
 *  or a code and fills op->result fields (rowid, id) and op->errmsg. */
int tp__store_apply_begin(sqlite3 *db, tp_store_stmts *st, tp_store_op *op);
int tp__store_apply_events(sqlite3 *db, tp_store_stmts *st, tp_store_op *op);
/** LINES and SOURCE: the trace's row in trace_lines, trace_source. */
int tp__store_apply_lines(sqlite3 *db, tp_store_stmts *st, tp_store_op *op);
/** END and ABORT. */
int tp__store_apply_end(sqlite3 *db, tp_store_stmts *st, tp_store_op *op);

/** The background checkpointer (store_ckpt.c). */
typedef struct tp_store_ckpt tp_store_ckpt;

/** Watch writer's commits (a WAL hook, replacing the automatic checkpoint)
 *  and checkpoint from a thread and connection of its own. Call before the
 *  writer thread starts. Returns 0 or a code with a message. */
int tp__store_ckpt_start(const char *path, sqlite3 *writer, tp_store_ckpt **ret, char *err,
                         size_t errsz);
/** WAL pages that call for a checkpoint (default 1024, 16 MiB); set before
 *  the writer's first commit. */
void tp__store_ckpt_set_pages(tp_store_ckpt *c, int pages);

/** Delete the oldest finished traces, a step at a time, while the main file
 *  holds more than target bytes of pages in use; writer thread, outside a
 *  transaction. Returns the traces deleted, or a negative code
 *  (store_ops.c). */
int64_t tp__store_prune(sqlite3 *db, uint64_t target);

/** One step of that inside the writer's open transaction: up to a step's
 *  worth of the oldest finished traces (never the one that ended last).
 *  Returns the traces deleted or a negative code. */
int64_t tp__store_prune_in_txn(sqlite3 *db, uint64_t target);

/** Write the reserve file back when it was given up and the disk has room
 *  again (store.c). Any thread. */
void tp__store_keep_reserve(tp_store *s);

/** The size limit's target for the pages in use in the main file: half of
 *  max_bytes. The rest is for the WAL (truncated past an eighth) and for
 *  the commits that land between two prunings (a trace is stored first,
 *  then the oldest go). */
static inline uint64_t tp__store_target(uint64_t max_bytes)
{
    return max_bytes / 2;
}
/** Stop it, after the writer thread has stopped. Accepts NULL. */
void tp__store_ckpt_stop(tp_store_ckpt *c);

#endif
