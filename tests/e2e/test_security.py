"""tphd, tph and the extension against a hostile local world (issue 10,
"Security", and the places where the spec and the code disagreed): a real
tphd on a real socket, and the hostile party (another uid, a fake daemon, a
client sending escape sequences) written here."""
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tphd_wire  # noqa: E402
from test_http_api import TPH, TPHD, WebDaemon, has_http  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD) or not os.path.exists(TPH),
                                reason="tphd and tph not built")
needs_http = pytest.mark.skipif(not has_http(), reason="tphd built without HTTP")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")

PY = "/usr/bin/python3"  # the interpreter build/ made the extension for
FORMATS = ["json", "csv", "html", "chrome", "folded"]


def run_tph(sock, *args, env=None, timeout=60, **kw):
    e = dict(env or os.environ)
    e.pop("TRACEPATCH_SOCKET", None)
    return subprocess.run([TPH, "--socket", sock, *map(str, args)], capture_output=True,
                          env=e, timeout=timeout, **kw)


# ---- 1: nothing tphd writes to a file carries the HTTP token -----------------


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    d = WebDaemon(tmp_path_factory.mktemp("sec-web")).start()
    d.wait_http()
    d.ids = d.seed("checkout-a")
    yield d
    assert d.stop() == 0, d.read_log()


@needs_http
@pytest.mark.parametrize("fmt", FORMATS)
def test_http_export_carries_no_token(web, fmt):
    tid = web.ids["checkout-a"]
    r = web.request(f"/api/traces/{tid}/export?format={fmt}")
    assert r.status == 200, r.body[:300]
    assert len(web.token) == 32
    assert web.token.encode() not in r.body
    assert b"token=" not in r.body


@needs_http
@pytest.mark.parametrize("fmt", FORMATS)
def test_tph_export_to_a_file_carries_no_token_and_is_private(web, fmt, tmp_path):
    tid = web.ids["checkout-a"]
    out = tmp_path / f"report.{fmt}"
    old = os.umask(0o022)
    try:
        p = run_tph(web.sock, "export", tid, "--format", fmt, "-o", out)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    data = out.read_bytes()
    assert len(data) > 100
    assert web.token.encode() not in data
    assert b"token=" not in data
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@needs_http
def test_html_report_still_names_its_trace(web):
    # The summary stays in the report; only its credential-bearing url goes.
    tid = web.ids["checkout-a"]
    p = run_tph(web.sock, "export", tid, "--format", "html")
    assert p.returncode == 0, p.stderr
    assert tid.encode() in p.stdout
    assert b'"url"' not in p.stdout


# ---- spec: `tph export -o -` is standard output ------------------------------


@needs_http
def test_export_dash_o_dash_writes_stdout_not_a_file(web, tmp_path):
    tid = web.ids["checkout-a"]
    plain = run_tph(web.sock, "export", tid, "--format", "csv")
    dash = run_tph(web.sock, "export", tid, "--format", "csv", "-o", "-", cwd=tmp_path)
    assert dash.returncode == 0, dash.stderr
    assert dash.stdout == plain.stdout
    assert len(dash.stdout) > 50
    assert not (tmp_path / "-").exists()


# ---- 2: a socket directory another user made; a listener that is not ours ----

ATTACKER = 65534  # nobody
VICTIM = 64999    # an unprivileged uid with no passwd entry: nothing else uses it


def as_uid(uid, argv, **kw):
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]


@needs_root
def test_tphd_refuses_the_default_dir_another_user_precreated(tmp_path):
    # XDG_RUNTIME_DIR (and TRACEPATCH_SOCKET) unset: the default is
    # /tmp/tracepatch-<uid>. The whole scenario runs in a private /tmp so the
    # machine's /tmp stays untouched; a tphd that wrongly starts is killed.
    # tphd is copied out first: a build tree under /tmp disappears under the mount.
    script = f"""
set -e
bin=$(mktemp -p /dev/shm tphd.XXXXXX)
trap 'rm -f "$bin"' EXIT
cp {TPHD} "$bin" && chmod 0755 "$bin"
mount -t tmpfs tmpfs /tmp
mkdir -m 0777 /tmp/tracepatch-{VICTIM}
chown {ATTACKER}:{ATTACKER} /tmp/tracepatch-{VICTIM}
chmod 0777 /tmp/tracepatch-{VICTIM}
mkdir -m 0700 /tmp/state && chown {VICTIM}:{VICTIM} /tmp/state
set +e
env -i PATH=/usr/bin:/bin XDG_STATE_HOME=/tmp/state HOME=/tmp/state \\
    timeout -s KILL 20 setpriv --reuid={VICTIM} --regid={VICTIM} --clear-groups "$bin" --no-http
echo "rc=$?"
ls -A /tmp/tracepatch-{VICTIM}
"""
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.splitlines() == ["rc=1"], (p.stdout, p.stderr)
    assert p.stderr == (
        f"tphd: refusing the socket directory /tmp/tracepatch-{VICTIM} is not owned by this "
        f"user (owner uid {ATTACKER}, group {ATTACKER}, mode 0777; this is uid {VICTIM}): "
        "another user could replace the socket or the database; remove it or fix its owner "
        "and mode (0700)\n")


@pytest.mark.parametrize("mode", [0o777, 0o707, 0o702], ids=["0777", "0707", "0702"])
def test_tphd_refuses_its_own_dir_when_others_may_write(tmp_path, mode):
    run = tmp_path / "run"
    run.mkdir()
    os.chmod(run, mode)
    d = tphd_wire.Daemon(TPHD, tmp_path)
    p = subprocess.run(d.args(), capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert f"tphd: refusing the socket directory {run} is writable by other users" in p.stderr
    assert f"mode {mode:04o}" in p.stderr
    assert not (run / "tphd.sock").exists()


def test_tphd_accepts_its_own_private_dir(tmp_path):
    (tmp_path / "run").mkdir(mode=0o700)
    d = tphd_wire.Daemon(TPHD, tmp_path).start()
    assert d.stop() == 0


FAKE = r"""
import os, socket, sys
path, welcome, log = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    got = b""
    try:
        c.sendall(welcome)
        while True:
            b = c.recv(65536)
            if not b:
                break
            got += b
    except OSError:
        pass
    with open(log, "ab") as f:
        f.write(b"conn %d bytes\n" % len(got))
        f.write(got)
    c.close()
"""


@pytest.fixture
def fake_listener():
    """A fake tphd run by another user (nobody), where the real one would be."""
    d = tempfile.mkdtemp(prefix="tph-fake-")
    os.chmod(d, 0o777)
    sock, log = os.path.join(d, "tphd.sock"), os.path.join(d, "got")
    open(log, "wb").close()
    os.chmod(log, 0o666)
    welcome = tphd_wire.frame(tphd_wire.WELCOME, {"v": 1, "caps": 3, "client": "evil", "pid": 1})
    p = subprocess.Popen(as_uid(ATTACKER, [sys.executable, "-c", FAKE, sock, welcome.hex(), log]),
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    yield sock, log
    p.kill()
    p.wait()
    subprocess.run(["rm", "-rf", d])


def received(log):
    with open(log, "rb") as f:
        return f.read()


@needs_root
def test_tph_sends_nothing_to_a_listener_of_another_user(fake_listener):
    sock, log = fake_listener
    p = run_tph(sock, "logs")
    assert p.returncode != 0
    assert (f"{sock} is served by uid {ATTACKER}").encode() in p.stderr, p.stderr
    time.sleep(0.3)
    assert b"bytes" not in received(log) or received(log).startswith(b"conn 0 bytes\n")
    assert b"TPH1" not in received(log)


EXT_CLIENT = r"""
import json, sys
import tracepatch
def secret(password):
    return len(password)
with tracepatch.trace(label="login", daemon=sys.argv[1]) as t:
    secret("hunter2-very-secret")
t._session.wait_upload(5)
print(json.dumps({"state": t.upload_state, "error": t._session.upload_error}))
"""


@needs_root
@pytest.mark.parametrize("daemon", ["path", "required"])
def test_extension_refuses_to_upload_to_a_listener_of_another_user(fake_listener, daemon,
                                                                   tmp_path):
    sock, log = fake_listener
    env = dict(os.environ)
    env.pop("TRACEPATCH_SOCKET", None)
    if daemon == "required":
        env["TRACEPATCH_SOCKET"] = sock
    code = EXT_CLIENT if daemon == "path" else EXT_CLIENT.replace("daemon=sys.argv[1]",
                                                                 'daemon="required"')
    # In tmp_path: the refused trace is saved as a file in the working directory.
    p = subprocess.run([PY, "-c", code, sock], capture_output=True, text=True,
                       env=env, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["state"] == "failed"
    assert out["error"].startswith(f"refused to upload: {sock} is served by uid {ATTACKER}"), out
    time.sleep(0.3)
    assert b"hunter2" not in received(log)
    assert b"TPH1" not in received(log)


# ---- 3: client text reaches no terminal and no log raw -----------------------

EVIL = "\x1b]0;pwned\x07\x1b[2Jevil\ntphd: stopped\x9b31m\u202e"
EVIL_SHOWN = "\\x1b]0;pwned\\x07\\x1b[2Jevil\\ntphd: stopped\\u009b31m\\u202e"


def hostile_hello(conn, argv0):
    conn.send(tphd_wire.HELLO, {"magic": "TPH1", "v": 1, "caps": 3, "pid": 4242,
                                "client": "evil/1", "py": "3.11.7", "host": "h",
                                "argv": [argv0]})
    msg = conn.recv()
    assert msg[0] == tphd_wire.WELCOME, msg


def assert_no_raw_control(data):
    raw = data if isinstance(data, bytes) else data.encode()
    for b in (b"\x1b", b"\x07", b"\xc2\x9b", "\u202e".encode()):
        assert b not in raw, (b, raw[:2000])


def test_tph_logs_escapes_labels_and_process_names(tmp_path):
    d = tphd_wire.Daemon(TPHD, tmp_path).start()
    c = d.connect(hello=False)
    hostile_hello(c, "/srv/\x1b[2Jx\x07")
    tphd_wire.simple_trace(c, "e" * 32, label=EVIL)
    assert c.recv()[0] == tphd_wire.ACK
    c.close()
    # In an empty directory: tph logs also lists .tracepatch/traces files.
    p = run_tph(d.sock, "logs", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert_no_raw_control(out)
    assert len(out.splitlines()) == 2  # the header and one row: no forged line
    assert "\\x1b]0;pwned\\x07\\x1b[2Jevil\\ntphd: st..." in out
    assert f"{os.getpid()} \\x1b[2Jx\\x07" in out
    tree = run_tph(d.sock, "tree", "e" * 8)
    assert tree.returncode == 0, tree.stderr
    assert_no_raw_control(tree.stdout)
    assert d.stop() == 0


def test_tph_view_and_explain_escape_client_text(tmp_path):
    # Label, host, python, platform and cwd (view); function names,
    # arguments and exceptions (explain): the traced program's text.
    d = tphd_wire.Daemon(TPHD, tmp_path).start()
    c = d.connect(hello=False)
    c.send(tphd_wire.HELLO, {"magic": "TPH1", "v": 1, "caps": 3, "pid": 4242, "client": "evil/1",
                             "py": "3.11" + EVIL, "host": "h" + EVIL, "argv": ["x"],
                             "platform": "p" + EVIL, "cwd": "/c" + EVIL})
    assert c.recv()[0] == tphd_wire.WELCOME
    c.funcs({0: ("app" + EVIL, "main" + EVIL, "/src/app.py", 10)})
    c.begin("f" * 32, label=EVIL)
    ev = tphd_wire.Events()
    ev.call(0, 1000, "x=" + EVIL).unwind(2000, "ValueError", EVIL)
    c.events("f" * 32, 0, ev)
    c.end("f" * 32, 3000, 1)
    assert c.recv()[0] == tphd_wire.ACK
    c.close()
    for cmd in ("view", "explain"):
        p = run_tph(d.sock, cmd, "f" * 8)
        assert p.returncode == 0, p.stderr
        out = p.stdout.decode()
        assert_no_raw_control(out)
        assert EVIL_SHOWN in out, out
        assert not any(ln.startswith("tphd: stopped") for ln in out.splitlines())  # forged
    assert d.stop() == 0


def test_tph_escapes_messages_from_the_daemon(tmp_path):
    import tphlib

    sock = tmp_path / "fake.sock"
    fake = tphlib.FakeDaemon(sock, tphlib.answering(
        [lambda qid: tphlib.reply_error(qid, -4009, "no trace " + EVIL)]))
    try:
        p = run_tph(sock, "tree", "abcd")
    finally:
        fake.close()
    assert p.returncode == 1
    assert p.stderr.decode() == f"tph: no trace {EVIL_SHOWN}\n"


def test_tphd_log_escapes_client_errors_and_rate_limits_them(tmp_path):
    d = tphd_wire.Daemon(TPHD, tmp_path).start()
    n = 5000
    t0 = time.monotonic()
    with d.connect() as c:
        frames = b"".join(tphd_wire.frame(tphd_wire.ERROR, {"code": -4002, "msg": "boom " + EVIL})
                          for _ in range(n))
        c.send_raw(frames)
        # A query answered means every ERROR before it was read.
        assert c.qjson("status")["pid"] == d.proc.pid
    elapsed = time.monotonic() - t0
    assert d.stop() == 0
    log = open(d.log, "rb").read()
    assert_no_raw_control(log)
    lines = log.decode().splitlines()
    assert lines[-1] == "tphd: stopped"
    assert sum(1 for l in lines if l.startswith("tphd: stopped")) == 1, lines[-20:]
    reported = [l for l in lines if " reports MALFORMED: boom " in l]
    assert reported[0].endswith(": boom " + EVIL_SHOWN)
    suppressed = [int(l.split(": ")[-1].split()[0]) for l in lines
                  if l.endswith(" messages suppressed")]
    assert len(reported) <= 10 + int(elapsed) + 1, (len(reported), elapsed)
    assert len(reported) + sum(suppressed) == n
    assert len(log) < 20000


def _client_lines(lines):
    """(lines reporting a client's ERROR, messages counted as suppressed)."""
    reported = [l for l in lines if " reports MALFORMED: " in l]
    dropped = 0
    for l in lines:
        if l.endswith(" messages suppressed"):  # one connection's
            dropped += int(l.split(": ")[-1].split()[0])
        elif " messages about clients suppressed (all clients together: " in l:
            dropped += int(l.split()[1])
    return reported, dropped


def test_tphd_log_budget_holds_for_clients_that_reconnect(tmp_path):
    # Each connection stays inside its own burst: only the budget of all
    # clients together keeps a reconnect loop from writing a line per ERROR.
    d = tphd_wire.Daemon(TPHD, tmp_path).start()
    conns, each = 400, 5
    t0 = time.monotonic()
    for _ in range(conns):
        with d.connect() as c:
            c.send_raw(b"".join(tphd_wire.frame(tphd_wire.ERROR, {"code": -4002, "msg": "loop"})
                                for _ in range(each)))
            assert c.qjson("status")["pid"] == d.proc.pid  # every ERROR was read
    elapsed = time.monotonic() - t0
    assert d.stop() == 0
    lines = open(d.log, "rb").read().decode().splitlines()
    assert lines[-1] == "tphd: stopped"
    reported, dropped = _client_lines(lines)
    assert len(reported) + dropped == conns * each  # every line is written or counted
    assert 100 <= len(reported) <= 100 + 10 * (int(elapsed) + 2), (len(reported), elapsed)


def test_tphd_log_cuts_long_client_text(tmp_path):
    d = tphd_wire.Daemon(TPHD, tmp_path).start()
    msg = "\u00e9" * 50_000 + EVIL  # 100,000 bytes of two-byte characters, then controls
    with d.connect() as c:
        c.send_raw(tphd_wire.frame(tphd_wire.ERROR, {"code": -4002, "msg": msg}))
        assert c.qjson("status")["pid"] == d.proc.pid
    assert d.stop() == 0
    raw = open(d.log, "rb").read()
    assert_no_raw_control(raw)
    line, = [l for l in raw.decode().splitlines() if " reports MALFORMED: " in l]
    head = line[len("tphd: "):line.index(": \u00e9") + 2]  # "client N reports MALFORMED: "
    whole = len(head.encode()) + len(msg.encode())
    kept = 1024 - (1024 - len(head)) % 2  # whole characters only
    shown = "\u00e9" * ((kept - len(head)) // 2)
    assert line == f"tphd: {head}{shown}... ({whole - kept} more bytes)"


# ---- 4: trace files are private ---------------------------------------------

WRITER = r"""
import os, sys
import tracepatch
def login(password):
    return len(password)
with tracepatch.trace(label="login", daemon="off", cache=True) as t:
    login("hunter2")
t.to_json("out.json")
t.to_csv("out.csv")
t.to_chrome("out.chrome.json")
t.to_html("out.html")
"""


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_trace_files_and_their_dirs_are_private_whatever_the_umask(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(os.path.dirname(TPH), "..", "..", "client_ext"),
         "/usr/lib/python3/dist-packages"]))
    env.pop("TRACEPATCH_SOCKET", None)
    p = subprocess.run([PY, "-c", WRITER], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60, preexec_fn=lambda: os.umask(0o022))
    assert p.returncode == 0, p.stderr
    traces = tmp_path / ".tracepatch" / "traces"
    saved = list(traces.glob("login_*.json"))
    assert len(saved) == 1
    assert b"hunter2" in saved[0].read_bytes()
    assert mode_of(tmp_path / ".tracepatch") == 0o700
    assert mode_of(traces) == 0o700
    assert mode_of(saved[0]) == 0o600
    for name in ("out.json", "out.csv", "out.chrome.json", "out.html"):
        assert mode_of(tmp_path / name) == 0o600, name


def test_an_old_0755_cache_dir_of_ours_is_tightened(tmp_path):
    traces = tmp_path / ".tracepatch" / "traces"
    traces.mkdir(parents=True)
    os.chmod(tmp_path / ".tracepatch", 0o755)
    os.chmod(traces, 0o755)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(os.path.dirname(TPH), "..", "..", "client_ext"),
         "/usr/lib/python3/dist-packages"]))
    p = subprocess.run([PY, "-c", WRITER], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert mode_of(tmp_path / ".tracepatch") == 0o700
    assert mode_of(traces) == 0o700


def test_runner_outputs_are_private(tmp_path):
    (tmp_path / "app.py").write_text("def f(x):\n    return x\nf('hunter2')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(os.path.dirname(TPH), "..", "..", "client_ext"),
         "/usr/lib/python3/dist-packages"]))
    env.pop("TRACEPATCH_SOCKET", None)
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "none")
    p = subprocess.run([PY, "-m", "tracepatch", "run", "-o", "tree.txt", "--json", "t.json",
                        "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60, preexec_fn=lambda: os.umask(0o022))
    assert p.returncode == 0, p.stderr
    assert "hunter2" in (tmp_path / "tree.txt").read_text()
    assert mode_of(tmp_path / "tree.txt") == 0o600
    assert mode_of(tmp_path / "t.json") == 0o600


# ---- spec: errno codes are named in ERROR frames and replies -----------------


def test_hello_timeout_error_is_named_etimedout(tmp_path):
    d = tphd_wire.Daemon(TPHD, tmp_path, extra=["--frame-timeout", "1"]).start()
    with d.connect(hello=False, timeout=10) as c:
        msg = c.recv()
    assert msg is not None and msg[0] == tphd_wire.ERROR, msg
    assert msg[1]["code"] == -110
    assert msg[1]["name"] == "ETIMEDOUT"
    assert d.stop() == 0


# ---- spec: a non-root user's status shows only their own counts --------------

USER_A, USER_B = 65534, 65533


@needs_root
def test_status_shows_a_user_only_their_own_clients_and_events():
    tmp = tempfile.mkdtemp(prefix="tphd-sec-status-")
    os.chmod(tmp, 0o755)
    d = tphd_wire.Daemon(TPHD, tmp)
    os.makedirs(os.path.dirname(d.sock), mode=0o755)
    d.start()
    os.chmod(d.sock, 0o666)
    try:
        root_idle = [d.connect() for _ in range(3)]  # three of root's connections

        def upload_then_status(trace):
            def run():
                with tphd_wire.Conn(d.sock) as c:
                    tphd_wire.simple_trace(c, trace)
                    assert c.recv()[0] == tphd_wire.ACK
                    return c.qjson("status")
            return run

        a = tphd_wire.as_user(USER_A, upload_then_status("a" * 32))
        b = tphd_wire.as_user(USER_B, upload_then_status("b" * 32))
        with d.connect() as c:
            root = c.qjson("status")
        for c in root_idle:
            c.close()
    finally:
        assert d.stop() == 0, d.read_log()
        subprocess.run(["rm", "-rf", tmp])
    assert (a["clients"], a["events_total"], a["events_per_s"], a["traces"]) == (1, 8, None, 1)
    assert (b["clients"], b["events_total"], b["events_per_s"], b["traces"]) == (1, 8, None, 1)
    assert (root["clients"], root["events_total"], root["traces"]) == (4, 16, 2)
    assert root["events_per_s"] >= 0
    # the shared database's size is its owner's (here root's) to see
    assert (a["db_bytes"], b["db_bytes"]) == (None, None) and root["db_bytes"] > 0


# ---- spec: --http on any loopback address serves requests for it -------------


@needs_http
def test_http_on_another_loopback_address_serves_its_own_host(tmp_path):
    d = WebDaemon(tmp_path)
    d.http_args = ["--http", f"127.0.0.2:{d.port}"]
    d.start()
    try:
        def get(host, cookie=True):
            c = http.client.HTTPConnection("127.0.0.2", d.port, timeout=10)
            h = {"Host": host}
            if cookie:
                h["Cookie"] = d.cookie
            c.request("GET", "/api/status", headers=h)
            r = c.getresponse()
            body = r.read()
            c.close()
            return r.status, body

        deadline = time.time() + 20
        while True:
            try:
                status, body = get(f"127.0.0.2:{d.port}")
                break
            except OSError:
                assert time.time() < deadline, d.read_log()
                time.sleep(0.05)
        assert status == 200, body
        assert json.loads(body)["http"] == f"http://127.0.0.2:{d.port}"
        status, body = get(f"127.0.0.3:{d.port}")
        assert status == 421
        assert json.loads(body)["message"] == (f"this server answers to 127.0.0.2:{d.port}, "
                                               "localhost, 127.0.0.1 and [::1] only")
        assert get(f"127.0.0.2:{d.port + 1}")[0] == 421
        assert get(f"evil.example:{d.port}")[0] == 421
        assert get(f"127.0.0.2:{d.port}", cookie=False)[0] == 401
        assert f"report UI at http://127.0.0.2:{d.port}" in d.read_log()
    finally:
        assert d.stop() == 0, d.read_log()
