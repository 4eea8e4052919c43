/* Default socket and database paths; see paths.h. */
#include "paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An environment directory is usable only when it is absolute: the XDG base
 * directory spec says relative values are invalid and must be ignored. */
static const char *abs_env(const char *name)
{
    const char *v = getenv(name);
    return (v && v[0] == '/') ? v : NULL;
}

static int put(char *buf, size_t size, size_t limit, const char *fmt, const char *a,
               unsigned long b)
{
    char tmp[4096];
    int n;

    if (a)
        n = snprintf(tmp, sizeof tmp, fmt, a);
    else
        n = snprintf(tmp, sizeof tmp, fmt, b);
    if (n < 0 || (size_t)n >= sizeof tmp || (size_t)n >= size || (size_t)n >= limit)
        return -ENAMETOOLONG;
    memcpy(buf, tmp, (size_t)n + 1);
    return 0;
}

int tp_paths_user_socket(char *buf, size_t size)
{
    const char *run = abs_env("XDG_RUNTIME_DIR");

    if (run)
        return put(buf, size, TP_PATHS_SOCKET_MAX, "%s/tracepatch/tphd.sock", run, 0);
    return put(buf, size, TP_PATHS_SOCKET_MAX, "/tmp/tracepatch-%lu/tphd.sock", NULL,
               (unsigned long)getuid());
}

int tp_paths_user_db(char *buf, size_t size)
{
    const char *state = abs_env("XDG_STATE_HOME");
    const char *home;

    if (state)
        return put(buf, size, (size_t)-1, "%s/tracepatch/traces.db", state, 0);
    home = abs_env("HOME");
    if (!home)
        return -ENOENT;
    return put(buf, size, (size_t)-1, "%s/.local/state/tracepatch/traces.db", home, 0);
}

static int is_socket(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int tp_paths_client_socket(char *buf, size_t size)
{
    const char *env = getenv(TP_PATHS_SOCKET_ENV);
    char user[TP_PATHS_SOCKET_MAX];
    int r;

    if (env && env[0])
        return put(buf, size, (size_t)-1, "%s", env, 0);
    r = tp_paths_user_socket(user, sizeof user);
    if (r < 0)
        return r;
    if (!is_socket(user) && is_socket(TP_PATHS_SYSTEM_SOCKET))
        return put(buf, size, (size_t)-1, "%s", TP_PATHS_SYSTEM_SOCKET, 0);
    return put(buf, size, (size_t)-1, "%s", user, 0);
}
