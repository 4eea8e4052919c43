"""A tphd at its connection limit refuses the extension's connection (ERROR
EMFILE at the handshake): the trace is not lost, it is saved to the local
fallback file (.tracepatch/traces/*.json, 0600) as when no daemon runs, and
stderr says so (issue #10)."""

import json
import os
import stat
import time

import tphd_wire as w
from streamlib import PRELUDE, client_env, daemon_env, needs_binaries, needs_extension, run_script

pytestmark = [needs_binaries, needs_extension]

BODY = '''
def work(n):
    return n * 2

with trace(label="at-the-limit") as t:
    work(21)
t._session.wait_upload(10.0)
dump(facts(t, error=t._session.upload_error,
           files=sorted(os.listdir(".tracepatch/traces")) if os.path.isdir(".tracepatch/traces") else []))
'''


def hold(sock_path):
    """One connection that tphd has accepted and greeted: the only slot. The
    probe connections of the daemon's start may hold it for a moment."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        c = w.Conn(str(sock_path), timeout=10)
        if c.welcome is not None:
            return c
        c.close()
        time.sleep(0.05)
    raise AssertionError("tphd never greeted the holding connection")


def test_refused_at_the_connection_limit_saves_the_trace(tmp_path):
    with daemon_env(tmp_path, ("--no-http", "--max-connections", "1")) as (d, env):
        held = hold(d.socket)
        try:
            r = run_script(tmp_path, BODY, env, timeout=60)
        finally:
            held.close()
        log = d.read_log()
    assert r.returncode == 0, r.stderr
    f = r.out
    # tphd said why; the sender tried three times (a slot may free up).
    reason = (f"upload to tphd at {d.socket} failed, 3 events dropped: tphd refused the "
              f"connection: tphd serves at most 1 connections at once (its descriptor limit): "
              f"try again later (3 tries)")
    assert (f["state"], f["error"], f["errors"]) == ("failed", reason, [reason])
    assert log.count(f"pid {f['pid']}) refused (") == 3, log
    # Saved at exit where a trace goes without a daemon, and said on stderr.
    saved = list((tmp_path / "work" / ".tracepatch" / "traces").glob("*.json"))
    assert len(saved) == 1
    assert stat.S_IMODE(os.stat(saved[0]).st_mode) == 0o600
    doc = json.loads(saved[0].read_text())
    assert (doc["trace_id"], doc["label"], doc["call_count"]) == (f["trace_id"], "at-the-limit", 1)
    assert [n["name"] for n in doc["trace"]] == ["work"]
    assert r.stderr == (f"tracepatch: trace {f['trace_id'][:8]} (at-the-limit, 1 calls) was not "
                        f"stored by tphd ({reason}); saved to {saved[0]}\n")


NEXT = '''
def work(n):
    return n * 2

with trace(label="first") as t1:
    work(1)
t1._session.wait_upload(10.0)
with trace(label="second") as t2:  # handing it over saves the refused first one
    work(2)
dump({"first": str(t1.cache_path), "id": t1.trace_id,
      "files": sorted(n for n in os.listdir(".tracepatch/traces") if n.endswith(".json"))})
os._exit(0)  # no exit flush: the file was written before
'''


def test_a_refused_trace_is_saved_when_the_next_one_is_handed_over(tmp_path):
    with daemon_env(tmp_path, ("--no-http", "--max-connections", "1")) as (d, env):
        held = hold(d.socket)
        try:
            r = run_script(tmp_path, NEXT, env, timeout=60)
        finally:
            held.close()
    assert r.returncode == 0, r.stderr
    path = tmp_path / "work" / r.out["first"]
    assert r.out["files"] == [path.name]
    assert json.loads(path.read_text())["label"] == "first"
    assert r.stderr.startswith(f"tracepatch: trace {r.out['id'][:8]} (first, 1 calls) was not "
                               f"stored by tphd (upload to tphd at ")
    assert r.stderr.endswith(f"); saved to {r.out['first']}\n")
