/* The wire: length-prefixed msgpack frames between the extension, tphd and
 * tph. proto/PROTOCOL.md is the normative description; this header is its C
 * surface.
 *
 * A frame is a 4-byte big-endian payload length followed by the payload, a
 * msgpack array [type, body] where body is a map with string keys. Encoding
 * uses msgpack-c's header-only packer (so the extension needs no msgpack
 * runtime library). Decoding is two steps: tp_wire_check() walks the bytes
 * with a bounds-checked cursor (no allocation) and rejects anything whose
 * declared sizes do not fit, nesting too deep or too many items; only then
 * does tp_wire_decode() (a separate library, tpproto_dec, linked by tphd and
 * tph) hand the payload to msgpack-c and convert it to a tp_msg. */
#ifndef TP_WIRE_H
#define TP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mp.h"
#include "event.h"

#define TP_WIRE_MAGIC       "TPH1"
#define TP_WIRE_VERSION     1u
#define TP_WIRE_HEADER_SIZE 4u
#define TP_WIRE_MAX_FRAME   (16u << 20) /* payload bytes in one frame */
#define TP_WIRE_MAX_STRING  (1u << 20)  /* one str value; bin values may use the whole frame */
#define TP_WIRE_MAX_DEPTH   8u          /* array/map nesting inside a payload */
#define TP_WIRE_MAX_ITEMS   65536u      /* elements in one array or pairs in one map */
#define TP_WIRE_MAX_VALUES  (1u << 19)  /* msgpack values in one payload (bounds decoder memory) */
#define TP_WIRE_MAX_FUNC_ID ((1u << 24) - 1) /* largest function id in FUNCS */
/* Bytes of JSON text in one LINES message: half a frame, so that the frame
 * always fits and tphd parses at most this much per trace. */
#define TP_WIRE_MAX_LINES (8u << 20)
/* Bytes of JSON text in one SOURCE message, for the same reason: the client
 * keeps at most 1 MiB of source text per trace, which JSON's escapes and
 * the functions' names can make several times larger. */
#define TP_WIRE_MAX_SOURCE (8u << 20)

/* Message types (the first element of the payload array). */
#define TP_MSG_HELLO   1  /* client -> tphd: magic, version, caps, process facts */
#define TP_MSG_WELCOME 2  /* tphd -> client: version, caps, server facts */
#define TP_MSG_FUNCS   3  /* client -> tphd: function descriptors */
#define TP_MSG_BEGIN   4  /* client -> tphd: a trace starts */
#define TP_MSG_EVENTS  5  /* client -> tphd: a batch of event records + text */
#define TP_MSG_END     6  /* client -> tphd: a trace ends */
#define TP_MSG_ACK     7  /* tphd -> client: a trace is committed */
#define TP_MSG_ERROR   8  /* either way: an error with a code and message */
#define TP_MSG_LINES   9  /* client -> tphd: a trace's lines= data, before its END */
#define TP_MSG_STORED  10 /* tphd -> client: a trace's EVENTS batches up to seq are committed */
#define TP_MSG_SOURCE  11 /* client -> tphd: a trace's functions' source text, before its END */
#define TP_MSG_QUERY   16 /* tph -> tphd: list/get/tree/stats/diff/export/clean/status */
#define TP_MSG_REPLY   17 /* tphd -> tph: the answer to one query */

/* Capability bits (HELLO/WELCOME caps). */
#define TP_CAP_ACK    0x01 /* the client wants ACK messages */
#define TP_CAP_QUERY  0x02 /* the client will send queries */
#define TP_CAP_STORED 0x04 /* the client wants STORED messages (it streams, PROTOCOL.md 4.7a) */

/** A function descriptor as sent in FUNCS. Strings point into the decoded
 *  message (or the caller's memory when encoding). */
typedef struct tp_wire_func {
    uint32_t id;
    const char *module, *qualname, *file;
    int32_t lineno;
} tp_wire_func;

/** A decoded (or to-be-encoded) message. Which fields matter depends on
 *  type; the rest are zero/NULL. Decoded strings are NUL-terminated and owned
 *  by the message until tp_wire_msg_free(). */
typedef struct tp_msg {
    int type; /* TP_MSG_* */

    /* HELLO / WELCOME */
    uint32_t version, caps;
    int64_t pid;
    const char *python; /* "3.12.1" */
    const char *hostname;
    const char *platform; /* HELLO: sys.platform, "linux" */
    const char *cwd;      /* HELLO: the client's working directory */
    const char *client;   /* "tracepatch/2.0.0" or "tph/2.0.0" or "tphd/2.0.0" */
    const char **argv;    /* NULL-terminated */
    size_t argc;

    /* FUNCS */
    tp_wire_func *funcs;
    size_t nfuncs;

    /* BEGIN / EVENTS / END / ACK / STORED share trace (the client's id, 32 hex chars max) */
    const char *trace;
    /* BEGIN */
    const char *label;
    int64_t wall_start_ns;
    const char *config_json;
    /* EVENTS: records in wire layout (16 bytes each, little-endian, maybe unaligned) */
    uint32_t seq; /* batch number within the trace, from 0 (STORED: the last one committed) */
    const void *records;
    size_t nrecords;
    const void *text;
    size_t text_len;
    /* END */
    uint64_t end_ns; /* ns since trace start */
    uint64_t call_count;
    uint64_t dropped;
    const char *limit_reason;
    const char *drop_reason;
    /* ACK */
    const char *url; /* report URL, may be NULL */
    /* LINES: the line data as UTF-8 JSON text (a file's "lines" value), not
     * NUL-terminated; at most TP_WIRE_MAX_LINES bytes */
    const void *lines_json;
    size_t lines_len;
    /* SOURCE: the source text as UTF-8 JSON text (a file's "source" value),
     * not NUL-terminated; at most TP_WIRE_MAX_SOURCE bytes */
    const void *source_json;
    size_t source_len;

    /* ERROR (and REPLY failures) */
    int32_t code; /* a tp_err.h code */
    const char *message;

    /* QUERY / REPLY */
    uint32_t id;    /* request id, echoed in the reply */
    const char *op; /* "list","get","tree","stats","diff","export","clean","status","import" */
    const char *args_json;    /* QUERY: the arguments as a JSON object text */
    bool ok;                  /* REPLY */
    const char *content_type; /* REPLY: "application/json", "text/plain", "text/csv", ... */
    const void *body;         /* REPLY: bytes; QUERY: the file for "import" */
    size_t body_len;
    bool more; /* QUERY/REPLY: more frames with this id carry the rest of body */

    void *priv; /* private: decoder allocations */
} tp_msg;

/* ---- Framing ------------------------------------------------------------ */

/** Look at the start of a receive buffer. Returns 0 and the payload length
 *  when a whole frame is there, -EAGAIN when more bytes are needed, or
 *  TP_ERR_FRAME_TOO_LARGE when the declared length exceeds max_frame
 *  (0 means TP_WIRE_MAX_FRAME). Never reads past len. */
int tp_wire_frame(const uint8_t *buf, size_t len, uint32_t max_frame, uint32_t *ret_payload_len);

/** Validate a payload without allocating: well-formed msgpack, one value
 *  that is [uint type, map body], every declared length within the bytes
 *  left and the limits above. On failure returns a code and, if err is not
 *  NULL, writes a message naming the offending field (at most errsz bytes). */
int tp_wire_check(const uint8_t *payload, size_t len, char *err, size_t errsz);

/** tp_wire_check() that also reports how many msgpack values (containers,
 *  keys and scalars) the payload holds, so a decoder can size its memory.
 *  ret_values may be NULL and is written only on success. */
int tp_wire_check_values(const uint8_t *payload, size_t len, size_t *ret_values, char *err,
                         size_t errsz);

/** Validate an EVENTS batch in wire layout (see event.h and PROTOCOL.md 4.5):
 *  every record's kind is 1..TP_EV_MAX and its flags within TP_EVF_ALL, and
 *  the text entries owned by the TP_EVF_TEXT records cover [text, text+text_len)
 *  exactly, none longer than TP_WIRE_MAX_STRING. No allocation; records need
 *  not be aligned. Returns 0, TP_ERR_MALFORMED or TP_ERR_LIMIT with a message
 *  naming the record index. tp_wire_decode() runs it on every EVENTS frame. */
int tp_wire_check_events(const void *records, size_t nrecords, const void *text, size_t text_len,
                         char *err, size_t errsz);

/** True when s[0..len) is a valid trace id: exactly 32 characters [0-9a-f]. */
bool tp_wire_trace_id_valid(const char *s, size_t len);

/** Check then decode a payload into *ret (msgpack-c; in tpproto_dec). Never
 *  allocates more than a small multiple of len. On failure *ret is untouched
 *  and err names the field. Free with tp_wire_msg_free(). Everything *ret points
 *  to (strings, argv, funcs, records, text, body) is copied into one arena
 *  owned by the message, so the payload may be reused at once. A well-formed
 *  payload of an unknown type decodes to a message with only type set (the
 *  receiver ignores it, PROTOCOL.md 5.5). */
int tp_wire_decode(const uint8_t *payload, size_t len, tp_msg *ret, char *err, size_t errsz);
/** Free what tp_wire_decode() allocated and zero *m. Accepts NULL and a
 *  zeroed message. */
void tp_wire_msg_free(tp_msg *m);

/** Append one whole frame (header + payload) for m to out. Fields not used by
 *  m->type are ignored; version 0 in HELLO/WELCOME means TP_WIRE_VERSION.
 *  Returns 0, -ENOMEM, -EINVAL (unknown type, a required field NULL, a bad
 *  trace id), TP_ERR_LIMIT (a string, argv, funcs or function id over its
 *  limit) or TP_ERR_FRAME_TOO_LARGE; on failure out keeps its previous length.
 *  Records are sent as given: they must already be in wire layout. */
int tp_wire_encode(const tp_msg *m, tp_buf *out);

/** Decode a small reply frame payload (WELCOME, ACK, STORED, ERROR) with the
 *  cursor: fills type, version, caps, client, trace, url, seq, code and message; strings
 *  are copied NUL-terminated into the caller's storage [store, store+storesz)
 *  (TP_ERR_LIMIT when they do not fit). Runs tp_wire_check first and applies
 *  the same required-field rules as tp_wire_decode. Any other type gives 0
 *  with only type set. *ret is written only on success; nothing to free.
 *  For the extension, which does not link msgpack-c. */
int tp_wire_decode_reply(const uint8_t *payload, size_t len, tp_msg *ret, char *store,
                         size_t storesz);

#endif
