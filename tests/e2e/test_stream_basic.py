"""Streaming from the extension to a real tphd: a trace finished under
trace(daemon="auto") is stored by the daemon, renders identically there, and
the trace object learns its stored id and report link; no local file is
written when a daemon took the trace."""

import os
import re

import pytest

from streamlib import (
    client_env,
    daemon_env,
    logs,
    needs_binaries,
    needs_extension,
    run_script,
    tree,
)
from tphlib import Uploader, call, tph

pytestmark = [needs_binaries, needs_extension]

HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def daemon_and_env(tmp_path):
    with daemon_env(tmp_path, ["--http", "127.0.0.1:0"]) as de:
        yield de


@pytest.fixture
def daemon(daemon_and_env):
    return daemon_and_env[0]


@pytest.fixture
def env(daemon_and_env):
    return daemon_and_env[1]


BASIC = '''
with trace(label="stream-basic") as t:
    handle_request(42)
state_at_end = t.upload_state
url = t.url  # waits for the ACK
dump(facts(t, url=url, state_at_end=state_at_end, tree=t.tree(),
           ascii=t.tree(style="ascii", self_time=True), event_count=t._session.event_count,
           argv=sys.argv, tracepatch_dir=os.path.exists(".tracepatch")))
'''


def test_trace_is_stored_with_the_same_tree(tmp_path, env):
    r = run_script(tmp_path, BASIC, env)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert f["state_at_end"] in ("pending", "acked")
    assert (f["state"], f["dropped"], f["errors"], f["cache"], f["tracepatch_dir"]) == \
        ("acked", 0, [], None, False)
    assert f["calls"] == 6  # handle_request, load_user, validate x3, parse
    [s] = logs(env)
    assert s["id"] == f["trace_id"] and HEX32.match(s["id"])
    assert (s["label"], s["calls"], s["dropped"], s["status"], s["pid"], s["python"],
            s["argv"], s["client"]) == \
        ("stream-basic", 6, 0, "complete", f["pid"], f["py"], f["argv"], "tracepatch/2.0.0")
    assert tree(env, f["trace_id"]) == f["tree"] + "\n"
    assert tree(env, f["trace_id"], "--style", "ascii", "--self-time") == f["ascii"] + "\n"
    assert "__main__.validate(" in f["tree"] and "[×3]" in f["tree"]
    # The report link is the one `tph open` gives for the stored trace.
    opened = tph("open", f["trace_id"], env=env)
    assert opened.returncode == 0, opened.stderr
    assert f["url"] == opened.stdout.strip()
    assert f["url"].startswith("http://127.0.0.1:") and f["trace_id"] in f["url"]


def test_socket_path_names_the_daemon(tmp_path, daemon):
    env = client_env(tmp_path)  # TRACEPATCH_SOCKET: nobody listens there
    body = '''
with trace(label="by-path", daemon=sys.argv[2]) as t:
    handle_request(1)
url = t.url
dump(facts(t, url=url))
'''
    r = run_script(tmp_path, body, env, args=[str(daemon.socket)])
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["state"], r.out["cache"]) == ("acked", None)
    [s] = logs(client_env(tmp_path, daemon.socket))
    assert (s["id"], s["label"], s["calls"]) == (r.out["trace_id"], "by-path", 6)


def test_off_never_sends_and_saves_a_file(tmp_path, env):
    body = '''
with trace(label="offline", daemon="off") as t:
    handle_request(1)
dump(facts(t, url=t.url))
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["state"], r.out["url"], r.out["dropped"]) == ("none", None, 0)
    assert r.out["cache"] and os.path.exists(r.out["cache"])
    assert logs(env) == []


def test_required_with_a_daemon_is_quiet(tmp_path, env):
    body = '''
warnings.simplefilter("error")
with trace(label="must", daemon="required") as t:
    handle_request(1)
dump(facts(t, url=t.url))
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["state"], r.out["cache"], r.out["dropped"]) == ("acked", None, 0)
    assert [s["label"] for s in logs(env)] == ["must"]


def test_many_traces_from_one_process_all_arrive_in_order(tmp_path, env):
    body = '''
ts = []
for i in range(30):
    with trace(label="many-%02d" % i) as t:
        handle_request(i)
    ts.append(t)
dump([facts(t, url=t.url) for t in ts])
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    assert [f["state"] for f in r.out] == ["acked"] * 30
    stored = logs(env)
    assert sorted((s["label"], s["id"], s["calls"]) for s in stored) == \
        [("many-%02d" % i, r.out[i]["trace_id"], 6) for i in range(30)]


def test_stored_id_replaces_a_taken_one(tmp_path, env, daemon):
    taken = "0" * 32
    up = Uploader(daemon.socket)
    up.funcs([(0, "app", "main", "/src/app.py", 1)])
    up.begin(taken, "squatter", 1_700_000_000_000_000_000)
    up.events(taken, [call(0, 1000, 2000, args="", ret="None")])
    up.end(taken, 3000, 1)
    up.close()
    body = '''
os.urandom = lambda n: bytes(n)  # trace() draws its id from os.urandom: all zeros
with trace(label="second") as t:
    handle_request(7)
before = t._trace_id
url = t.url
dump(facts(t, url=url, before=before, tree=t.tree()))
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert f["before"] == taken and f["state"] == "acked"
    assert f["trace_id"] != taken and HEX32.match(f["trace_id"])
    assert f["trace_id"] in f["url"]
    by_label = {s["label"]: s["id"] for s in logs(env)}
    assert by_label == {"squatter": taken, "second": f["trace_id"]}
    # The stored tree is the trace's own (its header shows no id, so the
    # text is the same whatever the id).
    assert tree(env, f["trace_id"]) == f["tree"] + "\n"


def test_session_api(tmp_path, env, daemon):
    body = '''
import threading
s = _tracepatch.Session(label="api")
s.start(); handle_request(3); s.stop()
before = s.upload_state
handed = s.upload(sys.argv[2])
again = s.upload(sys.argv[2])  # once is enough
ok = s.wait_upload(5.0)
res = {"before": before, "handed": handed, "again": again, "ok": ok, "state": s.upload_state,
       "socket": s.upload_socket, "url": s.url, "error": s.upload_error, "id": s.trace_id,
       "dropped": s.dropped, "default": _tracepatch.default_socket(),
       "pending": _tracepatch._sender_info()["pending"]}
fresh = _tracepatch.Session()
res["fresh"] = [fresh.upload_state, fresh.url, fresh.wait_upload(0.1)]
try:
    fresh.upload()
except RuntimeError as e:
    res["not_started"] = str(e)
dump(res)
'''
    r = run_script(tmp_path, body, env, args=[str(daemon.socket)])
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert (f["before"], f["handed"], f["again"], f["ok"], f["state"], f["error"],
            f["dropped"]) == ("none", True, True, True, "acked", None, 0)
    assert f["socket"] == str(daemon.socket) == f["default"]
    assert f["pending"] == 0
    assert f["url"] and f["id"] in f["url"]
    assert f["fresh"] == ["none", None, False]
    assert f["not_started"] == "the Session was never started"
    assert [s["id"] for s in logs(env)] == [f["id"]]


def test_sender_thread_ends_when_idle(tmp_path, env):
    # A program that forks after its uploads finished forks with a single
    # thread (Python 3.12+ warns about fork() with threads running).
    body = '''
def threads():
    return len(os.listdir("/proc/self/task"))

before = threads()
with trace(label="idle") as t:
    handle_request(1)
during = _tracepatch._sender_info()["running"]
url = t.url
deadline = time.monotonic() + 5
while _tracepatch._sender_info()["running"] and time.monotonic() < deadline:
    time.sleep(0.01)
after = threads()
with trace(label="again") as t2:
    handle_request(2)
t2.url
dump({"before": before, "during": during, "after": after, "info": _tracepatch._sender_info(),
      "states": [t.upload_state, t2.upload_state]})
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["before"], r.out["during"], r.out["after"]) == (1, True, 1)
    assert r.out["states"] == ["acked", "acked"]  # a new thread took the second one
    assert r.out["info"]["pending"] == 0
    assert sorted(s["label"] for s in logs(env)) == ["again", "idle"]


def test_threads_end_after_a_streamed_trace(tmp_path, env):
    # A trace that streamed (the idle thread publishes while the program
    # waits) leaves the program with one thread again once it is stored.
    body = '''
def threads():
    return len(os.listdir("/proc/self/task"))

with trace(label="streamed", stream_after=0.05) as t:
    handle_request(1)
    time.sleep(0.1)
    handle_request(2)  # this call opens the stream
    during = threads()
    time.sleep(0.3)  # the idle thread publishes meanwhile
url = t.url
deadline = time.monotonic() + 10
while threads() > 1 and time.monotonic() < deadline:
    time.sleep(0.01)
dump({"streamed": t._session.streamed, "during": during, "after": threads(),
      "state": t.upload_state})
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    # main, the sender and the idle thread; then main alone
    assert (r.out["streamed"], r.out["during"], r.out["after"]) == (True, 3, 1)
    assert r.out["state"] == "acked"
    [s] = logs(env)
    assert (s["label"], s["status"], s["calls"]) == ("streamed", "complete", 13)


def test_last_trace_of_a_program_is_delivered_at_exit(tmp_path, env):
    # Nothing waits for the upload: the interpreter's exit flush does. (The
    # trace is big enough, 100,001 events, to be still under way when the
    # script ends.)
    body = '''
def leaf(i):
    return i

with trace(label="last-words", max_calls=60000) as t:
    for i in range(50000):
        leaf(i)
dump(facts(t))
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.out["state"] == "pending" and r.out["cache"] is None
    [s] = logs(env)
    assert (s["id"], s["label"], s["calls"], s["status"]) == \
        (r.out["trace_id"], "last-words", 50000, "complete")
