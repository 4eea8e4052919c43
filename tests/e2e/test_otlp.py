"""tphd --otlp-endpoint end to end: a real tphd forwards the traces a real
traced program sends to a loopback OTLP/HTTP receiver in this file. Protobuf
bodies are decoded by Debian's `protoc --decode` against
data/otlp_trace.proto (written from OTLP's field numbers), JSON bodies
directly, and both are brought to one plain form to compare. The
OpenTelemetry JS SDK (tests/e2e/otlp-js, from npm) sends the same spans to
the same receiver as an independent encoder."""

import gzip
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tphd_wire import free_port
from tphlib import DATA, DEMO_APP, TPHD, Daemon, base_env, needs_tph, needs_tphd, tph

pytestmark = [needs_tph, needs_tphd]

PROTO = DATA / "otlp_trace.proto"
JS_DIR = Path(__file__).resolve().parent / "otlp-js"
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

needs_protoc = pytest.mark.skipif(shutil.which("protoc") is None,
                                  reason="protoc missing: deploy/deps.sh installs protobuf-compiler")


def extension_ready():
    probe = "import tracepatch._tracepatch as n; assert hasattr(n, 'Session')"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


needs_ext = pytest.mark.skipif(not extension_ready(), reason="the tracepatch extension is not built")


# ---- the receiver ---------------------------------------------------------------------


class Receiver:
    """POST /v1/traces on 127.0.0.1: records every request and answers with
    the next status of `statuses` (the last one repeats), after `delay` s."""

    def __init__(self, statuses=(200,), delay=0.0):
        self.requests = []
        self.statuses = list(statuses)
        self.delay = delay
        self.lock = threading.Lock()
        self.got = threading.Condition(self.lock)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b""  # Node's http client streams the body in chunks
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    chunk = self.rfile.read(size)
                    self.rfile.readline()
                    if size == 0:
                        return body
                    body += chunk

            def do_POST(self):
                body = self.read_body()
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with outer.lock:
                    status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                if outer.delay:
                    time.sleep(outer.delay)
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body, "status": status})
                    outer.got.notify_all()
                reply = b"{}" if status == 200 else b"overloaded"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, n, timeout=30):
        with self.lock:
            ok = self.got.wait_for(lambda: len(self.requests) >= n, timeout)
        assert ok, f"{len(self.requests)} requests, expected {n}"
        return self.requests[:n]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# ---- decoding both forms into one plain form ------------------------------------------

_TOKEN = re.compile(r'\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\{)|(\})|(:)|("(?:[^"\\]|\\.)*")|([-0-9.eE+]+))')


def _unescape(lit):
    """protoc's C-style string escapes -> bytes."""
    out, i, s = bytearray(), 0, lit[1:-1]
    simple = {"n": 10, "r": 13, "t": 9, '"': 34, "'": 39, "\\": 92}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
        elif s[i + 1] in simple:
            out.append(simple[s[i + 1]])
            i += 2
        elif s[i + 1] == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", s[i + 2:])
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        else:
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            out.append(int(m.group(), 8))
            i += 1 + len(m.group())
    return bytes(out)


def parse_text_format(text):
    """protoc's text format -> dict of field -> list of values (messages
    are dicts, strings bytes, numbers int)."""
    pos, stack = 0, [{}]
    key = None
    while True:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            assert text[pos:].strip() == "", f"cannot parse: {text[pos:pos + 60]!r}"
            break
        pos = m.end()
        ident, lbrace, rbrace, colon, string, number = m.groups()
        if ident and key is None:
            key = ident
        elif colon:
            continue
        elif lbrace:
            child = {}
            stack[-1].setdefault(key, []).append(child)
            stack.append(child)
            key = None
        elif rbrace:
            stack.pop()
        elif string is not None:
            stack[-1].setdefault(key, []).append(_unescape(string))
            key = None
        else:
            tok = number or ident
            stack[-1].setdefault(key, []).append(int(tok) if re.fullmatch(r"-?\d+", tok) else tok)
            key = None
    return stack[0]


def protoc_decode(body):
    r = subprocess.run(["protoc", f"--proto_path={PROTO.parent}",
                        "--decode=otlp.ExportTraceServiceRequest", PROTO.name],
                       input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return parse_text_format(r.stdout.decode())


def _one(m, k, default=None):
    v = m.get(k)
    return v[0] if v else default


def _any_pb(v):
    for k, conv in (("string_value", lambda b: b.decode()), ("int_value", int),
                    ("bool_value", lambda b: b == "true" or b is True), ("double_value", float)):
        if k in v:
            return conv(v[k][0])
    raise AssertionError(f"unknown AnyValue {v}")


def _attrs_pb(lst):
    return {_one(kv, "key").decode(): _any_pb(_one(kv, "value")) for kv in lst or []}


def plain_from_protobuf(body):
    """[(resource attrs, scope, [span])] with ids as hex and times as ints."""
    req = protoc_decode(body)
    out = []
    for rs in req.get("resource_spans", []):
        for ss in rs.get("scope_spans", []):
            scope = _one(ss, "scope", {})
            spans = []
            for s in ss.get("spans", []):
                st = _one(s, "status")
                spans.append({
                    "trace_id": _one(s, "trace_id").hex(),
                    "span_id": _one(s, "span_id").hex(),
                    "parent": _one(s, "parent_span_id", b"").hex(),
                    "name": _one(s, "name").decode(),
                    "kind": _one(s, "kind", 0),
                    "start": _one(s, "start_time_unix_nano"),
                    "end": _one(s, "end_time_unix_nano"),
                    "attributes": _attrs_pb(s.get("attributes")),
                    "events": [{"name": _one(e, "name").decode(), "time": _one(e, "time_unix_nano"),
                                "attributes": _attrs_pb(e.get("attributes"))}
                               for e in s.get("events", [])],
                    "status": {"code": _one(st, "code", 0), "message": _one(st, "message", b"").decode()}
                    if st else None,
                })
            out.append((_attrs_pb(_one(rs, "resource", {}).get("attributes")),
                        (_one(scope, "name", b"").decode(), _one(scope, "version", b"").decode()),
                        spans))
    return out


def _any_json(v):
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "doubleValue" in v:
        return float(v["doubleValue"])
    raise AssertionError(f"unknown AnyValue {v}")


def _attrs_json(lst):
    return {kv["key"]: _any_json(kv["value"]) for kv in lst or []}


def plain_from_json(doc):
    out = []
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            spans = []
            for s in ss["spans"]:
                st = s.get("status")
                spans.append({
                    "trace_id": s["traceId"], "span_id": s["spanId"],
                    "parent": s.get("parentSpanId", ""), "name": s["name"], "kind": s["kind"],
                    "start": int(s["startTimeUnixNano"]), "end": int(s["endTimeUnixNano"]),
                    "attributes": _attrs_json(s.get("attributes")),
                    "events": [{"name": e["name"], "time": int(e["timeUnixNano"]),
                                "attributes": _attrs_json(e.get("attributes"))}
                               for e in s.get("events", [])],
                    "status": {"code": st.get("code", 0), "message": st.get("message", "")}
                    if st else None,
                })
            scope = ss.get("scope", {})
            out.append((_attrs_json(rs["resource"]["attributes"]),
                        (scope.get("name", ""), scope.get("version", "")), spans))
    return out


# ---- running things ------------------------------------------------------------------------


def start(tmp_path, *args, http=True):
    port = free_port()
    extra = ["--http", f"127.0.0.1:{port}"] if http else ["--no-http"]
    return Daemon(tmp_path, [*extra, *args])


SCRIPT = r'''
import json, sys
from tracepatch import trace
''' + DEMO_APP + r'''
n = int(sys.argv[1])
kw = json.loads(sys.argv[2])
ids = []
for i in range(n):
    with trace(daemon="required", **kw) as t:
        handle_request(42)
    ids.append(t.trace_id)
print(json.dumps(ids))
'''


def traced_env(tmp_path, d):
    """base_env() reaching d, with PYTHONPATH absolute (scripts run elsewhere)."""
    env = base_env(tmp_path)
    env["TRACEPATCH_SOCKET"] = str(d.socket)
    paths = env.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in paths if p)
    return env


def run_traced(tmp_path, d, n=1, **kw):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    env = traced_env(tmp_path, d)
    r = subprocess.run([sys.executable, str(script), str(n), json.dumps({"label": "otlp-demo", **kw})],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def status(tmp_path, d):
    r = tph("--socket", d.socket, "--json", "status", env=base_env(tmp_path))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_status(tmp_path, d, pred, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        st = status(tmp_path, d)
        if pred(st["otlp"]):
            return st["otlp"]
        assert time.monotonic() < deadline, f"status never matched: {st['otlp']}"
        time.sleep(0.1)


def logs(tmp_path, d, *args):
    r = tph("--socket", d.socket, "--json", "logs", *args, env=base_env(tmp_path))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["traces"]


def stop(d):
    d.proc.terminate()
    rc = d.proc.wait(timeout=15)
    log = d.read_log()
    d.stop()
    assert rc == 0, log
    return log


# ---- the spans -----------------------------------------------------------------------------

DEMO_CALLS = ["__main__.handle_request", "__main__.load_user", "__main__.validate",
              "__main__.validate", "__main__.validate", "__main__.parse"]


def check_demo_spans(plain, trace_id, port):
    """The spans of one DEMO_APP trace, checked field by field."""
    assert len(plain) == 1
    resource, scope, spans = plain[0]
    assert scope == ("tracepatch", "2.0.0")
    assert resource["service.name"] == "otlp-demo"
    assert resource["process.runtime.name"] == "cpython"
    assert resource["process.runtime.version"] == "%d.%d.%d" % sys.version_info[:3]
    assert resource["host.name"] == socket.gethostname()
    assert isinstance(resource["process.pid"], int) and resource["process.pid"] > 0

    root, calls = spans[0], spans[1:]
    assert [s["name"] for s in calls] == DEMO_CALLS
    assert {s["trace_id"] for s in spans} == {trace_id}
    assert root["name"] == "otlp-demo" and root["parent"] == ""
    assert root["attributes"]["tracepatch.trace_id"] == trace_id
    assert root["attributes"]["tracepatch.url"] == f"http://127.0.0.1:{port}/t/{trace_id}"
    assert "token" not in json.dumps(root)
    assert root["attributes"]["tracepatch.call_count"] == 6
    assert len({s["span_id"] for s in spans}) == 7
    handle = calls[0]
    assert handle["parent"] == root["span_id"]
    assert [c["parent"] for c in calls[1:]] == [handle["span_id"]] * 5
    assert all(s["kind"] == 1 for s in spans)

    # Timing: inside the parent, in order, durations as tracepatch measured.
    assert root["start"] <= handle["start"] <= handle["end"] <= root["end"]
    prev_end = handle["start"]
    for c in calls[1:]:
        assert prev_end <= c["start"] <= c["end"] <= handle["end"]
        assert c["end"] - c["start"] == c["attributes"]["tracepatch.active_ns"]
        prev_end = c["end"]
    assert handle["end"] - handle["start"] == handle["attributes"]["tracepatch.active_ns"]

    a = handle["attributes"]
    assert a["code.function"] == "handle_request" and a["code.namespace"] == "__main__"
    assert a["code.filepath"].endswith("app.py")
    assert a["code.lineno"] == DEMO_APP.splitlines().index("def handle_request(uid):") + 4
    assert a["thread.id"] == 0
    assert a["tracepatch.args"] == "uid=42"
    assert a["tracepatch.return"] == "{'id': 42, 'name': 'Alice'}"
    assert calls[1]["attributes"]["tracepatch.return"] == "{'id': 42, 'name': 'Alice'}"
    assert calls[2]["attributes"]["tracepatch.return"] == "True"

    parse = calls[5]
    assert parse["attributes"]["tracepatch.args"] == "text='x'"
    assert "tracepatch.return" not in parse["attributes"]
    assert parse["status"] == {"code": 2, "message": "ValueError"}
    assert parse["events"] == [{
        "name": "exception", "time": parse["end"],
        "attributes": {"exception.type": "ValueError",
                       "exception.message": "invalid literal for int() with base 10: 'x'",
                       "exception.escaped": True}}]
    assert all(c["status"] is None for c in calls[:5])
    return spans


@needs_protoc
@needs_ext
def test_every_call_becomes_a_span_in_protobuf_and_the_trace_is_marked_exported(tmp_path, receiver):
    d = start(tmp_path, "--otlp-endpoint", receiver.url, "--otlp-header", "Authorization=Bearer s3cret",
              "--otlp-header", "X-Scope-OrgID=team-a")
    port = int(re.search(r"--http', '127.0.0.1:(\d+)", str(d.proc.args)).group(1))
    (tid,) = run_traced(tmp_path, d)
    (req,) = receiver.wait(1)
    assert req["path"] == "/v1/traces"
    assert req["headers"]["Content-Type"] == "application/x-protobuf"
    assert req["headers"]["Authorization"] == "Bearer s3cret"
    assert req["headers"]["X-Scope-OrgID"] == "team-a"
    plain = plain_from_protobuf(req["body"])
    check_demo_spans(plain, tid, port)

    st = wait_status(tmp_path, d, lambda o: o["exported_traces"] == 1)
    assert st == {**st, "endpoint": receiver.url + "/v1/traces", "pending": 0, "exported_traces": 1,
                  "exported_spans": 7, "lost_traces": 0, "requests": 1, "failed_requests": 0,
                  "retries": 0, "buffered_bytes": 0}
    assert st["last_error"] is None
    (row,) = logs(tmp_path, d)
    assert (row["otlp"], row["otel_trace_id"]) == ("exported", tid)

    # `tph export --format otlp-json` is the same request, as OTLP/JSON.
    r = tph("--socket", d.socket, "export", tid[:8], "--format", "otlp-json", env=base_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert plain_from_json(json.loads(r.stdout)) == plain

    text = tph("--socket", d.socket, "status", env=base_env(tmp_path)).stdout
    assert f"otlp:        {receiver.url}/v1/traces\n" in text
    assert "1 traces (7 spans) exported, 0 pending, 0 lost, 0 retries\n" in text
    stop(d)
    assert len(receiver.requests) == 1, "an exported trace is not sent again"


@needs_ext
def test_http_json_protocol_sends_the_same_spans(tmp_path, receiver):
    d = start(tmp_path, "--otlp-endpoint", receiver.url + "/v1/traces", "--otlp-protocol", "http/json")
    port = int(re.search(r"--http', '127.0.0.1:(\d+)", str(d.proc.args)).group(1))
    (tid,) = run_traced(tmp_path, d)
    (req,) = receiver.wait(1)
    assert req["path"] == "/v1/traces"
    assert req["headers"]["Content-Type"] == "application/json"
    check_demo_spans(plain_from_json(json.loads(req["body"])), tid, port)
    stop(d)


@needs_protoc
@needs_ext
def test_traceparent_joins_the_request_trace_and_is_searchable(tmp_path, receiver):
    d = start(tmp_path, "--otlp-endpoint", receiver.url, "--otlp-calls", "roots",
              "--otlp-service-name", "shop")
    (tid,) = run_traced(tmp_path, d, otel_parent=PARENT)
    (req,) = receiver.wait(1)
    ((resource, _, spans),) = plain_from_protobuf(req["body"])
    assert resource["service.name"] == "shop"
    assert [s["name"] for s in spans] == ["otlp-demo", "__main__.handle_request"]
    assert {s["trace_id"] for s in spans} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    assert spans[0]["parent"] == "00f067aa0ba902b7"
    assert spans[0]["attributes"]["tracepatch.trace_id"] == tid
    assert spans[0]["attributes"]["tracepatch.calls_not_exported"] == 5
    found = logs(tmp_path, d, "--otel-trace", "4bf92f35")
    assert [t["id"] for t in found] == [tid]
    assert found[0]["otel_trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert logs(tmp_path, d, "--otel-trace", tid[:12]) == []

    # The report UI's API filters the same way.
    port = int(re.search(r"--http', '127.0.0.1:(\d+)", str(d.proc.args)).group(1))
    token = (d.db.parent / "token").read_text().strip()
    import http.client

    def api(path):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path, headers={"Cookie": f"tp_token_{port}={token}"})
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        assert r.status == 200, body
        return [t["id"] for t in body["traces"]]

    assert api("/api/traces?otel_trace=4bf92f3577b34da6") == [tid]
    assert api("/api/traces?otel_trace=" + tid[:12]) == []
    stop(d)


@needs_ext
def test_label_and_duration_filters_skip_traces(tmp_path, receiver):
    d = start(tmp_path, "--otlp-endpoint", receiver.url, "--otlp-protocol", "http/json",
              "--otlp-label", "keep-*", "--otlp-min-duration", "0ms")
    run_traced(tmp_path, d, label="drop-me")
    (kept,) = run_traced(tmp_path, d, label="keep-me")
    (req,) = receiver.wait(1)
    ((_, _, spans),) = plain_from_json(json.loads(req["body"]))
    assert spans[0]["attributes"]["tracepatch.trace_id"] == kept
    st = wait_status(tmp_path, d, lambda o: o["exported_traces"] == 1 and o["skipped_traces"] == 1)
    assert st["pending"] == 0
    assert {t["label"]: t["otlp"] for t in logs(tmp_path, d)} == {"drop-me": "skipped",
                                                                  "keep-me": "exported"}
    stop(d)
    (tmp_path / "long").mkdir()
    d2 = start(tmp_path / "long", "--otlp-endpoint", receiver.url, "--otlp-min-duration", "1h")
    run_traced(tmp_path, d2)
    wait_status(tmp_path, d2, lambda o: o["skipped_traces"] == 1)
    stop(d2)
    assert len(receiver.requests) == 1


@needs_ext
def test_503_is_retried_with_backoff_then_counted_lost(tmp_path):
    rec = Receiver(statuses=(503,))
    try:
        d = start(tmp_path, "--otlp-endpoint", rec.url, "--otlp-retries", "2", "--otlp-backoff", "0.2s")
        t0 = time.monotonic()
        run_traced(tmp_path, d)
        rec.wait(3)
        st = wait_status(tmp_path, d, lambda o: o["lost_traces"] == 1)
        assert time.monotonic() - t0 >= 0.2 + 0.4, "backoff: 0.2 s, then 0.4 s"
        assert st == {**st, "exported_traces": 0, "lost_traces": 1, "lost_spans": 7, "requests": 3,
                      "failed_requests": 3, "retries": 2, "pending": 0,
                      "last_error": "HTTP 503: overloaded"}
        assert [t["otlp"] for t in logs(tmp_path, d)] == ["lost"]
        time.sleep(0.5)
        assert len(rec.requests) == 3, "no fourth attempt"
        log = stop(d)
        assert log.count("OTLP export to") == 1
        assert f"tphd: OTLP export to {rec.url}/v1/traces failed: HTTP 503: overloaded; 1 traces lost\n" in log
    finally:
        rec.close()


@needs_ext
def test_down_receiver_loses_traces_counted_and_logged_once_and_ingest_goes_on(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    d = start(tmp_path, "--otlp-endpoint", url, "--otlp-retries", "1", "--otlp-backoff", "0.1s")
    ids = run_traced(tmp_path, d, n=5)
    assert sorted(t["id"] for t in logs(tmp_path, d)) == sorted(ids), "every trace stored"
    st = wait_status(tmp_path, d, lambda o: o["lost_traces"] == 5)
    assert st["exported_traces"] == 0 and st["pending"] == 0
    assert "Couldn't connect to server" in st["last_error"]
    log = stop(d)
    assert log.count("failed: Couldn't connect to server") == 1, log


@needs_ext
def test_hanging_receiver_never_stalls_ingest_and_a_stop_is_prompt(tmp_path):
    rec = Receiver(delay=30)
    try:
        d = start(tmp_path, "--otlp-endpoint", rec.url, "--otlp-timeout", "60s")
        t0 = time.monotonic()
        ids = run_traced(tmp_path, d, n=10)
        assert time.monotonic() - t0 < 20
        assert sorted(t["id"] for t in logs(tmp_path, d)) == sorted(ids)
        wait_status(tmp_path, d, lambda o: o["requests"] == 0 and o["pending"] >= 1)
        t1 = time.monotonic()
        stop(d)
        assert time.monotonic() - t1 < 5, "the request in flight is abandoned at stop"
        # Pending traces survive the restart: a receiver that answers gets them.
    finally:
        rec.close()
    rec2 = Receiver()
    try:
        (tmp_path / "again").mkdir()
        d2 = Daemon(tmp_path / "again", ["--no-http", "--db", str(d.db), "--otlp-endpoint", rec2.url])
        st = wait_status(tmp_path, d2, lambda o: o["exported_traces"] == 10)
        assert st["pending"] == 0 and st["lost_traces"] == 0
        stop(d2)
    finally:
        rec2.close()


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@needs_ext
def test_slow_receiver_keeps_memory_within_the_bound(tmp_path):
    rec = Receiver(delay=0.5)
    try:
        d = start(tmp_path, "--otlp-endpoint", rec.url, "--otlp-max-spans", "5000", http=False)
        script = tmp_path / "big.py"
        script.write_text(r'''
import sys
from tracepatch import trace
def leaf(i):
    return "x" * 100 + str(i)
for n in range(int(sys.argv[1])):
    with trace(label="big", daemon="required", max_calls=100000, max_repr=120) as t:
        for i in range(20000):
            leaf(i)
''')
        env = traced_env(tmp_path, d)
        subprocess.run([sys.executable, str(script), "3"], env=env, check=True, timeout=120)
        rec.wait(1, timeout=60)
        base = rss_kib(d.proc.pid)
        subprocess.run([sys.executable, str(script), "100"], env=env, check=True, timeout=300)
        st = wait_status(tmp_path, d, lambda o: o["pending"] > 0)
        grown = rss_kib(d.proc.pid) - base
        st = status(tmp_path, d)["otlp"]
        print(f"slow receiver: tphd RSS grew {grown} KiB over 100 traces x 20000 calls; "
              f"largest request body {st['max_buffered_bytes']} B, {st['pending']} pending")
        # One request body (4 MiB) plus one encoded trace is the bound.
        assert st["max_buffered_bytes"] <= (4 << 20) + (3 << 20)
        asan = "libasan" in Path(f"/proc/{d.proc.pid}/maps").read_text()
        stop(d)
        if asan:
            pytest.skip("the request body stayed bounded; RSS says nothing under ASan, "
                        "whose quarantine keeps freed memory")
        # Held in memory, 100 traces of 5000 spans would be over 150 MiB.
        assert grown < 64 * 1024, f"RSS grew {grown} KiB"
    finally:
        rec.close()


# ---- an independent encoder: the OpenTelemetry JS SDK ---------------------------------------

def js_ready():
    return shutil.which("node") is not None and \
        (JS_DIR / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-proto").is_dir()


@needs_protoc
@needs_ext
@pytest.mark.skipif(not js_ready(), reason="npm packages missing: deploy/deps.sh installs tests/e2e/otlp-js")
def test_opentelemetry_js_sdk_sends_the_same_fields(tmp_path, receiver):
    d = start(tmp_path, "--otlp-endpoint", receiver.url)
    run_traced(tmp_path, d)
    (ours,) = receiver.wait(1)
    stop(d)
    ours_plain = plain_from_protobuf(ours["body"])
    spec = tmp_path / "spans.json"
    spec.write_text(json.dumps(ours_plain))
    r = subprocess.run(["node", str(JS_DIR / "send.mjs"), receiver.url + "/v1/traces", str(spec)],
                       capture_output=True, text=True, timeout=60, cwd=JS_DIR)
    assert r.returncode == 0, r.stderr
    (_, theirs) = receiver.wait(2)
    assert theirs["headers"]["Content-Type"] == "application/x-protobuf"
    theirs_plain = plain_from_protobuf(theirs["body"])

    def comparable(plain, times):
        """The SDK always writes a status (UNSET when none was set) and turns
        [s, ns] into nanoseconds through a double, which is exact to ~256 ns
        at today's epoch: an unset status is no status, and times move to
        `times`, compared with that tolerance."""
        out = json.loads(json.dumps(plain))
        for _, _, spans in out:
            spans.sort(key=lambda sp: sp["span_id"])  # the SDK sends them as they end
            for sp in spans:
                if sp["status"] == {"code": 0, "message": ""}:
                    sp["status"] = None
                for obj in [sp, *sp["events"]]:
                    for k in ("start", "end", "time"):
                        if k in obj:
                            times.append(obj.pop(k))
        return out

    ours_times, theirs_times = [], []
    assert comparable(theirs_plain, theirs_times) == comparable(ours_plain, ours_times)
    assert max(abs(a - b) for a, b in zip(ours_times, theirs_times)) < 1000
    assert len(ours_plain[0][2]) == 7


# ---- options and files ---------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--otlp-endpoint", "grpc://collector:4317"], "invalid --otlp-endpoint 'grpc://collector:4317'"),
    (["--otlp-endpoint", "http://x", "--otlp-protocol", "grpc"],
     "invalid --otlp-protocol 'grpc' (http/protobuf or http/json)"),
    (["--otlp-endpoint", "http://x", "--otlp-header", "NoEquals"], "invalid --otlp-header 'NoEquals'"),
    (["--otlp-endpoint", "http://x", "--otlp-header", "a:b=c"], "invalid --otlp-header 'a:b=c'"),
    (["--otlp-endpoint", "http://x", "--otlp-calls", "some"],
     "invalid --otlp-calls 'some' (all, slow or roots)"),
    (["--otlp-endpoint", "http://x", "--otlp-max-spans", "0"], "invalid --otlp-max-spans '0'"),
    (["--otlp-endpoint", "http://x", "--otlp-min-duration", "soon"],
     "invalid --otlp-min-duration 'soon'"),
    (["--otlp-label", "api-*"], "--otlp-* options need --otlp-endpoint"),
    (["--otlp-endpoint", "http://x:4318/?api_key=k"],
     "invalid --otlp-endpoint 'http://x:4318/?api_key=k' (no query or fragment; put credentials "
     "in --otlp-header)"),
])
def test_bad_otlp_options_are_usage_errors(tmp_path, args, message):
    r = subprocess.run([str(TPHD), "--socket", str(tmp_path / "s"), "--db", str(tmp_path / "db"),
                        *args], capture_output=True, text=True, timeout=10, env=base_env(tmp_path))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert not (tmp_path / "db").exists()


@needs_ext
def test_otlp_json_of_a_file_has_the_spans_the_daemon_sends(tmp_path, receiver):
    d = start(tmp_path, "--otlp-endpoint", receiver.url, "--otlp-protocol", "http/json", http=False)
    (tid,) = run_traced(tmp_path, d)
    (req,) = receiver.wait(1)
    env = base_env(tmp_path)
    r = tph("--socket", d.socket, "export", tid, "-o", tmp_path / "t.json", env=env)
    assert r.returncode == 0, r.stderr
    stop(d)
    r = tph("export", tmp_path / "t.json", "--format", "otlp-json", env=env)
    assert r.returncode == 0, r.stderr
    ((f_res, f_scope, f_spans),) = plain_from_json(json.loads(r.stdout))
    ((d_res, d_scope, d_spans),) = plain_from_json(json.loads(req["body"]))
    assert f_scope == d_scope
    assert f_res["service.name"] == d_res["service.name"] == "otlp-demo"
    assert "process.pid" not in f_res, "a file knows no process"
    assert f_spans == d_spans


# ---- other users ------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: clients run as other users (os.setuid)")
def test_other_users_see_their_pending_traces_not_the_exporters_counts():
    import tempfile

    import tphd_wire
    from tphd_wire import Conn, simple_trace

    rec = Receiver(delay=30)  # the first request stays in flight: its trace stays pending
    tmp = tempfile.mkdtemp(prefix="tphd-otlp-users-")
    os.chmod(tmp, 0o755)
    d = tphd_wire.Daemon(TPHD, tmp, extra=["--otlp-endpoint", rec.url])
    os.makedirs(os.path.dirname(d.sock), mode=0o755)
    try:
        d.start()
        os.chmod(d.sock, 0o666)

        def upload():
            with Conn(d.sock) as c:
                simple_trace(c, "a" * 32)
            return True

        def otlp_status(want_pending):
            deadline = time.monotonic() + 20
            while True:
                with Conn(d.sock) as c:
                    st = c.qjson("status")["otlp"]
                if st["pending"] == want_pending or time.monotonic() > deadline:
                    return st

        tphd_wire.as_user(65534, upload)
        mine = tphd_wire.as_user(65534, lambda: otlp_status(1))
        assert mine == {"endpoint": rec.url + "/v1/traces", "pending": 1,
                        **dict.fromkeys(["exported_traces", "exported_spans", "lost_traces",
                                         "lost_spans", "skipped_traces", "requests",
                                         "failed_requests", "retries", "buffered_bytes",
                                         "max_buffered_bytes", "last_error"])}
        assert tphd_wire.as_user(65533, lambda: otlp_status(0))["pending"] == 0
        with Conn(d.sock) as c:
            root = c.qjson("status")["otlp"]
        assert root["pending"] == 1 and root["exported_traces"] == 0
    finally:
        tphd_wire.stop_all()
        rec.close()
        shutil.rmtree(tmp)


@needs_ext
def test_credentials_in_the_endpoint_are_sent_but_never_shown(tmp_path, receiver):
    url = receiver.url.replace("http://", "http://tp:s3cret@")
    d = start(tmp_path, "--otlp-endpoint", url, http=False)
    run_traced(tmp_path, d)
    (req,) = receiver.wait(1)
    assert req["headers"]["Authorization"] == "Basic dHA6czNjcmV0"  # tp:s3cret
    st = wait_status(tmp_path, d, lambda o: o["exported_traces"] == 1)
    assert st["endpoint"] == receiver.url + "/v1/traces"
    text = tph("--socket", d.socket, "status", env=base_env(tmp_path)).stdout
    log = stop(d)
    assert "s3cret" not in text and "s3cret" not in log
    assert f"exporting traces to {receiver.url}/v1/traces (http/protobuf)" in log
