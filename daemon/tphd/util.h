/* Small helpers shared by tphd's modules: option value parsing, directories,
 * clocks, random trace ids and peer process facts. Nothing here prints. */
#ifndef TP_UTIL_H
#define TP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Parse a duration such as "7d", "12h", "30m", "45s", "250ms", "2w" or a bare number
 *  of seconds ("3600") into seconds. Fractions are allowed ("1.5h"). Returns 0
 *  and *ret_seconds, or -EINVAL for anything else (empty, negative, unknown
 *  unit, overflow). */
int tp_util_parse_duration(const char *s, double *ret_seconds);

/** Parse a size such as "1G", "500M", "64K", "4096", "2GiB" or "10MB" (binary
 *  multiples: K = 1024) into bytes. Returns 0 and *ret_bytes, or -EINVAL. */
int tp_util_parse_size(const char *s, uint64_t *ret_bytes);

/** Create directory path and any missing parents; directories this call
 *  creates get mode (e.g. 0700). An existing directory is left as it is.
 *  Returns 0 or a negated errno (-ENOTDIR when a component is a file). */
int tp_util_mkdir_p(const char *path, mode_t mode);

/** Whether directory path is safe to keep a socket or database in: owned by
 *  the effective uid, writable by no other user, and group-writable only for
 *  our own effective gid (the system service's 0770 tracepatch directory);
 *  or a sticky directory of root's such as /tmp, where nobody else can
 *  replace our files.
 *  Returns 0, or -EPERM with a message naming the path, owner and mode in
 *  err[errsz], or a negated errno from lstat (message in err too). */
int tp_util_dir_check_private(const char *path, char *err, size_t errsz);

/** Copy the directory part of path into buf ("." when there is none).
 *  Returns 0 or -ENAMETOOLONG. */
int tp_util_dirname(const char *path, char *buf, size_t size);

/** CLOCK_REALTIME in ns since the Unix epoch. Thread-safe. */
int64_t tp_util_now_ns(void);
/** CLOCK_MONOTONIC in ns. Thread-safe. */
int64_t tp_util_mono_ns(void);

/** Fill out (33 bytes) with a fresh random 32-hex-digit lowercase id.
 *  Returns 0 or a negated errno from getrandom(). Thread-safe. */
int tp_util_random_id(char out[33]);

/** Whether s is exactly 32 hex digits; if so, writes its lowercase form into
 *  out (33 bytes). */
bool tp_util_id_normalize(const char *s, char out[33]);

/** Replace every byte of an invalid UTF-8 sequence in s[0..len) with '?',
 *  in place, so the text can go into JSON and SQLite TEXT safely. */
void tp_util_utf8_fix(char *s, size_t len);

/** The start time of process pid, in clock ticks since boot (field 22 of
 *  /proc/PID/stat), so (pid, start) names one process even after pid reuse.
 *  Returns 0 and *ret, or a negated errno (-ESRCH when the process is gone). */
int tp_util_proc_start_time(pid_t pid, uint64_t *ret);

#endif
