"""TRACEPATCH_* environment variables: overrides, bad values, disabling."""

import sys
import time
from pathlib import Path

import pytest

from conftest import outline
from tracepatch import TracepatchWarning, trace

M = __name__


def leaf(x):
    return x


def mid(x):
    return leaf(x)


def top(x):
    return mid(x)


def hooks():
    """What the interpreter has installed for profiling/monitoring right now."""
    if sys.version_info >= (3, 12):
        return tuple(sys.monitoring.get_tool(i) for i in range(6))
    return (sys.getprofile(),)


def test_max_calls_from_env(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_MAX_CALLS", "2")
    with trace(cache=False) as t:
        for i in range(5):
            leaf(i)
    assert t.settings["max_calls"] == 2
    assert t.call_count == 2
    assert (t.was_limited, t.limit_reason) == (True, "max_calls")
    assert outline(t.roots, strip=M) == "leaf(x=0) -> 0\nleaf(x=1) -> 1"


def test_max_depth_from_env(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_MAX_DEPTH", "2")
    with trace(cache=False) as t:
        top(7)
    assert t.settings["max_depth"] == 2
    assert outline(t.roots, strip=M) == "top(x=7) -> 7\n  mid(x=7) -> 7"
    assert t.limit_reason == "max_depth"


def test_max_repr_from_env(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_MAX_REPR", "12")
    with trace(cache=False) as t:
        leaf("a" * 50)
    assert t.settings["max_repr"] == 12
    node = t.roots[0]
    assert (node.args, node.return_value) == ("x='aaaaaaaa...", "'aaaaaaaa...")


def test_max_time_from_env(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_MAX_TIME", "0.02")
    with trace(cache=False) as t:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:  # ~100 calls, far below max_calls
            leaf(1)
            time.sleep(0.005)
    assert t.settings["max_time"] == 0.02
    assert (t.was_limited, t.limit_reason) == (True, "max_time")


def test_env_is_read_by_every_trace_not_at_import(monkeypatch):
    with trace(cache=False) as t1:
        leaf(1)
    monkeypatch.setenv("TRACEPATCH_MAX_CALLS", "1")
    with trace(cache=False) as t2:
        leaf(1), leaf(2)
    assert (t1.settings["max_calls"], t2.settings["max_calls"]) == (10000, 1)
    assert t2.call_count == 1


@pytest.mark.parametrize("var,value,message", [
    ("TRACEPATCH_MAX_DEPTH", "abc",
     "tracepatch: TRACEPATCH_MAX_DEPTH='abc' is not an integer from 1 to 1000000; "
     "using max_depth=30 instead"),
    # Beyond the range the extension takes: a warning, not a ValueError in with trace().
    ("TRACEPATCH_MAX_DEPTH", "2000000",
     "tracepatch: TRACEPATCH_MAX_DEPTH='2000000' is not an integer from 1 to 1000000; "
     "using max_depth=30 instead"),
    ("TRACEPATCH_MAX_CALLS", "-1",
     "tracepatch: TRACEPATCH_MAX_CALLS='-1' is not an integer from 1 to 4294967293 "
     "(or 0: no tracing); "
     "using max_calls=10000 instead"),
    ("TRACEPATCH_MAX_REPR", "1.5",
     "tracepatch: TRACEPATCH_MAX_REPR='1.5' is not an integer from 4 to 1000000; "
     "using max_repr=120 instead"),
    ("TRACEPATCH_MAX_REPR", "3",
     "tracepatch: TRACEPATCH_MAX_REPR='3' is not an integer from 4 to 1000000; "
     "using max_repr=120 instead"),
    ("TRACEPATCH_MAX_TIME", "1e10",
     "tracepatch: TRACEPATCH_MAX_TIME='1e10' is not a number of seconds > 0 and <= 1000000000; "
     "using max_time=60.0 instead"),
    ("TRACEPATCH_MAX_TIME", "soon",
     "tracepatch: TRACEPATCH_MAX_TIME='soon' is not a number of seconds > 0 and <= 1000000000; "
     "using max_time=60.0 instead"),
    ("TRACEPATCH_MAX_TIME", "-1",
     "tracepatch: TRACEPATCH_MAX_TIME='-1' is not a number of seconds > 0 and <= 1000000000; "
     "using max_time=60.0 instead"),
    ("TRACEPATCH_ENABLED", "maybe",
     "tracepatch: TRACEPATCH_ENABLED='maybe' is not one of 1/true/yes/on or "
     "0/false/no/off; tracing stays enabled"),
])
def test_invalid_env_values_warn_with_name_value_and_fallback(monkeypatch, var, value, message):
    monkeypatch.setenv(var, value)
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            leaf(1)
    assert [str(w.message) for w in caught] == [message]
    assert caught[0].filename == __file__  # points at the user's code
    assert t.call_count == 1
    assert t.settings["max_depth"] == 30 and t.settings["max_calls"] == 10000


def test_invalid_env_fallback_names_the_config_value(monkeypatch):
    Path("tracepatch.toml").write_text("max_depth = 12\n")
    monkeypatch.setenv("TRACEPATCH_MAX_DEPTH", "lots")
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            leaf(1)
    assert str(caught[0].message) == ("tracepatch: TRACEPATCH_MAX_DEPTH='lots' is not an "
                                      "integer from 1 to 1000000; using max_depth=12 instead")
    assert t.settings["max_depth"] == 12


def test_precedence_keyword_over_env_over_config_over_default(monkeypatch):
    Path("tracepatch.toml").write_text("max_calls = 5\nmax_repr = 40\n")
    monkeypatch.setenv("TRACEPATCH_MAX_CALLS", "4")
    with trace(max_calls=3, cache=False) as t:
        pass
    assert t.settings["max_calls"] == 3
    with trace(cache=False) as t:
        pass
    assert t.settings["max_calls"] == 4
    monkeypatch.delenv("TRACEPATCH_MAX_CALLS")
    with trace(cache=False) as t:
        pass
    assert (t.settings["max_calls"], t.settings["max_repr"], t.settings["max_depth"]) == (5, 40, 30)
    # An explicit keyword equal to the default still wins over the config.
    with trace(max_repr=120, cache=False) as t:
        pass
    assert t.settings["max_repr"] == 120


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "OFF", " False "])
def test_disabled_trace_is_a_no_op(monkeypatch, value):
    monkeypatch.setenv("TRACEPATCH_ENABLED", value)
    before = hooks()
    with trace(label="off") as t:
        inside = hooks()
        assert top(3) == 3
    assert inside == before  # nothing was installed
    assert t.enabled is False
    assert t.call_count == 0
    assert t.roots == []
    assert t.tree(header=False) == "No calls captured in this trace."
    assert t.was_limited is False and t.limit_reason is None
    assert len(t.trace_id) == 32
    assert not Path(".tracepatch").exists()


def test_disabled_decorator_returns_the_function_itself(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_ENABLED", "0")

    def f(x):
        return x * 2

    assert trace(f) is f
    assert trace(label="x")(f) is f
    assert trace()(f)(21) == 42


def test_enabled_values_record(monkeypatch):
    for value in ("1", "true", "yes", "on", ""):
        monkeypatch.setenv("TRACEPATCH_ENABLED", value)
        with trace(cache=False) as t:
            leaf(1)
        assert t.call_count == 1, value
