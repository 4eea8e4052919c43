/* Who is listening: a client checks the process at the other end of a
 * connected Unix socket before it sends anything there. A directory such as
 * /tmp/tracepatch-<uid> can be created by another user before the owner's
 * tphd starts, and then whoever bound the socket would receive every trace. */
#ifndef TP_PEER_H
#define TP_PEER_H

#include <stddef.h>

#define TP_PEER_SERVICE_USER "tracepatch" /* the system service's user (deploy/systemd) */

/** Whether the process at the other end of the connected Unix socket fd may
 *  receive this process's traces and queries: its SO_PEERCRED uid is our
 *  effective uid, or root's, or, when path is TP_PATHS_SYSTEM_SOCKET, the uid
 *  of TP_PEER_SERVICE_USER. Returns 0; TP_ERR_PERM with a message in err
 *  naming path and the peer's uid; or a negated errno when the credentials
 *  cannot be read (message in err too). err may be NULL. Thread-safe. */
int tp_peer_check(int fd, const char *path, char *err, size_t errsz);

#endif
