/* Session.upload() and friends: the Python face of the sender (sender.h).
 *
 * upload() resolves the socket, checks without blocking that a daemon
 * listens there, encodes the frames that need Python objects, and hands the
 * trace to the sender thread; the other members report how it went. Only
 * the extension's .c files include this header. */
#ifndef TP_UPLOAD_H
#define TP_UPLOAD_H

#include "ext.h"

/** Session.upload(socket_path=None, *, required=False, lines=None, source=None) -> bool. */
PyObject *tp_upload_upload(PyObject *self, PyObject *args, PyObject *kwds);
/** Session.wait_upload(timeout=2.0) -> bool: True once stored. */
PyObject *tp_upload_wait(PyObject *self, PyObject *args, PyObject *kwds);
/** Session.upload_state: "none", "pending", "acked" or "failed". */
PyObject *tp_upload_get_state(PyObject *self, void *closure);
/** Session.upload_error: why the trace was not stored, or None. */
PyObject *tp_upload_get_error(PyObject *self, void *closure);
/** Session.upload_refused: True when tphd refused the connection (the
 *  trace never reached it). */
PyObject *tp_upload_get_refused(PyObject *self, void *closure);
/** Session.upload_socket: the socket the upload went to, or None. */
PyObject *tp_upload_get_socket(PyObject *self, void *closure);
/** Session.url: the report URL tphd gave in its ACK, or None (never waits). */
PyObject *tp_upload_get_url(PyObject *self, void *closure);

/** Module functions: default_socket(), _flush_uploads(timeout), _sender_info(). */
PyObject *tp_upload_default_socket(PyObject *mod, PyObject *unused);
PyObject *tp_upload_flush(PyObject *mod, PyObject *args);
PyObject *tp_upload_sender_info(PyObject *mod, PyObject *unused);

/** Events of s lost to uploads (0 unless its upload failed). */
uint64_t tp_upload_dropped(tp_session *s);

/** Session(stream_socket=...): the socket a long trace streams to (a str or
 *  path-like; None: it does not stream). Returns 0, or -1 with an exception. */
int tp_upload_stream_socket(tp_session *s, PyObject *arg);
/** A call at or after s->stream_due (GIL held): open the stream the
 *  first time, then publish what was recorded since the last tick, and set
 *  the next due time. Never fails the event: a stream that cannot go on
 *  stops ticking, and upload() sends the trace when it ends. */
void tp_upload_stream_tick(tp_session *s, int64_t now);
/** The part of a streamed trace's log that was freed once tphd stored it
 *  (s->released), read back from tphd with the events query and fed to t
 *  (GIL held; released while it waits). Returns 0, or an error with why
 *  written; t may then hold part of it. */
int tp_upload_read_back(tp_session *s, tp_tree *t, char *why, size_t whysz);
/** True once the trace's stream was opened (it may have failed since). */
bool tp_upload_streamed(tp_session *s);

/* Docstrings of the members above (session.c and module.c list them). */
#define TP_UPLOAD_UPLOAD_DOC                                                                       \
    "upload(socket_path=None, *, required=False, lines=None, source=None)\n--\n\n"                 \
    "Hand the stopped trace to the background sender for the tphd at socket_path "                 \
    "(default: $TRACEPATCH_SOCKET, else the user's or the system's socket). Returns True when "    \
    "a daemon listens there and the trace was queued, False otherwise (upload_error says why; "    \
    "with required=True that counts the events as dropped). lines: the trace's lines= data as "    \
    "JSON text (bytes), sent before the trace's end; over 8 MiB it is left out and the trace's "   \
    "drop reason says so. source: the trace file's \"source\" value as JSON text (bytes), sent "   \
    "the same way; over 8 MiB it is left out."
#define TP_UPLOAD_WAIT_DOC                                                                         \
    "wait_upload(timeout=2.0)\n--\n\nWait up to timeout seconds for a pending upload; True when "  \
    "tphd stored the trace."
#define TP_UPLOAD_DEFAULT_SOCKET_DOC                                                               \
    "default_socket()\n--\n\nThe tphd socket used when none is given: $TRACEPATCH_SOCKET, else "   \
    "the user's socket, else the system's."
#define TP_UPLOAD_FLUSH_DOC                                                                        \
    "_flush_uploads(timeout=None)\n--\n\nAt exit: finish queued uploads within timeout seconds "   \
    "(None: a bound that scales with what is left), then stop the sender (internal)."
#define TP_UPLOAD_SENDER_INFO_DOC                                                                  \
    "_sender_info()\n--\n\n{'running': bool, 'pending': int} (for tests)."

#endif
