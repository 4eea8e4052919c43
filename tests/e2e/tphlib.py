"""Helpers for the tph end-to-end tests: run the real tph binary, start a real
tphd on a temporary socket and database, or a scripted fake tphd that speaks
the wire protocol (proto/PROTOCOL.md) with canned answers.

The binaries come from $TRACEPATCH_BUILD (default: <repo>/build): daemon/tphd/tphd and daemon/tph/tph.
"""

import os
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TRACEPATCH_BUILD", ROOT / "build"))
TPH = BUILD / "daemon" / "tph" / "tph"
TPHD = BUILD / "daemon" / "tphd" / "tphd"
DATA = Path(__file__).resolve().parent / "data"
VERSION = "2.0.0"

NO_DAEMON_HINT = "(start one with `tphd &` or `systemctl --user start tphd`)"

needs_tph = pytest.mark.skipif(not TPH.exists(), reason=f"{TPH} not built")
needs_tphd = pytest.mark.skipif(not TPHD.exists(), reason=f"{TPHD} not built")


def base_env(tmp_path):
    """An environment that cannot reach a real user daemon: its own runtime
    dir, UTC times, the C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEPATCH_", "TPH_"))}
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["TZ"] = "UTC"
    env["LC_ALL"] = "C"
    return env


def tph(*args, env, input=None, timeout=60, binary=False, cwd=None):
    """Run tph (in cwd); returns the CompletedProcess (text mode unless binary)."""
    return subprocess.run([str(TPH), *map(str, args)], env=env, input=input, cwd=cwd,
                          capture_output=True, text=not binary, timeout=timeout)


def usage_line(cmd):
    lines = {
        None: "tph [--socket PATH] [--json] [--help] [--version] COMMAND [ARGS]",
        "tree": "tph tree [OPTIONS] ID|FILE",
        "logs": "tph logs [--label GLOB] [--since DUR] [--limited] [--otel-trace ID] [--limit N]"
                " [--offset N] [--cache-dir DIR]",
        "clean": "tph clean --older-than DUR | --traces | --all [--daemon] [--cache-dir DIR]",
        "export": "tph export ID|FILE [--format FORMAT] [-o OUT]",
        "diff": "tph diff [--color[=WHEN]] A B",
        "stats": "tph stats [--color[=WHEN]] ID|FILE",
        "open": "tph open ID",
        "status": "tph status",
        "import": "tph import [--label LABEL] FILE",
    }
    return lines[cmd]


def usage_error(cmd, message):
    """The exact stderr of a usage error."""
    more = f"Try 'tph help {cmd}' for more." if cmd else "Try 'tph help' for more."
    return f"tph: {message}\nusage: {usage_line(cmd)}\n{more}\n"


# ---- a small traced program ---------------------------------------------------

# The request handler the extension tests trace: nested calls, a loop that
# folds, and an exception caught one level up.
DEMO_APP = '''
def load_user(uid):
    return {"id": uid, "name": "Alice"}

def validate(user):
    return user["name"] != ""

def parse(text):
    return int(text)

def handle_request(uid):
    user = load_user(uid)
    for _ in range(3):
        validate(user)
    try:
        parse("x")
    except ValueError:
        pass
    return user
'''


# ---- a real tphd -------------------------------------------------------------


class Daemon:
    def __init__(self, tmp_path, extra_args=()):
        self.dir = tmp_path / "tphd"
        self.dir.mkdir()
        self.socket = self.dir / "tphd.sock"
        self.db = self.dir / "traces.db"
        self.log = open(self.dir / "tphd.log", "w+")
        args = [str(TPHD), "--socket", str(self.socket), "--db", str(self.db), *extra_args]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=base_env(tmp_path))
        # The socket file appears at bind(), a moment before listen(): wait
        # until a connection is accepted.
        deadline = time.monotonic() + 20
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("tphd did not start: " + self.read_log())
            time.sleep(0.02)

    def _accepts(self):
        import socket

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.socket))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def read_log(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- a scripted fake tphd ----------------------------------------------------


def frame(msg_type, body):
    import msgpack

    payload = msgpack.packb([msg_type, body], use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


def read_frame(conn):
    """One [type, body] from conn, or None at EOF."""
    import msgpack

    head = recv_exact(conn, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    payload = recv_exact(conn, n)
    return msgpack.unpackb(payload, raw=False)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


WELCOME = frame(2, {"v": 1, "caps": 2, "client": "tphd/fake", "pid": 1})


def reply(qid, body, ct="application/json", more=False):
    if isinstance(body, str):
        body = body.encode()
    fields = {"id": qid, "ok": True, "ct": ct, "body": body}
    if more:
        fields["more"] = True
    return frame(17, fields)


def reply_error(qid, code, message):
    return frame(17, {"id": qid, "ok": False, "code": code, "msg": message})


class FakeDaemon:
    """Listens on a socket; handler(conn, queries) runs per connection, where
    queries is the list the fake appends each QUERY body to."""

    def __init__(self, path, handler):
        self.path = str(path)
        self.queries = []
        self.hellos = []
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.handler = handler
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                self.handler(self, conn)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def answering(answers):
    """A handler that says WELCOME then answers the i-th QUERY with
    answers[i](qid) (bytes to send)."""

    def handler(fake, conn):
        msg = read_frame(conn)
        fake.hellos.append(msg)
        conn.sendall(WELCOME)
        for answer in answers:
            msg = read_frame(conn)
            if msg is None:
                return
            fake.queries.append(msg)
            conn.sendall(answer(msg[1]["id"]))
        read_frame(conn)

    return handler


# ---- uploading traces the way the extension does (PROTOCOL.md 4.1-4.7) --------


def call(func, t0, t1, args=None, ret=None, children=(), exc=None):
    """A call for Uploader.trace: func id, start/end ns, text, nested calls;
    exc=(type, message) ends it by an exception."""
    return {"func": func, "t0": t0, "t1": t1, "args": args, "ret": ret,
            "children": list(children), "exc": exc}


def _records(calls, recs, text):
    def put_text(*strings):
        for s in strings:
            b = s.encode()
            text.extend(struct.pack("<I", len(b)) + b)

    for c in calls:
        flags = 1 if c["args"] is not None else 0
        recs.append(struct.pack("<BBHIQ", 1, flags, 0, c["func"], c["t0"]))
        if flags:
            put_text(c["args"])
        _records(c["children"], recs, text)
        if c["exc"]:
            recs.append(struct.pack("<BBHIQ", 3, 1, 0, 0, c["t1"]))
            put_text(*c["exc"])
        else:
            flags = 1 if c["ret"] is not None else 0
            recs.append(struct.pack("<BBHIQ", 2, flags, 0, 0, c["t1"]))
            if flags:
                put_text(c["ret"])


class Uploader:
    """One client connection that sends traces with chosen ids."""

    def __init__(self, path, argv=("/srv/app/server.py", "--port", "80")):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.sendall(frame(1, {"magic": "TPH1", "v": 1, "caps": 1, "pid": os.getpid(),
                                    "client": "tracepatch/2.0.0", "py": "3.12.1",
                                    "host": "testhost", "argv": list(argv)}))
        msg = read_frame(self.sock)
        assert msg[0] == 2, msg

    def funcs(self, funcs):
        """funcs: [(id, module, qualname, file, line)]"""
        self.sock.sendall(frame(3, {"f": [list(f) for f in funcs]}))

    def begin(self, trace_id, label, t0_ns):
        self.sock.sendall(frame(4, {"trace": trace_id, "label": label, "t0": t0_ns,
                                    "config": '{"max_calls": 10000}'}))

    def events(self, trace_id, calls, seq=0):
        recs, text = [], bytearray()
        _records(calls, recs, text)
        self.sock.sendall(frame(5, {"trace": trace_id, "seq": seq, "ev": b"".join(recs),
                                    "tx": bytes(text)}))

    def raw(self, trace_id, seq, records, text=b""):
        """One EVENTS batch of raw records: (kind, flags, arg, t_ns) tuples."""
        recs = b"".join(struct.pack("<BBHIQ", k, f, 0, a, t) for k, f, a, t in records)
        self.sock.sendall(frame(5, {"trace": trace_id, "seq": seq, "ev": recs, "tx": text}))

    def end(self, trace_id, end_ns, ncalls, limit=None, dropped=0, wait=True):
        body = {"trace": trace_id, "end": end_ns, "calls": ncalls}
        if limit:
            body["limit"] = limit
        if dropped:
            body["dropped"] = dropped
            body["drop"] = "daemon too slow"
        self.sock.sendall(frame(6, body))
        if wait:
            msg = read_frame(self.sock)
            assert msg[0] == 7 and msg[1]["trace"] == trace_id, msg
            return msg[1]

    def close(self):
        self.sock.close()
