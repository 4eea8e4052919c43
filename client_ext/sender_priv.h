/* Private to the sender's two files: sender.c (queue, thread, fork, exit)
 * and deliver.c (one trace over the wire). */
#ifndef TP_SENDER_PRIV_H
#define TP_SENDER_PRIV_H

#include <stdatomic.h>

#include "client.h"
#include "evlog.h"
#include "sender.h"
#include "vec.h"

/** Where the sender is in a published log: the next record and the next
 *  text entry (indices into the upload's pub_blocks and pub_chunks). */
typedef struct tp_logpos {
    size_t block, idx, chunk, off;
} tp_logpos;

/** Where a block the sender walked past begins, and the EVENTS batch that
 *  holds the record before it: once tphd says that batch is stored
 *  (STORED), everything before the place may be freed. */
typedef struct tp_stored_mark {
    tp_evlog_pos pos;
    uint32_t seq;
} tp_stored_mark;

/** One trace handed to the sender (sender.h). Fields marked "mu" are
 *  guarded by the sender's mutex; the frames, probe and log are the sender
 *  thread's once submitted. */
struct tp_upload {
    atomic_int refs;
    tp_upload *next; /* queue or finished list (mu) */
    char *path;
    /* Set by submit, then the sender's. */
    tp_client_fd probe;     /* the socket upload() connected, or fd -1 */
    tp_buf hello, pre, end; /* end: mu once the upload is a stream (sender.h) */
    char trace_id[33];      /* the session's id when it was submitted */
    PyObject *owner;        /* strong reference to the session, released by reap */
    /* The session's log as published to the sender (mu): copies of its
     * table entries, whose counts and lengths only grow; the records and
     * text they cover never change again. The session keeps the memory. */
    TP_VEC(tp_evblock) pub_blocks;
    TP_VEC(tp_evchunk) pub_chunks;
    uint64_t nrecords; /* records published (mu) */
    uint64_t ns_mult;  /* ticks to ns for the wire (tp_evlog_ns_at), fixed per upload */
    tp_buf pub_funcs;  /* FUNCS frames published and not yet taken (mu) */
    bool stream;       /* opened while the trace records (mu) */
    bool closing;      /* everything is published; end holds the last frames (mu) */
    bool work;         /* something was published since the sender last looked (mu) */
    /* The sender thread's, across the steps of a stream. */
    tp_client link;
    bool connected, began; /* shaken hands; BEGIN written (a failure is final then) */
    tp_logpos pos;
    uint32_t seq;                 /* next EVENTS batch */
    uint64_t walked;              /* records sent so far */
    TP_VEC(tp_stored_mark) marks; /* block starts not known stored yet, oldest first */
    size_t marks_head;            /* marks before this one are done with */
    /* A stream's: the place before which tphd stored everything (records
     * 0: nothing yet) and the id it stores the trace under (mu). */
    tp_evlog_pos stored;
    char stored_stream_id[33];
    /* Progress, written by the sender thread, read by the exit flush. */
    _Atomic uint64_t sent;    /* records written to the socket */
    _Atomic int64_t ended_ns; /* when END was written (tp_client_now()), 0 before */
    /* Results: written under mu while PENDING, immutable afterwards. */
    int state;
    bool quiet; /* settled by a fork: nothing to report */
    uint64_t dropped;
    char stored_id[33];
    char *url;
    char *error;
    bool refused; /* FAILED: tphd refused the connection, nothing of the trace reached it */
};

/** What the sender takes of an upload in one step: the published table
 *  entries from its position on (indices relative to pos.block and
 *  pos.chunk), the FUNCS frames to send before them, and whether this is
 *  all there will be. */
typedef struct tp_logview {
    TP_VEC(tp_evblock) blocks;
    TP_VEC(tp_evchunk) chunks;
    tp_buf funcs;
    bool closing;
} tp_logview;

/** Take what u published (mu inside): *v (zeroed or reused) gets copies.
 *  Returns 0 or -ENOMEM. The sender thread. */
int tp__sender_take(tp_upload *u, tp_logview *v);

/** tphd stored everything before *pos, under id (the sender thread). */
void tp__sender_stored(tp_upload *u, const tp_evlog_pos *pos, const char *id);

/** What one delivery found out. */
typedef struct tp_delivery {
    int state;          /* TP_UPLOAD_ACKED or TP_UPLOAD_FAILED */
    char stored_id[33]; /* ACKED: the id tphd stored the trace under */
    char *url;          /* ACKED: malloc'd report URL, or NULL */
    char error[384];    /* FAILED: why */
    bool refused;       /* FAILED: tphd answered HELLO with ERROR (the trace never left) */
    bool began;         /* BEGIN was written: tphd may keep part of the trace */
} tp_delivery;

/** Set when the interpreter exits without waiting any longer: the thread
 *  and its I/O stop at their next chance. */
extern atomic_bool tp__sender_abandon;

/** One step of u's delivery (the sender thread, no GIL): connect and shake
 *  hands the first time, then send what is published (FUNCS, EVENTS); once
 *  u is closing, END and the wait for the ACK. Returns true when the
 *  delivery is over (*res says how it went), false when u is an open stream
 *  that may get more. */
bool tp_deliver_step(tp_upload *u, tp_delivery *res);

/** The link is open (or was tried): remember its socket, which a forked
 *  child must close. */
void tp__sender_link_opened(const tp_client *l);
/** The sender is done with l: its socket is closed later, with the GIL. */
void tp__sender_link_release(tp_client *l);

#endif
