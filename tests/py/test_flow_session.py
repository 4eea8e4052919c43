"""tracepatch's own session API (start_tracing(), stop_tracing(), print_tree())
is tracepatch.flow's: one implementation, FlowTrace's events."""

import io
import re

import pytest

import tracepatch
import tracepatch.flow as flow
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
def _clean():
    flow.config(show_args=True, show_result=True, show_timing=True, show_exc=False,
                inline_return=False)
    yield
    while flow.is_tracing_active():  # a failed test must not leak a session
        stop_tracing()
    flow.config(show_args=True, show_result=True, show_timing=True, show_exc=False,
                inline_return=False)


def T(text: str) -> str:
    return re.sub(r"\[\d+\.\d{6}s\]", "[T]", text)


def test_package_session_api_is_tracepatch_flow():
    assert (tracepatch.start_tracing, tracepatch.stop_tracing, tracepatch.print_tree,
            tracepatch.get_trace_data, tracepatch.get_trace, tracepatch.CallEvent) == (
        flow.start_tracing, flow.stop_tracing, flow.print_tree, flow.get_trace_data,
        flow.get_trace, flow.CallEvent)


def test_print_tree_fib_inline_without_timing():
    start_tracing()
    assert fib(3) == 2
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out, inline_return=True, timing=False)
    assert out.getvalue() == FIB3


def test_print_tree_to_stdout_and_full_names(capsys):
    start_tracing(default_show_timing=False)
    fib(2)
    events = stop_tracing()
    print_tree(events, inline_return=True)
    print_tree(events, names="full", inline_return=True)
    assert capsys.readouterr().out == (
        "→ fib(n=2)\n"
        "  → fib(n=1) → 1\n"
        "  → fib(n=0) → 0\n"
        "← fib(n=2) → 1\n"
        f"→ {M}.fib(n=2)\n"
        f"  → {M}.fib(n=1) → 1\n"
        f"  → {M}.fib(n=0) → 0\n"
        f"← {M}.fib(n=2) → 1\n")


def test_events_are_flowtrace_call_and_return_events():
    start_tracing()
    fib(2)
    events = stop_tracing()
    assert all(isinstance(e, CallEvent) for e in events)
    assert [(e.id, e.kind, e.func_name, e.parent_id, e.args_repr, e.result_repr)
            for e in events] == [
        (0, "call", "fib", None, "n=2", None),
        (1, "call", "fib", 0, "n=1", None),
        (2, "return", "fib", 1, None, "1"),
        (3, "call", "fib", 0, "n=0", None),
        (4, "return", "fib", 3, None, "0"),
        (5, "return", "fib", 0, None, "1"),
    ]
    rets = [e for e in events if e.kind == "return"]
    assert all(isinstance(e.duration, float) and e.duration >= 0 for e in rets)
    assert all(e.duration is None for e in events if e.kind == "call")
    assert rets[-1].duration >= rets[0].duration
    assert (events[0].module, events[0].qualname) == (M, "fib")
    assert tracepatch.get_trace_data() == events


def test_exceptions_in_print_tree():
    start_tracing(default_show_timing=False)
    guarded(-1)
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out)
    assert out.getvalue() == (
        "→ guarded(x=-1)\n"
        "  → check(x=-1)\n"
        "    ↯ check(x=-1) ValueError: negative: -1 [propagated]\n"
        "  ↯ check(x=-1) [exc-return]\n"
        "  ↯ guarded(x=-1) ValueError: negative: -1 [caught]\n"
        "← guarded(x=-1) → None\n")
    ret = next(e for e in events if e.kind == "return" and e.func_name == "check")
    assert (ret.exception, ret.result_repr, ret.via_exception) == (
        "ValueError: negative: -1", None, True)


def test_timing_shown_as_collected_and_hidden_on_request():
    start_tracing()
    fib(1)
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out, inline_return=True)
    print_tree(events, file=out, inline_return=True, timing=False)
    assert T(out.getvalue()) == "→ fib(n=1) [T] → 1\n→ fib(n=1) → 1\n"


def test_sessions_nest_and_stop_innermost_first():
    start_tracing()
    fib(1)
    start_tracing()
    fib(0)
    inner = stop_tracing()
    outer = stop_tracing()
    assert [(e.kind, e.args_repr) for e in inner] == [("call", "n=0"), ("return", None)]
    assert [(e.kind, e.args_repr) for e in outer] == [
        ("call", "n=1"), ("return", None), ("call", "n=0"), ("return", None)]
    assert stop_tracing() == []


def test_bad_options_leave_no_session():
    with pytest.raises(TypeError):
        start_tracing(max_calls="many")
    assert not flow.is_tracing_active()
    assert stop_tracing() == []


def test_session_trace_object_and_options():
    t = start_tracing(label="manual", max_calls=2)
    fib(3)
    events = stop_tracing()
    assert [e.kind for e in events] == ["call", "call"]
    assert tracepatch.get_trace() is t
    assert (t.label, t.call_count, t.limit_reason) == ("manual", 2, "max_calls")


def test_empty_session_returns_no_events_and_prints_the_empty_line():
    start_tracing()
    events = stop_tracing()
    out = io.StringIO()
    print_tree(events, file=out)
    assert (events, out.getvalue()) == ([], "[flowtrace] (empty trace)\n")
