/* Writes the fuzzer's seed corpus: real frames from tp_wire_encode, one per
 * message type (the payload alone and the whole frame), plus a whole client
 * session as one stream of frames. The committed tests/fuzz/corpus/ is its
 * output:
 *
 *   ninja -C build-fuzz tests/fuzz/gen_corpus && ./build-fuzz/tests/fuzz/gen_corpus
 * tests/fuzz/corpus */
#include <stdio.h>
#include <string.h>

#include "tp_err.h"
#include "wire.h"

static const char TRACE[] = "5f0c2a9be81d4c6f9a0b3e7d12c4f8a6";

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static void text(tp_buf *tx, const char *s)
{
    uint32_t l = (uint32_t)strlen(s);
    uint8_t h[4] = {(uint8_t)l, (uint8_t)(l >> 8), (uint8_t)(l >> 16), (uint8_t)(l >> 24)};
    tp_buf_append(tx, h, 4);
    tp_buf_append(tx, s, l);
}

static void rec(tp_event *e, uint8_t kind, uint8_t flags, uint32_t arg, uint64_t t)
{
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->flags = flags;
    e->arg = arg;
    e->t_ns = t;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    static const char *const av[] = {"manage.py", "runserver", "--noreload", NULL};
    tp_wire_func funcs[] = {{0, "app.views", "user_detail", "/srv/app/views.py", 41},
                            {1, "app.db", "Store.get", NULL, 0},
                            {2, "app.util", "chunks", "/srv/app/util.py", 7}};
    tp_event ev[9];
    tp_buf tx = TP_BUF_INIT;
    rec(&ev[0], TP_EV_CALL, TP_EVF_TEXT, 0, 0);
    text(&tx, "request=<WSGIRequest: GET '/users/42'>, uid=42");
    rec(&ev[1], TP_EV_CALL, TP_EVF_TEXT, 1, 1200);
    text(&tx, "self=<Store>, key='user:42'");
    rec(&ev[2], TP_EV_CAUGHT, TP_EVF_TEXT, 0, 1500);
    text(&tx, "KeyError");
    text(&tx, "'user:42'");
    rec(&ev[3], TP_EV_RETURN, TP_EVF_TEXT, 0, 2100);
    text(&tx, "None");
    rec(&ev[4], TP_EV_CALL, TP_EVF_GEN, 2, 2500);
    rec(&ev[5], TP_EV_YIELD, 0, 2, 2600);
    rec(&ev[6], TP_EV_THREAD, TP_EVF_TEXT, 1, 2700);
    text(&tx, "ThreadPoolExecutor-0_0");
    rec(&ev[7], TP_EV_THREAD, 0, 0, 2800);
    rec(&ev[8], TP_EV_UNWIND, TP_EVF_TEXT, 0, 9000);
    text(&tx, "Http404");
    text(&tx, "No User matches the given query.");
    static const uint8_t body[] = "{\"trace_id\": \"5f0c\", \"call_count\": 3}";
    static const char lines[] =
        "[{\"call\": 0, \"module\": \"app\", \"qualname\": \"f\", \"lines\": "
        "[{\"line\": 2, \"source\": \"x = 1\", \"hits\": 1, \"values\": "
        "{\"x\": [\"1\"]}}]}]";
    static const char source[] =
        "{\"max_function\": 65536, \"max_trace\": 1048576, \"left_out\": 0, \"functions\": "
        "[{\"module\": \"app\", \"qualname\": \"f\", \"file\": \"app.py\", \"line\": 1, "
        "\"text\": \"def f():\\n    x = 1\\n\"}, {\"module\": \"m\", \"qualname\": \"g\", "
        "\"file\": \"<string>\", \"line\": 1, \"missing\": \"no source\"}]}";

    const tp_msg msgs[] = {
        {.type = TP_MSG_HELLO,
         .version = 1,
         .caps = TP_CAP_ACK,
         .pid = 4711,
         .python = "3.12.1",
         .hostname = "web-1",
         .client = "tracepatch/2.0.0",
         .argv = (const char **)av,
         .argc = 3},
        {.type = TP_MSG_WELCOME,
         .version = 1,
         .caps = TP_CAP_ACK,
         .client = "tphd/2.0.0",
         .pid = 812},
        {.type = TP_MSG_FUNCS, .funcs = funcs, .nfuncs = 3},
        {.type = TP_MSG_BEGIN,
         .trace = TRACE,
         .label = "GET /users/42",
         .wall_start_ns = 1732200000000000000LL,
         .config_json = "{\"max_depth\": 30}"},
        {.type = TP_MSG_EVENTS,
         .trace = TRACE,
         .seq = 0,
         .records = ev,
         .nrecords = 9,
         .text = tx.data,
         .text_len = tx.len},
        {.type = TP_MSG_END,
         .trace = TRACE,
         .end_ns = 9100,
         .call_count = 3,
         .limit_reason = "max_calls",
         .dropped = 2,
         .drop_reason = "daemon too slow"},
        {.type = TP_MSG_ACK, .trace = TRACE, .url = "http://127.0.0.1:7777/t/5f0c?k=s3cr3t"},
        {.type = TP_MSG_ERROR,
         .code = TP_ERR_UNKNOWN_FUNC,
         .message = "function 9",
         .trace = TRACE},
        {.type = TP_MSG_QUERY,
         .id = 3,
         .op = "tree",
         .args_json = "{\"id\": \"5f0c\", \"depth\": 3}"},
        {.type = TP_MSG_QUERY,
         .id = 4,
         .op = "import",
         .body = body,
         .body_len = sizeof(body) - 1,
         .more = true},
        {.type = TP_MSG_REPLY,
         .id = 3,
         .ok = true,
         .content_type = "application/json",
         .body = body,
         .body_len = sizeof(body) - 1},
        {.type = TP_MSG_REPLY,
         .id = 5,
         .ok = false,
         .code = TP_ERR_AMBIGUOUS,
         .message = "5f matches 2 traces"},
        {.type = TP_MSG_LINES, .trace = TRACE, .lines_json = lines, .lines_len = sizeof(lines) - 1},
        {.type = TP_MSG_STORED, .trace = TRACE, .seq = 41},
        {.type = TP_MSG_SOURCE,
         .trace = TRACE,
         .source_json = source,
         .source_len = sizeof(source) - 1},
    };
    tp_buf session = TP_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        tp_buf b = TP_BUF_INIT;
        char name[64];
        int r = tp_wire_encode(&msgs[i], &b);
        if (r) {
            fprintf(stderr, "encode %zu: %s\n", i, tp_strerror(r));
            return 1;
        }
        snprintf(name, sizeof(name), "%02zu-type%d-payload", i, msgs[i].type);
        rc |= write_file(dir, name, b.data + TP_WIRE_HEADER_SIZE, b.len - TP_WIRE_HEADER_SIZE);
        snprintf(name, sizeof(name), "%02zu-type%d-frame", i, msgs[i].type);
        rc |= write_file(dir, name, b.data, b.len);
        if (msgs[i].type <= TP_MSG_END && msgs[i].type != TP_MSG_WELCOME)
            tp_buf_append(&session, b.data, b.len);
        tp_buf_free(&b);
    }
    rc |= write_file(dir, "session-stream", session.data, session.len);
    tp_buf_free(&session);
    tp_buf_free(&tx);
    return rc;
}
