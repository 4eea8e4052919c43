/* Default socket and database paths (proto/paths.c). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"

static void clear_env(void)
{
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("XDG_STATE_HOME");
    unsetenv("TRACEPATCH_SOCKET");
}

TestSuite(paths, .init = clear_env);

Test(paths, user_socket_under_xdg_runtime_dir)
{
    char buf[TP_PATHS_SOCKET_MAX];

    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    cr_assert_eq(tp_paths_user_socket(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "/run/user/1000/tracepatch/tphd.sock");
}

Test(paths, user_socket_falls_back_to_tmp_without_runtime_dir)
{
    char buf[TP_PATHS_SOCKET_MAX], want[64];

    snprintf(want, sizeof want, "/tmp/tracepatch-%lu/tphd.sock", (unsigned long)getuid());
    cr_assert_eq(tp_paths_user_socket(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, want);
}

Test(paths, user_socket_ignores_relative_runtime_dir)
{
    char buf[TP_PATHS_SOCKET_MAX], want[64];

    setenv("XDG_RUNTIME_DIR", "run/user", 1);
    snprintf(want, sizeof want, "/tmp/tracepatch-%lu/tphd.sock", (unsigned long)getuid());
    cr_assert_eq(tp_paths_user_socket(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, want);
}

Test(paths, user_socket_too_long_for_sockaddr_fails)
{
    char dir[200], buf[512] = "untouched";

    memset(dir, 'a', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = '\0';
    setenv("XDG_RUNTIME_DIR", dir, 1);
    cr_assert_eq(tp_paths_user_socket(buf, sizeof buf), -ENAMETOOLONG);
    cr_assert_str_eq(buf, "untouched");
}

Test(paths, user_socket_small_buffer_fails)
{
    char buf[8] = "x";

    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    cr_assert_eq(tp_paths_user_socket(buf, sizeof buf), -ENAMETOOLONG);
    cr_assert_str_eq(buf, "x");
}

Test(paths, user_db_under_xdg_state_home)
{
    char buf[256];

    setenv("XDG_STATE_HOME", "/home/u/.state", 1);
    cr_assert_eq(tp_paths_user_db(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "/home/u/.state/tracepatch/traces.db");
}

Test(paths, user_db_falls_back_to_home)
{
    char buf[256];

    setenv("HOME", "/home/u", 1);
    cr_assert_eq(tp_paths_user_db(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "/home/u/.local/state/tracepatch/traces.db");
}

Test(paths, user_db_without_home_fails)
{
    char buf[256];

    unsetenv("HOME");
    cr_assert_eq(tp_paths_user_db(buf, sizeof buf), -ENOENT);
}

Test(paths, client_socket_prefers_environment)
{
    char buf[256];

    setenv("TRACEPATCH_SOCKET", "/srv/t.sock", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    cr_assert_eq(tp_paths_client_socket(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "/srv/t.sock");
}

Test(paths, client_socket_empty_environment_means_default)
{
    char buf[256];

    setenv("TRACEPATCH_SOCKET", "", 1);
    setenv("XDG_RUNTIME_DIR", "/nonexistent-run", 1);
    cr_assert_eq(tp_paths_client_socket(buf, sizeof buf), 0);
    /* No socket exists at either default (the test machine runs no system
     * tphd at /run/tracepatch), so the user path is named. */
    if (access(TP_PATHS_SYSTEM_SOCKET, F_OK) != 0)
        cr_assert_str_eq(buf, "/nonexistent-run/tracepatch/tphd.sock");
}
