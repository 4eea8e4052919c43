"""A trace that is still recording streams to tphd (stream_after): tphd
shows it open with the calls published so far, a kill -9 of the program
keeps them (the trace truncated), a daemon that goes away mid-stream costs
the program nothing but the upload (the trace is saved locally, whole), and
an open stream does not hold up the other traces of the process.

The script below publishes deterministically: the trace is older than
stream_after when marker() is called, so marker's CALL publishes everything
recorded before it (run and ten requests: 61 calls) and marker then waits,
making no calls (only C functions), until the test lets it go on. With no
call to tick the stream, the extension's idle thread publishes marker's own
CALL within about 100 ms: tphd then holds 62 calls, marker still running."""

import json
import os
import signal
import time

import pytest

from streamlib import (
    MAIN_PYTHON,
    MAIN_PYTHONPATH,
    daemon_env,
    find_py312,
    logs,
    needs_binaries,
    needs_extension,
    run_script,
    tree,
)

pytestmark = [needs_binaries, needs_extension]

BODY = '''
HERE = os.path.dirname(OUT)
PUBLISHED, GO = os.path.join(HERE, "published"), os.path.join(HERE, "go")
def marker():
    # Only C functions while waiting (os.open, os.access, time.sleep): no
    # call is recorded, so what tphd lists stays marker's CALL and before.
    os.close(os.open(PUBLISHED, os.O_CREAT | os.O_WRONLY))
    while not os.access(GO, os.F_OK):
        time.sleep(0.01)
    {inside}

def run():
    for i in range(10):
        handle_request(i)
    time.sleep(0.08)
    marker()

with trace(label="live", stream_after=0.05) as t:
    run()
dump(dict(facts(t, url=t.url), streamed=t._session.streamed, tree=t.tree(),
          events=t._session.event_count, state_at_dump=t.upload_state))
'''

PUBLISHED = 1 + 10 * 6 + 1  # run(), ten requests of six calls, marker()


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


PY312, PY312_PATH = find_py312()
INTERPRETERS = [pytest.param((MAIN_PYTHON, MAIN_PYTHONPATH), id="main"),
                pytest.param((PY312, PY312_PATH), id="py312", marks=pytest.mark.skipif(
                    PY312 is None, reason=str(PY312_PATH)))]


def start(tmp_path, env, inside="pass", interp=(None, None)):
    proc, out = run_script(tmp_path, BODY.replace("{inside}", inside), env, wait=False,
                           python=interp[0], pythonpath=interp[1])
    work = out.parent
    wait_for(lambda: (work / "published").exists() or proc.poll() is not None, "marker()")
    assert proc.poll() is None, proc.communicate()
    return proc, out, work


def one_trace(env):
    found = logs(env)
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("interp", INTERPRETERS)
def test_an_open_trace_is_in_tphd_while_it_records(tmp_path, interp):
    # 3.11's profile hook and 3.12's sys.monitoring callbacks tick alike.
    with daemon_env(tmp_path) as (_, env):
        proc, out, work = start(tmp_path, env, interp=interp)
        s = wait_for(lambda: (t := one_trace(env)) and t["calls"] == PUBLISHED and t,
                     "the published calls", timeout=5)
        assert (s["label"], s["status"], s["pid"]) == ("live", "open", proc.pid)
        so_far = tree(env, s["id"], "--no-fold")
        assert so_far.count("__main__.handle_request(uid=") == 10, so_far
        [m] = [line for line in so_far.splitlines() if "__main__.marker" in line]
        assert "unfinished" in m, so_far
        assert logs(env)[0]["calls"] == PUBLISHED  # nothing else while it waits
        (work / "go").touch()
        _, err = proc.communicate(timeout=60)
        assert (proc.returncode, err) == (0, "")
        f = json.loads(out.read_text())
        assert (f["streamed"], f["state"], f["dropped"], f["errors"], f["cache"]) == \
            (True, "acked", 0, [], None)
        [s] = logs(env)
        assert f["calls"] == PUBLISHED  # marker() was the last call
        assert (s["id"], s["status"], s["calls"]) == (f["trace_id"], "complete", f["calls"])
        # The stream's times are the trace's own, to the nanosecond.
        assert tree(env, s["id"]) == f["tree"] + "\n"


def test_kill_9_keeps_what_was_published_as_truncated(tmp_path):
    with daemon_env(tmp_path) as (_, env):
        proc, _, _ = start(tmp_path, env)
        wait_for(lambda: (t := one_trace(env)) and t["calls"] == PUBLISHED, "the published calls")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        s = wait_for(lambda: (t := one_trace(env)) and t["status"] != "open" and t,
                     "the trace to close")
        assert (s["status"], s["calls"], s["label"]) == ("truncated", PUBLISHED, "live")
        assert tree(env, s["id"], "--no-fold").count("__main__.handle_request(uid=") == 10


def test_daemon_gone_mid_stream_saves_the_whole_trace_locally(tmp_path):
    with daemon_env(tmp_path) as (d, env):
        proc, out, work = start(tmp_path, env)
        wait_for(lambda: (t := one_trace(env)) and t["calls"] == PUBLISHED, "the published calls")
        d.stop()
        t0 = time.monotonic()
        (work / "go").touch()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert time.monotonic() - t0 < 10
        f = json.loads(out.read_text())
        assert f["streamed"] is True and f["state"] in ("none", "failed"), (f, err)
        assert f["errors"] and all("tphd" in e for e in f["errors"]), f["errors"]
        saved = [p for p in (work / ".tracepatch" / "traces").glob("*.json")]
        assert len(saved) == 1, repr((f, err, list(work.iterdir())))
        assert f"saved to {saved[0].relative_to(work)}" in err or f"saved to {saved[0]}" in err, err
        doc = json.loads(saved[0].read_text())
        assert (doc["trace_id"], doc["call_count"]) == (f["trace_id"], f["calls"])


def test_an_open_stream_does_not_hold_up_other_traces(tmp_path):
    # Inside marker(), with the stream open: a trace in another thread
    # goes to tphd and is acknowledged before the stream's trace ends.
    inside = '''import threading
    got = {}
    def other():
        with trace(label="short") as t2:
            handle_request(7)
        got["url"], got["state"] = t2.url, t2.upload_state
    th = threading.Thread(target=other)
    th.start(); th.join()
    open(os.path.join(HERE, "other.json"), "w").write(json.dumps(got))'''
    with daemon_env(tmp_path) as (_, env):
        proc, out, work = start(tmp_path, env, inside=inside)
        wait_for(lambda: (t := one_trace(env)) and t["calls"] == PUBLISHED, "the published calls")
        (work / "go").touch()
        _, err = proc.communicate(timeout=60)
        # (stderr has the repr notes of half-made Thread objects, recorded in marker)
        assert proc.returncode == 0, err
        other = json.loads((work / "other.json").read_text())
        assert other["state"] == "acked"
        labels = sorted((s["label"], s["status"]) for s in logs(env))
        assert labels == [("live", "complete"), ("short", "complete")]


def test_a_child_forked_mid_stream_does_not_stream_the_parents_trace(tmp_path):
    # The child inherits the recording session; it makes calls for longer
    # than a tick and exits. tphd gets the parent's trace once, complete.
    inside = '''pid = os.fork()
    if pid == 0:
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            handle_request(99)
        os._exit(0)
    os.waitpid(pid, 0)'''
    with daemon_env(tmp_path) as (_, env):
        proc, out, work = start(tmp_path, env, inside=inside)
        wait_for(lambda: (t := one_trace(env)) and t["calls"] == PUBLISHED, "the published calls")
        (work / "go").touch()
        _, err = proc.communicate(timeout=60)
        assert (proc.returncode, err) == (0, "")
        f = json.loads(out.read_text())
        [s] = logs(env)
        assert (s["id"], s["status"], s["calls"], s["pid"]) == \
            (f["trace_id"], "complete", f["calls"], proc.pid)
        assert "uid=99" not in tree(env, s["id"], "--no-fold")
