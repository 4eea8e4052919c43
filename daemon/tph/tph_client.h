/* tph's side of the wire, over proto/client.h: says HELLO,
 * waits for WELCOME, then sends QUERY messages and reads their REPLY
 * (PROTOCOL.md 4.9; the ops are docs/QUERY.md). Every wait is bounded by a timeout.
 * Single-threaded. */
#ifndef TPH_CLIENT_H
#define TPH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tph_client tph_client;

/** One answer. Strings are NUL-terminated and owned by the reply. */
typedef struct tph_reply {
    bool ok;
    int32_t code;       /* a tp_err.h code when !ok */
    char *message;      /* when !ok: the daemon's message, never NULL */
    char *content_type; /* when ok: "application/json", "text/plain", ...; never NULL */
    char *body;         /* when ok: the bytes plus a NUL; never NULL */
    size_t body_len;
} tph_reply;

/** Connect to the socket at path and complete the HELLO/WELCOME exchange,
 *  waiting at most timeout_s for each step. Returns 0, or a negative code
 *  with a message in err: -ENOENT / -ECONNREFUSED when no daemon listens
 *  there (the caller words that one), -ETIMEDOUT, -ENAMETOOLONG, or a
 *  tp_err.h code when the daemon refused us. */
int tph_client_connect(const char *path, double timeout_s, tph_client **ret, char *err,
                       size_t errsz);

/** Send QUERY {op, args_json, body} and wait for its REPLY. body (may be
 *  NULL) is sent as the QUERY's bin body, split over several frames when it
 *  does not fit in one (PROTOCOL.md 4.9); a chunked REPLY is reassembled.
 *  A REPLY with ok=false is still a success of this call (look at ret->ok).
 *  Returns 0, or a negative code with a message in err (-ETIMEDOUT, -EPIPE
 *  when the daemon hung up, a tp_err.h code for an invalid frame or an
 *  ERROR message). */
int tph_client_query(tph_client *c, const char *op, const char *args_json, const void *body,
                     size_t body_len, tph_reply *ret, char *err, size_t errsz);

/** Release a reply's strings; the struct is zeroed. Accepts NULL. */
void tph_reply_free(tph_reply *r);
/** Close the connection and free the client. Accepts NULL. */
void tph_client_free(tph_client *c);

#endif
