"""A trace tphd is still receiving (BEGIN and some EVENTS, no END yet): tph
logs lists it RUNNING with its age, tph tree shows what arrived with the
calls still running marked unfinished and says the trace is still running,
a later batch shows in the next query, and END makes it complete."""

import json
import re
import time

import pytest

from streamlib import daemon_env, needs_binaries
from tphlib import Uploader, tph

pytestmark = [needs_binaries]

TID = "abcdef00" * 4
CALL, RETURN = 1, 2


def ok(r):
    assert (r.returncode, r.stderr) == (0, ""), r
    return r.stdout


@pytest.fixture
def open_trace(tmp_path):
    with daemon_env(tmp_path) as (d, env):
        u = Uploader(d.socket)
        u.funcs([(0, "app", "main", "app.py", 1), (1, "app", "step", "app.py", 5)])
        start = time.time_ns()
        u.begin(TID, "serving", start)
        # main() is still running; its first step() returned.
        u.raw(TID, 0, [(CALL, 0, 0, 1000), (CALL, 0, 1, 2000), (RETURN, 0, 0, 5000)])
        yield u, env, start
        u.close()


def wait_calls(env, n, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = json.loads(ok(tph("--json", "logs", env=env)))
        if doc["traces"] and doc["traces"][0]["calls"] == n:
            return doc["traces"][0]
        time.sleep(0.02)
    raise AssertionError(f"tphd never listed {n} calls")


def test_logs_lists_an_open_trace_running_with_its_age(open_trace):
    u, env, start = open_trace
    time.sleep(0.3)
    s = wait_calls(env, 2)
    assert (s["status"], s["calls"], s["duration_ms"]) == ("open", 2, 0.005)
    elapsed_ms = (time.time_ns() - start) / 1e6
    assert 300 <= s["age_ms"] <= elapsed_ms
    [row] = ok(tph("logs", env=env)).splitlines()[1:]
    assert row.startswith("abcdef00  ") and row.endswith("  RUNNING")
    # DURATION is the age: at least the 0.3 s slept, not main's 5 µs.
    dur = row.split()[3]
    assert re.fullmatch(r"\d+(\.\d+)?(ms|s)", dur) and not dur.endswith("µs"), row


def test_tree_of_an_open_trace_shows_what_arrived_and_follows(open_trace):
    u, env, _ = open_trace
    wait_calls(env, 2)
    first = ok(tph("tree", TID[:8], env=env))
    assert "app.main()  [" in first and "unfinished]" in first
    assert "app.step()  [3.00µs]" in first
    assert first.endswith("(trace still running: 2 calls so far)\n")
    # Its JSON says so too, and a file of it reads back the same.
    doc = json.loads(ok(tph("export", "--format", "json", TID[:8], env=env)))
    assert (doc["running"], doc["call_count"]) == (True, 2)
    path = env["XDG_RUNTIME_DIR"] + "-open.json"
    with open(path, "w") as f:
        json.dump(doc, f)
    assert ok(tph("tree", path, env=env)).endswith("(trace still running: 2 calls so far)\n")
    # A second step() arrives: the next query has it.
    u.raw(TID, 1, [(CALL, 0, 1, 6000), (RETURN, 0, 0, 8000)])
    wait_calls(env, 3)
    second = ok(tph("tree", "--no-fold", TID[:8], env=env))
    assert second.count("app.step()  [") == 2, second
    assert second.endswith("(trace still running: 3 calls so far)\n")
    u.raw(TID, 2, [(RETURN, 0, 0, 9000)])
    u.end(TID, 9000, 3)
    done = ok(tph("tree", TID[:8], env=env))
    assert "unfinished" not in done and "still running" not in done
    assert "running" not in json.loads(ok(tph("export", "--format", "json", TID[:8], env=env)))
    s = json.loads(ok(tph("--json", "logs", env=env)))["traces"][0]
    assert (s["status"], s["age_ms"], s["duration_ms"]) == ("complete", None, 0.009)
