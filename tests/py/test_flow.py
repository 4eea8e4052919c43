"""tracepatch.flow: FlowTrace's public API and documented behaviour, over
tracepatch's recorder (import tracepatch.flow as flowtrace)."""

import asyncio
import io
import json
import re

import pytest

import tracepatch.flow as flowtrace
from tracepatch.flow import (AsyncTransitionEvent, CallEvent, Config, ExceptionEvent,
                             ExecutionContext)

F = __file__.rsplit("/", 1)[-1]


@pytest.fixture(autouse=True)
def _defaults():
    flowtrace.config(show_args=True, show_result=True, show_timing=True, show_exc=False,
                     inline_return=False)
    yield
    while flowtrace.is_tracing_active():
        flowtrace.stop_tracing()
    flowtrace.config(show_args=True, show_result=True, show_timing=True, show_exc=False,
                     inline_return=False)


def T(text: str) -> str:
    return re.sub(r"\[\d+\.\d{6}s\]", "[T]", text)


def shape(events):
    return [(type(e).__name__, e.kind, e.func_name) for e in events]


# --- configuration ----------------------------------------------------------


def test_config_defaults_and_updates():
    cfg = flowtrace.get_config()
    assert (cfg.show_args, cfg.show_result, cfg.show_timing, cfg.show_exc,
            cfg.inline_return) == (True, True, True, False, False)
    new = flowtrace.config(show_exc=3, inline_return=True)
    assert isinstance(new, Config) and flowtrace.get_config() is new
    assert (new.show_exc, new.inline_return, new.show_args) == (3, True, True)
    assert flowtrace.config(exc_tb_depth=5).show_exc == 5


def test_show_exc_depth_resolution():
    assert (flowtrace.config(show_exc=True).exc_depth(), flowtrace.get_config().exc_enabled()) \
        == (2, True)
    assert flowtrace.config(show_exc=4).exc_depth() == 4
    cfg = flowtrace.config(show_exc=False)
    assert (cfg.exc_enabled(), cfg.exc_depth()) == (False, 0)


def test_global_flags_decide_what_a_session_collects():
    flowtrace.config(show_args=False, show_result=True, show_timing=False)

    def foo(x):
        return x + 1

    flowtrace.start_tracing()
    foo(42)
    call, ret = flowtrace.stop_tracing()
    assert (call.kind, call.args_repr, call.collect_args) == ("call", None, False)
    assert (ret.kind, ret.result_repr, ret.duration) == ("return", "43", None)
    assert (ret.collect_result, ret.collect_timing) == (True, False)


# --- the decorator ----------------------------------------------------------


@flowtrace.trace
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def test_decorated_call_without_session_prints_its_tree(capsys):
    flowtrace.config(show_timing=False)
    assert fib(3) == 2
    assert capsys.readouterr().out == (
        "→ fib(n=3)\n"
        "  → fib(n=2)\n"
        "    → fib(n=1)\n"
        "    ← fib(n=1) → 1\n"
        "    → fib(n=0)\n"
        "    ← fib(n=0) → 0\n"
        "  ← fib(n=2) → 1\n"
        "  → fib(n=1)\n"
        "  ← fib(n=1) → 1\n"
        "← fib(n=3) → 2\n")
    assert [e.args_repr for e in flowtrace.get_trace_data() if e.kind == "call"] == [
        "n=3", "n=2", "n=1", "n=0", "n=1"]


def test_measure_time_prints_the_duration_in_seconds(capsys):
    flowtrace.config(show_timing=False, inline_return=True)

    @flowtrace.trace(measure_time=True)
    def compute(a, b):
        return a * b

    assert compute(6, 7) == 42
    assert T(capsys.readouterr().out) == "→ compute(a=6, b=7) [T] → 42\n"


def test_per_function_flags_override_the_global_ones_for_that_function_only(capsys):
    flowtrace.config(show_args=False, show_result=True, show_timing=True)

    @flowtrace.trace
    def a(x):
        return b(x) + 1

    @flowtrace.trace(show_args=True)
    def b(y):
        return c(y) * 2

    def c(z):
        return z

    assert a(10) == 21
    assert T(capsys.readouterr().out) == (
        "→ a()\n"
        "  → b(y=10)\n"
        "    → c()\n"
        "    ← c() [T] → 10\n"
        "  ← b(y=10) [T] → 20\n"
        "← a() [T] → 21\n")


def test_decorator_inside_a_session_adds_no_tree_output(capsys):
    flowtrace.start_tracing()
    fib(1)
    events = flowtrace.stop_tracing()
    assert capsys.readouterr().out == ""
    assert shape(events) == [("CallEvent", "call", "fib"), ("CallEvent", "return", "fib")]


def test_decorated_coroutine_is_traced_across_its_awaits(capsys):
    flowtrace.config(show_timing=False, inline_return=True)

    @flowtrace.trace
    async def job(n):
        await asyncio.sleep(0)
        return n * 2

    assert asyncio.run(job(4)) == 8
    assert capsys.readouterr().out == "→ job(n=4) → 8\n"
    assert [e.kind for e in flowtrace.get_trace_data()] == ["call", "await", "resume", "return"]


# --- sessions ---------------------------------------------------------------


def a1():
    return b1()


def b1():
    return 42


def test_session_records_calls_and_returns_with_context():
    with flowtrace.active_tracing():
        assert a1() == 42
    events = flowtrace.get_trace_data()
    assert [(e.id, e.kind, e.func_name, e.parent_id) for e in events] == [
        (0, "call", "a1", None), (1, "call", "b1", 0), (2, "return", "b1", 1),
        (3, "return", "a1", 0)]
    import threading
    assert all(e.context == ExecutionContext(threading.get_ident()) for e in events)


def test_stop_without_session_returns_empty_list():
    assert flowtrace.stop_tracing() == []


def test_nested_active_tracing_isolates_the_inner_data():
    with flowtrace.active_tracing():
        a1()
        with flowtrace.active_tracing():
            b1()
        inner = flowtrace.get_trace_data()
    outer = flowtrace.get_trace_data()
    assert [(e.kind, e.func_name) for e in inner] == [("call", "b1"), ("return", "b1")]
    assert [(e.kind, e.func_name) for e in outer] == [
        ("call", "a1"), ("call", "b1"), ("return", "b1"), ("return", "a1"),
        ("call", "b1"), ("return", "b1")]


def test_only_user_code_is_recorded_by_default():
    def dump():
        return json.dumps({"a": [1, 2]})

    with flowtrace.active_tracing():
        dump()
    assert [e.func_name for e in flowtrace.get_trace_data()] == ["dump", "dump"]
    with flowtrace.active_tracing(user_only=False):
        dump()
    names = [e.func_name for e in flowtrace.get_trace_data() if e.kind == "call"]
    assert names[0] == "dump" and "dumps" in names and "encode" in names


def test_user_path_rule():
    import sys
    assert flowtrace._is_user_path(__file__) is True
    assert flowtrace._is_user_path(json.__file__) is False
    assert flowtrace._is_user_path(sys.executable) is False
    assert flowtrace._is_user_code(flowtrace.start_tracing.__code__) is False


# --- exceptions -------------------------------------------------------------


def fail():
    raise ValueError("boom")


def middle():
    fail()


def handler():
    try:
        middle()
    except ValueError:
        return "handled"


def test_exceptions_are_labelled_propagated_then_caught():
    with flowtrace.active_tracing():
        handler()
    events = flowtrace.get_trace_data()
    excs = [e for e in events if isinstance(e, ExceptionEvent)]
    assert [(e.func_name, e.exc_type, e.exc_msg, e.caught, e.exc_tb) for e in excs] == [
        ("fail", "ValueError", "boom", False, None),
        ("middle", "ValueError", "boom", False, None),
        ("handler", "ValueError", "boom", True, None)]
    calls = {e.func_name: e.id for e in events if e.kind == "call"}
    assert [e.parent_id for e in excs] == [calls["fail"], calls["middle"], calls["handler"]]
    assert [(e.func_name, e.via_exception) for e in events if e.kind == "return"] == [
        ("fail", True), ("middle", True), ("handler", False)]


def test_traceback_has_the_configured_depth():
    lf, lm = fail.__code__.co_firstlineno, middle.__code__.co_firstlineno
    flowtrace.config(show_exc=True)
    with flowtrace.active_tracing():
        handler()
    tbs = [e.exc_tb for e in flowtrace.get_trace_data() if isinstance(e, ExceptionEvent)]
    assert tbs == [f"{F}:{lf} in fail", f"{F}:{lm} in middle | {F}:{lf} in fail",
                   f"{F}:{lm} in middle | {F}:{lf} in fail"]
    with flowtrace.active_tracing(default_exc_tb_depth=1):
        handler()
    tbs = [e.exc_tb for e in flowtrace.get_trace_data() if isinstance(e, ExceptionEvent)]
    assert tbs == [f"{F}:{lf} in fail"] * 3


def test_exception_tree_output():
    lf = fail.__code__.co_firstlineno
    flowtrace.config(show_exc=1, show_timing=False)
    with flowtrace.active_tracing():
        handler()
    out = io.StringIO()
    flowtrace.print_tree(file=out)
    assert out.getvalue() == (
        "→ handler()\n"
        "  → middle()\n"
        "    → fail()\n"
        "      ↯ fail() ValueError: boom [propagated]\n"
        f"         ⤷ {F}:{lf} in fail\n"
        "    ↯ fail() [exc-return]\n"
        "    ↯ middle() ValueError: boom [propagated]\n"
        f"       ⤷ {F}:{lf} in fail\n"
        "  ↯ middle() [exc-return]\n"
        "  ↯ handler() ValueError: boom [caught]\n"
        f"     ⤷ {F}:{lf} in fail\n"
        "← handler() → 'handled'\n")


# --- async ------------------------------------------------------------------


async def inner():
    await asyncio.sleep(0)
    return 99


async def outer():
    return await inner()


async def agen():
    yield 1


async def drain():
    async for _ in agen():
        pass


def test_await_resume_and_yield_transitions():
    async def main():
        with flowtrace.active_tracing():
            await outer()
            await drain()
        return flowtrace.get_trace_data(), asyncio.current_task().get_name()

    events, name = asyncio.run(main())
    assert shape(events) == [
        ("CallEvent", "call", "outer"), ("CallEvent", "call", "inner"),
        ("AsyncTransitionEvent", "await", "inner"), ("AsyncTransitionEvent", "await", "outer"),
        ("AsyncTransitionEvent", "resume", "outer"), ("AsyncTransitionEvent", "resume", "inner"),
        ("CallEvent", "return", "inner"), ("CallEvent", "return", "outer"),
        ("CallEvent", "call", "drain"), ("CallEvent", "call", "agen"),
        ("AsyncTransitionEvent", "yield", "agen"), ("AsyncTransitionEvent", "resume", "agen"),
        ("CallEvent", "return", "agen"), ("CallEvent", "return", "drain")]
    inner_call = next(e.id for e in events if e.kind == "call" and e.func_name == "inner")
    assert [e.call_id for e in events if isinstance(e, AsyncTransitionEvent)][:2] == [
        inner_call, 0]
    assert {(e.context.task_id, e.context.task_name) for e in events} == {(1, name)}
    assert all(e.async_id == 1 for e in events if isinstance(e, AsyncTransitionEvent))


async def child():
    return 11


async def parent():
    return await asyncio.create_task(child(), name="kid")


def test_task_context_names_the_creating_task():
    flowtrace.start_tracing()
    assert asyncio.run(parent()) == 11
    events = flowtrace.stop_tracing()
    assert [(e.kind, e.func_name, e.context.task_id, e.context.task_parent_id,
             e.context.task_name) for e in events] == [
        ("call", "parent", 1, None, None), ("await", "parent", 1, None, None),
        ("call", "child", 2, 1, "kid"), ("return", "child", 2, 1, "kid"),
        ("resume", "parent", 1, None, None), ("return", "parent", 1, None, None)]


# --- output -----------------------------------------------------------------


def test_events_built_by_hand_print_inline_or_multiline(capsys):
    events = [CallEvent(id=0, kind="call", func_name="foo"),
              CallEvent(id=1, kind="return", func_name="foo", parent_id=0, result_repr="'ok'")]
    flowtrace.config(inline_return=True)
    flowtrace.print_tree(events)
    flowtrace.config(inline_return=False)
    flowtrace.print_tree(events)
    assert capsys.readouterr().out == "→ foo() → 'ok'\n→ foo()\n← foo() → 'ok'\n"


def test_empty_trace_is_said(capsys):
    flowtrace.print_tree([])
    flowtrace.print_summary([])
    flowtrace.print_events_debug([])
    assert capsys.readouterr().out == "[flowtrace] (empty trace)\n" * 3


def test_summary_and_debug_listing(capsys):
    flowtrace.start_tracing(default_show_timing=False)
    a1()
    events = flowtrace.stop_tracing()
    flowtrace.print_summary(events)
    flowtrace.print_events_debug(events)
    assert capsys.readouterr().out == (
        "[flowtrace] 4 events, 0.000000s, last function: a1\n"
        "[flowtrace] events:\n"
        "    call a1 ()\n"
        "    call b1 ()\n"
        "    return b1 → 42\n"
        "    return a1 → 42\n")


def test_print_tree_under_one_call_at_an_indent(capsys):
    flowtrace.start_tracing(default_show_timing=False)
    a1()
    events = flowtrace.stop_tracing()
    flowtrace.print_tree(events, indent=2, parent_id=0, inline_return=True)
    assert capsys.readouterr().out == "    → b1() → 42\n"
