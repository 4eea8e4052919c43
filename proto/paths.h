/* Default locations of the tphd socket and database, shared by tphd, tph and
 * the extension so that a client with no configuration finds the daemon a
 * user started with no configuration.
 *
 * A user's daemon lives under $XDG_RUNTIME_DIR (a per-user 0700 tmpfs that
 * systemd-logind creates); without one, under a per-uid directory in /tmp.
 * The system service (deploy/) uses the fixed TP_PATHS_SYSTEM_* paths. */
#ifndef TP_PATHS_H
#define TP_PATHS_H

#include <stddef.h>

#define TP_PATHS_SYSTEM_SOCKET "/run/tracepatch/tphd.sock"     /* the systemd service's socket */
#define TP_PATHS_SYSTEM_DB     "/var/lib/tracepatch/traces.db" /* the systemd service's database */
#define TP_PATHS_SOCKET_ENV    "TRACEPATCH_SOCKET"             /* overrides every default */
#define TP_PATHS_SOCKET_MAX    108u /* sizeof(sockaddr_un.sun_path) on Linux, NUL included */

/** The socket a user's tphd listens on by default:
 *  $XDG_RUNTIME_DIR/tracepatch/tphd.sock when XDG_RUNTIME_DIR is an absolute
 *  path, else /tmp/tracepatch-<uid>/tphd.sock. Writes the NUL-terminated path
 *  into buf. Returns 0, or -ENAMETOOLONG when it does not fit in size bytes
 *  or in a sockaddr_un (buf is then untouched). Thread-safe as long as
 *  nobody changes the environment meanwhile. */
int tp_paths_user_socket(char *buf, size_t size);

/** The database a user's tphd uses by default:
 *  $XDG_STATE_HOME/tracepatch/traces.db when XDG_STATE_HOME is absolute,
 *  else $HOME/.local/state/tracepatch/traces.db. Returns 0, -ENAMETOOLONG,
 *  or -ENOENT when neither variable gives an absolute directory. */
int tp_paths_user_db(char *buf, size_t size);

/** The socket a client should connect to when not told otherwise:
 *  $TRACEPATCH_SOCKET when set and non-empty; else the user socket if it
 *  exists; else TP_PATHS_SYSTEM_SOCKET if it exists; else the user socket
 *  (so an error message names the path a user daemon would use).
 *  Returns 0 or -ENAMETOOLONG. */
int tp_paths_client_socket(char *buf, size_t size);

#endif
