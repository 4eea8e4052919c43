/* What tphd checks about a database file before it changes anything in it:
 * that it is tphd's (or empty), and that SQLite finds it sound. A foreign
 * file is refused untouched (no WAL switch, no table added); a damaged one
 * is refused with what can still be read, instead of being served until one
 * query answers "database disk image is malformed". */
#include <stdio.h>
#include <string.h>

#include "store_priv.h"
#include "tp_err.h"

/* How many lines of quick_check's report the message quotes. */
#define CHECK_LINES 3

static int scalar(sqlite3 *db, const char *sql, int64_t *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *ret = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The names of the first tables in the schema, comma-separated, into out.
 * Returns how many tables there are, or -1 when the schema is unreadable. */
static int64_t table_names(sqlite3 *db, char *out, size_t outsz, bool *ret_ours)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    bool traces = false, chunks = false;
    size_t len = 0;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_schema WHERE type='table' "
                           "AND name NOT LIKE 'sqlite_%' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        name = name ? name : "";
        traces |= strcmp(name, "traces") == 0;
        chunks |= strcmp(name, "chunks") == 0;
        if (n < 6 && len < outsz) {
            int w = snprintf(out + len, outsz - len, "%s%.40s", n ? ", " : "", name);
            len += w > 0 ? (size_t)w : 0;
        }
        n++;
    }
    sqlite3_finalize(st);
    *ret_ours = traces && chunks;
    return rc == SQLITE_DONE ? n : -1;
}

/* PRAGMA quick_check: 0 when it says "ok", else TP_ERR_DB with its first
 * lines in err and how many traces can still be counted. */
static int sound(sqlite3 *db, const char *path, char *err, size_t errsz)
{
    sqlite3_stmt *st = NULL;
    char lines[512] = "";
    size_t len = 0;
    int nlines = 0;
    bool ok = false;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        line = line ? line : "";
        if (nlines == 0 && strcmp(line, "ok") == 0)
            ok = true;
        if (nlines < CHECK_LINES && len < sizeof(lines)) {
            int w =
                snprintf(lines + len, sizeof(lines) - len, "%s%.150s", nlines ? "; " : "", line);
            len += w > 0 ? (size_t)w : 0;
        }
        nlines++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK)
        snprintf(lines, sizeof(lines), "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (ok && nlines == 1)
        return 0;
    int64_t traces = -1;
    char readable[96] = "no trace can be counted";
    if (scalar(db, "SELECT count(*) FROM traces", &traces) == SQLITE_OK)
        snprintf(readable, sizeof(readable), "the traces table still lists %lld traces",
                 (long long)traces);
    snprintf(err, errsz,
             "%s is damaged (SQLite's quick_check: %s%s); %s. tphd does not serve a damaged "
             "database: stop here, copy what you need (sqlite3 %s .recover), then move the "
             "file aside and start again",
             path, lines, nlines > CHECK_LINES ? "; ..." : "", readable, path);
    return TP_ERR_DB;
}

int tp__store_check(sqlite3 *db, const char *path, bool *ret_stamp, char *err, size_t errsz)
{
    int64_t app = 0, version = 0;
    char names[256];
    bool ours = false;
    /* Read only until the file is known to be ours. */
    sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL);
    int rc = scalar(db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = scalar(db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        /* Not a database at all ("file is not a database"), or unreadable. */
        snprintf(err, errsz, "%s: %s; tphd leaves it untouched: use another --db", path,
                 sqlite3_errmsg(db));
        return tp_store_sqlite_err(db, rc, path, NULL, 0);
    }
    int64_t ntables = table_names(db, names, sizeof(names), &ours);
    if (ntables < 0) { /* the schema itself is unreadable: quick_check says why */
        if (sound(db, path, err, errsz) == 0)
            snprintf(err, errsz, "%s: cannot read its schema: %s", path, sqlite3_errmsg(db));
        return TP_ERR_DB;
    }
    bool empty = ntables == 0 && version == 0 && app == 0;
    /* Databases from before the application id: ours when they have a
     * schema version we wrote and our tables. */
    bool legacy = app == 0 && version >= 1 && version <= TP_STORE_SCHEMA && ours;
    if (!empty && app != TP_STORE_APP_ID && !legacy) {
        snprintf(err, errsz,
                 "%s is not a tphd database (application_id %lld, user_version %lld, "
                 "%lld tables%s%s); tphd leaves it untouched: use another --db",
                 path, (long long)app, (long long)version, (long long)ntables, ntables ? ": " : "",
                 names);
        return TP_ERR_VERSION;
    }
    if (!empty) {
        int r = sound(db, path, err, errsz);
        if (r < 0)
            return r;
    }
    sqlite3_exec(db, "PRAGMA query_only=0", NULL, NULL, NULL);
    *ret_stamp = app != TP_STORE_APP_ID;
    return 0;
}
