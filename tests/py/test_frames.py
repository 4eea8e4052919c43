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
