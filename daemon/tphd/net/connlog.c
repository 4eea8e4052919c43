/* Log lines about connections. A connection's lines quote what its client
 * sent (an ERROR's message, a trace id), so they are escaped like every
 * client string (tp_server_log does that for all lines, and cuts long
 * ones), and they are rate-limited twice: per connection, since one client
 * sending ERROR frames in a loop once wrote 1.39 GB of log in 3 s; and for
 * all connections together, since a client that reconnects in a loop gets a
 * fresh connection's burst each time (about 70 MB/s of log before). Every
 * dropped line is counted in a "suppressed" line, so the log says how many
 * it does not show. */
#include <stdarg.h>

#include "conn.h"

#define LOG_BURST     10u   /* lines a connection may cause at once */
#define LOG_REFILL_MS 1000u /* after the burst, one more line per this long */
#define ALL_BURST     100u  /* lines all connections together may cause at once */
#define ALL_REFILL_MS 100u  /* after that, ten lines a second from all of them */

/* Take one line of budget b (burst lines, then one per refill_ms): false
 * when none is left. */
static bool take(tp_log_budget *b, uint64_t now, uint32_t burst, uint64_t refill_ms)
{
    if (b->ms == 0 || now < b->ms) {
        b->ms = now;
    } else {
        uint64_t back = (now - b->ms) / refill_ms;
        if (back > 0) {
            b->used = back >= b->used ? 0 : b->used - (uint32_t)back;
            b->ms += back * refill_ms;
        }
    }
    if (b->used >= burst)
        return false;
    b->used++;
    return true;
}

void tp__clientlog_flush(tp_server *s)
{
    if (s->client_log.suppressed == 0)
        return;
    tp_server_log(s,
                  "%llu messages about clients suppressed (all clients together: %u at once, "
                  "then %u a second)",
                  (unsigned long long)s->client_log.suppressed, ALL_BURST, 1000u / ALL_REFILL_MS);
    s->client_log.suppressed = 0;
}

void tp__connlog_flush(tp_conn *c)
{
    if (c->log.suppressed == 0)
        return;
    tp_server *s = c->srv;
    if (!take(&s->client_log, tp_server_now_ms(s), ALL_BURST, ALL_REFILL_MS)) {
        s->client_log.suppressed += c->log.suppressed;
    } else {
        tp__clientlog_flush(s);
        tp_server_log(s, "client %llu: %llu messages suppressed", (unsigned long long)c->serial,
                      (unsigned long long)c->log.suppressed);
    }
    c->log.suppressed = 0;
}

void tp__connlog(tp_conn *c, const char *fmt, ...)
{
    tp_server *s = c->srv;
    uint64_t now = tp_server_now_ms(s);
    if (!take(&c->log, now, LOG_BURST, LOG_REFILL_MS)) {
        c->log.suppressed++;
        return;
    }
    if (!take(&s->client_log, now, ALL_BURST, ALL_REFILL_MS)) {
        s->client_log.suppressed++;
        return;
    }
    tp__clientlog_flush(s);
    tp__connlog_flush(c);
    va_list ap;
    va_start(ap, fmt);
    tp_server_vlog(s, fmt, ap);
    va_end(ap);
}
