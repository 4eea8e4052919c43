#include "peer.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "paths.h"
#include "tp_err.h"

/* The service user's uid, looked up only when a peer is neither us nor root
 * (getpwnam_r may load NSS modules: not for every connection). */
static int service_uid(uid_t *ret)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwnam_r(TP_PEER_SERVICE_USER, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return -ENOENT;
    *ret = pw.pw_uid;
    return 0;
}

int tp_peer_check(int fd, const char *path, char *err, size_t errsz)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uid_t me = geteuid(), svc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
        int e = errno ? errno : EIO;
        return tp_err_set(err, errsz, -e, "cannot tell who listens on %s: %s", path, strerror(e));
    }
    if (cred.uid == me || cred.uid == 0)
        return 0;
    if (path && strcmp(path, TP_PATHS_SYSTEM_SOCKET) == 0 && service_uid(&svc) == 0 &&
        cred.uid == svc)
        return 0;
    return tp_err_set(err, errsz, TP_ERR_PERM,
                      "%s is served by uid %u (pid %d), not by uid %u or root: nothing was sent",
                      path, (unsigned)cred.uid, (int)cred.pid, (unsigned)me);
}
