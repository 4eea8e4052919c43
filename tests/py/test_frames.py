"""tracepatch.frame() and friends with no daemon, and the wire subset the
frame sender speaks (tests/e2e/test_frames.py runs them against a real tphd)."""

import json
import subprocess
import sys

import pytest

import tracepatch
from tracepatch import frames
from conftest import PACKAGE_PARENT, qualname


def test_frames_api_is_exported():
    for name in ("frame", "frame_mark", "frame_mark_start", "frame_mark_end", "frames_flush"):
        assert name in tracepatch.__all__
        assert getattr(tracepatch, name) is getattr(frames, name)


def test_without_a_daemon_frames_are_not_kept(tmp_path):
    code = (
        "import tracepatch\n"
        "from tracepatch import frames\n"
        "with tracepatch.frame('request') as f:\n"
        "    pass\n"
        "tracepatch.frame_mark(); tracepatch.frame_mark('x')\n"
        "tracepatch.frame_mark_start('j'); tracepatch.frame_mark_end('j')\n"
        "assert (frames._live, frames._pending, frames._marks, frames._open) == (False, [], {}, {})\n"
        "assert tracepatch.frames_flush(0.1) is False\n"
        "print('ok')\n"
    )
    env = {"PYTHONPATH": PACKAGE_PARENT, "TRACEPATCH_SOCKET": str(tmp_path / "none.sock")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


def test_a_frame_works_inside_a_trace_and_is_not_a_call_of_it():
    def work():
        with tracepatch.frame("request"):
            return 7

    with tracepatch.trace() as t:
        assert work() == 7
    roots = json.loads(t.to_json())["trace"]
    # The frame's own Python-level __enter__/__exit__ may show under work();
    # what matters is that work() is the one root and returned 7.
    assert [(r["name"], r["return_value"]) for r in roots] == [(qualname(work.__qualname__), "7")]


msgpack = pytest.importorskip("msgpack")


@pytest.mark.parametrize("value", [
    None, True, False, 0, 127, 128, 2**40, -1, -2**40, "", "a" * 31, "é" * 40,
    b"\x00\xff" * 300, [1, [2, "x"]], {"id": 3, "ok": True, "body": b"{}"},
])
def test_the_senders_msgpack_matches_msgpack(value):
    packed = bytes(frames._pack(value, bytearray()))
    assert msgpack.unpackb(packed, raw=False) == value
    assert frames._unpack(msgpack.packb(value, use_bin_type=True)) == (
        value, len(msgpack.packb(value, use_bin_type=True)))
    assert frames._unpack(packed)[0] == value


def test_frames_beyond_the_pending_cap_are_dropped_and_counted(monkeypatch):
    # A daemon that does not keep up must not grow the process without bound.
    monkeypatch.setattr(frames, "_live", True)
    monkeypatch.setattr(frames, "_started", True)
    monkeypatch.setattr(frames, "_pending", [])
    monkeypatch.setattr(frames, "_MAX_PENDING", 3)
    monkeypatch.setattr(frames, "_counts", {"sent": 0, "dropped": 0, "cycles": 0})
    monkeypatch.setattr(frames, "_marks", {})
    monkeypatch.setattr(frames, "_open", {})
    for _ in range(4):
        with tracepatch.frame("a"):
            pass
    tracepatch.frame_mark("m")
    tracepatch.frame_mark("m")
    tracepatch.frame_mark_start("s")
    tracepatch.frame_mark_end("s")
    assert [f[0] for f in frames._pending] == ["a", "a", "a"]
    assert frames._counts["dropped"] == 3


@pytest.fixture
def live_frames(monkeypatch):
    """Frames as if a daemon listened, with no sender thread: records stay
    in frames._pending; the frame clock is the list clock[0] (ns)."""
    clock = [0]
    monkeypatch.setattr(frames, "_live", True)
    monkeypatch.setattr(frames, "_started", True)
    monkeypatch.setattr(frames, "_pending", [])
    monkeypatch.setattr(frames, "_recent", {})
    monkeypatch.setattr(frames, "_perf", lambda: clock[0])
    return clock


def handle(clock, ms, raises=False):
    clock[0] += ms * 1_000_000
    if raises:
        raise KeyError("boom")
    return ms


def run_workload(clock, work, **kw):
    kept = []
    for label, ms, raises in work:
        try:
            with tracepatch.frame("request", trace=True, daemon="off", cache=False, **kw) as f:
                handle(clock, ms, raises)
        except KeyError:
            pass
        if f.trace.kept:
            kept.append(label)
    return kept


def test_traced_frame_keeps_exactly_the_slow_and_failing_requests(live_frames):
    work = [("fast-1", 10, False), ("slow-1", 250, False), ("fast-2", 200, False),
            ("fails", 1, True), ("slow-2", 201, False), ("fast-3", 0, False)]
    assert run_workload(live_frames, work, keep_slower_than=0.2) == ["slow-1", "fails", "slow-2"]
    # One record per frame; the kept ones carry their trace's id.
    recs = frames._pending
    assert [(r[0], r[2]) for r in recs] == [("request", ms * 1_000_000) for _, ms, _ in work]
    assert [len(r) for r in recs] == [3, 4, 3, 4, 4, 3]
    assert all(len(r[3]) == 32 for r in recs if len(r) == 4)


def test_traced_frame_p99_keeps_frames_slower_than_the_running_p99(live_frames):
    # 100 frames of 10 ms set the p99 (before them there is none, so even
    # the first is not "slow"); then slower ones are kept, equal ones not.
    work = [(f"warm-{i}", 10 + (i == 0) * 90, False) for i in range(100)]
    work += [("same", 10, False), ("slow-1", 11, False), ("fails", 5, True),
             ("fast", 9, False), ("slow-2", 50, False)]
    kept = run_workload(live_frames, work, keep_slower_than="p99")
    # warm-0 (100 ms) had no p99 before it; the p99 of the first 100
    # (nearest rank 99 of 100) is 10 ms, so "same" is not slower.
    assert kept == ["slow-1", "fails", "slow-2"]
    # 105 frames: rank 104 of 5, 9, 10 x 100, 11, 50, 100.
    assert frames.running_p99("request") == 0.05


def test_traced_frame_sample_one_keeps_every_request(live_frames):
    work = [("a", 1, False), ("b", 2, False)]
    assert run_workload(live_frames, work, keep_slower_than=10, sample=1.0) == ["a", "b"]


def test_p99_window_and_names_are_bounded(live_frames, monkeypatch):
    monkeypatch.setattr(frames, "_P99_NAMES", 2)
    for i in range(frames._P99_WINDOW + 50):
        frames._slower_than_p99("a", i)
    r = frames._recent["a"]
    assert (len(r.order), len(r.sorted), r.sorted[0]) == (1000, 1000, 50)
    frames._slower_than_p99("b", 1)
    frames._slower_than_p99("c", 1)
    assert sorted(frames._recent) == ["a", "b"]


@pytest.mark.parametrize("bad", [-1, "p98", True, None])
def test_traced_frame_rejects_a_bad_threshold(bad):
    with pytest.raises(ValueError):
        tracepatch.frame("x", trace=True, keep_slower_than=bad)


@pytest.mark.parametrize("name, wire", [
    ("GET /a", "GET /a"), ("", "?"), ("a\0b", "a\ufffdb"), ("x\udc80y", "x?y"),
    ("a" * 250, "a" * 200), ("é" * 150, "é" * 100), ("a" + "é" * 100, "a" + "é" * 99),
])
def test_the_sender_makes_every_name_one_tphd_stores(name, wire):
    # tphd refuses a whole batch for one bad name (1-200 UTF-8 bytes, no NUL).
    assert frames._wire_name(name) == wire
    assert 1 <= len(frames._wire_name(name).encode()) <= 200
