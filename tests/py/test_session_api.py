"""FlowTrace-style session API: start_tracing(), stop_tracing(), print_tree()."""

import io

import pytest

import tracepatch
from conftest import norm
from tracepatch import CallEvent, print_tree, start_tracing, stop_tracing

M = __name__


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def check(x):
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x


def guarded(x):
    try:
        return check(x)
    except ValueError:
        return None


FIB3 = """\
→ fib(n=3)
  → fib(n=2)
    → fib(n=1) → 1
    → fib(n=0) → 0
  ← fib(n=2) → 1
  → fib(n=1) → 1
← fib(n=3) → 2
"""


@pytest.fixture(autouse=True)
def _no_session_left():
    yield
    if tracepatch._flow._current is not None:  # a failed test must not leak a session
        stop_tracing()


def test_print_tree_fib():
    start_tracing(cache=False)
    assert fib(3) == 2
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out)
    assert out.getvalue() == FIB3


def test_print_tree_to_stdout_and_full_names(capsys):
    start_tracing(cache=False)
    fib(2)
    events = stop_tracing()
    print_tree(events)
    print_tree(events, names="full")
    assert capsys.readouterr().out == (
        "→ fib(n=2)\n"
        "  → fib(n=1) → 1\n"
        "  → fib(n=0) → 0\n"
        "← fib(n=2) → 1\n"
        f"→ {M}.fib(n=2)\n"
        f"  → {M}.fib(n=1) → 1\n"
        f"  → {M}.fib(n=0) → 0\n"
        f"← {M}.fib(n=2) → 1\n")


def test_events_are_flowtrace_call_events():
    start_tracing(cache=False)
    fib(2)
    events = stop_tracing()
    assert all(isinstance(e, CallEvent) for e in events)
    assert [(e.id, e.kind, e.func_name, e.parent_id, e.args_repr, e.result_repr)
            for e in events] == [
        (0, "call", f"{M}.fib", None, "n=2", "1"),
        (1, "call", f"{M}.fib", 0, "n=1", "1"),
        (2, "call", f"{M}.fib", 0, "n=0", "0"),
    ]
    assert all(isinstance(e.duration, float) and e.duration >= 0 for e in events)
    assert events[0].duration >= events[1].duration
    assert (events[0].module, events[0].qualname) == (M, "fib")
    assert tracepatch.get_trace_data() == events


def test_exceptions_in_print_tree():
    start_tracing(cache=False)
    guarded(-1)
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out)
    assert out.getvalue() == (
        "→ guarded(x=-1)\n"
        "  → check(x=-1) !! ValueError: negative: -1\n"
        "← guarded(x=-1) → None\n")
    assert events[1].exception == "ValueError: negative: -1"
    assert events[1].result_repr is None


def test_timing_option():
    start_tracing(cache=False)
    fib(1)
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out, timing=True)
    assert norm(out.getvalue()) == "→ fib(n=1) [T] → 1"


def test_one_session_at_a_time():
    start_tracing(cache=False)
    with pytest.raises(RuntimeError, match="already started"):
        start_tracing(cache=False)
    stop_tracing()
    with pytest.raises(RuntimeError, match="not started"):
        stop_tracing()


def test_bad_options_leave_no_session():
    with pytest.raises(TypeError):
        start_tracing(max_calls="many")
    with pytest.raises(RuntimeError, match="not started"):
        stop_tracing()


def test_session_trace_object_and_options():
    t = start_tracing(label="manual", max_calls=2, cache=False)
    fib(3)
    events = stop_tracing()
    assert len(events) == 2
    assert tracepatch.get_trace() is t
    assert (t.label, t.call_count, t.limit_reason) == ("manual", 2, "max_calls")


def test_empty_session_prints_nothing():
    start_tracing(cache=False)
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out)
    assert (events, out.getvalue()) == ([], "")
