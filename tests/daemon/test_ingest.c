/* tphd's per-connection upload state: function tables, trace-local ids,
 * validation, trace errors and discarded traces. No sockets, no database:
 * the ops that come out are inspected and freed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ingest.h"
#include "tp_err.h"

static const char *const T1 = "0123456789abcdef0123456789abcdef";
static const char *const T2 = "fedcba9876543210fedcba9876543210";

static tp_ingest *g;

static void setup(void)
{
    tp_ingest_peer peer = {.uid = 1000, .pid = 77, .pstart = 5};
    cr_assert_eq(tp_ingest_new(&peer, &g), 0);
}

static void teardown(void)
{
    tp_ingest_free(g);
}

TestSuite(ingest, .init = setup, .fini = teardown);

static void describe(uint32_t id, const char *qualname)
{
    tp_wire_func f = {id, "mod", qualname, "mod.py", (int32_t)id};
    tp_msg m = {.type = TP_MSG_FUNCS, .funcs = &f, .nfuncs = 1};
    char err[128];
    cr_assert_eq(tp_ingest_funcs(g, &m, err, sizeof(err)), 0, "%s", err);
}

static tp_store_op *begin(const char *id)
{
    tp_msg m = {.type = TP_MSG_BEGIN,
                .trace = id,
                .label = "L",
                .wall_start_ns = 9,
                .config_json = "{\"max_calls\": 5}"};
    tp_store_op *op = NULL;
    bool te;
    char err[128];
    cr_assert_eq(tp_ingest_begin(g, &m, &op, &te, err, sizeof(err)), 0, "%s", err);
    cr_assert_not_null(op);
    return op;
}

static int events(const char *id, uint32_t seq, const tp_event *ev, size_t n, const void *text,
                  size_t tlen, tp_store_op **op, bool *te, char *err)
{
    tp_msg m = {.type = TP_MSG_EVENTS,
                .trace = id,
                .seq = seq,
                .records = ev,
                .nrecords = n,
                .text = text,
                .text_len = tlen};
    *op = NULL;
    return tp_ingest_events(g, &m, op, te, err, 256);
}

/* The ABORT/END ops free their trace; BEGIN/EVENTS ops are freed first. */
static void free_ops(tp_store_op **ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i] && ops[i]->kind != TP_STORE_END && ops[i]->kind != TP_STORE_ABORT) {
            tp_ingest_op_free(ops[i]);
            ops[i] = NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        tp_ingest_op_free(ops[i]);
}

Test(ingest, begin_carries_the_peer_and_hello_facts)
{
    const char *argv[] = {"prog", "-x", NULL};
    tp_msg h = {.type = TP_MSG_HELLO,
                .python = "3.12.1",
                .hostname = "box",
                .client = "tp/2",
                .argv = argv,
                .argc = 2};
    char err[128];
    cr_assert_eq(tp_ingest_hello(g, &h, err, sizeof(err)), 0);
    tp_store_op *op = begin(T1);
    cr_assert_eq(op->kind, TP_STORE_BEGIN);
    cr_assert_str_eq(op->begin.client_id, T1);
    cr_assert_eq(op->begin.uid, 1000);
    cr_assert_eq(op->begin.pid, 77);
    cr_assert_eq(op->begin.pstart, 5);
    cr_assert_str_eq(op->begin.label, "L");
    cr_assert_str_eq(op->begin.python, "3.12.1");
    cr_assert_str_eq(op->begin.host, "box");
    cr_assert_str_eq(op->begin.argv_json, "[\"prog\",\"-x\"]");
    cr_assert_str_eq(op->begin.config_json, "{\"max_calls\": 5}");
    cr_assert_eq(op->begin.wall_start_ns, 9);
    cr_assert_eq(tp_ingest_open_count(g), 1);
    tp_ingest_op_free(op);
}

Test(ingest, calls_get_trace_local_ids_in_order_of_first_use)
{
    describe(500, "a");
    describe(7, "b");
    tp_store_op *ops[3] = {begin(T1)};
    tp_event ev[5] = {
        {TP_EV_CALL, 0, 0, 7, 10}, {TP_EV_CALL, 0, 0, 500, 20}, {TP_EV_RETURN, 0, 0, 0, 30},
        {TP_EV_CALL, 0, 0, 7, 40}, {TP_EV_RETURN, 0, 0, 0, 50},
    };
    bool te;
    char err[256];
    cr_assert_eq(events(T1, 0, ev, 5, NULL, 0, &ops[1], &te, err), 0, "%s", err);
    const tp_event *out = ops[1]->records;
    cr_assert_eq(out[0].arg, 0);
    cr_assert_eq(out[1].arg, 1);
    cr_assert_eq(out[3].arg, 0);
    cr_assert_eq(ops[1]->ncalls, 3);
    cr_assert_eq(ops[1]->max_t_ns, 50);
    cr_assert_eq(ops[1]->nfuncs, 2);
    cr_assert_eq(ops[1]->funcs[0].fid, 0);
    cr_assert_str_eq(ops[1]->funcs[0].qualname, "b");
    cr_assert_eq(ops[1]->funcs[0].lineno, 7);
    cr_assert_eq(ops[1]->funcs[1].fid, 1);
    cr_assert_str_eq(ops[1]->funcs[1].qualname, "a");
    cr_assert_eq(ev[0].arg, 7, "the caller's records are not touched");
    /* A second batch brings only what is new. */
    tp_event ev2[2] = {{TP_EV_CALL, 0, 0, 500, 60}, {TP_EV_RETURN, 0, 0, 0, 70}};
    tp_store_op *op2;
    cr_assert_eq(events(T1, 1, ev2, 2, NULL, 0, &op2, &te, err), 0);
    cr_assert_eq(op2->nfuncs, 0);
    cr_assert_eq(((const tp_event *)op2->records)[0].arg, 1);
    tp_ingest_op_free(op2);
    tp_msg end = {.type = TP_MSG_END,
                  .trace = T1,
                  .end_ns = 80,
                  .call_count = 4,
                  .limit_reason = "max_calls"};
    cr_assert_eq(tp_ingest_end(g, &end, &ops[2], &te, err, sizeof(err)), 0);
    cr_assert_eq(ops[2]->kind, TP_STORE_END);
    cr_assert_eq(ops[2]->call_count, 4);
    cr_assert_str_eq(ops[2]->limit_reason, "max_calls");
    cr_assert_eq(tp_ingest_open_count(g), 0);
    free_ops(ops, 3);
}

Test(ingest, text_is_copied_and_checked)
{
    describe(0, "f");
    tp_store_op *ops[2] = {begin(T1)};
    tp_event ev[2] = {{TP_EV_CALL, TP_EVF_TEXT, 0, 0, 1}, {TP_EV_UNWIND, TP_EVF_TEXT, 0, 0, 2}};
    const char text[] = "\x03\0\0\0x=1\x0a\0\0\0ValueError\x03\0\0\0bad";
    bool te;
    char err[256];
    cr_assert_eq(events(T1, 0, ev, 2, text, sizeof(text) - 1, &ops[1], &te, err), 0, "%s", err);
    cr_assert_eq(ops[1]->text_len, sizeof(text) - 1);
    cr_assert_eq(memcmp(ops[1]->text, text, sizeof(text) - 1), 0);
    free_ops(ops, 2);
}

Test(ingest, text_past_the_end_is_a_trace_error)
{
    describe(0, "f");
    tp_store_op *ops[2] = {begin(T1)};
    tp_event ev[1] = {{TP_EV_CALL, TP_EVF_TEXT, 0, 0, 1}};
    const char text[] = "\x09\0\0\0x=1";
    bool te = false;
    char err[256];
    cr_assert_eq(events(T1, 0, ev, 1, text, sizeof(text) - 1, &ops[1], &te, err), TP_ERR_MALFORMED);
    cr_assert(te);
    cr_assert_str_eq(err, "EVENTS: record 0's text runs past the text");
    cr_assert_not_null(ops[1]);
    cr_assert_eq(ops[1]->kind, TP_STORE_ABORT, "what was stored is kept, truncated");
    cr_assert_eq(tp_ingest_open_count(g), 0);
    free_ops(ops, 2);
}

Test(ingest, an_undescribed_function_is_a_trace_error)
{
    tp_store_op *ops[2] = {begin(T1)};
    tp_event ev[1] = {{TP_EV_CALL, 0, 0, 3, 1}};
    bool te = false;
    char err[256];
    cr_assert_eq(events(T1, 0, ev, 1, NULL, 0, &ops[1], &te, err), TP_ERR_UNKNOWN_FUNC);
    cr_assert(te);
    cr_assert_str_eq(err, "EVENTS: record 0 calls function 3, never described");
    free_ops(ops, 2);
}

Test(ingest, a_discarded_trace_is_ignored_until_its_end)
{
    describe(0, "f");
    tp_store_op *ops[2] = {begin(T1)};
    tp_event ev[1] = {{TP_EV_CALL, 0, 0, 0, 1}};
    bool te = false;
    char err[256];
    cr_assert_eq(events(T1, 3, ev, 1, NULL, 0, &ops[1], &te, err), TP_ERR_SEQUENCE);
    cr_assert_str_eq(err, "EVENTS: batch 3 of trace 0123456789abcdef0123456789abcdef, expected 0");
    tp_store_op *op;
    cr_assert_eq(events(T1, 0, ev, 1, NULL, 0, &op, &te, err), 0);
    cr_assert_null(op, "ignored");
    tp_msg end = {.type = TP_MSG_END, .trace = T1, .end_ns = 2};
    cr_assert_eq(tp_ingest_end(g, &end, &op, &te, err, sizeof(err)), 0);
    cr_assert_null(op);
    /* After its END the id is forgotten: another END is an error again. */
    cr_assert_eq(tp_ingest_end(g, &end, &op, &te, err, sizeof(err)), TP_ERR_SEQUENCE);
    cr_assert(te);
    free_ops(ops, 2);
}

Test(ingest, frames_for_traces_never_begun_are_trace_errors)
{
    tp_store_op *op;
    bool te = false;
    char err[256];
    cr_assert_eq(events(T2, 0, NULL, 0, NULL, 0, &op, &te, err), TP_ERR_SEQUENCE);
    cr_assert(te);
    cr_assert_null(op);
    cr_assert_str_eq(err, "EVENTS for trace fedcba9876543210fedcba9876543210, which was not "
                          "begun on this connection");
    /* Its later frames are ignored. */
    cr_assert_eq(events(T2, 1, NULL, 0, NULL, 0, &op, &te, err), 0);
    cr_assert_null(op);
}

Test(ingest, a_second_begin_discards_the_open_trace)
{
    tp_store_op *ops[2] = {begin(T1)};
    tp_msg m = {.type = TP_MSG_BEGIN, .trace = T1, .wall_start_ns = 1};
    bool te = false;
    char err[256];
    cr_assert_eq(tp_ingest_begin(g, &m, &ops[1], &te, err, sizeof(err)), TP_ERR_SEQUENCE);
    cr_assert(te);
    cr_assert_eq(ops[1]->kind, TP_STORE_ABORT);
    free_ops(ops, 2);
}

Test(ingest, config_must_be_a_json_object)
{
    tp_msg m = {.type = TP_MSG_BEGIN, .trace = T1, .config_json = "[1]"};
    tp_store_op *op = NULL;
    bool te = false;
    char err[256];
    cr_assert_eq(tp_ingest_begin(g, &m, &op, &te, err, sizeof(err)), TP_ERR_TYPE);
    cr_assert(te);
    cr_assert_null(op);
    cr_assert_str_eq(err, "BEGIN: config is not a JSON object");
}

static size_t nsubmitted;

static void submit(tp_store_op *o, void *ud)
{
    ((tp_store_op **)ud)[nsubmitted++] = o;
}

Test(ingest, too_many_open_traces_is_a_limit)
{
    tp_store_op *ops[TP_INGEST_MAX_OPEN];
    for (unsigned i = 0; i < TP_INGEST_MAX_OPEN; i++) {
        char id[33];
        snprintf(id, sizeof(id), "%032x", i);
        ops[i] = begin(id);
    }
    tp_msg m = {.type = TP_MSG_BEGIN, .trace = T2};
    tp_store_op *op = NULL;
    bool te = false;
    char err[256];
    cr_assert_eq(tp_ingest_begin(g, &m, &op, &te, err, sizeof(err)), TP_ERR_LIMIT);
    cr_assert(te);
    /* The connection goes away: every open trace gets an ABORT. */
    static tp_store_op *aborts[TP_INGEST_MAX_OPEN];
    nsubmitted = 0;
    cr_assert_eq(tp_ingest_abort_all(g, submit, aborts), 0);
    cr_assert_eq(nsubmitted, TP_INGEST_MAX_OPEN);
    cr_assert_eq(tp_ingest_open_count(g), 0);
    for (unsigned i = 0; i < TP_INGEST_MAX_OPEN; i++) {
        cr_assert_eq(aborts[i]->kind, TP_STORE_ABORT);
        tp_ingest_op_free(ops[i]);
    }
    for (unsigned i = 0; i < TP_INGEST_MAX_OPEN; i++)
        tp_ingest_op_free(aborts[i]);
}

Test(ingest, function_ids_over_the_limit_are_refused)
{
    tp_wire_func f = {TP_INGEST_MAX_FUNC_ID, "m", "q", "f", 1};
    tp_msg m = {.type = TP_MSG_FUNCS, .funcs = &f, .nfuncs = 1};
    char err[128];
    cr_assert_eq(tp_ingest_funcs(g, &m, err, sizeof(err)), TP_ERR_LIMIT);
}

Test(ingest, invalid_utf8_in_names_is_repaired)
{
    tp_wire_func f = {0, "m\xff", "q\xc3", "f", 1};
    tp_msg m = {.type = TP_MSG_FUNCS, .funcs = &f, .nfuncs = 1};
    char err[128];
    cr_assert_eq(tp_ingest_funcs(g, &m, err, sizeof(err)), 0);
    tp_store_op *ops[2] = {begin(T1)};
    tp_event ev[1] = {{TP_EV_CALL, 0, 0, 0, 1}};
    bool te;
    cr_assert_eq(events(T1, 0, ev, 1, NULL, 0, &ops[1], &te, err), 0);
    cr_assert_str_eq(ops[1]->funcs[0].module, "m?");
    cr_assert_str_eq(ops[1]->funcs[0].qualname, "q?");
    free_ops(ops, 2);
}

static int lines(const char *id, const char *json, tp_store_op **op, bool *te, char *err)
{
    tp_msg m = {.type = TP_MSG_LINES, .trace = id, .lines_json = json, .lines_len = strlen(json)};
    *op = NULL;
    return tp_ingest_text(g, &m, op, te, err, 256);
}

Test(ingest, lines_become_a_store_op_with_a_copy_of_the_text)
{
    char json[] = "[{\"call\": 0, \"lines\": []}, {}]";
    tp_store_op *ops[3] = {begin(T1)};
    bool te = true;
    char err[256] = "";
    cr_assert_eq(lines(T1, json, &ops[1], &te, err), 0, "%s", err);
    cr_assert_eq(ops[1]->kind, TP_STORE_LINES);
    memset(json, 'x', sizeof(json) - 1); /* the op keeps its own copy */
    cr_assert_eq(ops[1]->lines_len, sizeof(json) - 1);
    cr_assert_eq(memcmp(ops[1]->lines_json, "[{\"call\": 0, \"lines\": []}, {}]", sizeof(json) - 1),
                 0);
    tp_msg end = {.type = TP_MSG_END, .trace = T1, .end_ns = 2};
    cr_assert_eq(tp_ingest_end(g, &end, &ops[2], &te, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(ops[2]->kind, TP_STORE_END);
    free_ops(ops, 3);
}

Test(ingest, lines_that_are_not_an_array_of_objects_end_that_trace_only)
{
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[{\"call\": 0}", "LINES: the json is not valid JSON ("},
        {"{\"call\": 0}", "LINES: the json is not an array"},
        {"[{}, 3]", "LINES: item 1 of the json is not an object"},
        {"[\"\xff\"]", "LINES: the json is not valid JSON ("},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tp_store_op *ops[3] = {begin(T1), begin(T2)};
        bool te = false;
        char err[256];
        cr_assert_eq(lines(T1, bad[i].json, &ops[2], &te, err), TP_ERR_JSON, "case %zu", i);
        cr_assert(te, "a trace error, not the connection's");
        cr_assert(strncmp(err, bad[i].msg, strlen(bad[i].msg)) == 0, "case %zu: %s", i, err);
        cr_assert_eq(ops[2]->kind, TP_STORE_ABORT, "what was stored is kept, truncated");
        cr_assert_eq(tp_ingest_open_count(g), 1, "the other trace goes on");
        tp_store_op *op;
        tp_msg end = {.type = TP_MSG_END, .trace = T1, .end_ns = 2};
        cr_assert_eq(tp_ingest_end(g, &end, &op, &te, err, sizeof(err)), 0);
        cr_assert_null(op, "the discarded trace's END is ignored");
        tp_store_op *abort_all[1] = {NULL};
        nsubmitted = 0;
        cr_assert_eq(tp_ingest_abort_all(g, submit, abort_all), 0);
        free_ops(ops, 3);
        tp_ingest_op_free(abort_all[0]);
    }
}

Test(ingest, a_second_lines_or_one_for_an_unknown_trace_is_a_sequence_error)
{
    tp_store_op *ops[3] = {begin(T1)};
    bool te = false;
    char err[256];
    cr_assert_eq(lines(T1, "[]", &ops[1], &te, err), 0, "%s", err);
    cr_assert_eq(lines(T1, "[]", &ops[2], &te, err), TP_ERR_SEQUENCE);
    cr_assert(te);
    cr_assert_str_eq(err, "LINES: a second one for trace 0123456789abcdef0123456789abcdef");
    cr_assert_eq(ops[2]->kind, TP_STORE_ABORT);
    tp_store_op *op;
    cr_assert_eq(lines(T2, "[]", &op, &te, err), TP_ERR_SEQUENCE);
    cr_assert(te);
    cr_assert_null(op);
    cr_assert_str_eq(err, "LINES for trace fedcba9876543210fedcba9876543210, which was not "
                          "begun on this connection");
    free_ops(ops, 3);
}
