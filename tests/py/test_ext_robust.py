"""Never hurt the program: recursion limits, interrupts, odd objects, exit
without stop(), threads' own profile hooks, timing sanity."""

import os
import subprocess
import sys
import signal
import threading
import time

from test_ext_common import (ARGS, END, EXC_TYPE, QUALNAME, RET, START, T, names, record,
                             run_as_script, session, skip)


class DeepRepr:
    def __repr__(self):
        return nest(30)


def nest(n):
    return "d" if n == 0 else nest(n - 1)


def descend(n, obj):
    if n == 0:
        return obj
    return descend(n - 1, obj)


def test_repr_hitting_the_recursion_limit():
    old = sys.getrecursionlimit()
    depth = 0
    f = sys._getframe()
    while f:
        depth += 1
        f = f.f_back
    # room for descend(100) and the first few reprs, not for the deepest ones
    sys.setrecursionlimit(depth + 125)
    try:
        # deep enough that DeepRepr's own recursion cannot fit any more
        s, out = record(descend, 100, DeepRepr(), max_depth=1000)
    finally:
        sys.setrecursionlimit(old)
    assert isinstance(out, DeepRepr)
    nodes = s.nodes()
    assert len(nodes) == 101
    reprs = {n[ARGS].split(", obj=")[1] for n in nodes}
    assert reprs <= {"d", "<unprintable DeepRepr>"} and "<unprintable DeepRepr>" in reprs
    assert all(n[EXC_TYPE] is None for n in nodes)
    assert s.errors == []


def test_lowering_the_recursion_limit_inside_a_trace():
    def body():
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(60)
        try:
            descend(1000, 1)
        except RecursionError:
            pass
        finally:
            sys.setrecursionlimit(old)
        return descend(3, 2)

    s, out = record(body, max_depth=10000, max_calls=100000)
    assert out == 2
    assert s.errors == []
    last = [n for n in s.nodes() if n[QUALNAME] == "descend"][-4:]
    assert [n[ARGS] for n in last] == [f"n={i}, obj=2" for i in (3, 2, 1, 0)]


class Interrupting:
    def __repr__(self):
        raise KeyboardInterrupt


def test_keyboard_interrupt_in_repr_reaches_the_program():
    got = None
    try:
        T.safe_repr(Interrupting())
        for _ in range(1000):  # the interrupt is delivered at the next check
            pass
        time.sleep(0.01)
    except KeyboardInterrupt:
        got = "interrupted"
    assert got == "interrupted"


def interrupted_after_repr():
    try:
        T.safe_repr(Interrupting())
        for _ in range(1000):  # delivered at the next check of the eval loop
            pass
    except KeyboardInterrupt:
        return True
    return False


def test_keyboard_interrupt_in_repr_reaches_the_program_when_sigint_is_ignored():
    # A program started in the background by a non-interactive shell has
    # SIGINT ignored; the KeyboardInterrupt that __repr__ raised must still
    # reach it (re-raising it as a simulated SIGINT would drop it here).
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert interrupted_after_repr()
    finally:
        signal.signal(signal.SIGINT, old)


def test_keyboard_interrupt_in_repr_does_not_call_the_sigint_handler():
    calls = []
    old = signal.signal(signal.SIGINT, lambda *a: calls.append(a))
    try:
        assert interrupted_after_repr()
    finally:
        signal.signal(signal.SIGINT, old)
    assert calls == []


def test_keyboard_interrupt_in_repr_in_a_thread_reaches_that_thread():
    got = {}

    def worker():
        got["worker"] = interrupted_after_repr()

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    main = False
    try:
        for _ in range(1000):
            pass
        time.sleep(0.01)
    except KeyboardInterrupt:
        main = True
    assert (got, main) == ({"worker": True}, False)


def sleeper(t):
    time.sleep(t)
    return t


def test_durations_are_real_time():
    s, _ = record(sleeper, 0.03)
    n = s.nodes()[0]
    assert n[END] - n[START] >= 30_000_000  # sleep() sleeps at least that long
    assert s.duration_ns >= n[END] - n[START]


def test_exit_without_stop_does_not_crash():
    code = (
        "from tracepatch import _tracepatch as T\n"
        "import threading\n"
        "def f(x):\n    return x\n"
        "s = T.Session(threads=True)\n"
        "s.start()\n"
        "t = threading.Thread(target=f, args=(1,))\n"
        "t.start()\n"
        "f(1)\n"
        "print('bye')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "bye\n", "")


def chained_child():
    return "child"


def test_threads_true_keeps_the_programs_threading_hook():
    seen = []

    def hook(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)

    threading.setprofile(hook)
    try:
        s = session(threads=True, ignore_modules=["threading", "_weakrefset"])
        s.start()
        t = threading.Thread(target=chained_child)
        t.start()
        t.join()
        s.stop()
        after = threading.getprofile()
    finally:
        threading.setprofile(None)
    assert after is hook
    assert "chained_child" in seen
    assert names(s) == ["chained_child"] and s.nodes()[0][RET] == "'child'"


def test_many_sessions_in_a_row_release_everything():
    for _ in range(200):
        s, _ = record(descend, 3, 1)
        assert len(s.nodes()) == 4
    assert sys.getprofile() is None and sys.gettrace() is None
    if sys.version_info >= (3, 12):
        owners = [sys.monitoring.get_tool(i) for i in range(6)]
        assert "tracepatch" not in owners


def test_every_tool_id_taken():
    if sys.version_info < (3, 12):
        skip("sys.monitoring is 3.12+")
    free = [i for i in range(6) if sys.monitoring.get_tool(i) is None]
    for i in free:
        sys.monitoring.use_tool_id(i, "squatter")
    try:
        s = session()
        try:
            s.start()
        except RuntimeError as e:
            assert "tool id" in str(e)
        else:
            raise AssertionError("started without a tool id")
        assert not s.active
    finally:
        for i in free:
            sys.monitoring.free_tool_id(i)
    s2, _ = record(descend, 1, 1)
    assert len(s2.nodes()) == 2


if __name__ == "__main__":
    run_as_script(globals())
