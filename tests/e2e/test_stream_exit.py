"""A finished trace is never silently lost at exit: a program that records a
big trace and exits right after its `with` has it stored in tphd whole (the
exit flush scales with what is left), or saved to the local fallback file
with a line on stderr saying so."""
import json
import os
import threading

import pytest

from streamlib import (client_env, logs, needs_binaries, needs_extension, run_script,
                       start_daemon)
from tphlib import FakeDaemon, frame, read_frame

pytestmark = [needs_binaries, needs_extension]

BIG = '''
PAD = "p" * 60
def leaf(i, pad):
    return i
with trace(label="big", max_calls=%(n)d + 10) as t:
    for i in range(%(n)d):
        leaf(i, PAD)
dump(facts(t, event_count=t._session.event_count))
'''


def test_big_trace_at_exit_is_stored_whole(tmp_path):
    n = 1_000_000
    d = start_daemon(tmp_path)
    env = client_env(tmp_path, d.socket)
    try:
        r = run_script(tmp_path, BIG % {"n": n}, env, timeout=300)
        assert (r.returncode, r.stderr) == (0, ""), r.stderr
        assert r.out["calls"] == n
        # The exit flush had returned before the process ended: what tphd has
        # is what it will ever get.
        stored = logs(client_env(tmp_path, d.socket))
    finally:
        d.stop()
    assert [(t["label"], t["calls"], t["status"]) for t in stored] == [("big", n, "complete")]
    assert not (tmp_path / "work" / ".tracepatch").exists()


WELCOME = frame(2, {"v": 1, "caps": 1, "client": "tphd/fake", "pid": 1})


def test_trace_tphd_cannot_take_at_exit_is_saved_with_a_message(tmp_path):
    # A daemon that says WELCOME and then reads nothing: the sender stalls,
    # the exit bound passes, and the trace goes to the fallback file.
    release = threading.Event()

    def stall(fake, conn):
        read_frame(conn)
        conn.sendall(WELCOME)
        release.wait(60)

    sock = tmp_path / "fake.sock"
    fake = FakeDaemon(sock, stall)
    n = 200_000
    try:
        r = run_script(tmp_path, BIG % {"n": n}, client_env(tmp_path, sock), timeout=300)
    finally:
        release.set()
        fake.close()
    assert r.returncode == 0, r.stderr
    assert r.out["state"] == "pending" and r.out["cache"] is None
    saved = sorted((tmp_path / "work" / ".tracepatch" / "traces").glob("*.json"))
    assert len(saved) == 1
    assert os.stat(saved[0]).st_mode & 0o777 == 0o600
    doc = json.loads(saved[0].read_text())
    assert (doc["trace_id"], doc["label"], doc["call_count"]) == (r.out["trace_id"], "big", n)
    assert r.stderr == (
        f"tracepatch: trace {r.out['trace_id'][:8]} (big, {n} calls) was not delivered to tphd "
        f"before the interpreter exited (upload to tphd at {sock} failed, "
        f"{r.out['event_count']} events dropped: sending EVENTS failed: the interpreter exited "
        f"first); saved to {saved[0]}\n")
