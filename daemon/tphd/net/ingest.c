#include "ingest.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hmap.h"
#include "json_jansson.h"
#include "query.h"
#include "vec.h"
#include "tp_err.h"
#include "util.h"

/* A described function: one block, strings after the struct. */
typedef struct func_desc {
    const char *module, *qualname, *file;
    int32_t lineno;
    size_t mem;
} func_desc;

/* A trace open on this connection. st is the store's view (writer-owned). */
typedef struct itrace {
    tp_store_trace st;
    char client_id[33];
    uint32_t next_seq;
    uint64_t ncalls; /* CALL records received: the call count stored at END */
    tp_hmap local;   /* client function id -> trace-local id */
    uint32_t nlocal;
    bool has_lines;  /* a LINES came (PROTOCOL.md 4.6a: at most one) */
    bool has_source; /* a SOURCE came (4.6b: at most one) */
    struct itrace *next;
} itrace;

/* Every op made here; payload follows in the same allocation. */
typedef struct ingest_op {
    tp_store_op op;
    itrace *trace;
    void *funcs_block; /* EVENTS: descriptors first used by this batch */
} ingest_op;

#define OP_HEADER_SIZE ((sizeof(ingest_op) + 15) & ~(size_t)15)

typedef struct new_func {
    uint32_t client, local;
} new_func;

/* What id_get() returns for an id not in the map. */
#define ID_ABSENT UINT32_MAX

/* The id key maps to in m (a map of uint32 ids), or ID_ABSENT. */
static uint32_t id_get(const tp_hmap *m, uint32_t key)
{
    uint64_t val;
    return tp_hmap_get(m, key, &val) ? (uint32_t)val : ID_ABSENT;
}

struct tp_ingest {
    tp_ingest_peer peer;
    char *python, *host, *client, *argv_json;
    char *platform, *cwd; /* HELLO's: where the client runs (trace files' environment) */
    tp_hmap fslot;        /* client function id -> index in funcs */
    TP_VEC(func_desc *) funcs;
    size_t func_mem;
    itrace *open;
    size_t nopen;
    itrace *orphans;                   /* discarded without an ABORT op (out of memory) */
    char dead[TP_INGEST_MAX_DEAD][33]; /* discarded traces: their frames are ignored */
    unsigned ndead, dead_pos;
    TP_VEC(new_func) scratch; /* new functions of the batch being validated */
};

int tp_ingest_new(const tp_ingest_peer *peer, tp_ingest **ret)
{
    tp_ingest *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->peer = *peer;
    *ret = g;
    return 0;
}

static void trace_free(itrace *t)
{
    if (!t)
        return;
    tp_hmap_free(&t->local);
    free(t);
}

void tp_ingest_free(tp_ingest *g)
{
    if (!g)
        return;
    while (g->open) {
        itrace *t = g->open;
        g->open = t->next;
        trace_free(t);
    }
    while (g->orphans) {
        itrace *t = g->orphans;
        g->orphans = t->next;
        trace_free(t);
    }
    for (size_t i = 0; i < g->funcs.size; i++)
        free(g->funcs.items[i]);
    tp_vec_free(&g->funcs);
    tp_hmap_free(&g->fslot);
    free(g->python);
    free(g->host);
    free(g->platform);
    free(g->cwd);
    free(g->client);
    free(g->argv_json);
    tp_vec_free(&g->scratch);
    free(g);
}

size_t tp_ingest_open_count(const tp_ingest *g)
{
    return g->nopen;
}

/* A copy made safe for JSON and TEXT columns; NULL stays NULL. */
static int dup_fixed(const char *s, char **ret)
{
    if (!s) {
        *ret = NULL;
        return 0;
    }
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d)
        return -ENOMEM;
    memcpy(d, s, n + 1);
    tp_util_utf8_fix(d, n);
    *ret = d;
    return 0;
}

static char *argv_to_json(const tp_msg *m)
{
    json_t *arr = json_array();
    char *out = NULL;
    if (!arr)
        return NULL;
    for (size_t i = 0; m->argv && m->argv[i]; i++) {
        char *fixed;
        if (dup_fixed(m->argv[i], &fixed) < 0)
            goto done;
        int r = json_array_append_new(arr, json_string(fixed));
        free(fixed);
        if (r < 0)
            goto done;
    }
    out = tp_json_jansson_dumps(arr);
done:
    json_decref(arr);
    return out;
}

int tp_ingest_hello(tp_ingest *g, const tp_msg *m, char *err, size_t errsz)
{
    char *python = NULL, *host = NULL, *client = NULL, *argv = NULL, *plat = NULL, *cwd = NULL;
    if (dup_fixed(m->python, &python) < 0 || dup_fixed(m->hostname, &host) < 0 ||
        dup_fixed(m->client, &client) < 0 || dup_fixed(m->platform, &plat) < 0 ||
        dup_fixed(m->cwd, &cwd) < 0)
        goto nomem;
    if (m->argv) {
        argv = argv_to_json(m);
        if (!argv)
            goto nomem;
    }
    free(g->python);
    free(g->host);
    free(g->client);
    free(g->argv_json);
    free(g->platform);
    free(g->cwd);
    g->platform = plat;
    g->cwd = cwd;
    g->python = python;
    g->host = host;
    g->client = client;
    g->argv_json = argv;
    return 0;
nomem:
    free(plat);
    free(cwd);
    free(python);
    free(host);
    free(client);
    free(argv);
    snprintf(err, errsz, "out of memory");
    return -ENOMEM;
}

/* ---- FUNCS ----------------------------------------------------------------------- */

static func_desc *func_new(const tp_wire_func *f)
{
    const char *mod = f->module ? f->module : "", *qn = f->qualname ? f->qualname : "";
    const char *file = f->file ? f->file : "";
    size_t lm = strlen(mod), lq = strlen(qn), lf = strlen(file);
    size_t mem = sizeof(func_desc) + lm + lq + lf + 3;
    func_desc *d = malloc(mem);
    if (!d)
        return NULL;
    char *p = (char *)(d + 1);
    memcpy(p, mod, lm + 1);
    tp_util_utf8_fix(p, lm);
    d->module = p;
    p += lm + 1;
    memcpy(p, qn, lq + 1);
    tp_util_utf8_fix(p, lq);
    d->qualname = p;
    p += lq + 1;
    memcpy(p, file, lf + 1);
    tp_util_utf8_fix(p, lf);
    d->file = p;
    d->lineno = f->lineno;
    d->mem = mem;
    return d;
}

int tp_ingest_funcs(tp_ingest *g, const tp_msg *m, char *err, size_t errsz)
{
    for (size_t i = 0; i < m->nfuncs; i++) {
        const tp_wire_func *f = &m->funcs[i];
        if (f->id >= TP_INGEST_MAX_FUNC_ID) {
            snprintf(err, errsz, "FUNCS: function id %u is over the limit (%u)", f->id,
                     TP_INGEST_MAX_FUNC_ID - 1);
            return TP_ERR_LIMIT;
        }
        func_desc *d = func_new(f);
        if (!d)
            goto nomem;
        uint32_t slot = id_get(&g->fslot, f->id);
        size_t old_mem = slot != ID_ABSENT ? g->funcs.items[slot]->mem : 0;
        if (g->func_mem - old_mem + d->mem > TP_INGEST_MAX_FUNC_MEM) {
            free(d);
            snprintf(err, errsz, "FUNCS: more than %u MiB of function descriptors",
                     TP_INGEST_MAX_FUNC_MEM >> 20);
            return TP_ERR_LIMIT;
        }
        if (slot != ID_ABSENT) {
            free(g->funcs.items[slot]);
            g->funcs.items[slot] = d;
        } else {
            if (tp_vec_grow1(&g->funcs) < 0 ||
                tp_hmap_put(&g->fslot, f->id, (uint32_t)g->funcs.size) < 0) {
                free(d);
                goto nomem;
            }
            g->funcs.items[g->funcs.size++] = d;
        }
        g->func_mem = g->func_mem - old_mem + d->mem;
    }
    return 0;
nomem:
    snprintf(err, errsz, "out of memory");
    return -ENOMEM;
}

/* ---- Traces ------------------------------------------------------------------------ */

static itrace *find_open(tp_ingest *g, const char *id, itrace ***ret_link)
{
    char norm[33];
    if (!tp_util_id_normalize(id, norm))
        return NULL;
    for (itrace **link = &g->open; *link; link = &(*link)->next) {
        if (memcmp((*link)->client_id, norm, 33) == 0) {
            if (ret_link)
                *ret_link = link;
            return *link;
        }
    }
    return NULL;
}

static ingest_op *op_alloc(int kind, itrace *t, size_t extra)
{
    size_t size = OP_HEADER_SIZE + extra;
    ingest_op *o = calloc(1, size);
    if (!o)
        return NULL;
    o->op.kind = kind;
    o->op.trace = &t->st;
    o->op.bytes = size;
    o->trace = t;
    return o;
}

/* Copies a (fixed-up) string into the op's payload area. */
static const char *put_str(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = *p;
    memcpy(d, s, n + 1);
    tp_util_utf8_fix(d, n);
    *p += n + 1;
    return d;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static int check_config(const char *config, char *err, size_t errsz)
{
    if (!config)
        return 0;
    json_error_t jerr;
    json_t *j = json_loads(config, 0, &jerr);
    if (!j) {
        snprintf(err, errsz, "BEGIN: config is not valid JSON (%s)", jerr.text);
        return TP_ERR_TYPE;
    }
    bool is_object = json_is_object(j);
    json_decref(j);
    if (!is_object) {
        snprintf(err, errsz, "BEGIN: config is not a JSON object");
        return TP_ERR_TYPE;
    }
    return 0;
}

static bool is_dead(const tp_ingest *g, const char *id)
{
    for (unsigned i = 0; i < g->ndead; i++)
        if (memcmp(g->dead[i], id, 33) == 0)
            return true;
    return false;
}

static void bury(tp_ingest *g, const char *id)
{
    if (is_dead(g, id))
        return;
    memcpy(g->dead[g->dead_pos], id, 33);
    g->dead_pos = (g->dead_pos + 1) % TP_INGEST_MAX_DEAD;
    if (g->ndead < TP_INGEST_MAX_DEAD)
        g->ndead++;
}

static void unbury(tp_ingest *g, const char *id)
{
    for (unsigned i = 0; i < g->ndead; i++) {
        if (memcmp(g->dead[i], id, 33) == 0) {
            g->dead[i][0] = '\0'; /* never matches a valid id again */
            return;
        }
    }
}

/* Discards an open trace after a trace error: what was queued of it is kept
 * (truncated) through an ABORT op, and its later frames are ignored. */
static tp_store_op *discard(tp_ingest *g, itrace *t)
{
    for (itrace **link = &g->open; *link; link = &(*link)->next) {
        if (*link == t) {
            *link = t->next;
            break;
        }
    }
    t->next = NULL;
    g->nopen--;
    bury(g, t->client_id);
    ingest_op *o = op_alloc(TP_STORE_ABORT, t, 0);
    if (!o) {
        /* Out of memory: queued ops may still point at it, so it is freed
         * with the connection; the trace stays open in the database until
         * the next start marks it truncated. */
        t->next = g->orphans;
        g->orphans = t;
        return NULL;
    }
    return &o->op;
}

int tp_ingest_begin(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                    char *err, size_t errsz)
{
    char norm[33];
    *ret_op = NULL;
    *ret_trace_error = true;
    if (!tp_util_id_normalize(m->trace, norm)) {
        *ret_trace_error = false;
        snprintf(err, errsz, "BEGIN: trace id must be 32 hex digits");
        return TP_ERR_MALFORMED;
    }
    itrace *t = find_open(g, norm, NULL);
    if (t) {
        snprintf(err, errsz, "BEGIN: trace %s is already open on this connection", norm);
        *ret_op = discard(g, t);
        return TP_ERR_SEQUENCE;
    }
    if (g->nopen >= TP_INGEST_MAX_OPEN) {
        bury(g, norm);
        snprintf(err, errsz, "BEGIN: more than %u traces open on one connection",
                 TP_INGEST_MAX_OPEN);
        return TP_ERR_LIMIT;
    }
    int r = check_config(m->config_json, err, errsz);
    if (r < 0) {
        bury(g, norm);
        return r;
    }
    unbury(g, norm);
    t = calloc(1, sizeof(*t));
    if (!t)
        goto nomem;
    memcpy(t->client_id, norm, sizeof(norm));
    size_t extra = str_size(m->label) + str_size(g->host) + str_size(g->argv_json) +
                   str_size(g->python) + str_size(g->client) + str_size(m->config_json) +
                   str_size(g->platform) + str_size(g->cwd);
    ingest_op *o = op_alloc(TP_STORE_BEGIN, t, extra);
    if (!o) {
        free(t);
        goto nomem;
    }
    char *p = (char *)o + OP_HEADER_SIZE;
    tp_store_begin *b = &o->op.begin;
    memcpy(b->client_id, norm, sizeof(norm));
    b->label = put_str(&p, m->label);
    b->host = put_str(&p, g->host);
    b->argv_json = put_str(&p, g->argv_json);
    b->python = put_str(&p, g->python);
    b->platform = put_str(&p, g->platform);
    b->cwd = put_str(&p, g->cwd);
    b->client = put_str(&p, g->client);
    b->config_json = put_str(&p, m->config_json);
    b->uid = g->peer.uid;
    b->pid = g->peer.pid;
    b->pstart = g->peer.pstart;
    b->wall_start_ns = m->wall_start_ns;
    t->next = g->open;
    g->open = t;
    g->nopen++;
    *ret_op = &o->op;
    return 0;
nomem:
    *ret_trace_error = false;
    snprintf(err, errsz, "out of memory");
    return -ENOMEM;
}

static int scratch_push(tp_ingest *g, size_t n, uint32_t client, uint32_t local)
{
    if (tp_vec_reserve(&g->scratch, n + 1) < 0)
        return -ENOMEM;
    g->scratch.items[n].client = client;
    g->scratch.items[n].local = local;
    g->scratch.size = n + 1;
    return 0;
}

/* Checks every record and its text, rewrites CALL function ids to trace-local
 * ones and notes the functions this batch uses first. */
static int scan_records(tp_ingest *g, itrace *t, tp_store_op *op, size_t *ret_nnew, char *err,
                        size_t errsz)
{
    tp_event *ev = (tp_event *)op->records;
    const uint8_t *text = op->text;
    size_t tpos = 0, nnew = 0;
    uint64_t ncalls = 0, max_t = 0;
    for (size_t i = 0; i < op->nrecords; i++) {
        tp_event *e = &ev[i];
        if (e->kind < 1 || e->kind > TP_EV_MAX) {
            snprintf(err, errsz, "EVENTS: record %zu has unknown kind %u", i, e->kind);
            return TP_ERR_MALFORMED;
        }
        if (e->flags & ~TP_EVF_ALL) {
            snprintf(err, errsz, "EVENTS: record %zu has unknown flags 0x%02x", i, e->flags);
            return TP_ERR_MALFORMED;
        }
        if (e->flags & TP_EVF_TEXT) {
            for (unsigned k = tp_event_text_entries(e->kind); k > 0; k--) {
                uint32_t len;
                if (op->text_len - tpos < 4) {
                    snprintf(err, errsz, "EVENTS: record %zu's text runs past the text", i);
                    return TP_ERR_MALFORMED;
                }
                memcpy(&len, text + tpos, 4);
                len = le32toh(len);
                tpos += 4;
                if (op->text_len - tpos < len) {
                    snprintf(err, errsz, "EVENTS: record %zu's text runs past the text", i);
                    return TP_ERR_MALFORMED;
                }
                tpos += len;
            }
        }
        uint64_t tns = le64toh(e->t_ns);
        if (tns > max_t)
            max_t = tns;
        if (e->kind != TP_EV_CALL)
            continue;
        ncalls++;
        uint32_t fid = le32toh(e->arg);
        uint32_t local = id_get(&t->local, fid);
        if (local == ID_ABSENT) {
            if (id_get(&g->fslot, fid) == ID_ABSENT) {
                snprintf(err, errsz, "EVENTS: record %zu calls function %u, never described", i,
                         fid);
                return TP_ERR_UNKNOWN_FUNC;
            }
            local = t->nlocal;
            if (tp_hmap_put(&t->local, fid, local) < 0 || scratch_push(g, nnew, fid, local) < 0)
                goto nomem;
            t->nlocal++;
            nnew++;
        }
        e->arg = htole32(local);
    }
    if (tpos != op->text_len) {
        snprintf(err, errsz, "EVENTS: %zu bytes of text belong to no record", op->text_len - tpos);
        return TP_ERR_MALFORMED;
    }
    op->ncalls = ncalls;
    op->max_t_ns = max_t;
    *ret_nnew = nnew;
    return 0;
nomem:
    snprintf(err, errsz, "out of memory");
    return -ENOMEM;
}

/* Copies the descriptors of the batch's new functions next to the op. */
static int attach_funcs(tp_ingest *g, ingest_op *o, size_t nnew)
{
    size_t size = nnew * sizeof(tp_store_func);
    for (size_t i = 0; i < nnew; i++) {
        const func_desc *d = g->funcs.items[id_get(&g->fslot, g->scratch.items[i].client)];
        size += strlen(d->module) + strlen(d->qualname) + strlen(d->file) + 3;
    }
    tp_store_func *fs = malloc(size);
    if (!fs)
        return -ENOMEM;
    char *p = (char *)(fs + nnew);
    for (size_t i = 0; i < nnew; i++) {
        const func_desc *d = g->funcs.items[id_get(&g->fslot, g->scratch.items[i].client)];
        fs[i].fid = g->scratch.items[i].local;
        fs[i].module = put_str(&p, d->module);
        fs[i].qualname = put_str(&p, d->qualname);
        fs[i].file = put_str(&p, d->file);
        fs[i].lineno = d->lineno;
    }
    o->funcs_block = fs;
    o->op.funcs = fs;
    o->op.nfuncs = nnew;
    o->op.bytes += size;
    return 0;
}

/* Looks up the trace a frame names. Returns 1 to go on with *ret, 0 to
 * ignore the frame (a discarded trace), or a trace error. */
static int frame_trace(tp_ingest *g, const tp_msg *m, const char *what, itrace ***ret_link,
                       itrace **ret, bool *ret_trace_error, char *err, size_t errsz)
{
    char norm[33];
    if (!tp_util_id_normalize(m->trace, norm)) {
        *ret_trace_error = false;
        snprintf(err, errsz, "%s: trace id must be 32 hex digits", what);
        return TP_ERR_MALFORMED;
    }
    *ret = find_open(g, norm, ret_link);
    if (*ret)
        return 1;
    if (is_dead(g, norm))
        return 0;
    bury(g, norm);
    snprintf(err, errsz, "%s for trace %s, which was not begun on this connection", what, norm);
    return TP_ERR_SEQUENCE;
}

int tp_ingest_events(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                     char *err, size_t errsz)
{
    itrace *t;
    *ret_op = NULL;
    *ret_trace_error = true;
    int r = frame_trace(g, m, "EVENTS", NULL, &t, ret_trace_error, err, errsz);
    if (r <= 0)
        return r;
    if (m->seq != t->next_seq) {
        snprintf(err, errsz, "EVENTS: batch %u of trace %s, expected %u", m->seq, t->client_id,
                 t->next_seq);
        *ret_op = discard(g, t);
        return TP_ERR_SEQUENCE;
    }
    size_t rec_bytes = m->nrecords * sizeof(tp_event);
    ingest_op *o = op_alloc(TP_STORE_EVENTS, t, rec_bytes + m->text_len);
    if (!o) {
        *ret_trace_error = false;
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    char *p = (char *)o + OP_HEADER_SIZE;
    if (rec_bytes)
        memcpy(p, m->records, rec_bytes);
    if (m->text_len)
        memcpy(p + rec_bytes, m->text, m->text_len);
    o->op.seq = m->seq;
    o->op.records = p;
    o->op.nrecords = m->nrecords;
    o->op.text = p + rec_bytes;
    o->op.text_len = m->text_len;
    size_t nnew = 0;
    r = scan_records(g, t, &o->op, &nnew, err, errsz);
    if (r == 0 && nnew > 0) {
        r = attach_funcs(g, o, nnew);
        if (r < 0)
            snprintf(err, errsz, "out of memory");
    }
    if (r < 0) {
        free(o);
        if (r == -ENOMEM)
            *ret_trace_error = false;
        else
            *ret_op = discard(g, t);
        return r;
    }
    t->next_seq++;
    t->ncalls += o->op.ncalls;
    *ret_op = &o->op;
    return 0;
}

int tp_ingest_end(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                  char *err, size_t errsz)
{
    itrace **link = NULL, *t;
    char norm[33];
    *ret_op = NULL;
    *ret_trace_error = true;
    if (tp_util_id_normalize(m->trace, norm) && !find_open(g, norm, NULL) && is_dead(g, norm)) {
        unbury(g, norm); /* nothing follows an END */
        return 0;
    }
    int r = frame_trace(g, m, "END", &link, &t, ret_trace_error, err, errsz);
    if (r <= 0) {
        if (r == TP_ERR_SEQUENCE)
            unbury(g, norm);
        return r;
    }
    ingest_op *o = op_alloc(TP_STORE_END, t, str_size(m->limit_reason) + str_size(m->drop_reason));
    if (!o) {
        *ret_trace_error = false;
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    char *p = (char *)o + OP_HEADER_SIZE;
    o->op.end_ns = m->end_ns;
    /* The calls stored are the CALL records that arrived, whatever END
     * claims (PROTOCOL.md 4.6): a list must not show calls nobody sent. */
    o->op.call_count = t->ncalls;
    o->op.dropped = m->dropped;
    o->op.limit_reason = put_str(&p, m->limit_reason);
    o->op.drop_reason = put_str(&p, m->drop_reason);
    *link = t->next;
    t->next = NULL;
    g->nopen--;
    *ret_op = &o->op;
    return 0;
}

/* The shape of a LINES text: a JSON array whose items are all objects (the
 * keys inside are the readers' business: they take what they know). */
static int check_lines(const void *text, size_t len, char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j) {
        snprintf(err, errsz, "LINES: the json is not valid JSON (%s, at byte %d)", jerr.text,
                 jerr.position);
        tp_util_utf8_fix(err, strlen(err));
        return TP_ERR_JSON;
    }
    int r = 0;
    if (!json_is_array(j)) {
        snprintf(err, errsz, "LINES: the json is not an array");
        r = TP_ERR_JSON;
    }
    for (size_t i = 0; r == 0 && i < json_array_size(j); i++) {
        if (!json_is_object(json_array_get(j, i))) {
            snprintf(err, errsz, "LINES: item %zu of the json is not an object", i);
            r = TP_ERR_JSON;
        }
    }
    json_decref(j);
    return r;
}

/* The shape of a SOURCE text (PROTOCOL.md 4.6b, tp_query_source_bad). */
static int check_source(const void *text, size_t len, char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j) {
        snprintf(err, errsz, "SOURCE: the json is not valid JSON (%s, at byte %d)", jerr.text,
                 jerr.position);
        tp_util_utf8_fix(err, strlen(err));
        return TP_ERR_JSON;
    }
    size_t bad;
    const char *why = tp_query_source_bad(j, &bad);
    json_decref(j);
    if (!why)
        return 0;
    if (bad == SIZE_MAX)
        snprintf(err, errsz, "SOURCE: the json %s", why);
    else
        snprintf(err, errsz, "SOURCE: function %zu of the json %s", bad, why);
    return TP_ERR_JSON;
}

int tp_ingest_text(tp_ingest *g, const tp_msg *m, tp_store_op **ret_op, bool *ret_trace_error,
                   char *err, size_t errsz)
{
    bool lines = m->type == TP_MSG_LINES;
    const char *what = lines ? "LINES" : "SOURCE";
    const void *json = lines ? m->lines_json : m->source_json;
    size_t len = lines ? m->lines_len : m->source_len;
    itrace *t;
    *ret_op = NULL;
    *ret_trace_error = true;
    int r = frame_trace(g, m, what, NULL, &t, ret_trace_error, err, errsz);
    if (r <= 0)
        return r;
    bool *had = lines ? &t->has_lines : &t->has_source;
    if (*had) {
        snprintf(err, errsz, "%s: a second one for trace %s", what, t->client_id);
        *ret_op = discard(g, t);
        return TP_ERR_SEQUENCE;
    }
    r = lines ? check_lines(json, len, err, errsz) : check_source(json, len, err, errsz);
    if (r < 0) {
        *ret_op = discard(g, t);
        return r;
    }
    ingest_op *o = op_alloc(lines ? TP_STORE_LINES : TP_STORE_SOURCE, t, len);
    if (!o) {
        *ret_trace_error = false;
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    char *p = (char *)o + OP_HEADER_SIZE;
    memcpy(p, json, len);
    o->op.lines_json = p;
    o->op.lines_len = len;
    *had = true;
    *ret_op = &o->op;
    return 0;
}

int tp_ingest_abort_all(tp_ingest *g, void (*submit)(tp_store_op *op, void *ud), void *ud)
{
    int r = 0;
    while (g->open) {
        itrace *t = g->open;
        ingest_op *o = op_alloc(TP_STORE_ABORT, t, 0);
        if (!o) {
            r = -ENOMEM;
            break;
        }
        g->open = t->next;
        t->next = NULL;
        g->nopen--;
        submit(&o->op, ud);
    }
    return r;
}

void tp_ingest_op_free(tp_store_op *op)
{
    if (!op)
        return;
    ingest_op *o = (ingest_op *)op;
    if (op->kind == TP_STORE_END || op->kind == TP_STORE_ABORT)
        trace_free(o->trace);
    free(o->funcs_block);
    free(o);
}

int tp_ingest_refused(tp_ingest *g, const tp_store_op *op, tp_store_op **ret_op)
{
    const ingest_op *o = (const ingest_op *)op;
    *ret_op = NULL;
    for (itrace *t = g->open; t; t = t->next) {
        if (t == o->trace) {
            *ret_op = discard(g, t);
            return 1;
        }
    }
    return 0;
}

const char *tp_ingest_op_client_id(const tp_store_op *op)
{
    const ingest_op *o = (const ingest_op *)op;
    return o->trace ? o->trace->client_id : "";
}
