"""Frames (issue 13): tracepatch.frame() / frame_mark() timings reach a real
tphd in batches, and `tph frames` prints exact per-name statistics.

Durations come from real sleeps, so the checks are bounds a sleep guarantees
(a frame lasts at least its sleep) and exact counts, never wall-clock limits.
"""

import json
import subprocess
import sys
import time

import pytest

from tphd_wire import Conn
from tphlib import BUILD, Daemon, base_env, needs_tph, needs_tphd, tph

pytestmark = [needs_tph, needs_tphd]

SCRIPT = r'''
import time, tracepatch
for i in range(5):
    with tracepatch.frame("request"):
        time.sleep(0.01 * (i + 1))
tracepatch.frame_mark("tick")
for i in range(3):
    time.sleep(0.005)
    tracepatch.frame_mark("tick")
tracepatch.frame_mark_start("job")
time.sleep(0.02)
tracepatch.frame_mark_end("job")
tracepatch.frame_mark_end("never-started")
assert tracepatch.frames_flush(10.0)
'''


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path, ["--no-http"])
    yield d
    d.stop()


def env_for(tmp_path, daemon):
    env = base_env(tmp_path)
    env["TRACEPATCH_SOCKET"] = str(daemon.socket)
    env["PYTHONPATH"] = f"{BUILD / 'client_ext'}:/usr/lib/python3/dist-packages"
    return env


def run(tmp_path, daemon, code):
    r = subprocess.run([sys.executable, "-c", code], env=env_for(tmp_path, daemon),
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")


def frames_json(tmp_path, daemon, *args):
    r = tph("--socket", daemon.socket, "--json", "frames", *args, env=base_env(tmp_path))
    assert (r.returncode, r.stderr) == (0, "")
    return {f["name"]: f for f in json.loads(r.stdout)["frames"]}


def test_frame_statistics_bound_by_the_sleeps(tmp_path, daemon):
    run(tmp_path, daemon, SCRIPT)
    f = frames_json(tmp_path, daemon)
    assert sorted(f) == ["job", "request", "tick"]
    req = f["request"]
    assert req["count"] == 5
    # Sorted durations d1 < ... < d5, each at least its sleep of 10..50 ms:
    # nearest rank puts p50 on the third, p95 and p99 on the fifth.
    assert req["min_ms"] >= 10 and req["p50_ms"] >= 30 and req["max_ms"] >= 50
    assert req["min_ms"] <= req["p50_ms"] <= req["p95_ms"] == req["p99_ms"] == req["max_ms"]
    assert req["min_ms"] < 30  # the first frame is the 10 ms one, not a later one
    assert req["avg_ms"] >= 30
    assert f["tick"]["count"] == 3 and f["tick"]["min_ms"] >= 5
    assert f["job"]["count"] == 1 and f["job"]["min_ms"] >= 20
    assert f["job"]["frames_per_s"] is not None


def test_percentiles_are_exact_nearest_rank(tmp_path, daemon):
    now = time.time_ns()
    with Conn(str(daemon.socket)) as c:
        # 1..100 ms, shuffled by stride so storage order is not sorted order.
        frames = [["q", now + i * 1000, ((i * 37) % 100 + 1) * 1_000_000] for i in range(100)]
        assert c.qjson("frames_add", {"frames": frames}) == {"added": 100}
    q = frames_json(tmp_path, daemon, "q")["q"]
    assert (q["count"], q["min_ms"], q["avg_ms"], q["max_ms"]) == (100, 1.0, 50.5, 100.0)
    assert (q["p50_ms"], q["p95_ms"], q["p99_ms"]) == (50.0, 95.0, 99.0)


def test_a_bad_frame_stores_none_of_its_batch(tmp_path, daemon):
    now = time.time_ns()
    with Conn(str(daemon.socket)) as c:
        ok, code, msg = c.query("frames_add", {"frames": [["ok", now, 5], ["bad", now, -1]]})
        assert (ok, code) == (False, -22)
        assert msg.startswith("frames[1] is not [name")
    assert frames_json(tmp_path, daemon) == {}


def test_tph_frames_prints_a_row_per_name_and_since_leaves_old_ones_out(tmp_path, daemon):
    now = time.time_ns()
    with Conn(str(daemon.socket)) as c:
        c.qjson("frames_add", {"frames": [["render", now, 2_000_000], ["render", now + 1, 4_000_000],
                                          ["old", now - 7200 * 10**9, 1_000_000]]})
    r = tph("--socket", daemon.socket, "frames", env=base_env(tmp_path))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "NAME                        COUNT       MIN       AVG       P50       P95       P99"
        "       MAX  FRAMES/S",
        "old                             1    1.00ms    1.00ms    1.00ms    1.00ms    1.00ms"
        "    1.00ms   1000.00",
        "render                          2    2.00ms    3.00ms    2.00ms    4.00ms    4.00ms"
        "    4.00ms    500.00",
    ]
    r = tph("--socket", daemon.socket, "frames", "--since", "1h", env=base_env(tmp_path))
    assert [l.split()[0] for l in r.stdout.splitlines()] == ["NAME", "render"]
    r = tph("--socket", daemon.socket, "frames", "nothing", env=base_env(tmp_path))
    assert (r.returncode, r.stdout) == (0, "no frames\n")


def test_frames_without_a_daemon_do_nothing_and_flush_says_so(tmp_path, daemon):
    code = SCRIPT.replace("assert tracepatch.frames_flush(10.0)",
                          "assert tracepatch.frames_flush(0.1) is False\n"
                          "from tracepatch import frames; assert frames._pending == []")
    env = env_for(tmp_path, daemon)
    env["TRACEPATCH_SOCKET"] = str(tmp_path / "nobody.sock")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")


def test_tph_clean_deletes_frames_like_traces(tmp_path, daemon):
    now = time.time_ns()
    with Conn(str(daemon.socket)) as c:
        c.qjson("frames_add", {"frames": [["new", now, 1000], ["old", now - 7200 * 10**9, 1000]]})
        assert c.qjson("clean", {"older_than": 3600}) == {"deleted": 0}
        assert sorted(frames_json(tmp_path, daemon)) == ["new"]
        assert c.qjson("clean", {"all": True}) == {"deleted": 0}
    assert frames_json(tmp_path, daemon) == {}


def test_a_frame_may_carry_its_kept_traces_id(tmp_path, daemon):
    now = time.time_ns()
    tid = "0123456789abcdef" * 2
    with Conn(str(daemon.socket)) as c:
        assert c.qjson("frames_add", {"frames": [["r", now, 5, tid], ["r", now, 6, None]]}) == {
            "added": 2}
        ok, code, msg = c.query("frames_add", {"frames": [["r", now, 5, "nothex"]]})
        assert (ok, code) == (False, -22)
    assert frames_json(tmp_path, daemon)["r"]["count"] == 2


def test_frame_points_are_the_newest_frames_of_a_name_oldest_first(tmp_path, daemon):
    base = 1_800_000_000 * 10**9
    tid = "fe" * 16
    frames = [["req", base + i * 10**9, (i + 1) * 1_000_000, tid if i == 7 else None]
              for i in range(10)] + [["other", base, 5, None]]
    with Conn(str(daemon.socket)) as c:
        assert c.qjson("frames_add", {"frames": frames}) == {"added": 11}
        pts = c.qjson("frame_points", {"name": "req", "limit": 4})
        assert pts == {"name": "req", "total": 10, "points": [
            [1_800_000_006.0, 7.0, None], [1_800_000_007.0, 8.0, tid],
            [1_800_000_008.0, 9.0, None], [1_800_000_009.0, 10.0, None]]}
        since = c.qjson("frame_points", {"name": "req", "since": 1_800_000_008})
        assert (since["total"], [p[1] for p in since["points"]]) == (2, [9.0, 10.0])
        assert c.qjson("frame_points", {"name": "none"}) == {"name": "none", "total": 0,
                                                             "points": []}
        for args, msg in (({}, 'frame_points needs "name"'),
                          ({"name": "req", "limit": 0}, "limit must be from 1 to 100000"),
                          ({"name": "req", "limit": 100001}, "limit must be from 1 to 100000")):
            ok, code, text = c.query("frame_points", args)
            assert (ok, code) == (False, -22) and text.startswith(msg), text


def test_tph_frames_shows_real_units_and_escapes_names(tmp_path, daemon):
    now = time.time_ns()
    hostile = "evil\x1b]0;pwned\x07\x1b[2J\nfake"
    with Conn(str(daemon.socket)) as c:
        c.qjson("frames_add", {"frames": [[hostile, now, 850], ["us", now, 12_340]]})
    r = tph("--socket", daemon.socket, "frames", env=base_env(tmp_path))
    assert (r.returncode, r.stderr) == (0, "")
    rows = r.stdout.splitlines()
    assert len(rows) == 3 and "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert rows[1].split()[:3] == ["evil\\x1b]0;pwned\\x07\\x1b[2J\\nfake", "1", "850ns"]
    assert rows[2].split()[:3] == ["us", "1", "12.3\u00b5s"]


def test_tph_frames_window_gives_a_row_per_name_and_window(tmp_path, daemon):
    minute = 60 * 10**9
    base = (time.time_ns() // (10 * minute) - 1) * 10 * minute  # a 10-minute boundary
    frames = ([["api", base + i * 10**9, (i + 1) * 10**6] for i in range(3)]
              + [["api", base + 10 * minute + 5, 9 * 10**6], ["job", base + 1, 10**6]])
    with Conn(str(daemon.socket)) as c:
        c.qjson("frames_add", {"frames": frames})
        got = c.qjson("frames", {"window": 600})["frames"]
    assert [(f["name"], f["window_start"], f["window_s"], f["count"], f["max_ms"]) for f in got] == [
        ("api", base / 1e9, 600.0, 3, 3.0), ("api", base / 1e9 + 600, 600.0, 1, 9.0),
        ("job", base / 1e9, 600.0, 1, 1.0)]
    r = tph("--socket", daemon.socket, "frames", "--window", "10m", "api", env=base_env(tmp_path))
    assert (r.returncode, r.stderr) == (0, "")
    when = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(base / 1e9 + k)) for k in (0, 600)]
    assert [l.split()[:5] for l in r.stdout.splitlines()[1:]] == [
        ["api", *when[0].split(), "3", "1.00ms"], ["api", *when[1].split(), "1", "9.00ms"]]
    assert r.stdout.splitlines()[0].split()[:3] == ["NAME", "WINDOW", "COUNT"]
    bad = tph("--socket", daemon.socket, "frames", "--window", "0", env=base_env(tmp_path))
    assert bad.returncode == 2 and "invalid --window '0'" in bad.stderr
    with Conn(str(daemon.socket)) as c:
        ok, code, msg = c.query("frames", {"window": -1})
        assert (ok, code) == (False, -22) and msg.startswith("window must be from 0.001")
