"""Streaming when the daemon is absent, stopped, slow or refuses: the traced
program is unaffected, the trace stays complete in the process, a trace that
could not be handed to a daemon is saved as a file, and a failed upload is
counted in t.dropped with its reason in t.errors. Absent daemon under
daemon="auto" is "not uploaded" (no drop, no warning); under "required" it is
a drop and a warning naming the socket."""

import json
import os
import signal
import socket
import threading
import time

import pytest

from streamlib import (
    PRELUDE,
    client_env,
    daemon_env,
    logs,
    needs_binaries,
    needs_extension,
    run_script,
)
from tphlib import FakeDaemon, frame, read_frame

pytestmark = [needs_binaries, needs_extension]

# The whole program, interpreter start included, must end well within this
# (the sender's own bounds are 250 ms at exit, about 1 s per failed handshake,
# 2 s for an ACK); a loose bound, never a tight wall-clock threshold.
LOOSE_S = 5.0

REPORT = '''
state_after_url = t.upload_state
if t._session.upload_state == "pending":
    t._session.wait_upload(10.0)  # t.url waits 2 s at most; the sender may need longer
dump(facts(t, url=url, tree=t.tree(), event_count=t._session.event_count,
           wait_s=wait_s, error=t._session.upload_error, state_after_url=state_after_url,
           files=sorted(os.listdir(".tracepatch/traces")) if os.path.isdir(".tracepatch/traces") else []))
'''

ONE = '''
with trace(label="lonely"%s) as t:
    handle_request(5)
t0 = time.monotonic()
url = t.url
wait_s = time.monotonic() - t0
''' + REPORT

# The script's first line after PRELUDE; the `with` of ONE is the next one.
PRELUDE_LINES = PRELUDE.count("\n")

EXPECTED_TREE_LINES = ("__main__.handle_request(uid=5)", "__main__.load_user(uid=5)",
                       "__main__.validate(", "__main__.parse(text='x')")


def assert_complete(f):
    assert f["calls"] == 6
    for line in EXPECTED_TREE_LINES:
        assert line in f["tree"], line


def test_absent_daemon_auto_is_not_a_drop(tmp_path):
    env = client_env(tmp_path)
    r = run_script(tmp_path, "warnings.simplefilter('error')\n" + ONE % "", env)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert_complete(f)
    assert (f["state"], f["url"], f["dropped"], f["errors"]) == ("none", None, 0, [])
    assert f["error"] == (f"no tphd listening at {env['TRACEPATCH_SOCKET']} "
                          f"(No such file or directory)")
    assert f["cache"] and os.path.basename(f["cache"]) in f["files"]
    saved = json.load(open(f["cache"]))
    assert (saved["label"], saved["call_count"], saved["trace_id"]) == \
        ("lonely", 6, f["trace_id"])


def test_absent_daemon_required_warns_and_counts_the_drop(tmp_path):
    env = client_env(tmp_path)
    r = run_script(tmp_path, ONE % ', daemon="required"', env)
    assert r.returncode == 0, r.stderr
    f = r.out
    assert_complete(f)
    sock = env["TRACEPATCH_SOCKET"]
    reason = f"no tphd listening at {sock} (No such file or directory)"
    assert f"app.py:{PRELUDE_LINES + 2}: TracepatchWarning: tracepatch: daemon='required' but " \
           f"trace {f['trace_id'][:8]} (lonely) was not sent to tphd: {reason}" in r.stderr
    assert (f["state"], f["url"], f["errors"]) == ("failed", None, [reason])
    assert f["dropped"] == f["event_count"] == 14  # THREAD, 6 CALLs, 5 RETURNs, UNWIND, CAUGHT
    assert f["cache"] and os.path.exists(f["cache"])


def test_stale_socket_file_is_an_absent_daemon(tmp_path):
    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # the file stays, nobody listens: what a crashed tphd leaves
    env = client_env(tmp_path, path)
    r = run_script(tmp_path, ONE % "", env)
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["state"], r.out["dropped"], r.out["error"]) == \
        ("none", 0, f"no tphd listening at {path} (Connection refused)")
    assert r.out["cache"]


@pytest.fixture
def stopped_daemon(tmp_path):
    with daemon_env(tmp_path) as (d, _):
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            yield d
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)


def test_stopped_daemon_fails_after_bounded_tries(tmp_path, stopped_daemon):
    env = client_env(tmp_path, stopped_daemon.socket)
    r = run_script(tmp_path, ONE % "", env, timeout=30)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert_complete(f)
    # Its listen socket accepts (the kernel queues the connection), so the
    # trace was handed over and no file saved; the handshake never completes.
    assert (f["state"], f["url"], f["cache"], f["files"]) == ("failed", None, None, [])
    assert f["dropped"] == f["event_count"] == 14
    msg = (f"upload to tphd at {stopped_daemon.socket} failed, 14 events dropped: "
           f"no WELCOME from tphd: timed out (3 tries)")
    assert f["errors"] == [msg] and f["error"] == msg
    assert f["wait_s"] < LOOSE_S
    os.kill(stopped_daemon.proc.pid, signal.SIGCONT)
    assert logs(client_env(tmp_path, stopped_daemon.socket)) == []


def test_exit_with_a_stopped_daemon_is_bounded(tmp_path, stopped_daemon):
    env = client_env(tmp_path, stopped_daemon.socket)
    body = '''
with trace(label="at-exit") as t:
    handle_request(1)
dump({"state": t.upload_state, "info": _tracepatch._sender_info(), "id": t.trace_id})
'''
    start = time.monotonic()
    r = run_script(tmp_path, body, env, timeout=30)
    elapsed = time.monotonic() - start
    assert r.returncode == 0
    assert r.out["state"] == "pending"
    assert r.out["info"] == {"running": True, "pending": 1}
    assert elapsed < LOOSE_S
    # Not delivered when the exit bound passed: saved, and said on stderr.
    saved = list((tmp_path / "work" / ".tracepatch" / "traces").glob("*.json"))
    assert len(saved) == 1
    # The sender was connecting or waiting for WELCOME when it was stopped.
    head = (f"tracepatch: trace {r.out['id'][:8]} (at-exit, 6 calls) was not delivered to tphd "
            f"before the interpreter exited ({prefix(stopped_daemon.socket)}14 events dropped: ")
    tail = f"the interpreter exited first); saved to {saved[0]}\n"
    assert r.stderr in (head + tail, head + "no WELCOME from tphd: " + tail), r.stderr


# ---- a scripted daemon: slow, silent or refusing ----------------------------------

WELCOME_ACK = frame(2, {"v": 1, "caps": 1, "client": "tphd/fake", "pid": 1})


class Script:
    """A fake tphd whose connections run handler(conn, log); log collects the
    message types each connection received."""

    def __init__(self, path, handler):
        self.conns = []
        self.release = threading.Event()

        def serve(fake, conn):
            seen = []
            self.conns.append(seen)
            handler(self, conn, seen)

        self.fake = FakeDaemon(path, serve)

    def close(self):
        self.release.set()
        self.fake.close()


def read_until(conn, seen, mtype):
    while True:
        msg = read_frame(conn)
        if msg is None:
            return None
        seen.append(msg[0])
        if msg[0] == mtype:
            return msg


def stall_after_welcome(script, conn, seen):
    read_until(conn, seen, 1)
    conn.sendall(WELCOME_ACK)
    script.release.wait(30)  # never reads again


def silent_after_end(script, conn, seen):
    read_until(conn, seen, 1)
    conn.sendall(WELCOME_ACK)
    read_until(conn, seen, 6)
    script.release.wait(30)


def refuse_at_end(script, conn, seen):
    read_until(conn, seen, 1)
    conn.sendall(WELCOME_ACK)
    end = read_until(conn, seen, 6)
    conn.sendall(frame(8, {"code": -4011, "name": "DB", "msg": "disk full",
                           "trace": end[1]["trace"]}))
    conn.close()


def hang_up(script, conn, seen):
    read_until(conn, seen, 1)
    conn.close()


def wrong_version(script, conn, seen):
    read_until(conn, seen, 1)
    conn.sendall(frame(8, {"code": -4006, "name": "VERSION",
                           "msg": "client speaks protocol 1, tphd speaks 2"}))
    conn.close()


@pytest.fixture
def scripted(tmp_path):
    made = []

    def make(handler):
        s = Script(tmp_path / "fake.sock", handler)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


BIG = '''
def leaf(i, pad):
    return i

with trace(label="big", max_calls=100000) as t:
    for i in range(30000):
        leaf(i, "p" * 40)
t0 = time.monotonic()
url = t.url
wait_s = time.monotonic() - t0
''' + REPORT


def prefix(sock):
    return f"upload to tphd at {sock} failed, "


def test_daemon_stalling_mid_upload(tmp_path, scripted):
    s = scripted(stall_after_welcome)
    env = client_env(tmp_path, tmp_path / "fake.sock")
    r = run_script(tmp_path, BIG, env, timeout=30)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert f["calls"] == 30000 and "[×30000]" in f["tree"]
    assert (f["state"], f["url"], f["cache"]) == ("failed", None, None)
    assert f["dropped"] == f["event_count"] == 60001  # THREAD, then CALL and RETURN each
    assert f["errors"] == [prefix(tmp_path / "fake.sock") +
                           "60001 events dropped: sending EVENTS failed: timed out"]
    assert f["wait_s"] < LOOSE_S
    assert len(s.conns) == 1  # no second try once the trace began


def test_daemon_that_never_acknowledges(tmp_path, scripted):
    s = scripted(silent_after_end)
    env = client_env(tmp_path, tmp_path / "fake.sock")
    r = run_script(tmp_path, ONE % "", env, timeout=30)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert (f["state"], f["dropped"]) == ("failed", 14)
    assert f["errors"] == [prefix(tmp_path / "fake.sock") + "14 events dropped: no ACK from "
                           "tphd within 2000 ms (it may still store the trace)"]
    assert s.conns == [[1, 3, 4, 5, 11, 6]]  # HELLO FUNCS BEGIN EVENTS SOURCE END, once
    # t.url gives up after 2 s, about when the sender's own ACK bound ends.
    assert f["url"] is None and f["state_after_url"] in ("pending", "failed")
    assert f["wait_s"] < LOOSE_S


def test_daemon_error_reply(tmp_path, scripted):
    scripted(refuse_at_end)
    env = client_env(tmp_path, tmp_path / "fake.sock")
    r = run_script(tmp_path, ONE % "", env, timeout=30)
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["state"], r.out["dropped"]) == ("failed", 14)
    assert r.out["errors"] == [prefix(tmp_path / "fake.sock") +
                               "14 events dropped: tphd did not store the trace: disk full"]


def test_daemon_hanging_up_is_tried_three_times(tmp_path, scripted):
    s = scripted(hang_up)
    env = client_env(tmp_path, tmp_path / "fake.sock")
    r = run_script(tmp_path, ONE % "", env, timeout=30)
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["state"], r.out["dropped"]) == ("failed", 14)
    assert r.out["errors"] == [prefix(tmp_path / "fake.sock") + "14 events dropped: "
                               "no WELCOME from tphd: tphd closed the connection (3 tries)"]
    assert s.conns == [[1], [1], [1]]


def test_version_refusal_is_not_retried(tmp_path, scripted):
    s = scripted(wrong_version)
    env = client_env(tmp_path, tmp_path / "fake.sock")
    r = run_script(tmp_path, ONE % "", env, timeout=30)
    reason = (prefix(tmp_path / "fake.sock") + "14 events dropped: tphd refused the connection: "
              "client speaks protocol 1, tphd speaks 2")
    assert r.out["errors"] == [reason]
    assert s.conns == [[1]]
    # Nothing of the trace reached tphd: saved at exit as without a daemon.
    saved = list((tmp_path / "work" / ".tracepatch" / "traces").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["label"] == "lonely"
    assert (r.returncode, r.stderr) == (0, f"tracepatch: trace {r.out['trace_id'][:8]} (lonely, "
                                           f"6 calls) was not stored by tphd ({reason}); saved "
                                           f"to {saved[0]}\n")



def test_daemon_killed_between_traces(tmp_path):
    # A daemon that acknowledged a trace less than a second ago is taken as
    # reachable without probing its socket: if it died meanwhile, the next
    # trace's upload fails (a drop, said in errors). Later traces probe again
    # and find nobody (not a drop; saved as a file).
    body = '''
import signal
with trace(label="first") as t1:
    handle_request(1)
t1.url
acked = time.monotonic()
os.kill(int(sys.argv[2]), signal.SIGKILL)
time.sleep(0.05)  # let it die; its socket file stays
start2 = time.monotonic()
with trace(label="second") as t2:
    handle_request(2)
t2._session.wait_upload(5.0)
time.sleep(1.1)
with trace(label="third") as t3:
    handle_request(3)
dump({"first": facts(t1), "second": facts(t2), "third": facts(t3),
      "third_error": t3._session.upload_error, "gap": start2 - acked})
'''
    # daemon_env stops the daemon should the script fail before killing it
    # (it used to stay running after such a failure).
    with daemon_env(tmp_path) as (d, env):
        r = run_script(tmp_path, body, env, args=[str(d.proc.pid)], timeout=60)
        d.proc.wait(10)
    assert (r.returncode, r.stderr) == (0, "")
    first, second, third = r.out["first"], r.out["second"], r.out["third"]
    assert first["state"] == "acked" and first["cache"] is None
    if r.out["gap"] < 0.9:  # well inside the 1 s window: no probe
        assert (second["state"], second["dropped"], second["cache"]) == ("failed", 14, None)
        assert second["errors"] == [prefix(d.socket) + "14 events dropped: cannot connect: "
                                    "Connection refused (3 tries)"]
    else:  # a very slow machine: the window passed, so it probed
        assert (second["state"], second["dropped"]) == ("none", 0) and second["cache"]
    assert (third["state"], third["dropped"], third["errors"]) == ("none", 0, [])
    assert r.out["third_error"] == f"no tphd listening at {d.socket} (Connection refused)"
    assert third["cache"] and os.path.exists(third["cache"])


def test_descriptors_closed_under_the_sender(tmp_path):
    # A program that closes every descriptor right after a trace (as
    # daemonising code does) and opens files that take the same numbers:
    # nothing meant for tphd may ever land in them.
    body = '''
big = "x" * 100
def leaf(i, pad):
    return i
results = []
for round in range(20):
    with trace(label="r%d" % round, max_calls=30000) as t:
        for i in range(20000):
            leaf(i, big)
    os.closerange(3, 256)
    files = [open("victim-%d-%d" % (round, k), "w+") for k in range(8)]
    t._session.wait_upload(10.0)
    sizes = [os.fstat(f.fileno()).st_size for f in files]
    for f in files:
        f.close()
    results.append((t.upload_state, sizes))
dump(results)
'''
    with daemon_env(tmp_path) as (_, env):
        r = run_script(tmp_path, body, env, timeout=120)
    assert (r.returncode, r.stderr) == (0, "")
    assert all(sizes == [0] * 8 for _, sizes in r.out)
    assert all(state in ("acked", "failed") for state, _ in r.out)
