/* The background sender: finished traces go to tphd from one thread per
 * process, so the traced program never waits on the socket. The thread is
 * started by the first upload and ends once it has been idle for a moment
 * (sender.c), so a program that is not uploading has no extra thread.
 *
 * A stopped session hands its trace over as a tp_upload: the frames that
 * need Python objects (HELLO, FUNCS, BEGIN, END) are encoded at hand-over,
 * under the GIL; the event log is not copied: the upload keeps a strong
 * reference to the session, whose log no longer changes once stopped, and
 * the sender thread reads it without the GIL. The thread connects, shakes
 * hands, streams EVENTS batches, sends END and waits for the ACK, all with
 * deadlines (see deliver.c for the numbers). When the daemon is absent or too
 * slow the upload fails after a bounded number of tries and its events count
 * as dropped; the trace stays complete in the process.
 *
 * The thread never touches Python. What it finds (stored id, report URL,
 * error) is folded into the session later, with the GIL, by
 * tp_sender_reap(), which also releases the session reference.
 *
 * Fork: in a child the sender starts over (no thread, empty queue); uploads
 * the parent had queued stay the parent's (their state becomes NONE in the
 * child, so a trace is never sent twice). At interpreter exit the queue is
 * given a bound that scales with what is left (tp_sender_flush()). */
#ifndef TP_SENDER_H
#define TP_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "ext.h"
#include "client.h"

/* Upload states, as Session.upload_state names them. */
#define TP_UPLOAD_NONE    0 /* not handed to a daemon ("none") */
#define TP_UPLOAD_PENDING 1 /* queued or being sent ("pending") */
#define TP_UPLOAD_ACKED   2 /* stored by tphd ("acked") */
#define TP_UPLOAD_FAILED  3 /* given up; the events count as dropped ("failed") */

#define TP_SENDER_QUEUE_MAX     64                 /* traces waiting for the sender */
#define TP_SENDER_EXIT_FLUSH_NS (250 * 1000000LL)  /* at exit: this long, plus... */
#define TP_SENDER_EXIT_EVENT_NS 1000               /* ...this per record still to send... */
#define TP_SENDER_ACK_NS        (2000 * 1000000LL) /* ...and END -> ACK at most this */
#define TP_SENDER_RECENT_NS     (1000 * 1000000LL) /* acknowledged within this: reachable */

typedef struct tp_upload tp_upload;

/** A new upload of one trace to the daemon at socket path (copied), in state
 *  NONE, with one reference (the caller's). Returns 0 or -ENOMEM. */
int tp_sender_upload_new(tp_upload **ret, const char *path);
/** Drop a reference; the last one frees the upload. Accepts NULL. Any thread. */
void tp_sender_upload_unref(tp_upload *u);

/** Settle an upload that never reaches the sender: state is TP_UPLOAD_NONE
 *  or TP_UPLOAD_FAILED, dropped the events lost, reason (may be NULL) the
 *  message reported through the session's errors when FAILED. GIL held. */
void tp_sender_upload_settle(tp_upload *u, int state, uint64_t dropped, const char *reason);

/** Hand a stopped session's trace to the sender. u (state NONE, not
 *  submitted before) gets a reference to s, a shallow copy of s->log, and
 *  takes ownership of *probe (a connected socket from tp_client_dial(), or
 *  fd -1) and of the frames in hello, pre (FUNCS then BEGIN) and end, which
 *  are reset to empty. Starts the thread on first use. Returns 0 (u is
 *  PENDING), -EAGAIN (queue full), -ESHUTDOWN (the interpreter is exiting),
 *  or a negated errno from pthread_create; on failure u stays NONE and the
 *  socket and the frames are released all the same. GIL held. */
int tp_sender_submit(tp_upload *u, tp_session *s, const tp_client_fd *probe, tp_buf *hello,
                     tp_buf *pre, tp_buf *end);

/** Start fn in a detached background thread of the extension's (256 KiB
 *  of stack) that ignores every signal: they belong to the program.
 *  Returns 0 or a negative errno. */
int tp_sender_spawn(void *(*fn)(void *));
/** Streams: a trace that is still recording goes out as it is recorded.
 *  tp_sender_stream_open() hands u (state NONE) over with HELLO and BEGIN
 *  (hello, pre; reset to empty) and a reference to s; the sender connects
 *  and sends BEGIN. Each tp_sender_stream_publish() makes what s's log and
 *  funcs (FUNCS frames, reset to empty) hold now the sender's to send; the
 *  blocks and chunks stay the session's, which never rewrites what it
 *  published. tp_sender_stream_close() publishes the rest with the end
 *  frames (LINES, END) once the trace stopped; the sender then finishes
 *  the delivery as for a submitted upload. ns_mult converts the log's ticks
 *  to ns on the wire. All return 0, or a negative errno (the stream is then
 *  over: -ECANCELED when it had failed already, see the upload's state).
 *  GIL held. */
int tp_sender_stream_open(tp_upload *u, tp_session *s, tp_buf *hello, tp_buf *pre,
                          uint64_t ns_mult);
int tp_sender_stream_publish(tp_upload *u, const tp_evlog *l, tp_buf *funcs);
int tp_sender_stream_close(tp_upload *u, const tp_evlog *l, tp_buf *funcs, tp_buf *end);
/** A stream's: true when tphd said it stored part of the trace; *ret is
 *  then the place in the log before which it stored everything (a block
 *  start), and id the id it stores the trace under. GIL held. */
bool tp_sender_stream_stored(tp_upload *u, tp_evlog_pos *ret, char id[33]);
/** True when u was opened as a stream. Any thread. */
bool tp_sender_upload_is_stream(tp_upload *u);

/** The upload's state (TP_UPLOAD_*). Any thread. */
int tp_sender_upload_state(tp_upload *u);
/** Results, meaningful once the state is ACKED or FAILED (they never change
 *  afterwards): events counted dropped, the id tphd stored the trace under
 *  (NULL unless ACKED), the report URL (NULL when tphd serves no HTTP or the
 *  trace was not stored), and why it failed (NULL when it did not). The
 *  strings live as long as u. */
uint64_t tp_sender_upload_dropped(tp_upload *u);
const char *tp_sender_upload_stored_id(tp_upload *u);
const char *tp_sender_upload_url(tp_upload *u);
const char *tp_sender_upload_error(tp_upload *u);
/** True once FAILED because tphd refused the connection at the handshake
 *  (its connection limit, a protocol version): nothing of the trace reached
 *  it, so the caller keeps it as if no daemon ran. Any thread. */
bool tp_sender_upload_refused(tp_upload *u);
/** The socket path the upload goes to. */
const char *tp_sender_upload_path(const tp_upload *u);

/** Wait up to timeout_ns for u to leave PENDING, with the GIL released
 *  (called with it held). Returns the state then. Folds finished uploads
 *  (tp_sender_reap) before returning. */
int tp_sender_wait(tp_upload *u, int64_t timeout_ns);

/** Fold finished uploads into their sessions (errors, trace_id updated to
 *  the stored id) and release the session references the sender held.
 *  Cheap when nothing finished. GIL held. */
void tp_sender_reap(void);

/** Interpreter exit: wait for queued uploads to finish, then refuse new ones
 *  and tell the thread to stop (uploads still under way are abandoned: they
 *  keep their session alive until the process ends, and settle FAILED).
 *  With timeout_ns < 0 the wait scales with what is left:
 *  TP_SENDER_EXIT_FLUSH_NS plus TP_SENDER_EXIT_EVENT_NS per record not yet
 *  written, and once the last END is written up to TP_SENDER_ACK_NS for its
 *  ACK; otherwise it is timeout_ns. Returns true when everything was
 *  delivered (or nothing was queued). GIL held; released while waiting. */
bool tp_sender_flush(int64_t timeout_ns);

/** Install the fork handler (once per process). Returns 0 or -errno. */
int tp_sender_setup(void);

/** True when a delivery to the daemon at path was acknowledged less than
 *  TP_SENDER_RECENT_NS ago (and none to it failed since): upload() then
 *  takes the daemon as reachable without probing its socket, which would
 *  wake it up for nothing. Any thread. */
bool tp_sender_recently_reached(const char *path);

/** Uploads queued or being sent right now (for tests and diagnostics). */
size_t tp_sender_pending(void);
/** True while the sender thread exists in this process (it ends when idle). */
bool tp_sender_running(void);

#endif
