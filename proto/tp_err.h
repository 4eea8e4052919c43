/* Error codes shared by proto/, the extension, tphd and tph.
 *
 * Every function in the project that can fail returns an int: 0 on success,
 * a negative code on failure. Codes below TP_ERR_BASE are negated errno values
 * (-ENOMEM, -EINVAL, ...); codes from TP_ERR_BASE downwards are tracepatch's
 * own. tp_strerror() gives every code a message a user can act on.
 *
 * Names, for the whole C tree (libuv's uv_/uv__ rule). A module is a header
 * M.h and its files M.c and M_<part>.c (hooks_legacy.c, store_ops.c).
 * - What M.h declares is M's surface and is named tp_M_* (tph_M_* in tph):
 *   functions, globals, and constants TP_M_*; types are tp_<thing>.
 * - A name M's files share but nobody else may use is declared in M_priv.h
 *   (or the part's own header) and named tp__M_* (two underscores).
 * - Everything else is static. So `nm -g --defined-only` on M's objects
 *   lists only tp_M_* and tp__M_* names. */
#ifndef TP_ERR_H
#define TP_ERR_H

#include <errno.h>
#include <stddef.h>

#define TP_ERR_BASE (-4000)

enum {
    TP_ERR_TRUNCATED = TP_ERR_BASE,           /* input ended inside a value or frame */
    TP_ERR_FRAME_TOO_LARGE = TP_ERR_BASE - 1, /* declared frame length over the limit */
    TP_ERR_MALFORMED = TP_ERR_BASE - 2,       /* bytes are not valid msgpack */
    TP_ERR_TYPE = TP_ERR_BASE - 3,            /* a field has the wrong msgpack type */
    TP_ERR_MISSING = TP_ERR_BASE - 4,         /* a required field is absent */
    TP_ERR_LIMIT = TP_ERR_BASE - 5,           /* a size, count or nesting limit was exceeded */
    TP_ERR_VERSION = TP_ERR_BASE - 6,         /* unsupported protocol version or bad magic */
    TP_ERR_UNKNOWN_FUNC = TP_ERR_BASE - 7,    /* an event names a function never described */
    TP_ERR_SEQUENCE = TP_ERR_BASE - 8,        /* message or event out of order */
    TP_ERR_NOT_FOUND = TP_ERR_BASE - 9,       /* no such trace (or not yours) */
    TP_ERR_AMBIGUOUS = TP_ERR_BASE - 10,      /* an ID prefix matches several traces */
    TP_ERR_DB = TP_ERR_BASE - 11,             /* the database failed; see the message */
    TP_ERR_JSON = TP_ERR_BASE - 12,           /* a JSON document is invalid or not a trace */
    TP_ERR_PERM = TP_ERR_BASE - 13,           /* the peer may not do this */
    TP_ERR_LAST = TP_ERR_BASE - 13,
};

/** Human message for a code from this header or a negated errno value.
 *  Never returns NULL; the string is static. Thread-safe. */
const char *tp_strerror(int code);

/** Name of the code ("TRUNCATED", "ENOMEM", ...) for wire error replies and
 *  logs; static string, never NULL. */
const char *tp_errname(int code);

/** Write a message (printf format) into err[errsz] when err is not NULL and
 *  errsz > 0, and return code: `return tp_err_set(err, errsz, TP_ERR_X,
 *  "...", ...);` for functions that report a message beside their code. */
__attribute__((format(printf, 4, 5))) int tp_err_set(char *err, size_t errsz, int code,
                                                     const char *fmt, ...);

#endif
