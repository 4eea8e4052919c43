"""Scope: which thread, context and task a session records; several sessions
at once; threads=True; cProfile alongside; fork."""

import asyncio
import cProfile
import os
import pstats
import sys
import threading

from test_ext_common import (ARGS, PARENT, PY312, QUALNAME, RET, SUSPENDS, THREAD, T,
                             check_times, names, record, run_as_script, session, shape, skip)

GEN = T.NODE_GEN
SPAWNED = T.NODE_SPAWNED


def leaf(x):
    return x * 2


def mid(x):
    return leaf(x) + leaf(x + 1)


# ---- asyncio ------------------------------------------------------------------


async def fetch(x):
    await asyncio.sleep(0)
    return x


async def handle():
    return await fetch(1)


async def gathered():
    return await asyncio.gather(handle(), fetch(2))


async def unrelated(n):
    for _ in range(n):
        await asyncio.sleep(0)
        leaf(99)
    return "other"


def test_async_gather():
    async def scenario():
        s = session(ignore_modules=["asyncio", "_weakrefset"])
        s.start()
        r = await gathered()
        s.stop()
        return s, r

    s, out = asyncio.run(scenario())
    assert out == [1, 2]
    # A task's coroutine starts when the code that created it is suspended,
    # from the event loop: it hangs under its creator all the same, marked
    # spawned; each is one node.
    assert shape(s) == [
        (-1, "gathered", "", "[1, 2]", None, None, GEN, 1),
        (0, "handle", "", "1", None, None, GEN | SPAWNED, 1),
        (1, "fetch", "x=1", "1", None, None, GEN, 1),
        (0, "fetch", "x=2", "2", None, None, GEN | SPAWNED, 1),
    ]
    check_times(s)


def test_unrelated_task_on_the_same_loop_is_not_traced():
    async def scenario():
        other = asyncio.ensure_future(unrelated(5))  # created before the trace
        await asyncio.sleep(0)
        s = session(ignore_modules=["asyncio", "_weakrefset"])
        s.start()
        r = await gathered()
        s.stop()
        return s, r, await other

    s, out, other = asyncio.run(scenario())
    assert other == "other"
    assert "unrelated" not in names(s) and "leaf" not in names(s)
    assert names(s) == ["gathered", "handle", "fetch", "fetch"]


def test_task_created_inside_the_scope_is_traced():
    async def scenario():
        s = session(ignore_modules=["asyncio", "_weakrefset"])
        s.start()
        t = asyncio.ensure_future(unrelated(2))
        r = await t
        s.stop()
        return s, r

    s, out = asyncio.run(scenario())
    assert out == "other"
    assert shape(s) == [
        (-1, "unrelated", "n=2", "'other'", None, None, GEN, 2),
        (0, "leaf", "x=99", "198", None, None, 0, 0),
        (0, "leaf", "x=99", "198", None, None, 0, 0),
    ]


# ---- sessions, threads -----------------------------------------------------------


def test_trace_inside_trace():
    outer = session()
    inner = session()
    outer.start()
    mid(1)
    inner.start()
    mid(2)
    inner.stop()
    mid(3)
    outer.stop()
    assert names(inner) == ["mid", "leaf", "leaf"]
    assert [n[ARGS] for n in inner.nodes()] == ["x=2", "x=2", "x=3"]
    assert names(outer) == ["mid", "leaf", "leaf"] * 3
    assert [n[ARGS] for n in outer.nodes()][::3] == ["x=1", "x=2", "x=3"]
    assert outer.errors == inner.errors == []


def test_overlapping_sessions_stopped_out_of_order():
    a = session()
    b = session()
    a.start()
    b.start()
    mid(1)
    a.stop()
    mid(2)
    b.stop()
    mid(3)
    assert len(a.nodes()) == 3 and len(b.nodes()) == 6


def worker(results, i, barrier):
    s = session(label=str(i), ignore_modules=["threading"])
    s.start()
    barrier.wait()
    for _ in range(300):
        mid(i)
    s.stop()
    results[i] = s


def test_two_threads_at_once():
    results = {}
    barrier = threading.Barrier(2)
    ts = [threading.Thread(target=worker, args=(results, i, barrier)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(2):
        s = results[i]
        # each thread's own calls, all of them, nothing of the other's
        assert s.call_count == 900, (i, s.call_count)
        mids = [n for n in s.nodes() if n[QUALNAME] == "mid"]
        assert len(mids) == 300 and {n[ARGS] for n in mids} == {f"x={i}"}
        assert {n[THREAD] for n in s.nodes()} == {0}
        check_times(s)


def child_work():
    mid(7)


def test_threads_true_follows_threads_started_inside():
    s = session(threads=True, ignore_modules=["threading", "_weakrefset"])
    s.start()
    t = threading.Thread(target=child_work)
    t.start()
    t.join()
    mid(8)
    s.stop()
    rows = [(n[PARENT], n[QUALNAME], n[ARGS], n[THREAD]) for n in s.nodes()]
    assert rows == [
        (-1, "child_work", "", 1),
        (0, "mid", "x=7", 1),
        (1, "leaf", "x=7", 1),
        (1, "leaf", "x=8", 1),
        (-1, "mid", "x=8", 0),
        (4, "leaf", "x=8", 0),
        (4, "leaf", "x=9", 0),
    ]
    assert threading.getprofile() is None
    check_times(s)


def test_threads_false_does_not_follow():
    s = session(ignore_modules=["threading", "_weakrefset"])
    s.start()
    t = threading.Thread(target=child_work)
    t.start()
    t.join()
    s.stop()
    assert names(s) == []


def test_thread_started_outside_the_scope_is_not_followed():
    go = threading.Event()
    done = threading.Event()

    def waiting():
        go.wait()
        mid(5)
        done.set()

    t = threading.Thread(target=waiting)
    t.start()
    s = session(threads=True, ignore_modules=["threading", "_weakrefset"])
    s.start()
    go.set()
    done.wait()
    s.stop()
    t.join()
    assert names(s) == []


# ---- other tools ------------------------------------------------------------------


def counts(prof):
    st = pstats.Stats(prof)
    return {k[2]: v[1] for k, v in st.stats.items() if k[2] in ("mid", "leaf")}


def test_cprofile_alongside():
    prof = cProfile.Profile()
    prof.enable()
    s = session()
    s.start()
    mid(1)
    s.stop()
    mid(2)
    prof.disable()
    assert counts(prof) == {"mid": 2, "leaf": 4}
    assert names(s) == ["mid", "leaf", "leaf"]
    assert sys.getprofile() is None


def test_cprofile_started_inside_the_trace():
    if not PY312:
        skip("3.10/3.11 have one profile function per thread: cProfile replaces ours")
    s = session()
    s.start()
    prof = cProfile.Profile()
    prof.enable()
    mid(1)
    prof.disable()
    mid(2)
    s.stop()
    assert counts(prof) == {"mid": 1, "leaf": 2}
    assert names(s) == ["mid", "leaf", "leaf"] * 2


def test_previous_profile_function_is_restored():
    seen = []

    def prof(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)

    sys.setprofile(prof)
    try:
        s = session()
        s.start()
        mid(1)
        s.stop()
        now = sys.getprofile()
    finally:
        sys.setprofile(None)
    assert now is prof
    assert seen.count("mid") == 1 and seen.count("leaf") == 2
    assert names(s) == ["mid", "leaf", "leaf"]


def test_settrace_debugger_keeps_its_events():
    lines = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name in ("fail_inside", "fail_leaf"):
            lines.append((frame.f_code.co_name, event))
        return tracer

    def fail_leaf():
        raise ValueError("x")

    def fail_inside():
        try:
            fail_leaf()
        except ValueError:
            return 1

    sys.settrace(tracer)
    try:
        fail_inside()
        expected = list(lines)
        lines.clear()
        s = session()
        s.start()
        fail_inside()
        s.stop()
        now = sys.gettrace()
    finally:
        sys.settrace(None)
    assert now is tracer
    assert lines == expected  # the trace function got every event it gets without us
    assert [n[QUALNAME].split(".")[-1] for n in s.nodes()] == ["fail_inside", "fail_leaf"]
    assert s.nodes()[0][RET] == "1"


def test_fork_inside_a_trace():
    if not hasattr(os, "fork"):
        skip("no fork")
    s = session(ignore_modules=["logging"])  # logging's at-fork hooks run in scope
    s.start()
    mid(1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never raise out of here
        code = 1
        try:
            mid(2)
            s.stop()
            ok = (names(s) == ["mid", "leaf", "leaf"] and not s.recording and
                  any("forked" in e for e in s.errors))
            code = 0 if ok else 3
        finally:
            os._exit(code)
    os.close(w)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    mid(3)
    s.stop()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert [n[ARGS] for n in s.nodes() if n[QUALNAME] == "mid"] == ["x=1", "x=3"]
    assert s.errors == []


if __name__ == "__main__":
    run_as_script(globals())
