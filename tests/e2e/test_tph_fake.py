"""tph against a scripted fake tphd: the exact queries tph sends for each
command and flag, and the exact text it makes of the answers (the logs table,
status, open, clean, import), chunked replies and failed replies."""

import json
import time

import pytest

from tphlib import (
    DATA,
    FakeDaemon,
    answering,
    base_env,
    needs_tph,
    reply,
    reply_error,
    tph,
)

pytestmark = needs_tph

ID1 = "3f2a9c1b5d7e4f60a1b2c3d4e5f60718"
S1 = {"id": ID1, "label": "debug-request", "start": 1770906622.1, "duration_ms": 0.05,
      "calls": 3, "limit_reason": None, "dropped": 0, "status": "complete", "pid": 4242,
      "uid": 1000, "host": "box", "python": "3.12.1",
      "argv": ["/srv/app/server.py", "--port", "80"], "client": "tracepatch/2.0.0", "url": None}
S2 = dict(S1, id="9b1c0de2f3a4b5c6d7e8f90a1b2c3d4e", label=None, start=1770906660.0,
          duration_ms=2500.0, calls=10000, limit_reason="max_calls", dropped=5, pid=77, argv=[])
S3 = dict(S1, id="aaaabbbbccccddddeeeeffff00001111", label="x" * 60, start=1770906700.0,
          duration_ms=12.344, calls=120, limit_reason="disconnected", status="truncated", pid=9,
          argv=["-c"])
S4 = dict(S1, id="0123456789abcdef0123456789abcdef", label="live", start=1770906800.0,
          duration_ms=1.0, calls=7, status="open", pid=1, argv=["python3"])

EMPTY = {"total": 0, "traces": []}

TABLE = """\
ID        START                DURATION  CALLS  LABEL                                     PROCESS         FLAGS
3f2a9c1b  2026-02-12 14:30:22  50.0µs        3  debug-request                             4242 server.py
9b1c0de2  2026-02-12 14:31:00  2.50s     10000  -                                         77              LIMITED DROPPED
aaaabbbb  2026-02-12 14:31:40  12.3ms      120  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...  9 -c            TRUNCATED
01234567  2026-02-12 14:33:20  1.00ms        7  live                                      1 python3       RUNNING
"""


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path)


def run_fake_raw(tmp_path, env, answers, *args, binary=False, input=None):
    """Run tph against a fake answering with answers; returns (result, the
    QUERY bodies as received)."""
    path = tmp_path / "fake.sock"
    fake = FakeDaemon(path, answering(answers))
    try:
        r = tph("--socket", path, *args, env=env, binary=binary, input=input)
    finally:
        fake.close()
    return r, [q[1] for q in fake.queries]


def run_fake(tmp_path, env, answers, *args, binary=False):
    """run_fake_raw with the queries as (op, parsed args)."""
    r, raw = run_fake_raw(tmp_path, env, answers, *args, binary=binary)
    return r, [(q["op"], json.loads(q.get("args") or "{}")) for q in raw]


def body(obj):
    return lambda qid: reply(qid, json.dumps(obj))


# ---- logs ------------------------------------------------------------------------


def test_logs_table(tmp_path, env):
    r, q = run_fake(tmp_path, env, [body({"total": 4, "traces": [S1, S2, S3, S4]})], "logs")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == TABLE
    assert q == [("list", {"limit": 50})]


def test_logs_pages_with_the_total(tmp_path, env):
    legacy = {"id": ID1, "label": "debug-request", "start": 1770906622.1, "duration_ms": 0.05,
              "calls": 3, "pid": 4242, "argv": ["server.py"], "dropped": 0,
              "limit_reason": None, "status": "truncated"}
    r, _ = run_fake(tmp_path, env, [body({"total": 30, "traces": [legacy]})],
                    "logs", "--limit", "1", "--offset", "10")
    assert r.returncode == 0
    assert r.stdout == (
        "ID        START                DURATION  CALLS  LABEL          PROCESS         FLAGS\n"
        "3f2a9c1b  2026-02-12 14:30:22  50.0µs        3  debug-request  4242 server.py  TRUNCATED\n"
        "showing 11-11 of 30 traces; --offset 11 for older ones\n")


def test_logs_full_page_hints_at_offset(tmp_path, env):
    r, q = run_fake(tmp_path, env, [body({"total": 5, "traces": [S1]})], "logs", "--limit", "1")
    assert r.stdout.endswith("\nshowing 1-1 of 5 traces; --offset 1 for older ones\n")
    assert q == [("list", {"limit": 1})]


def test_logs_filters_become_query_arguments(tmp_path, env):
    before = int(time.time())
    r, q = run_fake(tmp_path, env, [body(EMPTY)], "logs", "--label", "api-*", "--since", "1h30m",
                    "--limited", "--limit", "5", "--offset", "20")
    after = int(time.time())
    assert r.returncode == 0
    op, args = q[0]
    assert op == "list"
    assert before - 5400 - 1 <= args.pop("since") <= after - 5400
    assert args == {"label": "api-*", "limited": True, "limit": 5, "offset": 20}


@pytest.mark.parametrize("dur,seconds", [("45", 45), ("90s", 90), ("15m", 900), ("2h", 7200),
                                         ("7d", 604800), ("2w", 1209600), ("1d12h", 129600)])
def test_logs_since_durations(tmp_path, env, dur, seconds):
    before = int(time.time())
    _, q = run_fake(tmp_path, env, [body(EMPTY)], "logs", "--since", dur)
    after = int(time.time())
    # time(2) may lag time.time() by a tick, hence the second of slack.
    assert before - seconds - 1 <= q[0][1]["since"] <= after - seconds


def test_logs_empty_says_how_to_record(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [body(EMPTY)], "logs")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == ("no traces yet: record one with `tph run script.py`, or wrap code in "
                        "`with tracepatch.trace(): ...` while tphd is running\n")


def test_logs_empty_with_filter(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [body(EMPTY)], "logs", "--label", "nope")
    assert r.stdout == "no traces match (`tph logs` without filters lists them all)\n"


def test_logs_json_is_the_daemons_json(tmp_path, env):
    raw = json.dumps([S1, S2])
    r, _ = run_fake(tmp_path, env, [lambda qid: reply(qid, raw)], "--json", "logs")
    assert (r.returncode, r.stdout) == (0, raw + "\n")
    r, _ = run_fake(tmp_path, env, [lambda qid: reply(qid, raw + "\n")], "logs", "--json")
    assert r.stdout == raw + "\n"


def test_logs_non_json_answer_fails(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [lambda qid: reply(qid, "{oops")], "logs")
    assert r.returncode == 1
    assert r.stderr == ("tph: tphd's answer to list is not JSON: line 1 column 5: "
                        "string or '}' expected near 'oops'\n")


# ---- failed replies, chunks --------------------------------------------------------


def test_failed_reply_prints_daemons_message(tmp_path, env):
    msg = "trace prefix '3f' is ambiguous: 3f2a9c1b..., 3f2a9c1bff..."
    r, q = run_fake(tmp_path, env, [lambda qid: reply_error(qid, -4010, msg)], "tree", "3f")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", f"tph: {msg}\n")


def test_chunked_reply_is_reassembled(tmp_path, env):
    parts = ["└── a.f()  [1.00ms]\n", "    └── a.g()  [0.50ms]\n", "tail"]

    def chunks(qid):
        return (reply(qid, parts[0], "text/plain", more=True) +
                reply(qid, parts[1], "text/plain", more=True) +
                reply(qid, parts[2], "text/plain"))

    r, _ = run_fake(tmp_path, env, [chunks], "tree", ID1)
    assert (r.returncode, r.stdout) == (0, "".join(parts) + "\n")


def test_reply_with_wrong_id_is_an_error(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [lambda qid: reply(qid + 5, "{}")], "status")
    assert r.returncode == 1
    assert r.stderr == (f"tph: tphd answered query 1 with message type 17 (id 6) "
                        f"(tphd at {tmp_path / 'fake.sock'})\n")


# ---- tree, stats, diff, export by ID: the arguments -------------------------------------


OPTS = {"style": "unicode", "color": False, "args": True, "returns": True, "self_time": False,
        "source": False, "filter": [], "header": True, "units": "auto"}
TREE_DEFAULTS = {"id": "3f2a", "format": "text", "folded": True, "depth": -1, "opts": OPTS}


def test_tree_default_arguments(tmp_path, env):
    r, q = run_fake(tmp_path, env, [lambda qid: reply(qid, "TREE\n", "text/plain")], "tree", "3f2a")
    assert (r.returncode, r.stdout) == (0, "TREE\n")
    assert q == [("tree", TREE_DEFAULTS)]


def test_tree_flags_become_arguments(tmp_path, env):
    r, q = run_fake(tmp_path, env, [lambda qid: reply(qid, "T", "text/plain")], "tree", "3f2a",
                    "--color", "--self-time", "--style", "ascii", "--no-args", "--no-return",
                    "--show-source", "--filter", "app.*", "--filter", "!logging", "--depth", "3",
                    "--no-fold", "--no-stats")
    assert r.returncode == 0
    opts = dict(OPTS, color=True, self_time=True, style="ascii", args=False, returns=False,
                source=True, filter=["app.*", "!logging"], header=False)
    assert q == [("tree", dict(TREE_DEFAULTS, depth=3, folded=False, opts=opts))]


def test_tree_color_auto_is_off_when_piped(tmp_path, env):
    _, q = run_fake(tmp_path, env, [lambda qid: reply(qid, "T", "text/plain")], "tree", "3f2a",
                    "--color=auto")
    assert q[0][1]["opts"]["color"] is False
    _, q = run_fake(tmp_path, env, [lambda qid: reply(qid, "T", "text/plain")], "tree", "3f2a",
                    "--color=always", "--no-color")
    assert q[0][1]["opts"]["color"] is False


def test_tree_json_asks_for_json(tmp_path, env):
    r, q = run_fake(tmp_path, env, [body({"trace": []})], "tree", "3f2a", "--json")
    assert r.stdout == '{"trace": []}\n'
    assert q == [("tree", dict(TREE_DEFAULTS, format="json"))]


def test_stats_and_diff_arguments(tmp_path, env):
    _, q = run_fake(tmp_path, env, [lambda qid: reply(qid, "S", "text/plain")], "stats", "3f2a",
                    "--color")
    assert q == [("stats", {"id": "3f2a", "color": True, "format": "text"})]
    _, q = run_fake(tmp_path, env, [body({})], "--json", "stats", "3f2a")
    assert q == [("stats", {"id": "3f2a", "color": False, "format": "json"})]
    r, q = run_fake(tmp_path, env, [lambda qid: reply(qid, "D\n", "text/plain")], "diff",
                    "3f2a", "9b1c")
    assert (r.stdout, q) == ("D\n", [("diff", {"a": "3f2a", "b": "9b1c", "color": False,
                                               "format": "text"})])


# No --format and no known extension: CSV, as tracepatch 1.0.0.
@pytest.mark.parametrize("args,fmt", [([], "csv"), (["--format", "csv"], "csv"),
                                      (["-o", "OUT.json"], "json"),
                                      (["--format=chrome"], "chrome"),
                                      (["-o", "OUT.html"], "html"),
                                      (["-o", "OUT.folded"], "folded"),
                                      (["-o", "OUT.csv", "--format", "json"], "json")])
def test_export_format_argument(tmp_path, env, args, fmt):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    _, q = run_fake(tmp_path, env, [lambda qid: reply(qid, "X", "text/plain")], "export",
                    "3f2a", *args)
    assert q == [("export", {"id": "3f2a", "format": fmt})]


def test_export_writes_bytes_exactly(tmp_path, env):
    data = "a,b\r\n1,\"x\"\r\n"
    r, _ = run_fake(tmp_path, env, [lambda qid: reply(qid, data, "text/csv")], "export", "3f2a",
                    "--format", "csv", binary=True)
    assert (r.returncode, r.stdout) == (0, data.encode())
    out = tmp_path / "t.csv"
    r, _ = run_fake(tmp_path, env, [lambda qid: reply(qid, data, "text/csv")], "export", "3f2a",
                    "-o", out)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert out.read_bytes() == data.encode()


def test_export_to_unwritable_path_fails(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [lambda qid: reply(qid, "X", "text/plain")], "export", "3f2a",
                    "-o", tmp_path / "no" / "such" / "dir.json")
    assert r.returncode == 1
    assert r.stderr == f"tph: {tmp_path / 'no/such/dir.json'}: No such file or directory\n"


# ---- status, clean, open, import ------------------------------------------------------


STATUS = {"version": "2.0.0", "protocol": 1, "pid": 321, "uptime_s": 3725,
          "socket": "/run/user/1000/tracepatch/tphd.sock",
          "db": "/home/u/.local/state/tracepatch/traces.db", "db_bytes": 12897484,
          "traces": 42, "clients": 3, "http": "http://127.0.0.1:8421"}


def test_status_text(tmp_path, env):
    r, q = run_fake(tmp_path, env, [body(STATUS)], "status")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (
        "tphd 2.0.0, pid 321, up 1h 2m\n"
        "protocol:    1\n"
        "socket:      /run/user/1000/tracepatch/tphd.sock\n"
        "database:    /home/u/.local/state/tracepatch/traces.db (12.3 MiB)\n"
        "traces:      42\n"
        "connections: 3\n"
        "http:        http://127.0.0.1:8421\n")
    assert q == [("status", {})]


def test_status_without_http(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [body(dict(STATUS, http=None, uptime_s=5))], "status")
    assert r.stdout.startswith("tphd 2.0.0, pid 321, up 5s\n")
    assert r.stdout.endswith("http:        off\n")


OTLP_KEYS = ["exported_traces", "exported_spans", "lost_traces", "lost_spans", "skipped_traces",
             "requests", "failed_requests", "retries", "buffered_bytes", "max_buffered_bytes"]


@pytest.mark.parametrize("otlp,lines", [
    (None, "otlp:        off\n"),
    ({"endpoint": "http://c:4318/v1/traces", "pending": 2, **dict.fromkeys(OTLP_KEYS, 0),
      "exported_traces": 5, "exported_spans": 40, "lost_traces": 1, "retries": 3,
      "last_error": "HTTP 503: busy"},
     "otlp:        http://c:4318/v1/traces\n"
     "             5 traces (40 spans) exported, 2 pending, 1 lost, 3 retries\n"
     "             last error: HTTP 503: busy\n"),
    ({"endpoint": "http://c:4318/v1/traces", "pending": 1, **dict.fromkeys(OTLP_KEYS),
      "last_error": None},
     "otlp:        http://c:4318/v1/traces\n"
     "             1 of your traces pending (the exporter's counts: root only)\n"),
])
def test_status_otlp_lines(tmp_path, env, otlp, lines):
    r, _ = run_fake(tmp_path, env, [body(dict(STATUS, otlp=otlp))], "status")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.endswith("http:        http://127.0.0.1:8421\n" + lines)


def test_status_json(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [body(STATUS)], "status", "--json")
    assert json.loads(r.stdout) == STATUS


@pytest.mark.parametrize("args,sent,out", [
    (["--all", "--daemon"], {"all": True}, "deleted 3 traces\n"),
    (["--all", "-y"], {"all": True}, "deleted 3 traces\n"),
    (["--older-than", "7d"], {"older_than": 604800}, "deleted 3 traces\n"),
    (["--older-than=12h"], {"older_than": 43200}, "deleted 3 traces\n"),
])
def test_clean(tmp_path, env, args, sent, out):
    r, q = run_fake(tmp_path, env, [body({"deleted": 3})], "clean", *args)
    assert (r.returncode, r.stdout, q) == (0, out, [("clean", sent)])


def test_clean_one_and_json(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [body({"deleted": 1})], "clean", "--all", "--yes")
    assert r.stdout == "deleted 1 trace\n"
    r, _ = run_fake(tmp_path, env, [body({"deleted": 1})], "clean", "--all", "--daemon",
                    "--json")
    assert json.loads(r.stdout) == {"deleted": 1}


def test_open_prints_the_summary_url(tmp_path, env):
    url = f"http://127.0.0.1:8421/t/{ID1}?token=abc"
    r, q = run_fake(tmp_path, env, [body(dict(S1, url=url))], "open", "3f2a")
    assert (r.returncode, r.stdout) == (0, url + "\n")
    assert q == [("get", {"id": "3f2a", "what": "summary"})]


def test_open_builds_url_from_status(tmp_path, env):
    r, q = run_fake(tmp_path, env, [body(S1), body(dict(STATUS, http="http://127.0.0.1:8421/"))],
                    "open", "3f2a")
    assert (r.returncode, r.stdout) == (0, f"http://127.0.0.1:8421/t/{ID1}\n")
    assert [op for op, _ in q] == ["get", "status"]
    r, _ = run_fake(tmp_path, env, [body(S1), body(STATUS)], "open", "3f2a", "--json")
    assert json.loads(r.stdout) == {"id": ID1, "url": f"http://127.0.0.1:8421/t/{ID1}"}


def test_open_without_http_says_so(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [body(S1), body(dict(STATUS, http=None))], "open", "3f2a")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("tph: tphd does not serve the report UI (no http address in its "
                        "status), so trace 3f2a9c1b has no URL; try `tph tree 3f2a9c1b` or "
                        "`tph export 3f2a9c1b --format html -o report.html`\n")


def test_open_unknown_id(tmp_path, env):
    r, _ = run_fake(tmp_path, env, [lambda qid: reply_error(qid, -4009, "no trace 'ffff'")],
                    "open", "ffff")
    assert (r.returncode, r.stderr) == (1, "tph: no trace 'ffff'\n")


def test_import_sends_file_in_body_and_prints_id(tmp_path, env):
    r, q = run_fake_raw(tmp_path, env, [body({"id": ID1})], "import", DATA / "small.json")
    assert (r.returncode, r.stdout, r.stderr) == (0, ID1 + "\n", "")
    assert (q[0]["op"], json.loads(q[0]["args"])) == ("import", {"source": "small.json"})
    assert q[0]["body"] == (DATA / "small.json").read_bytes()
    assert q[0].get("more", False) is False


def test_import_label_and_json(tmp_path, env):
    r, q = run_fake(tmp_path, env, [body({"id": ID1})], "import", "--json", "--label", "again",
                    DATA / "small.json")
    assert json.loads(r.stdout) == {"id": ID1}
    assert q == [("import", {"source": "small.json", "label": "again"})]


def test_import_stdin(tmp_path, env):
    text = (DATA / "loop.json").read_text()
    r, q = run_fake_raw(tmp_path, env, [body({"id": ID1})], "import", "-", input=text)
    assert (r.returncode, r.stdout) == (0, ID1 + "\n")
    assert json.loads(q[0]["args"]) == {"source": "-"}
    assert q[0]["body"] == text.encode()


def test_import_larger_than_a_frame_is_chunked(tmp_path, env):
    doc = json.loads((DATA / "small.json").read_text())
    doc["config"]["padding"] = "p" * (17 << 20)  # past the 16 MiB frame
    big = tmp_path / "big.json"
    big.write_text(json.dumps(doc))

    def chunks(fake, conn):
        from tphlib import WELCOME, read_frame
        fake.hellos.append(read_frame(conn))
        conn.sendall(WELCOME)
        while True:
            msg = read_frame(conn)
            fake.queries.append(msg)
            if not msg[1].get("more"):
                break
        conn.sendall(reply(msg[1]["id"], json.dumps({"id": ID1})))
        read_frame(conn)

    fake = FakeDaemon(tmp_path / "fake.sock", chunks)
    try:
        r = tph("--socket", tmp_path / "fake.sock", "import", big, env=env)
    finally:
        fake.close()
    assert (r.returncode, r.stdout) == (0, ID1 + "\n")
    frames = [m[1] for m in fake.queries]
    assert len(frames) == 2
    assert [f.get("more", False) for f in frames] == [True, False]
    assert len({f["id"] for f in frames}) == 1
    assert json.loads(frames[0]["args"]) == {"source": "big.json"}
    assert b"".join(f["body"] for f in frames) == big.read_bytes()
