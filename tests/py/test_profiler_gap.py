"""A profiler the traced code installs (cProfile, sys.setprofile) on
3.10/3.11, when the trace records with the profile function
(TRACEPATCH_HOOK=profile, 3.11.0-3.11.3), takes the one profile slot: the
trace says so (limit_reason "profiler", a warning, the gap in errors) and
records again once that profiler is removed. On 3.12+ (sys.monitoring)
and with the eval-frame hook on 3.10/3.11 (the default on 3.10 and 3.11.4+)
both run side by side, with no gap."""

import cProfile
import pstats
import sys
import warnings

from conftest import outline
from tracepatch import _tracepatch, trace
from tracepatch._config import TracepatchWarning

M = __name__
GAP = _tracepatch.HOOK == "profile"


def before():
    return 1


def during():
    return 2


def after():
    return 3


def with_cprofile(profiler):
    before()
    profiler.enable()
    during()
    profiler.disable()
    return after()


def with_setprofile(seen):
    before()
    sys.setprofile(lambda frame, event, arg: seen.append((event, frame.f_code.co_name)))
    during()
    sys.setprofile(None)
    after()
    return after()


def _run(fn, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with trace(cache=False) as t:
            fn(*args)
    return t, [str(w.message) for w in caught if issubclass(w.category, TracepatchWarning)]


def test_cprofile_enabled_inside_a_trace_leaves_a_marked_gap_then_recording_resumes():
    profiler = cProfile.Profile()
    t, warned = _run(with_cprofile, profiler)
    # The program's profiler worked as without tracepatch.
    stats = pstats.Stats(profiler).stats
    assert any(name == "during" for (_, _, name) in stats)
    if GAP:
        assert outline(t.roots, strip=M) == "\n".join([
            "with_cprofile(profiler=%r) -> 3" % profiler,
            "  before() -> 1",
            "  after() -> 3",
        ])
        assert (t.was_limited, t.limit_reason) == (True, "profiler")
        assert len(warned) == 1 and "another profiler" in warned[0]
        assert len(t.errors) == 1 and t.errors[0].startswith("another profiler replaced")
        data = t.to_json(compact=True)
        assert '"limit_reason":"profiler"' in data
    else:
        assert [n.name for n in t.roots[0].children] == ["before", "during", "after"]
        assert (t.was_limited, t.limit_reason, warned, t.errors) == (False, None, [], [])


def test_setprofile_inside_a_trace_leaves_a_marked_gap_then_recording_resumes():
    seen = []
    t, warned = _run(with_setprofile, seen)
    assert ("call", "during") in seen
    names = [n.name for n in t.roots[0].children]
    if GAP:
        assert names == ["before", "after", "after"]
        assert t.limit_reason == "profiler" and len(warned) == 1
    else:
        assert names == ["before", "during", "after", "after"]
        assert t.limit_reason is None and warned == []
    # Nothing is left behind: the profile slot is the program's again.
    assert sys.getprofile() is None


def returns_during_gap(profiler):
    # The call that enables the profiler returns while it is on: the trace
    # closes it when recording resumes, it does not stay open.
    def enable():
        profiler.enable()
        return "on"

    enable()
    during()
    profiler.disable()
    return after()


def test_calls_that_end_during_the_gap_are_closed_not_left_open():
    profiler = cProfile.Profile()
    t, _ = _run(returns_during_gap, profiler)
    root = t.roots[0]
    assert root.name == "returns_during_gap" and root.return_value == "3"
    assert not root.unfinished
    names = [(n.name, n.unfinished) for n in root.children]
    if GAP:
        assert names == [("enable", False), ("after", False)]
        assert root.children[0].return_value is None  # ended unseen
    else:
        assert names == [("enable", False), ("during", False), ("after", False)]


def test_a_debugger_trace_function_keeps_every_event_through_the_gap():
    lines = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name in ("with_cprofile", "during", "after"):
            lines.append((frame.f_code.co_name, event))
        return tracer

    profiler = cProfile.Profile()
    sys.settrace(tracer)
    try:
        t, _ = _run(with_cprofile, profiler)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
    # The debugger saw the calls the trace could not, line by line.
    assert ("during", "call") in lines and ("during", "line") in lines
    assert ("after", "call") in lines and ("after", "return") in lines
    assert [n.name for n in t.roots[0].children] == (
        ["before", "after"] if GAP else ["before", "during", "after"])


def clears_profile():
    before()
    sys.setprofile(None)  # "no profiler, please": it removes tracepatch's on 3.10/3.11
    during()
    return after()


def test_setprofile_none_inside_a_trace_misses_nothing_and_warns_nothing():
    t, warned = _run(clears_profile)
    assert [n.name for n in t.roots[0].children] == ["before", "during", "after"]
    assert (t.was_limited, t.limit_reason, warned, t.errors) == (False, None, [], [])
    assert sys.getprofile() is None
