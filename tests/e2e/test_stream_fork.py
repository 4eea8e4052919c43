"""Streaming across fork(): both processes carry on, the sender starts over
in the child, and no trace is ever stored twice."""

import pytest

from streamlib import (
    daemon_env,
    logs,
    needs_binaries,
    needs_extension,
    run_script,
    tree,
)

pytestmark = [needs_binaries, needs_extension]


@pytest.fixture
def env(tmp_path):
    with daemon_env(tmp_path) as (_, env):
        yield env


def test_fork_inside_a_trace(tmp_path, env):
    body = '''
def work(uids):
    return [handle_request(u) for u in uids]

with trace(label="forky") as t:
    work([0, 1])
    pid = os.fork()
    if pid == 0:
        work([2, 3])  # the child's own part: its copy of the session stopped at the fork
if pid == 0:
    t._session.wait_upload(0.5)
    child = facts(t, url=t.url, tree=t.tree(), flat=t.tree(fold=False),
                  info=_tracepatch._sender_info())
    with open(OUT + ".child", "w") as fh:
        json.dump(child, fh)
    sys.exit(0)  # a normal exit: the child's atexit flush runs too
_, status = os.waitpid(pid, 0)
url = t.url
dump({"parent": facts(t, url=url, tree=t.tree(), flat=t.tree(fold=False)), "status": status,
      "child": json.load(open(OUT + ".child"))})
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    parent, child = r.out["parent"], r.out["child"]
    assert r.out["status"] == 0
    assert (parent["state"], parent["cache"], parent["dropped"]) == ("acked", None, 0)
    # work, its list comprehension (3.11), 2 x (handle_request, load_user,
    # validate x3, parse): nothing of the child's part. The two requests fold
    # into one [load_user, validate, ...] x2: the unfolded tree names each.
    assert parent["calls"] == 14 and parent["py"].startswith("3.11.")
    assert "__main__.load_user(uid=1)" in parent["flat"]
    assert "uid=2" not in parent["flat"]
    # The child: its copy of the trace stopped at the fork; it neither
    # uploads it nor saves it, and says why.
    assert child["pid"] != parent["pid"]
    assert (child["state"], child["url"], child["cache"], child["dropped"]) == \
        ("none", None, None, 0)
    assert child["info"] == {"running": False, "pending": 0}
    assert child["errors"] == [
        f"the process forked; recording stopped in the child (pid {child['pid']})"]
    assert "uid=2" not in child["flat"] and "load_user(uid=1)" in child["flat"]
    assert child["calls"] == 14
    assert child["trace_id"] == parent["trace_id"]
    [s] = logs(env)
    assert (s["id"], s["label"], s["calls"], s["pid"]) == \
        (parent["trace_id"], "forky", parent["calls"], parent["pid"])
    assert tree(env, s["id"]) == parent["tree"] + "\n"


def test_fork_with_an_upload_queued(tmp_path, env):
    body = '''
with trace(label="before-fork") as t:
    handle_request(1)
state_at_fork = t.upload_state
pid = os.fork()
if pid == 0:
    child = {"state": t.upload_state, "info": _tracepatch._sender_info(), "url": t.url}
    with trace(label="child-own") as t2:
        handle_request(2)
    child["own"] = facts(t2, url=t2.url)
    with open(OUT + ".child", "w") as fh:
        json.dump(child, fh)
    sys.exit(0)
_, status = os.waitpid(pid, 0)
dump({"parent": facts(t, url=t.url), "state_at_fork": state_at_fork, "status": status,
      "child": json.load(open(OUT + ".child"))})
'''
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    out = r.out
    parent, child = out["parent"], out["child"]
    assert out["status"] == 0 and parent["state"] == "acked"
    assert child["info"] == {"running": False, "pending": 0}
    if out["state_at_fork"] == "pending":
        # Queued in the parent at the fork: the parent's to send.
        assert (child["state"], child["url"]) == ("none", None)
    else:
        assert child["state"] == "acked"
    assert child["own"]["state"] == "acked"
    stored = sorted((s["label"], s["id"], s["pid"]) for s in logs(env))
    assert stored == sorted([("before-fork", parent["trace_id"], parent["pid"]),
                             ("child-own", child["own"]["trace_id"], child["own"]["pid"])])


def test_multiprocessing_workers_deliver_before_they_exit(tmp_path, env):
    body = '''
import multiprocessing as mp

def task(i):
    with trace(label="task-%d" % i) as t:
        handle_request(i)
    return t.trace_id  # no waiting: the worker exits right after the pool closes

if __name__ == "__main__":
    with trace(label="parent") as t:
        handle_request(0)
    ctx = mp.get_context("fork")
    pool = ctx.Pool(2)
    ids = pool.map(task, range(8))
    pool.close()
    pool.join()
    dump({"ids": ids, "parent": t.trace_id, "url": t.url})
'''
    r = run_script(tmp_path, body, env, timeout=120)
    assert (r.returncode, r.stderr) == (0, "")
    stored = {s["label"]: s["id"] for s in logs(env)}
    expected = {"task-%d" % i: r.out["ids"][i] for i in range(8)}
    expected["parent"] = r.out["parent"]
    assert stored == expected
