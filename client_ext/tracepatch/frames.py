"""Frames: recurring units of work (a request, a tick) timed for tphd.

    with tracepatch.frame("request"):      # one discontinuous frame
        handle(request)
    tracepatch.frame_mark()                 # continuous: each mark ends the last
    tracepatch.frame_mark_start("job"); ...; tracepatch.frame_mark_end("job")

They work whether or not a ``trace()`` is active. The first frame call looks
for tphd once; with none listening every later call is one check of the
module flag ``_live`` (a background thread looks again every few seconds and
turns it on when a daemon appears). With a daemon, each frame is appended to
a list and a background thread sends the list in batches as one QUERY op
``frames_add`` (docs/QUERY.md), so the measured code never waits on a socket.

``frame(name, trace=True, keep_slower_than=...)`` also records the call
tree inside the frame, structure only (``trace(keep="slow")``), and keeps it
(sends it to tphd, or saves it as trace() would) only when the frame was
slower than the threshold, raised, or was sampled (``sample=``); the rest are
dropped unserialised. The threshold is seconds, or ``"p99"``: slower than the
running p99 of this frame name, the exact nearest-rank p99 of the last
``_P99_WINDOW`` frames of that name measured in this process (see
_Recent). The frame's record then carries the kept trace's id, so tphd's
frame graph links the frame to its call tree.

The sender speaks the wire protocol (proto/PROTOCOL.md) from Python with the
small msgpack subset below. That is a stopgap: the C extension has a socket
client, but no Python entry point for queries yet.
"""

import atexit
import bisect
import collections
import json
import os
import random
import socket
import struct
import threading
import time
from typing import Any

from . import _trace

__all__ = ["frame", "frame_mark", "frame_mark_start", "frame_mark_end", "frames_flush"]

# True while a daemon is connected: the only thing a frame call checks
# before doing any work.
_live = False
# False until the first frame call looks for a daemon.
_started = False
_lock = threading.Lock()
# (name, start Unix ns, duration ns[, kept trace id]) waiting for the sender; list.append and
# the swap in _take() are atomic under the GIL (free-threaded builds are not
# handled here).
_pending = []
_wake = threading.Event()
_sent = threading.Condition()
_counts = {"sent": 0, "dropped": 0, "cycles": 0}
# Continuous frames: name -> (start Unix ns, start perf ns).
_marks = {}
# Discontinuous frames opened by frame_mark_start: name -> the same.
_open = {}

DEFAULT_MARK = "frame"
# How often the sender sends what is pending, and looks for a daemon when none.
_FLUSH_S = 0.2
_PROBE_S = 2.0
_BATCH = 2000
# Frames kept while the daemon does not keep up; beyond, they are dropped
# and counted, so a slow or stuck tphd cannot grow the process without bound.
_MAX_PENDING = 100_000

_now = time.time_ns
_perf = time.perf_counter_ns

# keep_slower_than="p99": the window of recent frames per name, the frames a
# p99 needs before it is trusted (fewer: slowness keeps nothing, only
# exceptions and sampling do), and how many names get a window (beyond, a
# new name keeps on exceptions and sampling only), so memory stays bounded
# at _P99_NAMES * _P99_WINDOW durations however many names a program makes.
_P99_WINDOW = 1000
_P99_MIN = 100
_P99_NAMES = 256


def _went_live() -> bool:
    """Whether frames go to a daemon, looked for at the first frame call
    (the functions that begin a frame start with ``if not _live and not
    _went_live()``, so a live process pays one global read)."""
    if not _started:
        _begin()
    return _live


def _begin():
    """First frame call: look for a daemon once, then leave it to the thread."""
    global _started, _live
    with _lock:
        if _started:
            return
        _started = True
        if os.environ.get("TRACEPATCH_ENABLED", "").strip().lower() in ("0", "false", "no", "off"):
            return
        conn = _Conn.open()
        if conn is not None:
            _live = True
        t = threading.Thread(target=_run, args=(conn,), name="tracepatch-frames", daemon=True)
        t.start()
        atexit.register(frames_flush, 1.0)


def _add(item):
    if len(_pending) < _MAX_PENDING:
        _pending.append(item)
        if len(_pending) >= _BATCH:
            _wake.set()
    else:
        with _sent:  # rare; the sender counts under the same lock
            _counts["dropped"] += 1


def _record(name, start_ns, t0):
    _add((name, start_ns, _perf() - t0))


class _Frame:
    __slots__ = ("name", "start", "t0")

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.start = _now()
        self.t0 = _perf()
        return self

    def __exit__(self, *exc):
        _record(self.name, self.start, self.t0)
        return False


class _Recent:
    """The last _P99_WINDOW durations of one frame name, in arrival order
    (to forget the oldest) and sorted (to read a rank). Exact over the
    window rather than a sketch (P-square, t-digest): the window is small,
    so insort and removal are a bisect and a memmove of at most 8 KB, about
    a microsecond, and a p99 of 1000 values is one of them, with no error
    bound to explain. A window rather than all history: the threshold
    follows the service when it gets slower or faster."""

    __slots__ = ("order", "sorted", "lock")

    def __init__(self):
        self.order = collections.deque()
        self.sorted = []
        self.lock = threading.Lock()

    def p99(self):
        """Nearest-rank p99 of the window, None below _P99_MIN frames."""
        n = len(self.sorted)
        if n < _P99_MIN:
            return None
        return self.sorted[(99 * n + 99) // 100 - 1]

    def add(self, dur):
        with self.lock:
            p99 = self.p99()
            self.order.append(dur)
            bisect.insort(self.sorted, dur)
            if len(self.order) > _P99_WINDOW:
                old = self.order.popleft()
                del self.sorted[bisect.bisect_left(self.sorted, old)]
            return p99


_recent: "dict[str, _Recent]" = {}


def _slower_than_p99(name, dur):
    """Whether dur is slower than the p99 of the frames of name before it;
    dur joins the window either way."""
    r = _recent.get(name)
    if r is None:
        if len(_recent) >= _P99_NAMES:
            return False
        r = _recent.setdefault(name, _Recent())
    p99 = r.add(dur)
    return p99 is not None and dur > p99


def running_p99(name: str) -> "float | None":
    """The running p99 (seconds) that keep_slower_than="p99" compares a
    frame of name with; None until _P99_MIN frames of it have ended."""
    r = _recent.get(str(name))
    p = r.p99() if r is not None else None
    return None if p is None else p / 1e9


class _TracedFrame:
    """frame(trace=True): a frame with a keep="slow" trace inside."""

    __slots__ = ("name", "start", "t0", "trace", "limit", "sampled")

    def __init__(self, name, limit, sample, trace_kwargs):
        self.name = name
        self.limit = limit  # ns, or None for "p99"
        self.sampled = sample > 0 and random.random() < sample
        kw = {"label": name, **trace_kwargs, "keep": "slow"}
        if limit is not None:
            kw["keep_slower_than"] = limit / 1e9
        self.trace = _trace.trace(**kw)

    def __enter__(self):
        self.trace.__enter__()
        self.start = _now()
        self.t0 = _perf()
        return self

    def _verdict(self):
        dur = _perf() - self.t0
        if self.limit is None:
            slow = _slower_than_p99(self.name, dur)
        else:
            slow = dur > self.limit
        self.trace._keep_slow = slow or self.sampled
        return dur

    def _record(self, dur):
        if _live:
            t = self.trace
            if t.kept:
                _add((self.name, self.start, dur, t.trace_id))
            else:
                _add((self.name, self.start, dur))

    def __exit__(self, *exc):
        dur = self._verdict()
        self.trace.__exit__(*exc)
        self._record(dur)
        return False

    async def __aenter__(self):
        await self.trace.__aenter__()
        self.start = _now()
        self.t0 = _perf()
        return self

    async def __aexit__(self, *exc):
        dur = self._verdict()
        await self.trace.__aexit__(*exc)
        self._record(dur)
        return False


def _limit_ns(keep_slower_than):
    if keep_slower_than == "p99":
        return None
    if isinstance(keep_slower_than, bool) or not isinstance(keep_slower_than, (int, float)) \
            or not 0 <= keep_slower_than < 1e9:
        raise ValueError(f"keep_slower_than must be seconds (0 or more) or \"p99\", "
                         f"not {keep_slower_than!r}")
    return int(keep_slower_than * 1e9)


class _NoFrame:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NOFRAME = _NoFrame()


def frame(name: str, *, trace: bool = False, keep_slower_than: "float | str" = "p99",
          sample: float = 0.0, **trace_kwargs: Any) -> "_Frame | _NoFrame | _TracedFrame":
    """A discontinuous frame named ``name``: ``with frame("request"): ...``.

    trace=True also records the call tree inside it, structure only, and
    keeps it only when the frame lasted longer than keep_slower_than
    (seconds, or "p99": the running p99 of this name), raised, or was
    sampled (probability ``sample``); other keywords go to trace().
    ``with frame(..., trace=True) as f`` gives the trace as ``f.trace``
    (``f.trace.kept`` once it ended). Works with ``async with`` too."""
    if trace:
        if not 0.0 <= float(sample) <= 1.0:
            raise ValueError(f"sample must be between 0 and 1, not {sample!r}")
        limit = _limit_ns(keep_slower_than)
        if not _started:
            _begin()
        return _TracedFrame(str(name), limit, float(sample), trace_kwargs)
    if not _live and not _went_live():
        return _NOFRAME
    return _Frame(str(name))


def frame_mark(name: "str | None" = None) -> None:
    """End the current continuous frame of ``name`` (default "frame"), start the next."""
    if not _live and not _went_live():
        return
    name = DEFAULT_MARK if name is None else str(name)
    t0 = _perf()
    start = _now()
    prev = _marks.get(name)
    _marks[name] = (start, t0)
    if prev is not None:
        _add((name, prev[0], t0 - prev[1]))


def frame_mark_start(name: str) -> None:
    """Begin a discontinuous frame ``name``; frame_mark_end(name) ends it."""
    if not _live and not _went_live():
        return
    _open[str(name)] = (_now(), _perf())


def frame_mark_end(name: str) -> None:
    """End the frame frame_mark_start(name) began (nothing if none is open)."""
    if not _live:
        return
    t1 = _perf()
    began = _open.pop(str(name), None)
    if began is not None:
        _add((str(name), began[0], t1 - began[1]))


def _request_start():
    """For the web middleware: the clock of a request's frame, (start Unix
    ns, start perf ns), or None when no daemon takes frames (then the
    middleware computes no frame name at all)."""
    if not _live and not _went_live():
        return None
    return (_now(), _perf())


def _request_end(name, began, trace_id=None):
    """End the request frame _request_start() began; trace_id names the
    trace recorded inside it when tphd was given one (the graph links it)."""
    if began is None or not _live:
        return
    dur = _perf() - began[1]
    _add((name, began[0], dur) if trace_id is None else (name, began[0], dur, trace_id))


def frames_flush(timeout: float = 2.0) -> bool:
    """Send the pending frames now; True once tphd has stored every frame
    ended before this call (False on timeout, or when some were dropped)."""
    if not _live:
        return False
    deadline = time.monotonic() + timeout
    with _sent:
        # A sending cycle already under way may have taken its batch before
        # this call; the one after it takes everything ended until now.
        c0, dropped0 = _counts["cycles"], _counts["dropped"]
        while _counts["cycles"] < c0 + 2:
            _wake.set()
            left = deadline - time.monotonic()
            if left <= 0 or not _live:
                return False
            _sent.wait(min(left, _FLUSH_S))
        return _counts["dropped"] == dropped0


def _take():
    global _pending
    batch, _pending = _pending, []
    return batch


def _run(conn):
    """The sender thread: batches out, reconnecting when the daemon goes away."""
    global _live
    while True:
        if conn is None:
            time.sleep(_PROBE_S)
            conn = _Conn.open()
            if conn is None:
                continue
            _live = True
        _wake.wait(_FLUSH_S)
        _wake.clear()
        batch = _take()
        ok = True
        for i in range(0, len(batch), _BATCH):
            part = batch[i : i + _BATCH]
            if ok:
                ok = conn.frames_add(part)
            with _sent:
                _counts["sent" if ok else "dropped"] += len(part)
        with _sent:
            _counts["cycles"] += 1
            _sent.notify_all()
        if not ok:
            conn.close()
            conn = None
            _live = False
            _marks.clear()
            _open.clear()


# ---- The wire, just enough for HELLO / QUERY (proto/PROTOCOL.md) ----

_HELLO, _WELCOME, _QUERY, _REPLY = 1, 2, 16, 17
_CAP_QUERY = 2


def _pack(o, out):
    if o is None:
        out += b"\xc0"
    elif o is True or o is False:
        out += b"\xc3" if o else b"\xc2"
    elif isinstance(o, int):
        if 0 <= o < 128:
            out.append(o)
        elif o >= 0:
            out += b"\xcf" + struct.pack(">Q", o)
        else:
            out += b"\xd3" + struct.pack(">q", o)
    elif isinstance(o, str):
        b = o.encode()
        out += (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xdb" + struct.pack(">I", len(b))) + b
    elif isinstance(o, (bytes, bytearray)):
        out += b"\xc6" + struct.pack(">I", len(o)) + o
    elif isinstance(o, (list, tuple)):
        out += b"\xdd" + struct.pack(">I", len(o))
        for x in o:
            _pack(x, out)
    elif isinstance(o, dict):
        out += b"\xdf" + struct.pack(">I", len(o))
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise TypeError(type(o).__name__)
    return out


def _unpack(b, i=0):
    """One msgpack value of b at i: (value, next index)."""
    c = b[i]
    i += 1
    if c < 0x80:
        return c, i
    if c >= 0xE0:
        return c - 256, i
    if 0x80 <= c <= 0x9F or c in (0xDC, 0xDD, 0xDE, 0xDF):
        if c <= 0x9F:
            n, ismap = c & 0x0F, c < 0x90
        else:
            w = 2 if c in (0xDC, 0xDE) else 4
            n, ismap = int.from_bytes(b[i : i + w], "big"), c in (0xDE, 0xDF)
            i += w
        if ismap:
            d = {}
            for _ in range(n):
                k, i = _unpack(b, i)
                d[k], i = _unpack(b, i)
            return d, i
        a = []
        for _ in range(n):
            v, i = _unpack(b, i)
            a.append(v)
        return a, i
    if 0xA0 <= c <= 0xBF:
        n = c & 0x1F
        return b[i : i + n].decode(), i + n
    if c == 0xC0:
        return None, i
    if c in (0xC2, 0xC3):
        return c == 0xC3, i
    sizes = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
    if c in sizes:
        w = sizes[c]
        n = int.from_bytes(b[i : i + w], "big")
        i += w
        raw = bytes(b[i : i + n])
        return (raw.decode() if c >= 0xD9 else raw), i + n
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if c in ints:
        fmt = ints[c]
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, b[i : i + n])[0], i + n
    if c in (0xCA, 0xCB):
        fmt = ">f" if c == 0xCA else ">d"
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, b[i : i + n])[0], i + n
    raise ValueError(f"msgpack type 0x{c:02x} not handled")


# tphd refuses a whole batch for one name it cannot store (empty, longer
# than 200 UTF-8 bytes, a NUL or a lone surrogate JSON cannot carry), and
# names may come from outside (a request path): the sender fixes them here,
# off the measured thread, remembering the last few it fixed.
_NAME_MAX = 200
_names: dict = {}


def _wire_name(name):
    fixed = _names.get(name)
    if fixed is not None:
        return fixed
    raw = name.replace("\0", "\ufffd").encode("utf-8", "replace")
    fixed = raw[:_NAME_MAX].decode("utf-8", "ignore") or "?"
    if len(_names) >= 4096:
        _names.clear()
    _names[name] = fixed
    return fixed


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.qid = 0

    @classmethod
    def open(cls):
        path = os.environ.get("TRACEPATCH_SOCKET")
        if not path:
            try:
                from . import _tracepatch

                path = _tracepatch.default_socket()
            except Exception:
                return None
        if not path or not os.path.exists(path):
            return None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5.0)
        c = cls(s)
        try:
            s.connect(path)
            c._send(_HELLO, {"magic": "TPH1", "v": 1, "caps": _CAP_QUERY, "pid": os.getpid(),
                             "client": "tracepatch-frames"})
            mtype, body = c._recv()
            if mtype != _WELCOME or not (body.get("caps", 0) & _CAP_QUERY):
                raise OSError("tphd did not grant QUERY")
        except (OSError, ValueError, IndexError):
            c.close()
            return None
        return c

    def _send(self, mtype, body):
        payload = _pack([mtype, body], bytearray())
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def _read(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError("tphd closed the connection")
            buf += chunk
        return buf

    def _recv(self):
        (n,) = struct.unpack(">I", self._read(4))
        (mtype, body), _ = _unpack(self._read(n))
        return mtype, body

    def frames_add(self, frames):
        """Send one batch; True when tphd stored it."""
        self.qid += 1
        frames = [(_wire_name(f[0]),) + tuple(f[1:]) for f in frames]
        args = json.dumps({"frames": frames}, separators=(",", ":"))
        try:
            self._send(_QUERY, {"id": self.qid, "op": "frames_add", "args": args})
            while True:
                mtype, body = self._recv()
                if mtype == _REPLY and body.get("id") == self.qid:
                    if body.get("more"):
                        continue
                    return bool(body.get("ok"))
        except (OSError, ValueError, IndexError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
