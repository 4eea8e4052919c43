/* A growable byte buffer: the output of every renderer and encoder.
 *
 * A tp_buf is embedded by callers (stack or struct), so its fields are public:
 * data/len are read-only for callers, cap is private. Appends after a failed
 * allocation keep failing and leave the buffer as it was, so a sequence of
 * appends can be checked once at the end with tp_buf_error().
 *
 * A buffer with a drain (tp_buf_set_drain()) is a stream: once an append
 * would take it past its piece size, what it holds is handed to the drain
 * and forgotten, so a renderer writes output of any size in bounded memory
 * without knowing. Only the not yet drained tail is in data then; code that
 * reads back what it wrote earlier must not be given such a buffer. */
#ifndef TP_BUF_H
#define TP_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** Where a stream's bytes go: n bytes at p (valid for the call only).
 *  Returns 0, or a negative code that becomes the buffer's sticky error. */
typedef int (*tp_buf_drain_fn)(void *ctx, const char *p, size_t n);

typedef struct tp_buf {
    char *data; /* read-only: NUL-terminated when len > 0 or after tp_buf_cstr() */
    size_t len; /* read-only: bytes written and not drained, excluding the NUL */
    size_t cap; /* private */
    int err;    /* private: sticky 0, -ENOMEM or the drain's code */
    /* private: the stream's sink (NULL: none), and when it is called */
    tp_buf_drain_fn drain;
    void *drain_ctx;
    size_t piece;
    size_t drained; /* read-only: bytes handed to the drain so far */
} tp_buf;

#define TP_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0, NULL, NULL, 0, 0                                                            \
    }

/** Make room for at least n more bytes. A stream drains what it holds
 *  first when len + n would pass its piece size. Returns 0, -ENOMEM or the
 *  drain's code (sticky). */
int tp_buf_reserve(tp_buf *b, size_t n);
/** tp_buf_append() when the bytes do not fit yet (internal: grows). */
int tp__buf_append_grow(tp_buf *b, const void *p, size_t n);

/** Append n bytes. Returns 0 or -ENOMEM (sticky). Inline: renderers append
 *  tens of millions of short pieces, and a call per piece cost as much as
 *  the copying (a 200k-call JSON file is 390 MB of them). */
static inline int tp_buf_append(tp_buf *b, const void *p, size_t n)
{
    /* cap - len > n: room for the bytes and the NUL; false while empty. */
    if (!b->err && b->cap - b->len > n) {
        if (n) /* p may be NULL then */
            memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    return tp__buf_append_grow(b, p, n);
}

/** Append a NUL-terminated string. */
static inline int tp_buf_puts(tp_buf *b, const char *s)
{
    return tp_buf_append(b, s, strlen(s));
}

/** Append one byte. */
static inline int tp_buf_putc(tp_buf *b, char c)
{
    if (!b->err && b->cap - b->len > 1) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return tp__buf_append_grow(b, &c, 1);
}
/** Append printf-formatted text. */
int tp_buf_printf(tp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tp_buf_vprintf(tp_buf *b, const char *fmt, va_list ap);
/** 0, or -ENOMEM if any append since the last reset failed. */
int tp_buf_error(const tp_buf *b);
/** Always-valid NUL-terminated view of the contents ("" when empty). */
const char *tp_buf_cstr(tp_buf *b);
/** Forget the contents, keep the memory, clear the error. */
void tp_buf_reset(tp_buf *b);
/** Release the memory; the buffer is TP_BUF_INIT afterwards. Accepts NULL. */
void tp_buf_free(tp_buf *b);
/** Take ownership of the malloc'd data (NUL-terminated); the buffer is reset
 *  to TP_BUF_INIT. Returns NULL on a previous allocation failure. */
char *tp_buf_steal(tp_buf *b, size_t *ret_len);

/** Make b (empty, no error) a stream: from now on, whenever an append or a
 *  reserve would take len past piece bytes (piece >= 1), drain(ctx, data,
 *  len) is called with what b holds, which is then forgotten; an append of
 *  piece bytes or more goes to drain directly, uncopied, in calls of at most
 *  piece bytes. A drain's negative
 *  code is b's sticky error. The bytes left under a piece at the end are
 *  the caller's: read them, or hand them over with tp_buf_flush(). b keeps
 *  at most about 2 * piece bytes. Returns 0, -EINVAL (b not empty or piece
 *  0) or -ENOMEM. */
int tp_buf_set_drain(tp_buf *b, size_t piece, tp_buf_drain_fn drain, void *ctx);
/** Hand what a stream holds to its drain now (nothing when empty or no
 *  drain is set). Returns 0 or the sticky error. */
int tp_buf_flush(tp_buf *b);
/** Every byte written since b was made or reset: drained + len. */
static inline size_t tp_buf_total(const tp_buf *b)
{
    return b->drained + b->len;
}

#endif
