/* Private to the sender's two files: sender.c (queue, thread, fork, exit)
 * and deliver.c (one trace over the wire). */
#ifndef TP_SENDER_PRIV_H
#define TP_SENDER_PRIV_H

#include <stdatomic.h>

#include "client.h"
#include "sender.h"

/** One trace handed to the sender (sender.h). Fields marked "mu" are
 *  guarded by the sender's mutex; the frames, probe and log are the sender
 *  thread's once submitted. */
struct tp_upload {
    atomic_int refs;
    tp_upload *next; /* queue or finished list (mu) */
    char *path;
    /* Set by submit, then the sender's. */
    tp_client_fd probe; /* the socket upload() connected, or fd -1 */
    tp_buf hello, pre, end;
    tp_evlog log;      /* shallow copy of the stopped session's log */
    char trace_id[33]; /* the session's id when it was submitted */
    PyObject *owner;   /* strong reference to the session, released by reap */
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

/** What one delivery found out. */
typedef struct tp_delivery {
    int state;          /* TP_UPLOAD_ACKED or TP_UPLOAD_FAILED */
    char stored_id[33]; /* ACKED: the id tphd stored the trace under */
    char *url;          /* ACKED: malloc'd report URL, or NULL */
    char error[384];    /* FAILED: why */
    bool refused;       /* FAILED: tphd answered HELLO with ERROR (the trace never left) */
} tp_delivery;

/** Set when the interpreter exits without waiting any longer: the thread
 *  and its I/O stop at their next chance. */
extern atomic_bool tp__sender_abandon;

/** Deliver u (the sender thread, no GIL); *res says how it went. */
void tp_deliver(tp_upload *u, tp_delivery *res);

/** The link is open (or was tried): remember its socket, which a forked
 *  child must close. */
void tp__sender_link_opened(const tp_client *l);
/** The sender is done with l: its socket is closed later, with the GIL. */
void tp__sender_link_release(tp_client *l);

#endif
