"""Traces streamed at the same time from two interpreters with different hooks
(the main one, 3.11's profile hook, and a 3.12 build with sys.monitoring) all
land in one tphd, each with its own process facts and the tree its process
rendered. The 3.12 build: see streamlib.find_py312()."""

import json

import pytest

from streamlib import (
    daemon_env,
    find_py312,
    logs,
    needs_binaries,
    needs_extension,
    run_script,
    tree,
)

pytestmark = [needs_binaries, needs_extension]

PY312, PY312_PATH = find_py312()

BODY = '''
tag = sys.argv[2]
ts = []
for i in range(10):
    with trace(label="%s-%d" % (tag, i)) as t:
        handle_request(i)
    ts.append(t)
dump([facts(t, url=t.url, tree=t.tree()) for t in ts])
'''


@pytest.mark.skipif(PY312 is None, reason=str(PY312_PATH))
def test_two_interpreters_stream_at_once(tmp_path):
    with daemon_env(tmp_path) as (_, env):
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        pa, out_a = run_script(tmp_path / "a", BODY, env, wait=False, args=["main"])
        pb, out_b = run_script(tmp_path / "b", BODY, env, python=PY312, pythonpath=PY312_PATH,
                               wait=False, args=["py312"])
        for p in (pa, pb):
            _, err = p.communicate(timeout=120)
            assert (p.returncode, err) == (0, "")
        a, b = json.loads(out_a.read_text()), json.loads(out_b.read_text())
        assert a[0]["py"].startswith("3.11.") and b[0]["py"].startswith("3.12.")
        stored = {s["id"]: s for s in logs(env)}
        assert len(stored) == 20
        for facts in a + b:
            s = stored[facts["trace_id"]]
            assert facts["state"] == "acked"
            assert (s["label"], s["calls"], s["pid"], s["python"]) == \
                (facts["label"], facts["calls"], facts["pid"], facts["py"])
            assert tree(env, s["id"]) == facts["tree"] + "\n"
        assert {f["calls"] for f in a} == {6} and {f["calls"] for f in b} == {6}


@pytest.mark.skipif(PY312 is None, reason=str(PY312_PATH))
def test_fork_after_uploads_gives_no_threads_warning_on_312(tmp_path):
    # Python 3.12+ warns (DeprecationWarning) when a process with several
    # threads forks; the sender thread must be gone once its work is done.
    with daemon_env(tmp_path) as (_, env):
        body = '''
with trace(label="then-fork") as t:
    handle_request(1)
t.url
deadline = time.monotonic() + 5
while _tracepatch._sender_info()["running"] and time.monotonic() < deadline:
    time.sleep(0.01)
warnings.simplefilter("error")
pid = os.fork()
if pid == 0:
    os._exit(7)
_, status = os.waitpid(pid, 0)
dump({"status": os.waitstatus_to_exitcode(status), "state": t.upload_state})
'''
        r = run_script(tmp_path, body, env, python=PY312, pythonpath=PY312_PATH)
        assert (r.returncode, r.stderr) == (0, "")
        assert r.out == {"status": 7, "state": "acked"}
