#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Splits "12.5h" into 12.5 and "h"; rejects negatives, NaN and empty input. */
static int parse_number_unit(const char *s, double *ret_num, const char **ret_unit)
{
    if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0)
        return -EINVAL;
    /* strtod accepts "inf", "nan" and hex floats; only plain decimals are sizes. */
    for (const char *p = s; p < end; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -EINVAL;
    *ret_num = v;
    *ret_unit = end;
    return 0;
}

int tp_util_parse_duration(const char *s, double *ret_seconds)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"ms", 0.001},   {"", 1},       {"s", 1},         {"sec", 1},        {"m", 60},
        {"min", 60},     {"h", 3600},   {"hr", 3600},     {"d", 86400},      {"day", 86400},
        {"days", 86400}, {"w", 604800}, {"week", 604800}, {"weeks", 604800},
    };
    double v;
    const char *unit;
    int r = parse_number_unit(s, &v, &unit);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(unit, units[i].unit) == 0) {
            double secs = v * units[i].mult;
            if (!isfinite(secs) || secs > 1e15)
                return -EINVAL;
            *ret_seconds = secs;
            return 0;
        }
    }
    return -EINVAL;
}

int tp_util_parse_size(const char *s, uint64_t *ret_bytes)
{
    double v;
    const char *unit;
    int r = parse_number_unit(s, &v, &unit);
    if (r < 0)
        return r;
    double mult;
    switch (toupper((unsigned char)unit[0])) {
    case '\0':
        mult = 1;
        break;
    case 'B':
        mult = 1;
        break;
    case 'K':
        mult = 1024.0;
        break;
    case 'M':
        mult = 1024.0 * 1024;
        break;
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
    case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
    default:
        return -EINVAL;
    }
    if (unit[0]) {
        const char *rest = unit + 1;
        if (toupper((unsigned char)unit[0]) == 'B') {
            if (*rest)
                return -EINVAL;
        } else if (strcasecmp(rest, "") != 0 && strcasecmp(rest, "B") != 0 &&
                   strcasecmp(rest, "iB") != 0) {
            return -EINVAL;
        }
    }
    double bytes = v * mult;
    if (!isfinite(bytes) || bytes >= 18446744073709551615.0)
        return -EINVAL;
    *ret_bytes = (uint64_t)bytes;
    return 0;
}

int tp_util_dirname(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    if (!slash) {
        if (size < 2)
            return -ENAMETOOLONG;
        strcpy(buf, ".");
        return 0;
    }
    n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/x" -> "/" */
    if (n + 1 > size)
        return -ENAMETOOLONG;
    memcpy(buf, path, n);
    buf[n] = '\0';
    return 0;
}

int tp_util_mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0)
        return -EINVAL;
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    /* Walk forward, creating each missing component. */
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST)
                return -e;
            if (stat(buf, &st) < 0)
                return -errno;
            if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    return 0;
}

int tp_util_dir_check_private(const char *path, char *err, size_t errsz)
{
    struct stat st;
    /* lstat: a symlink planted in /tmp must not lead elsewhere either. */
    if (lstat(path, &st) < 0) {
        int e = errno;
        snprintf(err, errsz, "%s: %s", path, strerror(e));
        return -e;
    }
    mode_t m = st.st_mode & 07777;
    const char *why = NULL;
    if (!S_ISDIR(st.st_mode))
        why = "is not a directory";
    else if (st.st_uid == 0 && (m & S_ISVTX))
        return 0; /* /tmp itself: sticky, so nobody else can replace our files */
    else if (st.st_uid != geteuid())
        why = "is not owned by this user";
    else if (m & S_IWOTH)
        why = "is writable by other users";
    else if ((m & S_IWGRP) && st.st_gid != getegid())
        why = "is writable by a group that is not ours";
    if (!why)
        return 0;
    snprintf(err, errsz,
             "%s %s (owner uid %u, group %u, mode %04o; this is uid %u): another user could "
             "replace the socket or the database; remove it or fix its owner and mode (0700)",
             path, why, (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)m, (unsigned)geteuid());
    return -EPERM;
}

int64_t tp_util_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tp_util_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int tp_util_random_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
    return 0;
}

bool tp_util_id_normalize(const char *s, char out[33])
{
    if (!s)
        return false;
    for (size_t i = 0; i < 32; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
    }
    if (s[32] != '\0')
        return false;
    for (size_t i = 0; i < 32; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[32] = '\0';
    return true;
}

int tp_util_proc_start_time(pid_t pid, uint64_t *ret)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    close(fd);
    if (n <= 0)
        return n < 0 ? -e : -ESRCH;
    buf[n] = '\0';
    /* comm (field 2) may contain spaces and parentheses: fields after it
     * start past the last ')'. Field 3 follows; field 22 is 19 fields later. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    p++;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -EINVAL;
        if (field == 22) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p || errno)
                return -EINVAL;
            *ret = v;
            return 0;
        }
        while (*p && *p != ' ')
            p++;
    }
    return -EINVAL;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    unsigned cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

void tp_util_utf8_fix(char *s, size_t len)
{
    unsigned char *p = (unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) {
            p[i++] = '?';
            continue;
        }
        i += n;
    }
}
