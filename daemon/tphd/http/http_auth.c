/* Who may read: the owner's token kept in a 0600 file, tokens made on
 * demand for other users, the Host check that stops DNS rebinding, and the
 * token-in-URL to cookie exchange (docs/API.md, "Access"). Tokens are read
 * by the loop thread and made by query workers (tp_http_link), so they live
 * under tok_mu. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_priv.h"

#define COOKIE_MAX_AGE "2592000" /* 30 days */

/* ---- Tokens ------------------------------------------------------------- */

static void hex_encode(const uint8_t *key, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[key[i] >> 4];
        out[2 * i + 1] = hex[key[i] & 15];
    }
    out[32] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly 32 hex digits into key. */
static bool hex_decode(const char *s, size_t n, uint8_t key[16])
{
    if (n != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static int random_key(uint8_t key[16])
{
    return getrandom(key, 16, 0) == 16 ? 0 : -EIO;
}

/* The owner's token from path when it is a private regular file of ours
 * holding 32 hex digits; otherwise a fresh one, written atomically (0600). */
int tp_http_load_token(const char *path, uint8_t key[16], char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        char buf[64];
        ssize_t n = -1;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            (st.st_mode & 077) == 0)
            n = read(fd, buf, sizeof(buf));
        close(fd);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        if (n == 32 && hex_decode(buf, 32, key))
            return 0;
    } else if (errno != ENOENT && errno != ELOOP) {
        int e = errno;
        snprintf(err, errsz, "%s: %s", path, strerror(e));
        return -e;
    }
    int r = random_key(key);
    if (r) {
        snprintf(err, errsz, "no random numbers for the HTTP token");
        return r;
    }
    char tmp[4096], line[34];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        snprintf(err, errsz, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    hex_encode(key, line);
    line[32] = '\n';
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0 || write(fd, line, 33) != 33 || fsync(fd) != 0) {
        int e = errno ? errno : EIO;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        snprintf(err, errsz, "%s: %s", tmp, strerror(e));
        return -e;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errsz, "%s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

/* The uid whose token key is; UINT32_MAX when none. Compares every token
 * in full so the time does not tell how much of a guess was right. */
static uint32_t token_uid(tp_http *h, const uint8_t key[16])
{
    uint32_t uid = UINT32_MAX;
    uv_mutex_lock(&h->tok_mu);
    for (size_t i = 0; i < h->tokens.size; i++) {
        /* volatile keeps the compiler from ending the loop at the first
         * difference; it is about timing, not threads (the lock is). */
        volatile uint8_t diff = 0;
        for (int k = 0; k < 16; k++)
            diff |= h->tokens.items[i].key[k] ^ key[k];
        if (diff == 0)
            uid = h->tokens.items[i].uid;
    }
    uv_mutex_unlock(&h->tok_mu);
    return uid;
}

int tp_http_token(tp_http *h, uint32_t uid, char ret_hex[33])
{
    int r = 0;
    uv_mutex_lock(&h->tok_mu);
    for (size_t i = 0; i < h->tokens.size; i++) {
        if (h->tokens.items[i].uid == uid) {
            hex_encode(h->tokens.items[i].key, ret_hex);
            goto cleanup;
        }
    }
    if (tp_vec_grow1(&h->tokens) < 0) {
        r = -ENOMEM;
        goto cleanup;
    }
    http_token *t = &h->tokens.items[h->tokens.size];
    r = random_key(t->key);
    if (r)
        goto cleanup;
    t->uid = uid;
    h->tokens.size++;
    hex_encode(t->key, ret_hex);
cleanup:
    uv_mutex_unlock(&h->tok_mu);
    return r;
}

int tp_http_link(tp_http *h, uint32_t uid, const char *trace_id, char *buf, size_t size)
{
    char tok[33];
    int r = tp_http_token(h, uid, tok);
    if (r)
        return r;
    int n = trace_id ? snprintf(buf, size, "%s/t/%s?token=%s", h->base_url, trace_id, tok)
                     : snprintf(buf, size, "%s/?token=%s", h->base_url, tok);
    return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

/* ---- Host, cookie and authentication ------------------------------------ */

/* Host must name the loopback interface with our port (DNS rebinding). */
bool tp_http_host_ok(h2o_iovec_t host, const char *bound, uint16_t our_port, bool allow_remote)
{
    /* The address we are bound to, as our URL spells it, is ours too: a
     * --http 127.0.0.2:P server is asked for "127.0.0.2:P" (any loopback
     * address may be bound, and a literal address is no DNS name to rebind). */
    size_t bl = bound ? strlen(bound) : 0;
    if (allow_remote || (bl && host.len == bl && h2o_lcstris(host.base, host.len, bound, bl)))
        return true;
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    char port[8];
    int pl = snprintf(port, sizeof(port), ":%u", our_port);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t nl = strlen(names[i]);
        if (host.len < nl || !h2o_lcstris(host.base, nl, names[i], nl))
            continue;
        h2o_iovec_t rest = h2o_iovec_init(host.base + nl, host.len - nl);
        if (h2o_memis(rest.base, rest.len, port, (size_t)pl) || (rest.len == 0 && our_port == 80))
            return true;
    }
    return false;
}

/* The value of our cookie in the Cookie header(s), or {NULL, 0}. */
static h2o_iovec_t find_cookie(const tp_http *h, h2o_req_t *req)
{
    size_t nl = strlen(h->cookie_name);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        const char *p = v.base, *end = v.base + v.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            if ((size_t)(e - p) > nl && memcmp(p, h->cookie_name, nl) == 0 && p[nl] == '=')
                return h2o_iovec_init(p + nl + 1, (size_t)(e - p - nl - 1));
            p = e;
        }
    }
    return h2o_iovec_init(NULL, 0);
}

/* 302 to the same URL without its token parameter, setting the cookie. */
static void redirect_with_cookie(tp_http *h, h2o_req_t *req, const char *hex)
{
    h2o_iovec_t path = req->input.path;
    size_t qat = req->input.query_at;
    size_t plen = qat == SIZE_MAX ? path.len : qat;
    tp_buf loc = TP_BUF_INIT;
    /* A path starting "//" would be a protocol-relative URL to another host. */
    if (plen >= 2 && path.base[0] == '/' && path.base[1] == '/')
        tp_buf_putc(&loc, '/');
    else
        tp_buf_append(&loc, path.base, plen);
    if (qat != SIZE_MAX) {
        const char *p = path.base + qat + 1, *end = path.base + path.len;
        bool first = true;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *e = amp ? amp : end;
            if (!((size_t)(e - p) >= 6 && memcmp(p, "token=", 6) == 0) && e > p) {
                tp_buf_putc(&loc, first ? '?' : '&');
                tp_buf_append(&loc, p, (size_t)(e - p));
                first = false;
            }
            p = amp ? amp + 1 : end;
        }
    }
    char cookie[160];
    snprintf(cookie, sizeof(cookie),
             "%s=%s; Path=/; Max-Age=" COOKIE_MAX_AGE "; HttpOnly; SameSite=Strict", h->cookie_name,
             hex);
    if (tp_buf_error(&loc)) {
        tp_http_send_error(req, 503, "no_memory", "out of memory");
    } else {
        h2o_iovec_t l = h2o_strdup(&req->pool, loc.data, loc.len);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, l.base, l.len);
        tp_http_add_header(req, H2O_TOKEN_SET_COOKIE, cookie);
        tp_http_send(req, 302, "Found", "text/plain; charset=utf-8", "no-store", "Found\n", 6);
    }
    tp_buf_free(&loc);
}

/* The uid the request may act as, from ?token= (then answered with a
 * redirect: returns UINT32_MAX - 1) or the cookie; UINT32_MAX when none. */
uint32_t tp_http_authenticate(tp_http *h, h2o_req_t *req)
{
    char tok[40];
    uint8_t key[16];
    int r = tp_http_param(req, "token", tok, sizeof(tok));
    if (r == 0 || r == -ENOSPC || r == -EINVAL) {
        uint32_t uid = r == 0 && hex_decode(tok, strlen(tok), key) ? token_uid(h, key) : UINT32_MAX;
        if (uid == UINT32_MAX)
            return UINT32_MAX;
        char hex[33];
        hex_encode(key, hex);
        redirect_with_cookie(h, req, hex);
        return UINT32_MAX - 1;
    }
    h2o_iovec_t c = find_cookie(h, req);
    if (c.base && hex_decode(c.base, c.len, key))
        return token_uid(h, key);
    return UINT32_MAX;
}
