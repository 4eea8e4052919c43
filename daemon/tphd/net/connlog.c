/* Log lines about one connection. A connection's lines quote what its
 * client sent (an ERROR's message, a trace id), so they are escaped like
 * every client string (tp_server_log does that for all lines), and they are
 * rate-limited per connection: one client sending ERROR frames in a loop
 * once wrote 1.39 GB of log in 3 s. */
#include <stdarg.h>

#include "conn.h"

#define LOG_BURST     10u   /* lines a connection may cause at once */
#define LOG_REFILL_MS 1000u /* after the burst, one more line per this long */

/* Lines the connection has used of its burst, less what time gave back. */
static void refill(tp_conn *c, uint64_t now)
{
    if (c->log_ms == 0 || now < c->log_ms) {
        c->log_ms = now;
        return;
    }
    uint64_t back = (now - c->log_ms) / LOG_REFILL_MS;
    if (back == 0)
        return;
    c->log_used = back >= c->log_used ? 0 : c->log_used - (uint32_t)back;
    c->log_ms += back * LOG_REFILL_MS;
}

void tp__connlog_flush(tp_conn *c)
{
    if (c->log_suppressed == 0)
        return;
    tp_server_log(c->srv, "client %llu: %llu messages suppressed", (unsigned long long)c->serial,
                  (unsigned long long)c->log_suppressed);
    c->log_suppressed = 0;
}

void tp__connlog(tp_conn *c, const char *fmt, ...)
{
    refill(c, tp_server_now_ms(c->srv));
    if (c->log_used >= LOG_BURST) {
        c->log_suppressed++;
        return;
    }
    c->log_used++;
    tp__connlog_flush(c);
    va_list ap;
    va_start(ap, fmt);
    tp_server_vlog(c->srv, fmt, ap);
    va_end(ap);
}
