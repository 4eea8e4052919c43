"""tphd end to end: a real tphd on a temporary socket and database, spoken to
through tphd_wire (msgpack, PROTOCOL.md) as an independent implementation.
Handshake, one trace through every query, restarts, IDs, imports."""
import json
import os
import socket
import subprocess
import time

import pytest

from tphd_wire import (ACK, CAP_ACK, CAP_QUERY, ERR, ERROR, MS, QUERY, TPHD, Conn, Daemon,
                       assert_clean_stop,
                       Events, simple_trace, wait_for)

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")


T1 = "ab" * 16
T2 = "abcd" + "0" * 28
T3 = "ffff" + "0" * 28


def send_simple(d, trace=T1, label="t", t0=1_700_000_000 * 10**9):
    with d.connect() as c:
        simple_trace(c, trace, label=label, t0=t0)
        return c.recv()


# ---- handshake ------------------------------------------------------------------


def test_welcome_grants_the_requested_caps(tphd):
    with tphd.connect(caps=CAP_ACK) as c:
        assert c.welcome == {"v": 1, "caps": CAP_ACK, "client": "tphd/2.0.0",
                             "pid": tphd.proc.pid}
    with tphd.connect(caps=CAP_ACK | CAP_QUERY | 0x80) as c:
        assert c.welcome["caps"] == CAP_ACK | CAP_QUERY


def test_wrong_version_is_refused(tphd):
    c = tphd.connect(hello=False)
    msg = c.hello(version=2)
    assert msg == (ERROR, {"code": ERR["VERSION"], "name": "VERSION",
                           "msg": "client speaks protocol 2, tphd speaks 1"})
    assert c.recv() is None  # closed


def test_bad_magic_is_refused(tphd):
    c = tphd.connect(hello=False)
    mtype, body = c.hello(magic="XXXX")
    assert (mtype, body["code"]) == (ERROR, ERR["VERSION"])
    assert c.recv() is None


def test_first_message_must_be_hello(tphd):
    c = tphd.connect(hello=False)
    c.send(QUERY, {"id": 1, "op": "status"})
    assert c.recv() == (ERROR, {"code": ERR["SEQUENCE"], "name": "SEQUENCE",
                                "msg": "the first message must be HELLO"})
    assert c.recv() is None


def test_second_hello_and_server_types_close_the_connection(tphd):
    with tphd.connect() as c:
        mtype, body = c.hello()
        assert (mtype, body["code"]) == (ERROR, ERR["SEQUENCE"])
        assert c.recv() is None
    with tphd.connect() as c:
        c.send(ACK, {"trace": T1})
        mtype, body = c.recv()
        assert (mtype, body["code"]) == (ERROR, ERR["SEQUENCE"])
        assert c.recv() is None


def test_unknown_message_types_are_ignored(tphd):
    with tphd.connect() as c:
        c.send(99, {"future": True})
        assert c.qjson("status")["traces"] == 0


# ---- one trace through every query -------------------------------------------------


def test_ack_after_end(tphd):
    assert send_simple(tphd) == (ACK, {"trace": T1})


def test_list_and_get(tphd):
    send_simple(tphd)
    with tphd.connect() as c:
        doc = c.qjson("list")
        assert doc["total"] == 1
        (s,) = doc["traces"]
        assert s == {
            "id": T1, "label": "t", "uid": os.getuid(), "pid": os.getpid(),
            "host": "testhost", "python": "3.11.7", "argv": ["prog.py", "--flag"],
            "client": "pytest/1", "start": 1_700_000_000.0, "duration_ms": 10.0, "calls": 4,
            "dropped": 0, "limit_reason": None, "status": "complete", "age_ms": None, "url": None,
            "otel_trace_id": T1, "otlp": None,
        }
        g = c.qjson("get", {"id": "ab"})
        assert {k: g[k] for k in s} == s
        assert g["config"] == {"max_calls": 10000}
        assert g["events"] == 8
        assert g["stats"] == {
            "calls": 4, "unique_functions": 2, "modules": 1, "max_depth": 1, "exceptions": 0,
            "duration_ms": 10.0, "slowest": {"name": "main", "module": "app", "node": 0, "ms": 8.0},
            "most_called": {"name": "helper", "module": "app", "count": 3},
        }
        assert c.qjson("get", {"id": T1, "what": "summary"})["id"] == T1


def test_tree_text_folded_raw_subtree_and_depth(tphd):
    send_simple(tphd)
    with tphd.connect() as c:
        ok, ct, body = c.query("tree", {"id": T1[:6], "opts": {"header": False}})
        assert (ok, ct) == (True, "text/plain; charset=utf-8")
        assert body.decode() == (
            "└── app.main() -> 'done'  [8.00ms]\n"
            "    └── app.helper(...)  [×3]  [1.50ms total, avg 500µs, min 500µs, max 500µs]\n")
        ok, ct, body = c.query("tree", {"id": T1, "folded": False, "opts": {"header": False,
                                        "style": "ascii"}})
        assert body.decode() == (
            "`-- app.main() -> 'done'  [8.00ms]\n"
            "    |-- app.helper(x=0) -> 0  [500us]\n"
            "    |-- app.helper(x=1) -> 2  [500us]\n"
            "    `-- app.helper(x=2) -> 4  [500us]\n")
        ok, ct, body = c.query("tree", {"id": T1, "node": 2, "opts": {"header": False}})
        assert body.decode() == "└── app.helper(x=1) -> 2  [500µs]\n"
        ok, ct, body = c.query("tree", {"id": T1, "depth": 1, "opts": {"header": False}})
        assert body.decode() == ("└── app.main() -> 'done'  [8.00ms]\n"
                                 "    └── [3 nested calls...]\n")
        assert c.query("tree", {"id": T1, "node": 4}) == (
            False, ERR["NOT_FOUND"], f"node 4 is not in trace {T1} (it has 4 calls)")
        ok, ct, body = c.query("tree", {"id": T1, "opts": {"header": True}})
        assert body.decode().startswith("Trace: t\n")


def test_tree_json_is_the_export(tphd):
    send_simple(tphd)
    with tphd.connect() as c:
        tree = c.qjson("tree", {"id": T1, "format": "json"})
        export = c.qjson("export", {"id": T1, "format": "json"})
        assert tree == export
        assert export["trace_id"] == T1 and export["call_count"] == 4
        (main,) = export["trace"]
        assert (main["name"], main["module"], main["args"], main["return_value"]) == \
            ("main", "app", "", "'done'")
        assert main["elapsed_ms"] == 8.0
        assert [(k["args"], k["return_value"], k["elapsed_ms"]) for k in main["children"]] == \
            [("x=0", "0", 0.5), ("x=1", "2", 0.5), ("x=2", "4", 0.5)]


def test_stats(tphd):
    send_simple(tphd)
    with tphd.connect() as c:
        s = c.qjson("stats", {"id": T1, "format": "json"})
        assert [(f["module"], f["name"], f["count"], f["total_ms"], f["self_ms"])
                for f in s["functions"]] == \
            [("app", "main", 1, 8.0, 6.5), ("app", "helper", 3, 1.5, 1.5)]
        assert s["by_module"] == [{"module": "app", "calls": 4, "functions": 2, "self_ms": 8.0}]
        ok, ct, text = c.query("stats", {"id": T1})
        assert ok and "Functions by total time (2):" in text.decode()


def test_exports(tphd):
    send_simple(tphd)
    with tphd.connect() as c:
        ok, ct, csv = c.query("export", {"id": T1, "format": "csv"})
        assert ct == "text/csv; charset=utf-8"
        rows = csv.decode().splitlines()
        assert len(rows) == 5 and rows[0].startswith("module,function,args,return_value")
        ok, ct, folded = c.query("export", {"id": T1, "format": "folded"})
        assert folded.decode() == "app.main 6500\napp.main;app.helper 1500\n"
        ok, ct, chrome = c.query("export", {"id": T1, "format": "chrome"})
        events = [e for e in json.loads(chrome)["traceEvents"] if e["ph"] == "X"]
        assert [(e["cat"], e["name"], e["ts"], e["dur"]) for e in events] == [
            ("app", "main", 1000.0, 8000.0), ("app", "helper", 2000.0, 500.0),
            ("app", "helper", 3000.0, 500.0), ("app", "helper", 4000.0, 500.0)]
        assert c.query("export", {"id": T1, "format": "pdf"}) == \
            (False, -22, 'unknown format "pdf"')


def test_status(tphd):
    send_simple(tphd)
    with tphd.connect() as c:
        st = c.qjson("status")
        measured = {"db_bytes", "uptime_s", "events_per_s"}
        assert {k: v for k, v in st.items() if k not in measured} == {
            "version": "2.0.0", "protocol": 1, "pid": tphd.proc.pid, "socket": tphd.sock,
            "db": tphd.db, "traces": 1, "clients": 1, "events_total": 8, "dropped": 0,
            "http": None, "otlp": None}
        assert measured <= st.keys()
        assert st["db_bytes"] > 0 and st["uptime_s"] >= 0 and st["events_per_s"] >= 0


def test_clean(tphd):
    send_simple(tphd, T1, t0=(int(time.time()) - 3 * 86400) * 10**9)
    send_simple(tphd, T2, t0=time.time_ns())
    with tphd.connect() as c:
        assert c.qjson("clean", {"older_than": 86400}) == {"deleted": 1}
        assert [t["id"] for t in c.qjson("list")["traces"]] == [T2]
        assert c.qjson("clean", {"all": True}) == {"deleted": 1}
        assert c.qjson("list") == {"total": 0, "traces": []}
        assert c.query("clean", {}) == (False, ERR["MISSING"],
                                        'give "older_than" (seconds) or "all": true')


def test_list_filters_and_paging(tphd):
    base = 1_700_000_000 * 10**9
    for i, tid in enumerate([T1, T2, T3]):
        send_simple(tphd, tid, label=["api-get", "api-post", "job"][i], t0=base + i * 10**9)
    with tphd.connect() as c:
        ids = lambda doc: [t["id"] for t in doc["traces"]]
        assert ids(c.qjson("list")) == [T3, T2, T1]
        assert ids(c.qjson("list", {"label": "api-*"})) == [T2, T1]
        assert ids(c.qjson("list", {"since": 1_700_000_001})) == [T3, T2]
        doc = c.qjson("list", {"limit": 1, "offset": 1})
        assert (doc["total"], ids(doc)) == (3, [T2])
        assert ids(c.qjson("list", {"limited": True})) == []
        assert c.query("list", {"limit": "x"}) == (False, -22, 'argument "limit" must be an integer')


# ---- IDs ------------------------------------------------------------------------------


def test_prefixes(tphd):
    send_simple(tphd, T1)
    send_simple(tphd, T2)
    with tphd.connect() as c:
        assert c.qjson("get", {"id": "ABAB"})["id"] == T1
        assert c.qjson("get", {"id": "abc"})["id"] == T2
        assert c.query("get", {"id": "ab"}) == (
            False, ERR["AMBIGUOUS"], f'ID "ab" matches 2 traces: {T1}, {T2}')
        assert c.query("get", {"id": "99"}) == (False, ERR["NOT_FOUND"], 'no trace matches ID "99"')
        assert c.query("get", {"id": "xyz"})[:2] == (False, ERR["NOT_FOUND"])
        assert c.query("get", {}) == (False, ERR["MISSING"],
                                      'argument "id" (a trace ID) is required')


def test_id_collision_gets_a_new_id(tphd):
    assert send_simple(tphd, T1) == (ACK, {"trace": T1})
    mtype, body = send_simple(tphd, T1, label="second")
    assert mtype == ACK and body["trace"] != T1 and len(body["trace"]) == 32
    with tphd.connect() as c:
        assert c.qjson("get", {"id": body["trace"]})["label"] == "second"
        assert c.qjson("get", {"id": T1})["label"] == "t"


# ---- traces that do not end well ----------------------------------------------------


def test_disconnect_truncates(tphd):
    c = tphd.connect()
    simple_trace(c, T1, end=False)
    ev = Events().call(0, 20 * MS, "late")
    c.events(T1, 1, ev)
    c.close()
    with tphd.connect() as q:
        s = wait_for(lambda: [t for t in q.qjson("list")["traces"] if t["status"] == "truncated"])
        assert s and s[0]["limit_reason"] == "disconnected" and s[0]["duration_ms"] == 20.0
        assert s[0]["calls"] == 5
        ok, ct, body = q.query("tree", {"id": T1, "opts": {"header": False}, "folded": False})
        assert body.decode() == (
            "├── app.main() -> 'done'  [8.00ms]\n"
            "│   ├── app.helper(x=0) -> 0  [500µs]\n"
            "│   ├── app.helper(x=1) -> 2  [500µs]\n"
            "│   └── app.helper(x=2) -> 4  [500µs]\n"
            "└── app.main(late)  [0ns, unfinished]\n"
            "(trace limited: disconnected; 5 calls recorded)\n")


def test_trace_errors_keep_the_connection(tphd):
    with tphd.connect() as c:
        simple_trace(c, T1, end=False)
        c.events(T1, 5, Events().call(0, 20 * MS))  # a gap: expected seq 1
        mtype, body = c.recv()
        assert (mtype, body["code"], body["trace"]) == (ERROR, ERR["SEQUENCE"], T1)
        assert body["msg"] == f"EVENTS: batch 5 of trace {T1}, expected 1"
        c.events(T1, 1, Events().call(0, 21 * MS))  # ignored: the trace was discarded
        c.end(T1, 30 * MS, 5)  # ignored too
        c.events(T2, 0, Events())  # never begun
        mtype, body = c.recv()
        assert (mtype, body["code"], body["trace"]) == (ERROR, ERR["SEQUENCE"], T2)
        simple_trace(c, T3, describe=False)  # the connection still works
        assert c.recv() == (ACK, {"trace": T3})
        st = {t["id"]: (t["status"], t["calls"]) for t in c.qjson("list")["traces"]}
        assert st == {T1: ("truncated", 4), T3: ("complete", 4)}


def test_unknown_function_is_a_trace_error(tphd):
    with tphd.connect() as c:
        c.begin(T1)
        c.events(T1, 0, Events().call(7, 1))
        mtype, body = c.recv()
        assert (mtype, body["code"], body["trace"]) == (ERROR, ERR["UNKNOWN_FUNC"], T1)
        assert body["msg"] == "EVENTS: record 0 calls function 7, never described"


def test_bad_frame_closes_only_that_connection(tphd):
    with tphd.connect() as good:
        simple_trace(good, T1, end=False)
        with tphd.connect() as bad:
            bad.send_raw(b"\x00\x00\x00\x03\x92\x01\xc1")
            mtype, body = bad.recv()
            assert mtype == ERROR and body["code"] in (ERR["MALFORMED"], ERR["TRUNCATED"])
            assert bad.recv() is None
        good.end(T1, 10 * MS, 4)
        assert good.recv() == (ACK, {"trace": T1})


# ---- import ------------------------------------------------------------------------------


def test_import_in_chunks(tphd):
    send_simple(tphd)
    with tphd.connect() as c:
        doc = c.query("export", {"id": T1, "format": "json"})[2]
        ans = c.qjson("import", {"source": "x.json", "label": "imported"}, body=doc)
        new = ans["id"]
        assert new != T1 and ans == {"id": new, "url": None}
        g = c.qjson("get", {"id": new})
        assert (g["label"], g["source"], g["status"], g["calls"]) == ("imported", "x.json",
                                                                      "complete", 4)
        a = c.query("tree", {"id": T1, "opts": {"header": False}, "folded": False})[2]
        b = c.query("tree", {"id": new, "opts": {"header": False}, "folded": False})[2]
        assert a == b
        # The same file again, sent in 100-byte frames.
        ok, ct, body = c.query("import", {}, body=doc, chunk=100)
        assert ok and json.loads(body)["id"] not in (T1, new)
        assert c.query("import", {}, body=b"{not json")[:2] == (False, ERR["JSON"])


def test_reply_larger_than_a_frame_comes_in_chunks(tphd):
    with tphd.connect() as c:
        c.funcs({0: ("m", "f", "f.py", 1)})
        c.begin(T1)
        seq = 0
        for part in range(3):  # 3 x 20,000 calls with 300-byte arguments
            ev = Events()
            for i in range(20000):
                ev.call(0, (part * 20000 + i) * 1000, "a" * 300).ret((part * 20000 + i) * 1000 + 500)
            c.events(T1, seq, ev)
            seq += 1
        c.end(T1, 60000 * 1000, 60000)
        assert c.recv() == (ACK, {"trace": T1})
        ok, ct, body = c.query("export", {"id": T1, "format": "json"})
        assert ok and len(body) > 16 << 20
        assert len(json.loads(body)["trace"]) == 60000


# ---- lifecycle ------------------------------------------------------------------------------


def test_restart_keeps_data(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    send_simple(d, T1)
    assert_clean_stop(d)
    assert os.stat(d.db).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(d.db)).st_mode & 0o777 == 0o700
    assert os.stat(os.path.dirname(d.sock)).st_mode & 0o777 == 0o700
    assert not os.path.exists(d.sock)
    wal = d.db + "-wal"
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0  # checkpointed on the way out
    d.start()
    with d.connect() as c:
        assert [t["id"] for t in c.qjson("list")["traces"]] == [T1]
        ok, ct, body = c.query("tree", {"id": T1, "opts": {"header": False}, "folded": False})
        assert body.decode().count("app.helper") == 3
    assert_clean_stop(d)


def test_stale_socket_is_replaced(tmp_path):
    d = Daemon(TPHD, tmp_path)
    os.makedirs(os.path.dirname(d.sock), mode=0o700)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d.sock)
    s.close()  # the file stays, nobody listens
    d.start()
    with d.connect() as c:
        assert c.welcome["v"] == 1
    assert_clean_stop(d)


def test_live_daemon_is_an_error(tphd, tmp_path):
    r = subprocess.run([TPHD, "--socket", tphd.sock, "--db", str(tmp_path / "other.db"),
                        "--no-http"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"another tphd is already listening on {tphd.sock}" in r.stderr
    with tphd.connect() as c:  # the first one is unharmed
        assert c.welcome["v"] == 1


def test_a_database_in_use_is_an_error(tphd, tmp_path):
    r = subprocess.run([TPHD, "--socket", str(tmp_path / "other.sock"), "--db", tphd.db,
                        "--no-http"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"{tphd.db} is in use by another tphd" in r.stderr


def test_socket_path_that_is_a_file_is_an_error(tmp_path):
    d = Daemon(TPHD, tmp_path)
    os.makedirs(os.path.dirname(d.sock))
    open(d.sock, "w").close()
    r = subprocess.run(d.args(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "exists and is not a socket" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "tphd: unknown option '--bogus'"),
    (["--retention", "7x"], "tphd: invalid --retention '7x'"),
    (["--max-db-size", "lots"], "tphd: invalid --max-db-size 'lots'"),
    (["--max-queue", "10"], "tphd: invalid --max-queue '10'"),
    (["--db"], "tphd: option '--db' needs a value"),
    (["extra"], "tphd: unexpected argument 'extra'"),
])
def test_bad_flags_exit_2(args, message):
    r = subprocess.run([TPHD] + args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.startswith(message)


def test_help_and_version():
    r = subprocess.run([TPHD, "--version"], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "tphd 2.0.0 (protocol 1)\n")
    r = subprocess.run([TPHD, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("Usage: tphd [OPTIONS]")


def test_default_paths_follow_xdg(tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"),
               XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("TRACEPATCH_SOCKET", None)
    os.makedirs(tmp_path / "run", mode=0o700)
    p = subprocess.Popen([TPHD, "--no-http"], env=env, stderr=subprocess.PIPE)
    sock = str(tmp_path / "run" / "tracepatch" / "tphd.sock")
    try:
        assert wait_for(lambda: os.path.exists(sock))
        assert os.path.exists(tmp_path / "state" / "tracepatch" / "traces.db")
        with Conn(sock) as c:
            assert c.qjson("status")["socket"] == sock
    finally:
        p.terminate()
        assert p.wait(30) == 0


def test_socket_activation_and_notify(tmp_path):
    """LISTEN_FDS: tphd serves the socket it is given; NOTIFY_SOCKET gets
    READY=1 then STOPPING=1."""
    sock_path = str(tmp_path / "act.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(16)
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(20)
    env = dict(os.environ, LISTEN_FDS="1", NOTIFY_SOCKET=notify_path)
    fd = listener.fileno()
    # LISTEN_PID must name tphd itself: the shell sets it, then execs tphd.
    # The socket goes to fd 3 (kept open: subprocess closes the others after
    # preexec_fn).
    p = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', TPHD, "--db",
                          str(tmp_path / "db" / "t.db"), "--no-http"],
                         env=env, pass_fds=(fd, 3), preexec_fn=lambda: os.dup2(fd, 3))
    try:
        msg = notify.recv(4096).decode()
        assert "READY=1" in msg
        with Conn(sock_path) as c:
            simple_trace(c, T1)
            assert c.recv() == (ACK, {"trace": T1})
        p.terminate()
        msg = notify.recv(4096).decode()
        assert "STOPPING=1" in msg
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
    assert os.path.exists(sock_path)  # systemd's socket is not ours to remove


def send_four_helpers(c, trace):
    c.begin(trace, label="b")
    ev = Events().call(0, 1 * MS, "")
    for i in range(4):
        ev.call(1, (2 + i) * MS, f"x={i}").ret((2 + i) * MS + MS // 2, str(i * 2))
    ev.ret(9 * MS, "'done'")
    c.events(trace, 0, ev)
    c.end(trace, 10 * MS, 5)
    return c.recv()


def test_diff(tphd):
    with tphd.connect() as c:
        simple_trace(c, T1)
        assert c.recv()[0] == ACK
        assert send_four_helpers(c, T2) == (ACK, {"trace": T2})
        d = c.qjson("diff", {"a": T1, "b": T2, "format": "json"})
        assert d == {"calls_a": 4, "calls_b": 5, "duration_a_ms": 10.0, "duration_b_ms": 10.0,
                     "changes": [{"kind": "count", "path": "app.main > app.helper",
                                  "function": "app.helper", "count_a": 3, "count_b": 4,
                                  "total_a_ms": 1.5, "total_b_ms": 2.0}],
                     "functions_added": [], "functions_removed": []}
        ok, ct, text = c.query("diff", {"a": T1[:4], "b": T2[:4]})
        assert ok and "~ app.main > app.helper  calls ×3 -> ×4" in text.decode()
        # The other way round, and a trace against itself.
        assert c.qjson("diff", {"a": T2, "b": T1, "format": "json"})["changes"][0]["count_a"] == 4
        assert c.qjson("diff", {"a": T1, "b": T1, "format": "json"})["changes"] == []
        assert c.query("diff", {"a": T1}) == (False, ERR["MISSING"],
                                              'argument "b" (a trace ID) is required')


def test_report_ui_queries(tphd):
    with tphd.connect() as c:
        simple_trace(c, T1)
        assert c.recv()[0] == ACK
        ok, code, msg = c.query("search", {"id": T1, "q": "helper"})
        if not ok and code == -95:  # -ENOTSUP: built without web/
            pytest.skip(msg)
        assert ok
        web = c.qjson("tree", {"id": T1, "format": "web"})
        assert (web["total"], [(n["module"], n["name"]) for n in web["nodes"]]) == \
            (1, [("app", "main")])
        kids = c.qjson("tree", {"id": T1, "format": "web", "node": 0})
        assert [(n["name"], n["count"]) for n in kids["nodes"]] == [("helper", 3)]
        found = c.qjson("search", {"id": T1, "q": "helper"})
        assert found["total"] == 1
        ok, ct, html = c.query("export", {"id": T1, "format": "html"})
        assert ok and ct == "text/html; charset=utf-8"
        assert html.startswith(b"<!DOCTYPE html>") or html.startswith(b"<!doctype html>")
        assert T1.encode() in html
        # An open trace has no stored stats yet: the report computes them.
        simple_trace(c, T2, describe=False, end=False)
        ok, ct, html = c.query("export", {"id": T2, "format": "html"})
        assert ok and T2.encode() in html


def test_a_trace_without_calls_is_stored_and_finalized(tphd):
    # A trace that ended before its first event has no functions: finalizing
    # it must not hand memcpy a NULL buffer (UBSan aborts the ASan build).
    with tphd.connect() as c:
        c.begin(T1, label="empty")
        c.end(T1, 1 * MS, 0)
        assert c.recv() == (ACK, {"trace": T1})
    with tphd.connect() as c:
        assert wait_for(lambda: c.qjson("stats", {"id": T1, "format": "json"})["calls"] == 0)
        s = c.qjson("get", {"id": T1})
        assert (s["label"], s["calls"], s["status"]) == ("empty", 0, "complete")
