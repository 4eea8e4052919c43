#include "tp_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct code_text {
    int code;
    const char *name;
    const char *text;
};

static const struct code_text codes[] = {
    {TP_ERR_TRUNCATED, "TRUNCATED", "input ended in the middle of a value"},
    {TP_ERR_FRAME_TOO_LARGE, "FRAME_TOO_LARGE", "frame is larger than the protocol allows"},
    {TP_ERR_MALFORMED, "MALFORMED", "bytes are not valid msgpack"},
    {TP_ERR_TYPE, "TYPE", "a field has the wrong type"},
    {TP_ERR_MISSING, "MISSING", "a required field is missing"},
    {TP_ERR_LIMIT, "LIMIT", "a size, count or nesting limit was exceeded"},
    {TP_ERR_VERSION, "VERSION", "unsupported protocol version"},
    {TP_ERR_UNKNOWN_FUNC, "UNKNOWN_FUNC", "an event refers to an undescribed function"},
    {TP_ERR_SEQUENCE, "SEQUENCE", "message or event out of order"},
    {TP_ERR_NOT_FOUND, "NOT_FOUND", "no such trace"},
    {TP_ERR_AMBIGUOUS, "AMBIGUOUS", "the ID prefix matches more than one trace"},
    {TP_ERR_DB, "DB", "the trace database failed"},
    {TP_ERR_JSON, "JSON", "not a valid tracepatch JSON trace"},
    {TP_ERR_PERM, "PERM", "permission denied"},
};

static const struct code_text *find(int code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].code == code)
            return &codes[i];
    return NULL;
}

const char *tp_strerror(int code)
{
    const struct code_text *c = find(code);
    if (c)
        return c->text;
    if (code < 0 && code > TP_ERR_BASE)
        return strerror(-code);
    return code == 0 ? "success" : "unknown error";
}

const char *tp_errname(int code)
{
    const struct code_text *c = find(code);
    if (c)
        return c->name;
    switch (code) {
    case 0:
        return "OK";
    case -ENOMEM:
        return "ENOMEM";
    case -EINVAL:
        return "EINVAL";
    case -ENOENT:
        return "ENOENT";
    case -EACCES:
        return "EACCES";
    case -EIO:
        return "EIO";
    case -EAGAIN:
        return "EAGAIN";
    case -ETIMEDOUT:
        return "ETIMEDOUT";
    case -ENOSPC:
        return "ENOSPC";
    case -ESHUTDOWN:
        return "ESHUTDOWN";
    default:
        break;
    }
    /* Every other errno by its own name (ETIMEDOUT, ENOSPC, ESHUTDOWN...):
     * a log reader or a client tells them apart by name, not by "ERROR". */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    if (code < 0 && code > TP_ERR_BASE) {
        const char *name = strerrorname_np(-code);
        if (name)
            return name;
    }
#endif
    return "ERROR";
}

int tp_err_set(char *err, size_t errsz, int code, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return code;
}
