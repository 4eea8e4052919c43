/* The event record: what the extension's hook writes, what an EVENTS frame
 * carries, and what the tree builder consumes.
 *
 * An event stream is two parallel byte streams:
 *  - records: fixed 16-byte tp_event values, little-endian on the wire;
 *  - text: the captured strings, in the order the records that own them
 *    appear, each as a 4-byte little-endian length then that many bytes of
 *    UTF-8 (not NUL-terminated).
 * A record owns text entries only when it has TP_EVF_TEXT; how many depends on
 * its kind (see TP_EV_*). Keeping text out of the record keeps a recorded call
 * at 32 bytes (one CALL, one RETURN) plus its text. See proto/PROTOCOL.md. */
#ifndef TP_EVENT_H
#define TP_EVENT_H

#include <stdint.h>

/* Kinds. "Current call" is the innermost open call of the current thread. */
#define TP_EV_CALL   1 /* a call starts; arg = function id; text: args */
#define TP_EV_RETURN 2 /* the current call returns; text: return value repr */
#define TP_EV_UNWIND 3 /* the current call ends by an exception; text: type, message */
#define TP_EV_CAUGHT                                                                               \
    4 /* an exception raised in the current call was handled there; text: type, message */
#define TP_EV_YIELD                                                                                \
    5 /* the current call (generator/coroutine) suspends; arg = its call sequence number */
#define TP_EV_RESUME                                                                               \
    6 /* a suspended call resumes and becomes current; arg = its call sequence number */
#define TP_EV_THREAD 7 /* following events belong to thread index arg; text: thread name */
#define TP_EV_SPAWN                                                                                \
    8 /* the next CALL on this thread is an asyncio task's coroutine created by call arg (its      \
         call sequence number): it hangs under that call, not under the current one; text (when    \
         TP_EVF_TEXT): the task's name */
#define TP_EV_MEMORY                                                                               \
    9 /* the call that ended last on this thread (written right after its RETURN/UNWIND)           \
         changed the traced memory by a signed delta: see tp_event_memory_delta() */
#define TP_EV_MAX 9

/* Flags. */
#define TP_EVF_TEXT 0x01 /* the record owns text entries (count depends on kind) */
#define TP_EVF_GEN  0x02 /* CALL: the function is a generator, coroutine or async generator */
#define TP_EVF_ALL  0x03 /* every defined flag; receivers reject others */

/** One event. Fields are public; the struct is exactly 16 bytes with no
 *  padding, so an array of them can be copied to and from the wire as is on a
 *  little-endian host. */
typedef struct tp_event {
    uint8_t kind;  /* TP_EV_* */
    uint8_t flags; /* TP_EVF_* */
    uint16_t rsv;  /* 0; receivers ignore it, except in TP_EV_MEMORY (bits 32..47 of the delta) */
    uint32_t arg;  /* function id, call sequence number, thread index, or bits 0..31 of a
                      TP_EV_MEMORY delta */
    uint64_t t_ns; /* nanoseconds since the trace's start */
} tp_event;

_Static_assert(sizeof(tp_event) == 16, "tp_event is a 16-byte wire record");

/** The call sequence number of a CALL is its index among all CALL events of
 *  the trace, counting from 0 across batches. The tree builder gives node i to
 *  call i, so YIELD/RESUME name a node directly. */

/** Number of text entries a record of this kind owns when TP_EVF_TEXT is set. */
static inline unsigned tp_event_text_entries(uint8_t kind)
{
    return (kind == TP_EV_UNWIND || kind == TP_EV_CAUGHT) ? 2u : 1u;
}

/* A TP_EV_MEMORY delta is a 48-bit two's-complement byte count: arg holds
 * its low 32 bits and rsv the high 16, so a call that allocates more than
 * 2 GiB (arg alone) is still exact. Larger deltas are clamped to the range. */
#define TP_EVENT_MEMORY_MAX (((int64_t)1 << 47) - 1)
#define TP_EVENT_MEMORY_MIN (-((int64_t)1 << 47))

/** The byte delta a TP_EV_MEMORY record (host byte order fields) carries. */
static inline int64_t tp_event_memory_delta(uint16_t rsv, uint32_t arg)
{
    uint64_t u = (uint64_t)rsv << 32 | arg;
    /* Sign-extend bit 47. */
    return (int64_t)(u ^ ((uint64_t)1 << 47)) - ((int64_t)1 << 47);
}

/** Split a byte delta into a TP_EV_MEMORY record's rsv and arg (clamped to
 *  48 bits). */
static inline void tp_event_memory_split(int64_t delta, uint16_t *ret_rsv, uint32_t *ret_arg)
{
    if (delta > TP_EVENT_MEMORY_MAX)
        delta = TP_EVENT_MEMORY_MAX;
    if (delta < TP_EVENT_MEMORY_MIN)
        delta = TP_EVENT_MEMORY_MIN;
    uint64_t u = (uint64_t)delta;
    *ret_rsv = (uint16_t)(u >> 32);
    *ret_arg = (uint32_t)u;
}

#endif
