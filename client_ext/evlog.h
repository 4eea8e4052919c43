/* The event log: what a session's hooks write while recording.
 *
 * Records are fixed 16-byte tp_event values (proto/event.h) stored in
 * preallocated blocks; captured text goes to a separate arena of chunks, each
 * entry a 4-byte little-endian length then its bytes, so the two streams have
 * the wire layout of an EVENTS frame. Writing a record never allocates except
 * when a block fills up (one allocation per TP_EVLOG_BLOCK records).
 *
 * A writer first calls tp_evlog_reserve() for everything one hook event will
 * append (at most TP_EVLOG_MAX_PUT records and the text bytes), then appends
 * with tp_evlog_put() and tp_evlog_text(), which cannot fail after a
 * successful reservation. That keeps records and their text in step even when
 * memory runs out. Not thread-safe: callers hold the GIL. */
#ifndef TP_EVLOG_H
#define TP_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "vec.h"

#define TP_EVLOG_BLOCK   4096u        /* records per block (64 KiB) */
#define TP_EVLOG_CHUNK   (64u * 1024) /* default text chunk size */
#define TP_EVLOG_MAX_PUT 4u           /* records one reservation covers */

typedef struct tp_evblock {
    tp_event *ev;
    uint32_t n; /* records used; for the block being filled, see tp_evlog.n */
} tp_evblock;

typedef struct tp_evchunk {
    uint8_t *data;
    size_t len, cap;
} tp_evchunk;

/** Embedded in its owner; every field is private. Zero-initialise, then
 *  tp_evlog_init(). */
typedef struct tp_evlog {
    tp_event *cur;             /* block being filled */
    uint32_t n;                /* records used in cur */
    TP_VEC(tp_evblock) blocks; /* all blocks, cur last */
    TP_VEC(tp_evchunk) chunks; /* all text chunks, the one being filled last */
    uint64_t nrecords;         /* records written */
    size_t bytes;              /* memory held by blocks, chunks and their tables */
    uint64_t ns_mult;          /* ns per tick in 32.32 fixed point for readers; 0: times are ns */
} tp_evlog;

/** Test hook: when >= 0, that many more block/chunk allocations succeed and
 *  the following ones fail, as if memory ran out (-1, the default: off). */
extern long tp_evlog_fail_after;

/** Allocate the first block and text chunk. Returns 0 or -ENOMEM (the log is
 *  then empty and tp_evlog_free() is still safe). */
int tp_evlog_init(tp_evlog *l);
/** Release everything; the log is zeroed. Accepts a zeroed log. */
void tp_evlog_free(tp_evlog *l);

/** Make room for TP_EVLOG_MAX_PUT records and text_entries entries holding
 *  text_bytes bytes in total. Returns 0 or -ENOMEM (nothing changed). */
int tp_evlog_reserve_slow(tp_evlog *l, size_t text_bytes, unsigned text_entries);

static inline int tp_evlog_reserve(tp_evlog *l, size_t text_bytes, unsigned text_entries)
{
    tp_evchunk *c = &l->chunks.items[l->chunks.size - 1];
    if (l->n + TP_EVLOG_MAX_PUT <= TP_EVLOG_BLOCK &&
        c->cap - c->len >= text_bytes + 4u * text_entries)
        return 0;
    return tp_evlog_reserve_slow(l, text_bytes, text_entries);
}

/** Append one record. Only after a successful tp_evlog_reserve(). */
static inline void tp_evlog_put(tp_evlog *l, uint8_t kind, uint8_t flags, uint32_t arg,
                                uint64_t t_ns)
{
    tp_event *e = &l->cur[l->n++];
    e->kind = kind;
    e->flags = flags;
    e->rsv = 0;
    e->arg = arg;
    e->t_ns = t_ns;
    l->nrecords++;
}

/** Append a TP_EV_MEMORY record of delta bytes (clamped to 48 bits). Only
 *  after a successful tp_evlog_reserve(). */
static inline void tp_evlog_put_memory(tp_evlog *l, int64_t delta, uint64_t t_ns)
{
    uint16_t rsv;
    uint32_t arg;
    tp_event_memory_split(delta, &rsv, &arg);
    tp_evlog_put(l, TP_EV_MEMORY, 0, arg, t_ns);
    l->cur[l->n - 1].rsv = rsv;
}

/** Where the next text entry's bytes go, for a writer that renders them in
 *  place; tp_evlog_text_end() then closes the entry. Only after a
 *  successful tp_evlog_reserve() that counted the most it may write. */
static inline char *tp_evlog_text_begin(tp_evlog *l)
{
    tp_evchunk *c = &l->chunks.items[l->chunks.size - 1];
    return (char *)c->data + c->len + 4;
}

/** Close the text entry tp_evlog_text_begin() started, n bytes long. */
static inline void tp_evlog_text_end(tp_evlog *l, size_t n)
{
    tp_evchunk *c = &l->chunks.items[l->chunks.size - 1];
    uint8_t *p = c->data + c->len;
    uint32_t v = (uint32_t)n;
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    c->len += 4 + n;
}

/** Append one text entry (n bytes of UTF-8). Only after a successful
 *  tp_evlog_reserve() that counted it. */
static inline void tp_evlog_text(tp_evlog *l, const char *s, size_t n)
{
    if (n)
        __builtin_memcpy(tp_evlog_text_begin(l), s, n);
    tp_evlog_text_end(l, n);
}

/** Memory held by the log, in bytes. */
static inline size_t tp_evlog_bytes(const tp_evlog *l)
{
    return l->bytes;
}

/** Readers see times as ticks times ratio (ns per tick) from now on; the
 *  records are not rewritten, so a sender thread may be reading them. */
void tp_evlog_set_scale(tp_evlog *l, double ratio);

/** A time of the log in ns (t_ns of one of its records), as readers see it. */
static inline uint64_t tp_evlog_ns_at(uint64_t ns_mult, uint64_t ticks)
{
    /* Fixed point: a 128-bit product, exact to a fraction of a nanosecond
     * over any realistic trace. */
    return ns_mult ? (uint64_t)(((unsigned __int128)ticks * ns_mult) >> 32) : ticks;
}

static inline uint64_t tp_evlog_ns(const tp_evlog *l, const tp_event *ev)
{
    return tp_evlog_ns_at(l->ns_mult, ev->t_ns);
}

/** The 32.32 fixed-point multiplier of ratio (0 for 1.0). */
uint64_t tp_evlog_mult(double ratio);

/** A place in a log: the first record of a block and the text entry that
 *  record's text starts at (streaming, upload.c: everything before it was
 *  stored by tphd and may be freed). */
typedef struct tp_evlog_pos {
    uint64_t records;  /* records before it */
    size_t block;      /* its block (the record is that block's first) */
    size_t chunk, off; /* its text position */
} tp_evlog_pos;

/** Free the blocks and the text chunks wholly before *to (from where *from,
 *  the previous release, left off); their table entries stay, NULL. */
void tp_evlog_release(tp_evlog *l, const tp_evlog_pos *from, const tp_evlog_pos *to);

/** A reader over a log, in write order. Fields are private. */
typedef struct tp_evlog_iter {
    const tp_evlog *l;
    size_t block, idx; /* next record */
    size_t chunk, off; /* next text entry */
} tp_evlog_iter;

/** Start reading l from its first record. */
void tp_evlog_iter_init(tp_evlog_iter *it, const tp_evlog *l);
/** Start reading l at *at (a tp_evlog_release() point). */
void tp_evlog_iter_init_at(tp_evlog_iter *it, const tp_evlog *l, const tp_evlog_pos *at);
/** The next record in *ret, or false at the end. */
bool tp_evlog_next(tp_evlog_iter *it, const tp_event **ret);
/** The next text entry; false when the text stream is exhausted (a log
 *  written through reserve/put/text never is, for records with
 *  TP_EVF_TEXT). The pointer stays valid while the log lives. */
bool tp_evlog_next_text(tp_evlog_iter *it, const char **ret_s, size_t *ret_len);

#endif
