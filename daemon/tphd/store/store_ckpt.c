/* Checkpoints off the writer thread. SQLite's automatic checkpoint runs
 * inside the commit that crosses the threshold, so the writer (and every
 * ACK behind it) would stall for as long as copying the WAL into the
 * database takes. Here the commit hook only notes the WAL's size; a thread
 * of its own, on its own connection, runs PASSIVE checkpoints, which
 * proceed alongside the writer and the readers. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_priv.h"
#include "tp_err.h"

#define CKPT_PAGES        1024  /* WAL pages (16 MiB) that call for a checkpoint */
#define CKPT_INLINE_PAGES 65536 /* so far behind that the writer helps (1 GiB) */

struct tp_store_ckpt {
    sqlite3 *db;     /* the checkpointer's connection: checkpointer thread only */
    sqlite3 *writer; /* whose commits are watched: writer thread only */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool want, stop;      /* under mu: the writer asks, the checkpointer takes */
    atomic_int wal_pages; /* atomic: the writer's WAL hook stores, the checkpointer reads */
    int pages; /* writer-set before its first commit: WAL pages that call for a checkpoint */
};

void tp__store_ckpt_set_pages(tp_store_ckpt *c, int pages)
{
    c->pages = pages;
}

/* Runs in the writer thread after every commit. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    tp_store_ckpt *c = arg;
    atomic_store(&c->wal_pages, pages);
    /* Under a size limit the WAL is small and must stay so: help sooner. */
    int inline_pages = c->pages == CKPT_PAGES ? CKPT_INLINE_PAGES : 4 * c->pages;
    if (pages >= inline_pages) {
        /* The checkpointer cannot keep up (or readers pin the WAL): take a
         * turn here rather than let the WAL grow without bound. */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (pages >= c->pages) {
        pthread_mutex_lock(&c->mu);
        c->want = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    tp_store_ckpt *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->want && !c->stop)
            pthread_cond_wait(&c->cond, &c->mu);
        bool stop = c->stop;
        c->want = false;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        /* SQLITE_BUSY (another checkpoint running) is fine: it will do. */
        sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    return NULL;
}

int tp__store_ckpt_start(const char *path, sqlite3 *writer, tp_store_ckpt **ret, char *err,
                         size_t errsz)
{
    tp_store_ckpt *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int r = tp_store_sqlite_err(c->db, rc, "opening the checkpointer", err, errsz);
        sqlite3_close(c->db);
        free(c);
        return r;
    }
    sqlite3_busy_timeout(c->db, 1000);
    /* A connection learns that the file is in WAL mode only by reading it;
     * until then a checkpoint does nothing. */
    rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int r = tp_store_sqlite_err(c->db, rc, "opening the checkpointer", err, errsz);
        sqlite3_close(c->db);
        free(c);
        return r;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->writer = writer;
    c->pages = CKPT_PAGES;
    if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        sqlite3_close(c->db);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cond);
        free(c);
        snprintf(err, errsz, "cannot start the checkpoint thread");
        return -EAGAIN;
    }
    /* Replaces the automatic checkpoint (which is itself a WAL hook). */
    sqlite3_wal_hook(writer, on_wal, c);
    *ret = c;
    return 0;
}

void tp__store_ckpt_stop(tp_store_ckpt *c)
{
    if (!c)
        return;
    sqlite3_wal_hook(c->writer, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
}
