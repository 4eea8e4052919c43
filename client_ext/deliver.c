/* The delivery of one trace to tphd, on the sender thread without the GIL:
 * connect and shake hands (a few tries), FUNCS and BEGIN, the event log in
 * EVENTS batches, END, then wait for the ACK. See sender.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sender_priv.h"
#include "tp_err.h"

/* Delivery bounds. Connecting and the handshake are tried TRIES times, the
 * tries BACKOFF_MS apart, each waiting HANDSHAKE_NS for WELCOME: an absent or
 * stopped daemon costs at most about 1 s of the sender's time. Once BEGIN is
 * sent a failure is final: trying again would store the trace twice. */
#define TRIES         3
#define HANDSHAKE_NS  (250 * 1000000LL)
#define STALL_NS      (1000 * 1000000LL) /* no byte written for this long: give up */
#define ACK_NS        TP_SENDER_ACK_NS   /* END sent -> ACK */
#define ERROR_PEEK_NS (100 * 1000000LL)  /* after a failed write: look for an ERROR */
static const int BACKOFF_MS[TRIES] = {0, 50, 100};
/* The largest reply frame accepted (WELCOME, ACK, ERROR are far smaller), so
 * that a connection's receive buffer is allocated once. */
#define MAX_REPLY (64u * 1024)

/* The event log's records go on the wire as they are (event.h): that is the
 * wire's little-endian layout only on a little-endian host. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "deliver.c sends tp_event records unconverted: add byte swapping first");

/* EVENTS batches: flushed before they pass either bound (PROTOCOL.md 2). */
#define BATCH_BYTES   (4u << 20)
#define BATCH_RECORDS 65536u

static void say(tp_delivery *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(tp_delivery *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
}

static const char *errtext(int r)
{
    if (r == -ETIMEDOUT)
        return "timed out";
    if (r == -ECANCELED)
        return "the interpreter exited first";
    if (r == -ECONNRESET || r == -EPIPE)
        return "tphd closed the connection";
    return tp_strerror(r);
}

/* Sleep ms in slices, unless abandoned. Returns false when abandoned. */
static bool nap(int ms)
{
    while (ms > 0 && !atomic_load(&tp__sender_abandon)) {
        int step = ms < 20 ? ms : 20;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !atomic_load(&tp__sender_abandon);
}

/* HELLO, then WELCOME (or ERROR). Returns 0, or an error with *fatal set
 * when trying again cannot help. */
static int handshake(tp_upload *u, tp_client *l, bool *fatal, tp_delivery *res)
{
    tp_msg m;
    bool sent;
    int r = tp_client_handshake(l, u->hello.data, u->hello.len, HANDSHAKE_NS, &m, &sent);
    if (r && !sent) {
        say(res, "sending HELLO failed: %s", errtext(r));
        return r;
    }
    if (r) {
        say(res, "no WELCOME from tphd: %s", errtext(r));
        *fatal = r == -ECANCELED;
        return r;
    }
    if (m.type == TP_MSG_ERROR) {
        say(res, "tphd refused the connection: %s", m.message);
        res->refused = true;
        /* At its connection limit a slot may free up in a moment. */
        *fatal = m.code != -EMFILE;
        return m.code ? m.code : TP_ERR_SEQUENCE;
    }
    if (m.version != TP_WIRE_VERSION || !(m.caps & TP_CAP_ACK)) {
        say(res, "tphd speaks protocol %u%s; this tracepatch speaks %u with ACK",
            (unsigned)m.version, m.caps & TP_CAP_ACK ? "" : " without ACK", TP_WIRE_VERSION);
        *fatal = true;
        return TP_ERR_VERSION;
    }
    return 0;
}

static int connect_tries(tp_upload *u, tp_client *l, tp_delivery *res)
{
    int r = 0, tries = 0;
    for (int i = 0; i < TRIES; i++) {
        if (!nap(BACKOFF_MS[i])) {
            r = -ECANCELED;
            say(res, "%s", errtext(r));
            break;
        }
        tries++;
        res->refused = false; /* only what the last try met counts */
        r = tp_client_open(l, u->path, &u->probe, MAX_REPLY, &tp__sender_abandon);
        u->probe.fd = -1; /* the link has it now (or it was no longer ours) */
        tp__sender_link_opened(l);
        if (r == TP_ERR_PERM) {
            /* Trying again would ask the same listener: it is not ours. */
            say(res, "refused to upload: %s", l->why);
            tp__sender_link_release(l);
            break;
        }
        if (r) {
            say(res, "cannot connect: %s", tp_strerror(r));
            tp__sender_link_release(l);
            continue;
        }
        bool fatal = false;
        r = handshake(u, l, &fatal, res);
        if (!r)
            return 0;
        tp__sender_link_release(l);
        if (fatal)
            break;
    }
    if (tries > 1) {
        size_t n = strlen(res->error);
        snprintf(res->error + n, sizeof(res->error) - n, " (%d tries)", tries);
    }
    return r;
}

/* After a failed write the daemon may have said why before closing. */
static void peek_error(tp_client *l, int r, const char *what, tp_delivery *res)
{
    tp_msg m;
    int64_t deadline = tp_client_now() + ERROR_PEEK_NS;
    while (r != -ECANCELED && tp_client_read_reply(l, deadline, &m) == 0) {
        if (m.type == TP_MSG_ERROR) {
            say(res, "tphd refused the trace: %s", m.message);
            return;
        }
    }
    say(res, "sending %s failed: %s", what, errtext(r));
}

static int send_frame(tp_client *l, const tp_buf *b, const char *what, tp_delivery *res)
{
    int r = tp_client_write(l, b->data, b->len, STALL_NS);
    if (r)
        peek_error(l, r, what, res);
    return r;
}

/* Append one text entry, cut to the wire's string limit (at a UTF-8
 * character boundary) if it is longer. */
static void put_text(tp_buf *t, const char *s, size_t n)
{
    if (n > TP_WIRE_MAX_STRING) {
        n = TP_WIRE_MAX_STRING;
        while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    tp_buf_append(t, len, 4);
    tp_buf_append(t, s, n);
}

static size_t text_size(size_t n)
{
    return 4 + (n > TP_WIRE_MAX_STRING ? TP_WIRE_MAX_STRING : n);
}

typedef struct batch {
    tp_buf recs, text, out;
    uint32_t n, seq;
} batch;

static int flush_batch(tp_upload *u, tp_client *l, batch *b, tp_delivery *res)
{
    tp_msg m;
    memset(&m, 0, sizeof(m));
    m.type = TP_MSG_EVENTS;
    m.trace = u->trace_id;
    m.seq = b->seq;
    m.records = b->recs.data;
    m.nrecords = b->n;
    m.text = b->text.data;
    m.text_len = b->text.len;
    int r = tp_buf_error(&b->recs) ? -ENOMEM : tp_buf_error(&b->text);
    if (!r)
        r = tp_wire_encode(&m, &b->out);
    if (r) {
        say(res, "encoding EVENTS failed: %s", tp_strerror(r));
        return r;
    }
    r = send_frame(l, &b->out, "EVENTS", res);
    if (!r)
        atomic_fetch_add_explicit(&u->sent, b->n, memory_order_relaxed);
    tp_buf_reset(&b->recs);
    tp_buf_reset(&b->text);
    tp_buf_reset(&b->out);
    b->n = 0;
    b->seq++;
    return r;
}

/* The next text entry of the view from *c, *off (relative chunk index and
 * offset): false when the published text ends first. */
static bool next_text(const tp_logview *v, size_t *c, size_t *off, const char **ret_s,
                      size_t *ret_len)
{
    while (*c < v->chunks.size) {
        const tp_evchunk *ch = &v->chunks.items[*c];
        if (ch->len - *off >= 4) {
            const uint8_t *p = ch->data + *off;
            size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
            if (n > ch->len - *off - 4)
                return false;
            *ret_s = (const char *)p + 4;
            *ret_len = n;
            *off += 4 + n;
            return true;
        }
        if (*c + 1 == v->chunks.size)
            return false; /* this chunk may still grow: stay on it */
        ++*c;
        *off = 0;
    }
    return false;
}

/* The records the view covers from u->pos on, in EVENTS frames: the records
 * as they are (they already have the wire layout) with their times in ns,
 * and the text entries they own. u->pos moves past what was sent. */
static int send_events(tp_upload *u, tp_client *l, const tp_logview *v, tp_delivery *res)
{
    batch b = {TP_BUF_INIT, TP_BUF_INIT, TP_BUF_INIT, 0, u->seq};
    size_t blk = 0, idx = u->pos.idx, c = 0, off = u->pos.off;
    int r = 0;
    while (!r && blk < v->blocks.size) {
        const tp_evblock *eb = &v->blocks.items[blk];
        if (idx >= eb->n) {
            if (blk + 1 == v->blocks.size)
                break; /* this block may still grow: stay on it */
            blk++;
            idx = 0;
            if (u->stream && (b.n || b.seq)) {
                /* A block start: freeable once the batch with the record
                 * before it is stored. A mark that cannot be kept only
                 * means that memory is not freed. */
                tp_stored_mark mk = {{u->walked, u->pos.block + blk, u->pos.chunk + c, off},
                                     b.n ? b.seq : b.seq - 1};
                if (tp_vec_grow1(&u->marks) == 0)
                    u->marks.items[u->marks.size++] = mk;
            }
            continue;
        }
        tp_event ev = eb->ev[idx];
        ev.t_ns = tp_evlog_ns_at(u->ns_mult, ev.t_ns);
        unsigned nt = (ev.flags & TP_EVF_TEXT) ? tp_event_text_entries(ev.kind) : 0;
        const char *s[2] = {NULL, NULL};
        size_t n[2] = {0, 0}, need = sizeof(tp_event);
        for (unsigned i = 0; i < nt; i++) {
            if (!next_text(v, &c, &off, &s[i], &n[i])) {
                say(res, "the event log's text ends early (record %u)", b.n);
                r = TP_ERR_MALFORMED;
                break;
            }
            need += text_size(n[i]);
        }
        if (r)
            break;
        if (b.n && (b.n == BATCH_RECORDS || b.recs.len + b.text.len + need > BATCH_BYTES))
            r = flush_batch(u, l, &b, res);
        if (r)
            break;
        tp_buf_append(&b.recs, &ev, sizeof(ev));
        for (unsigned i = 0; i < nt; i++)
            put_text(&b.text, s[i], n[i]);
        b.n++;
        idx++;
        u->walked++;
    }
    if (!r && b.n)
        r = flush_batch(u, l, &b, res);
    u->seq = b.seq;
    u->pos.block += blk;
    u->pos.idx = idx;
    u->pos.chunk += c;
    u->pos.off = off;
    tp_buf_free(&b.recs);
    tp_buf_free(&b.text);
    tp_buf_free(&b.out);
    return r;
}

static int wait_ack(tp_client *l, tp_delivery *res)
{
    int64_t deadline = tp_client_now() + ACK_NS;
    for (;;) {
        tp_msg m;
        int r = tp_client_read_reply(l, deadline, &m);
        if (r == -ETIMEDOUT) {
            say(res, "no ACK from tphd within %lld ms (it may still store the trace)",
                ACK_NS / 1000000);
            return r;
        }
        if (r) {
            say(res, "waiting for the ACK failed: %s", errtext(r));
            return r;
        }
        if (m.type == TP_MSG_ERROR) {
            say(res, "tphd did not store the trace: %s", m.message);
            return m.code ? m.code : TP_ERR_DB;
        }
        if (m.type != TP_MSG_ACK)
            continue;
        /* One trace per connection: this ACK is ours, under whatever id
         * tphd stored it (a fresh one when ours was taken). */
        snprintf(res->stored_id, sizeof(res->stored_id), "%s", m.trace);
        if (m.url && !(res->url = strdup(m.url))) {
            say(res, "out of memory");
            return -ENOMEM;
        }
        return 0;
    }
}

/* A stream: take the STORED messages tphd has sent so far, without
 * waiting, and tell the session how far its log is stored. An ERROR (tphd
 * ended the trace) ends the delivery. */
static int read_stored(tp_upload *u, tp_client *l, tp_delivery *res)
{
    for (;;) {
        tp_msg m;
        int r = tp_client_read_reply(l, tp_client_now(), &m);
        if (r == -ETIMEDOUT)
            return 0;
        if (r) {
            say(res, "reading from tphd failed: %s", errtext(r));
            return r;
        }
        if (m.type == TP_MSG_ERROR) {
            say(res, "tphd refused the trace: %s", m.message);
            return m.code ? m.code : TP_ERR_DB;
        }
        if (m.type != TP_MSG_STORED)
            continue;
        size_t i = u->marks_head;
        while (i < u->marks.size && u->marks.items[i].seq <= m.seq)
            i++;
        if (i > u->marks_head) {
            tp__sender_stored(u, &u->marks.items[i - 1].pos, m.trace);
            u->marks_head = i;
        }
        if (u->marks_head > 64 && u->marks_head * 2 > u->marks.size) {
            memmove(u->marks.items, u->marks.items + u->marks_head,
                    (u->marks.size - u->marks_head) * sizeof(*u->marks.items));
            u->marks.size -= u->marks_head;
            u->marks_head = 0;
        }
    }
}

/* The delivery is over: close the link, say how it went. */
static bool done(tp_upload *u, int r, tp_delivery *res)
{
    tp__sender_link_release(&u->link);
    u->connected = false;
    res->state = r ? TP_UPLOAD_FAILED : TP_UPLOAD_ACKED;
    res->began = u->began;
    return true;
}

bool tp_deliver_step(tp_upload *u, tp_delivery *res)
{
    int r = 0;
    if (!u->connected) {
        u->link = (tp_client){.fd = -1};
        r = connect_tries(u, &u->link, res);
        if (r)
            return done(u, r, res);
        u->connected = true;
        r = send_frame(&u->link, &u->pre, "FUNCS/BEGIN", res);
        if (r)
            return done(u, r, res);
        u->began = true;
    }
    tp_logview v;
    memset(&v, 0, sizeof(v));
    r = tp__sender_take(u, &v);
    if (r)
        say(res, "out of memory");
    if (!r && v.funcs.len)
        r = send_frame(&u->link, &v.funcs, "FUNCS", res);
    if (!r)
        r = send_events(u, &u->link, &v, res);
    bool closing = v.closing;
    tp_vec_free(&v.blocks);
    tp_vec_free(&v.chunks);
    tp_buf_free(&v.funcs);
    if (!r && u->stream)
        r = read_stored(u, &u->link, res);
    if (r)
        return done(u, r, res);
    if (!closing)
        return false;
    r = send_frame(&u->link, &u->end, "END", res);
    if (!r) {
        atomic_store_explicit(&u->ended_ns, tp_client_now(), memory_order_relaxed);
        r = wait_ack(&u->link, res);
    }
    return done(u, r, res);
}
