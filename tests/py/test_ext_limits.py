"""max_depth, max_calls, max_time and running out of memory."""

import sys
import time

from test_ext_common import (ARGS, END, FLAGS, QUALNAME, T, check_times, names, record,
                             run_as_script, session, shape)

OPEN = T.NODE_OPEN


def rec(n):
    return 0 if n == 0 else rec(n - 1) + 1


def wide(n):
    for i in range(n):
        leaf(i)
    return n


def leaf(x):
    return x


def deep_then_shallow():
    rec(5)
    leaf("after")
    return "done"


def test_max_depth_skips_deeper_calls_and_goes_on():
    s, out = record(deep_then_shallow, max_depth=3)
    assert out == "done"
    assert shape(s) == [
        (-1, "deep_then_shallow", "", "'done'", None, None, 0, 0),
        (0, "rec", "n=5", "5", None, None, 0, 0),
        (1, "rec", "n=4", "4", None, None, 0, 0),
        (0, "leaf", "x='after'", "'after'", None, None, 0, 0),
    ]
    assert s.limit_reason == "max_depth" and s.was_limited
    assert s.call_count == 4 and s.depth_skipped == 4  # rec(3) .. rec(0)
    assert s.errors == []
    check_times(s)


def test_max_depth_one_records_roots_only():
    s, _ = record(deep_then_shallow, max_depth=1)
    assert names(s) == ["deep_then_shallow"]
    assert s.depth_skipped == 7


def test_max_calls_stops_at_exactly_the_cap():
    s, out = record(wide, 10, max_calls=4)
    assert out == 10  # the program is unaffected
    assert s.call_count == 4
    assert s.limit_reason == "max_calls" and s.was_limited
    rows = [(n[QUALNAME], n[ARGS], n[FLAGS]) for n in s.nodes()]
    # recording stopped: the open call ends at the limit, marked unfinished
    assert rows == [("wide", "n=10", OPEN), ("leaf", "x=0", 0), ("leaf", "x=1", 0),
                    ("leaf", "x=2", 0)]
    assert s.nodes()[0][END] == s.duration_ns
    check_times(s)


def test_max_calls_not_reached_is_not_limited():
    s, _ = record(wide, 3, max_calls=4)
    assert s.call_count == 4 and not s.was_limited and s.limit_reason is None


def hook_state():
    if sys.version_info >= (3, 12):
        ours = [i for i in range(6) if sys.monitoring.get_tool(i) == "tracepatch"]
        return [sys.monitoring.get_events(i) for i in ours]
    return sys.getprofile()


def test_limit_removes_the_hook_for_the_rest():
    s = session(max_calls=2)
    s.start()
    wide(5)
    assert s.recording is False and s.active is True
    wide(5)  # the next event after the limit gives the hook back
    state = hook_state()
    s.stop()
    assert state in ([0], None)  # events off (3.12+) / no profile function
    assert s.call_count == 2 and len(s.nodes()) == 2


def slow(n):
    time.sleep(0.02)
    for i in range(n):
        leaf(i)


def test_max_time():
    s, _ = record(slow, 3, max_time=0.01)
    assert s.limit_reason == "max_time" and s.was_limited
    assert names(s) == ["slow"]
    assert s.nodes()[0][FLAGS] == OPEN
    assert 10_000_000 <= s.duration_ns


def test_a_stopping_limit_wins_over_max_depth():
    s, _ = record(lambda: (rec(4), wide(10)), max_depth=3, max_calls=5)
    assert s.limit_reason == "max_calls" and s.depth_skipped > 0


def test_memory_exhaustion_stops_recording_cleanly():
    s = session(max_calls=1_000_000)
    s.start()
    T._fail_allocations(0)  # no new block or text chunk from now on
    try:
        wide(20_000)  # needs more than the first 4096-record block
    finally:
        T._fail_allocations(-1)
    s.stop()
    assert s.limit_reason == "memory" and s.was_limited
    assert s.dropped >= 1
    assert 0 < s.call_count < 20_001
    nodes = s.nodes()
    assert len(nodes) == s.call_count
    assert nodes[0][QUALNAME] == "wide" and nodes[0][FLAGS] == OPEN
    assert s.errors == [f"out of memory: recording stopped after {s.call_count} calls"]
    check_times(s)


def test_memory_exhaustion_at_start():
    s = session()
    T._fail_allocations(0)
    try:
        s.start()
    except MemoryError:
        pass
    else:
        raise AssertionError("start() succeeded without memory")
    finally:
        T._fail_allocations(-1)
    assert not s.active
    # a new session works again
    s2, _ = record(leaf, 1)
    assert names(s2) == ["leaf"]


if __name__ == "__main__":
    run_as_script(globals())
