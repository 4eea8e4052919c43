"""A second, independent implementation of the tracepatch wire protocol
(proto/PROTOCOL.md) in Python, plus a fixture-friendly way to run a real tphd.

Used by tests/e2e/test_daemon_*.py: frames are msgpack ``[type, body]``
payloads behind a 4-byte big-endian length, events are 16-byte little-endian
records with a separate text stream.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

import msgpack

HELLO, WELCOME, FUNCS, BEGIN, EVENTS, END, ACK, ERROR, LINES = 1, 2, 3, 4, 5, 6, 7, 8, 9
SOURCE = 11
QUERY, REPLY = 16, 17
CAP_ACK, CAP_QUERY = 1, 2

EV_CALL, EV_RETURN, EV_UNWIND, EV_CAUGHT, EV_YIELD, EV_RESUME, EV_THREAD = range(1, 8)
EVF_TEXT, EVF_GEN = 1, 2

ERR = {  # tp_err.h
    "TRUNCATED": -4000, "FRAME_TOO_LARGE": -4001, "MALFORMED": -4002, "TYPE": -4003,
    "MISSING": -4004, "LIMIT": -4005, "VERSION": -4006, "UNKNOWN_FUNC": -4007,
    "SEQUENCE": -4008, "NOT_FOUND": -4009, "AMBIGUOUS": -4010, "DB": -4011, "JSON": -4012,
    "PERM": -4013,
}


def frame(mtype, body):
    payload = msgpack.packb([mtype, body], use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


class Events:
    """Builds one EVENTS batch: records and the text they own."""

    def __init__(self):
        self.rec = bytearray()
        self.tx = bytearray()
        self.calls = 0

    def _text(self, *texts):
        for t in texts:
            b = t.encode() if isinstance(t, str) else t
            self.tx += struct.pack("<I", len(b)) + b

    def _rec(self, kind, flags, arg, t_ns):
        self.rec += struct.pack("<BBHIQ", kind, flags, 0, arg, t_ns)

    def call(self, fid, t_ns, args=None, gen=False):
        self._rec(EV_CALL, (EVF_TEXT if args is not None else 0) | (EVF_GEN if gen else 0),
                  fid, t_ns)
        if args is not None:
            self._text(args)
        self.calls += 1
        return self

    def ret(self, t_ns, value=None):
        self._rec(EV_RETURN, EVF_TEXT if value is not None else 0, 0, t_ns)
        if value is not None:
            self._text(value)
        return self

    def unwind(self, t_ns, typ, msg):
        self._rec(EV_UNWIND, EVF_TEXT, 0, t_ns)
        self._text(typ, msg)
        return self

    def mem(self, t_ns, delta):
        """MEMORY (9): the call that just ended changed the traced memory by
        delta bytes (48 bits: arg the low 32, rsv the high 16)."""
        u = delta & ((1 << 48) - 1)
        self.rec += struct.pack("<BBHIQ", 9, 0, u >> 32, u & 0xFFFFFFFF, t_ns)
        return self

    def thread(self, idx, t_ns, name="worker"):
        self._rec(EV_THREAD, EVF_TEXT, idx, t_ns)
        self._text(name)
        return self

    def __len__(self):
        return len(self.rec) // 16


class Conn:
    """One client connection to tphd."""

    def __init__(self, path, caps=CAP_ACK | CAP_QUERY, hello=True, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.qid = 0
        self.welcome = None
        if hello:
            self.hello(caps)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, mtype, body):
        self.sock.sendall(frame(mtype, body))

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self):
        """The next message as (type, body); None when tphd closed the connection."""
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    mtype, body = msgpack.unpackb(payload, raw=False)
                    return mtype, body
            data = self.sock.recv(1 << 20)
            if not data:
                return None
            self.buf += data

    def hello(self, caps=CAP_ACK | CAP_QUERY, version=1, magic="TPH1"):
        self.send(HELLO, {"magic": magic, "v": version, "caps": caps, "pid": os.getpid(),
                          "client": "pytest/1", "py": "3.11.7", "host": "testhost",
                          "argv": ["prog.py", "--flag"]})
        msg = self.recv()
        if msg and msg[0] == WELCOME:
            self.welcome = msg[1]
        return msg

    def funcs(self, table):
        """table: {id: (module, qualname, file, line)}"""
        self.send(FUNCS, {"f": [[fid, m, q, f, l] for fid, (m, q, f, l) in table.items()]})

    def begin(self, trace, label=None, t0=None, config=None):
        body = {"trace": trace, "t0": t0 if t0 is not None else time.time_ns()}
        if label is not None:
            body["label"] = label
        if config is not None:
            body["config"] = json.dumps(config)
        self.send(BEGIN, body)

    def events(self, trace, seq, ev):
        self.send(EVENTS, {"trace": trace, "seq": seq, "ev": bytes(ev.rec), "tx": bytes(ev.tx)})

    def end(self, trace, end_ns, calls, limit=None, dropped=None):
        body = {"trace": trace, "end": end_ns, "calls": calls}
        if limit:
            body["limit"] = limit
        if dropped is not None:
            body["dropped"] = dropped
        self.send(END, body)

    def query(self, op, args=None, body=None, chunk=None):
        """Run a query; returns (ok, content_type or code, body bytes or message)."""
        self.qid += 1
        qid = self.qid
        base = {"id": qid, "op": op, "args": json.dumps(args or {})}
        if body is None:
            self.send(QUERY, base)
        else:
            chunk = chunk or len(body) or 1
            off = 0
            while True:
                part = body[off:off + chunk]
                off += len(part)
                msg = dict(base, body=part, more=off < len(body))
                self.send(QUERY, msg)
                if off >= len(body):
                    break
        out = b""
        while True:
            msg = self.recv()
            assert msg is not None, "tphd closed the connection during a query"
            mtype, b = msg
            assert mtype == REPLY, msg
            assert b["id"] == qid
            if not b["ok"]:
                return False, b["code"], b.get("msg")
            out += b.get("body") or b""
            if not b.get("more"):
                return True, b.get("ct"), out

    def qjson(self, op, args=None, body=None):
        ok, ct, data = self.query(op, args, body)
        assert ok, (op, args, ct, data)
        assert ct == "application/json", ct
        return json.loads(data)


MS = 1_000_000


def simple_trace(conn, trace, label="t", t0=None, describe=True, end=True):
    """Sends app.main() -> app.helper(x=i) for i in 0..2, in ms:
    main 1..9 returns 'done'; helper i runs 2+i .. 2.5+i and returns 2i."""
    if describe:
        conn.funcs({0: ("app", "main", "/src/app.py", 10), 1: ("app", "helper", "/src/app.py", 20)})
    conn.begin(trace, label=label, t0=t0, config={"max_calls": 10000})
    ev = Events()
    ev.call(0, 1 * MS, "")
    for i in range(3):
        ev.call(1, (2 + i) * MS, f"x={i}").ret((2 + i) * MS + MS // 2, str(i * 2))
    ev.ret(9 * MS, "'done'")
    conn.events(trace, 0, ev)
    if end:
        conn.end(trace, 10 * MS, 4)
    return ev


_running = []


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop_started_since(before):
    """Kills every tphd started here since _running was the list before and
    still running (after a failed test, so none is left behind)."""
    for d in [d for d in _running if d not in before]:
        _running.remove(d)
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def stop_all():
    """Kills every tphd started here that is still running."""
    stop_started_since([])


class Daemon:
    """A real tphd on a temporary socket and database."""

    def __init__(self, binary, tmp, extra=(), env=None):
        self.binary = binary
        self.tmp = str(tmp)
        self.sock = os.path.join(self.tmp, "run", "tphd.sock")
        self.db = os.path.join(self.tmp, "state", "traces.db")
        self.extra = list(extra)
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("LISTEN_FDS", None)
        self.proc = None
        self.log = os.path.join(self.tmp, "tphd.log")

    def args(self):
        return [self.binary, "--socket", self.sock, "--db", self.db, "--no-http"] + self.extra

    def start(self, wait=True):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=logf, stderr=logf, env=self.env)
        logf.close()
        _running.append(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tphd exited with {self.proc.returncode}: {self.read_log()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("tphd did not start: " + self.read_log())

    def read_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def connect(self, **kw):
        return Conn(self.sock, **kw)

    def stop(self, sig=15, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


def assert_clean_stop(d, **kw):
    """Stops d (SIGTERM) and asserts it exited with status 0; on failure the
    message is the end of tphd's log (a sanitizer report, a second signal)."""
    rc = d.stop(**kw)
    assert rc == 0, f"tphd exited with {rc}; its log ends:\n{d.read_log()[-6000:]}"


def tphd_binary():
    """$TPHD, else $TRACEPATCH_BUILD/daemon/tphd/tphd, else <repo>/build/daemon/tphd/tphd."""
    b = os.environ.get("TPHD")
    if b:
        return b
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.environ.get("TRACEPATCH_BUILD", os.path.join(here, "..", "..", "build"))
    return os.path.abspath(os.path.join(build, "daemon", "tphd", "tphd"))


TPHD = tphd_binary()


def wait_for(pred, timeout=20, step=0.02):
    """Polls pred() until it is true; returns its last value."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


def as_user(uid, fn):
    """fn()'s JSON-able result, run in a forked child as uid (root only):
    another user, for the tests of who may see what."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out, code = {"error": repr(e)}, 1
        with os.fdopen(w, "w") as f:
            json.dump(out, f)
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    _, st = os.waitpid(pid, 0)
    out = json.loads(data)
    assert os.WEXITSTATUS(st) == 0, out
    return out
