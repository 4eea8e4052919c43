"""3.10/3.11: the PEP 523 eval-frame hook (the default on 3.10 and 3.11.4+;
TRACEPATCH_HOOK=profile chooses the profile function) records what the
profile function records, leaves the profile and trace
slots to the program (cProfile, pdb), hides the extension's own Python
code from them, and gives way to another tool holding the eval-frame slot.

The hook is chosen when the extension loads, so each case runs in a child
process with the variable set."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import PACKAGE_PARENT

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12),
                                reason="3.12+ records with sys.monitoring")

EVAL_OK = sys.version_info < (3, 11) or sys.version_info >= (3, 11, 4)


def run(code, hook):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    if hook:
        env["TRACEPATCH_HOOK"] = hook
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


# A workload with every kind of call the model tells apart: nested calls,
# generators (next, send, throw, close), a coroutine under asyncio with a
# task, an async generator, exceptions caught and propagated.
WORKLOAD = """
import asyncio, json, sys
from tracepatch import _tracepatch as T

def leaf(x):
    return x * 2

def fail(msg):
    raise ValueError(msg)

def catches():
    try:
        fail("bad")
    except ValueError:
        return 1

def propagates():
    fail("worse")

def gen(n):
    for i in range(n):
        got = yield leaf(i)
        if got:
            leaf(got)

def gen_work():
    g = gen(5)
    next(g)
    g.send(7)
    try:
        g.throw(KeyError("k"))
    except KeyError:
        pass
    h = gen(3)
    next(h)
    h.close()
    return list(gen(2))

async def child(x):
    await asyncio.sleep(0)
    return leaf(x)

async def agen():
    yield 1
    yield 2

async def main():
    t = asyncio.ensure_future(child(3))
    r = await child(1)
    async for v in agen():
        leaf(v)
    return r + await t

class Box:
    def __getitem__(self, i):
        return leaf(i)

    def __repr__(self):
        return "Box()"

def subscripts():
    b = Box()
    total = 0
    for i in range(3):
        total += b[i]
    return total

def work():
    leaf(1)
    catches()
    try:
        propagates()
    except ValueError:
        pass
    gen_work()
    subscripts()
    asyncio.run(main())

s = T.Session(show_args=True, show_return=True, trace_id="0" * 32)
s.start()
work()
s.stop()
print(json.dumps({"hook": T.HOOK, "calls": s.call_count,
                  "nodes": [[n[0], n[2], n[5], n[6], n[7], n[8], n[11], n[12]]
                            for n in s.nodes() if n[1] == "__main__"]}))
"""


def test_eval_frame_is_chosen_where_the_interpreter_calls_it_for_every_frame():
    out = run("from tracepatch import _tracepatch as T; print(T.HOOK)", "")
    # 3.11.0-3.11.3 skip the hook for a specialised Python __getitem__.
    assert out == ("eval_frame\n" if EVAL_OK else "profile\n")


def test_tracepatch_hook_profile_chooses_the_profile_function():
    out = run("from tracepatch import _tracepatch as T; print(T.HOOK)", "profile")
    assert out == "profile\n"


@pytest.mark.skipif(not EVAL_OK, reason="the eval-frame hook is not used on 3.11 < 3.11.4")
def test_eval_frame_records_the_same_tree_as_the_profile_function():
    profile = json.loads(run(WORKLOAD, "profile"))
    evalf = json.loads(run(WORKLOAD, "eval_frame"))
    assert (profile["hook"], evalf["hook"]) == ("profile", "eval_frame")
    assert evalf["calls"] == profile["calls"]
    assert evalf["nodes"] == profile["nodes"]
    names = [n[1] for n in evalf["nodes"]]
    # 3.10 names a method without its class (no co_qualname).
    assert names.count("leaf") == 14
    assert sum(n.endswith("__getitem__") for n in names) == 3


CPROFILE_AND_PDB = """
import cProfile, json, sys
from tracepatch import _tracepatch as T

class Loud:
    def __repr__(self):
        return "loud"

def inner(x):
    return 1

def outer():
    p = cProfile.Profile()
    p.enable()
    inner(Loud())
    p.disable()
    lines = []
    def tracer(frame, event, arg):
        if frame.f_code is inner.__code__:
            lines.append(event)
        return tracer
    sys.settrace(tracer)
    inner(Loud())
    sys.settrace(None)
    return p, lines

s = T.Session(show_args=True, trace_id="0" * 32)
s.start()
p, lines = outer()
s.stop()
stats = {e.code.co_name: e.callcount for e in p.getstats() if not isinstance(e.code, str)}
print(json.dumps({"nodes": [n[2] for n in s.nodes()], "limit": s.limit_reason,
                  "errors": s.errors, "cprofile": stats, "trace": lines}))
"""


@pytest.mark.skipif(not EVAL_OK, reason="the eval-frame hook is not used on 3.11 < 3.11.4")
def test_cprofile_and_a_trace_function_run_beside_the_eval_frame_hook():
    out = json.loads(run(CPROFILE_AND_PDB, "eval_frame"))
    # No gap: cProfile took no slot from the trace. The repr of the
    # argument (Loud.__repr__) ran inside the hook, unseen by cProfile
    # and by the trace function, and is not a recorded call.
    assert out["nodes"] == ["outer", "inner", "inner"]
    assert out["limit"] is None and out["errors"] == []
    assert out["cprofile"] == {"inner": 1}
    assert out["trace"] == ["call", "line", "return"]


SLOT_TAKEN = """
import json
from tracepatch import _tracepatch as T

def leaf():
    return 1

def work():
    leaf()
    return T._hook_in_use()

T._foreign_eval_hook(True)
s = T.Session(trace_id="0" * 32)
s.start()
used = work()
s.stop()
T._foreign_eval_hook(False)

s2 = T.Session(trace_id="0" * 32)
s2.start()
used2 = work()
T._foreign_eval_hook(True)   # another tool replaces ours while s2 records
leaf()
s2.stop()
T._foreign_eval_hook(False)
print(json.dumps({"used": used, "nodes": [n[2] for n in s.nodes()], "used2": used2,
                  "nodes2": [n[2] for n in s2.nodes()], "errors2": s2.errors}))
"""


@pytest.mark.skipif(not EVAL_OK, reason="the eval-frame hook is not used on 3.11 < 3.11.4")
def test_a_taken_slot_falls_back_to_the_profile_function_and_a_replaced_hook_is_reported():
    out = json.loads(run(SLOT_TAKEN, "eval_frame"))
    assert out["used"] == "profile"
    assert out["nodes"] == ["work", "leaf"]
    assert out["used2"] == "eval_frame"
    # The leaf() called after the other tool replaced the hook is not seen.
    assert out["nodes2"] == ["work", "leaf"]
    assert out["errors2"] == [
        "another tool replaced tracepatch's frame-evaluation hook (PEP 523) while it "
        "recorded: the calls made after that are not recorded"]


THREADS = """
import json, threading
from tracepatch import _tracepatch as T

def leaf(x):
    return x

def body():
    leaf(1)
    leaf(2)

def work():
    t = threading.Thread(target=body)
    t.start()
    t.join()

s = T.Session(threads=True, trace_id="0" * 32)
s.start()
work()
s.stop()
nodes = s.nodes()
print(json.dumps(sorted((n[13], n[2], nodes[n[0]][2] if n[0] >= 0 else None)
                        for n in nodes if n[1] == "__main__")))
"""


@pytest.mark.skipif(not EVAL_OK, reason="the eval-frame hook is not used on 3.11 < 3.11.4")
def test_a_followed_thread_records_the_same_with_either_hook():
    rows = json.loads(run(THREADS, "eval_frame"))
    assert rows == json.loads(run(THREADS, "profile"))
    # The thread's run() (its bootstrap recorded the start, the hook its
    # end) holds the target's calls. 3.10 names it without its class.
    assert [r[:2] for r in rows] == [[0, "work"], [1, "body"], [1, "leaf"], [1, "leaf"]]
    assert rows[1][2].endswith("run") and rows[2][2] == rows[3][2] == "body"


DEEP = """
import json, sys
from tracepatch import _tracepatch as T
sys.setrecursionlimit(200_000)

def down(n):
    return 0 if n == 0 else down(n - 1) + 1

s = T.Session(trace_id="0" * 32, max_depth=1_000_000, max_calls=1_000_000)
s.start()
before = T._hook_in_use()
out = down(%d)
after = T._hook_in_use()
s.stop()
nodes = s.nodes()
print(json.dumps({"hooks": [before, after], "out": out, "calls": s.call_count,
                  "chain": all(n[0] == i - 1 for i, n in enumerate(nodes)),
                  "returns": sum(n[6] is not None for n in nodes), "errors": s.errors}))
"""


@pytest.mark.skipif(not EVAL_OK, reason="the eval-frame hook is not used on 3.11 < 3.11.4")
def test_a_recursion_too_deep_for_the_hook_continues_with_the_profile_function():
    # With the hook, every Python call is a C call: 100,000 frames overflow
    # 3.11's C stack (3.10's own overflows near 20,000 without any hook).
    n = 100_000 if sys.version_info >= (3, 11) else 15_000
    out = json.loads(run(DEEP % n, "eval_frame"))
    assert out == {"hooks": ["eval_frame", "profile"], "out": n, "calls": n + 1,
                   "chain": True, "returns": n + 1, "errors": []}


PDB_SCRIPT = """
import json
from tracepatch import _tracepatch as T

def leaf(x):
    y = x + 1
    return y

def work():
    return leaf(1) + leaf(2)

s = T.Session(trace_id="0" * 32, show_args=True, show_return=True)
s.start()
r = work()
s.stop()
print("TREE", json.dumps([(n[0], n[2], n[5], n[6]) for n in s.nodes()]))
"""


@pytest.mark.skipif(not EVAL_OK, reason="the eval-frame hook is not used on 3.11 < 3.11.4")
def test_pdb_breaks_and_steps_in_traced_code_and_its_own_calls_are_not_recorded(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(PDB_SCRIPT)
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    p = subprocess.run([sys.executable, "-m", "pdb", str(script)], env=env, text=True,
                       input="b leaf\nc\np x\nn\np y\nc\np x\nc\nq\n", capture_output=True,
                       timeout=120)
    out = p.stdout
    # pdb stopped at both calls and stepped a line in the first.
    assert "(Pdb) 1\n" in out and "(Pdb) 2\n" in out and out.count("-> y = x + 1") == 2
    tree = json.loads(next(line for line in out.splitlines() if "TREE " in line).split("TREE ")[1])
    assert tree == [[-1, "work", "", "5"], [0, "leaf", "x=1", "2"], [0, "leaf", "x=2", "3"]]


STOPPED_ELSEWHERE = """
import _thread, json
from tracepatch import _tracepatch as T

def leaf():
    return 1

s1 = T.Session(trace_id="0" * 32)
stopped = _thread.allocate_lock()
stopped.acquire()

def stop_elsewhere():
    s1.stop()
    stopped.release()

# Between the two sessions this thread runs no Python frame (the thread's
# start and the lock are C calls), so nothing tells it that s1 stopped and
# the hook was removed.
s1.start(); _thread.start_new_thread(stop_elsewhere, ()); stopped.acquire(); s2 = T.Session(trace_id="0" * 32); s2.start(); leaf(); s2.stop()  # noqa: E501,E702
print(json.dumps([n[2] for n in s2.nodes()]))
"""


def test_a_session_started_after_another_thread_stopped_the_last_one_records():
    assert run(STOPPED_ELSEWHERE, "") == '["leaf"]\n'
