/* A bounds-checked msgpack cursor: what tp_wire_check (wire_check.c) is
 * built on; the extension uses it to read the few replies it gets (WELCOME,
 * ACK, ERROR) without linking msgpack-c. No allocation, no recursion. */
#ifndef TP_MP_H
#define TP_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_MP_NIL   0
#define TP_MP_BOOL  1
#define TP_MP_UINT  2
#define TP_MP_INT   3
#define TP_MP_FLOAT 4
#define TP_MP_STR   5
#define TP_MP_BIN   6
#define TP_MP_ARRAY 7
#define TP_MP_MAP   8
#define TP_MP_EXT   9

typedef struct tp_mp_item {
    int kind; /* TP_MP_* */
    bool b;
    uint64_t u;
    int64_t i;
    double f;
    const uint8_t *ptr; /* STR/BIN/EXT bytes, inside the buffer */
    uint32_t len;       /* STR/BIN/EXT byte length, ARRAY elements, MAP pairs */
} tp_mp_item;

typedef struct tp_mp_cursor {
    const uint8_t *p, *end; /* public read-only */
} tp_mp_cursor;

/** Read the next item's header (containers are not descended: their elements
 *  follow). Returns 0, TP_ERR_TRUNCATED or TP_ERR_MALFORMED. Integers are
 *  normalised: a value >= 0 is TP_MP_UINT (u, and i when it fits), a negative
 *  one TP_MP_INT. STR/BIN/EXT data is stepped over (ptr/len point at it; an
 *  EXT's type is in i). A str/bin/ext length, or an element count, larger
 *  than the bytes left is TP_ERR_TRUNCATED. On failure the cursor stays. */
int tp_mp_next(tp_mp_cursor *c, tp_mp_item *ret);
/** Skip one whole value including nested elements, up to max_depth levels of
 *  containers (a scalar needs 0, [[1]] needs 2; at most 64 are honoured).
 *  Deeper nesting is TP_ERR_LIMIT. Iterative, no allocation. */
int tp_mp_skip(tp_mp_cursor *c, unsigned max_depth);

/** Why tp_mp_read() failed, for messages that name the offending
 *  declaration. */
typedef struct tp_mp_why {
    uint8_t byte;      /* the type byte */
    const char *what;  /* "str", "array", ... */
    const char *unit;  /* "bytes", "elements", "pairs" */
    uint64_t declared; /* declared size, 0 when the header itself was cut */
    size_t left;       /* bytes left after the header */
} tp_mp_why;

/** tp_mp_next(), but the cursor is advanced in place and a failure fills
 *  *why (the cursor then stays). */
int tp_mp_read(tp_mp_cursor *c, tp_mp_item *it, tp_mp_why *why);

#endif
