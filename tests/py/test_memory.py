"""trace(track_memory=True): each call's traced-memory delta (tracemalloc), on
the nodes, in the text tree, in JSON files, and what it costs nothing when off.
Runs on every interpreter: 3.10/3.11 record through the profile hook,
3.12+ through sys.monitoring."""

import json
import re
import tracemalloc

import pytest

from conftest import child_env, run_python
from tracepatch import trace

MB = 1_000_000


def returns_a_bytearray():
    return bytearray(MB)


def frees_what_it_allocates():
    x = bytearray(MB)
    del x


def raises_after_allocating():
    keep = bytearray(200_000)  # noqa: F841 - held by the traceback's frame
    raise ValueError("boom")


def yields_two_buffers():
    yield bytearray(100_000)
    yield bytearray(100_000)


def consumes_generator():
    g = yields_two_buffers()
    first = next(g)
    # Allocated while the generator is suspended: the caller's, not its.
    between = bytearray(500_000)
    second = next(g)
    for _ in g:
        pass
    return first, between, second


def program():
    kept = returns_a_bytearray()
    frees_what_it_allocates()
    try:
        raises_after_allocating()
    except ValueError:
        pass
    consumes_generator()
    return len(kept)


def run(**kw):
    with trace(daemon="off", cache=False, **kw) as t:
        program()
    return t


def by_name(t):
    nodes = {}
    for root in t.roots:
        for n in root.walk():
            nodes.setdefault(n.name, n)
    return nodes


def json_nodes(doc):
    out, stack = {}, list(doc["trace"])
    while stack:
        d = stack.pop()
        out.setdefault(d["name"], d)
        stack.extend(d["children"])
    return out


def test_a_returned_bytearray_is_its_size_and_a_freed_one_is_zero():
    t = run(track_memory=True)
    n = by_name(t)
    kb = n["returns_a_bytearray"].memory_delta_kb
    assert 976 <= kb < 990, kb
    assert n["returns_a_bytearray"].memory_delta_bytes == round(kb * 1024)
    assert abs(n["frees_what_it_allocates"].memory_delta_kb) < 0.5
    doc = json.loads(t.to_json())
    j = json_nodes(doc)
    assert 976 <= j["returns_a_bytearray"]["memory_delta_kb"] < 990
    assert j["returns_a_bytearray"]["memory_delta_bytes"] == n["returns_a_bytearray"].memory_delta_bytes
    assert abs(j["frees_what_it_allocates"]["memory_delta_kb"]) < 0.5
    assert doc["config"]["track_memory"] is True
    tree = t.tree()
    assert re.search(r"returns_a_bytearray\(\) -> bytearray\(.*  \[[^]]*, \+976\.\d KB\]\n", tree), tree


def test_a_call_ended_by_an_exception_is_measured():
    n = by_name(run(track_memory=True))["raises_after_allocating"]
    assert n.exception == "ValueError: boom"
    # The frame (and its 200 kB) is still alive in the traceback as it ends.
    assert 195 <= n.memory_delta_kb < 200, n.memory_delta_kb


def test_a_generator_counts_only_the_intervals_it_ran():
    n = by_name(run(track_memory=True))
    gen, caller = n["yields_two_buffers"], n["consumes_generator"]
    assert gen.suspends == 2
    assert 195 <= gen.memory_delta_kb < 197, gen.memory_delta_kb  # 2 x 100000 bytes
    # The caller let go of everything it made by the time it returned;
    # what it returns is a tuple of the three buffers: 700 kB.
    assert 683 <= caller.memory_delta_kb < 690, caller.memory_delta_kb


def test_off_by_default_nothing_is_measured():
    t = run()
    assert all(n.memory_delta_kb is None and n.memory_delta_bytes is None
               for root in t.roots for n in root.walk())
    text = t.to_json()
    assert "memory_delta" not in text
    assert json.loads(text)["config"]["track_memory"] is False
    assert not re.search(r", [+-][0-9.]+ [KMG]B\]", t.tree())
    assert not any(e[0] == 9 for e in t._session._raw_events())


def test_events_carry_one_memory_record_after_each_measured_end():
    t = run(track_memory=True)
    events = t._session._raw_events()
    kinds = [e[0] for e in events]
    calls = kinds.count(1)
    assert kinds.count(9) == calls
    for i, k in enumerate(kinds):
        if k == 9:
            assert kinds[i - 1] in (2, 3), kinds[i - 1:i + 1]


def test_tracemalloc_is_started_for_the_trace_and_stopped_after():
    assert not tracemalloc.is_tracing()
    run(track_memory=True)
    assert not tracemalloc.is_tracing()


def test_tracemalloc_already_tracing_is_left_tracing():
    tracemalloc.start(5)
    try:
        t = run(track_memory=True)
        assert tracemalloc.is_tracing()
        assert tracemalloc.get_traceback_limit() == 5
        assert 976 <= by_name(t)["returns_a_bytearray"].memory_delta_kb < 990
    finally:
        tracemalloc.stop()


def test_nested_traces_stop_tracemalloc_once_the_outer_one_ends():
    with trace(track_memory=True, daemon="off", cache=False) as outer:
        with trace(track_memory=True, daemon="off", cache=False) as inner:
            returns_a_bytearray()
        assert tracemalloc.is_tracing()
    assert not tracemalloc.is_tracing()
    for t in (outer, inner):
        assert 976 <= by_name(t)["returns_a_bytearray"].memory_delta_kb < 990


def test_a_log_block_filling_is_not_charged_to_the_call():
    # 10000 recorded calls fill several 64 KiB log blocks (4096 records
    # each) while the outer call runs: it allocates nothing that stays.
    def leaf():
        return None

    def many():
        for _ in range(10_000):
            leaf()

    with trace(track_memory=True, daemon="off", cache=False, max_calls=20_000) as t:
        many()
    root = t.roots[0]
    assert root.name == "many"
    assert abs(root.memory_delta_kb) < 1.0, root.memory_delta_kb


SCRIPT = r'''
import json
from tracepatch import trace
def f():
    return bytearray(1_000_000)
with trace(daemon="off", cache=False) as t:
    f()
print(json.dumps(t.roots[0].memory_delta_kb))
'''


@pytest.mark.parametrize("how", ["env", "toml"])
def test_env_and_config_file_turn_it_on(tmp_path, how):
    extra = {}
    if how == "env":
        extra["TRACEPATCH_TRACK_MEMORY"] = "1"
    else:
        (tmp_path / "tracepatch.toml").write_text("track_memory = true\n")
    r = run_python(["-c", SCRIPT], cwd=tmp_path, env=child_env(**extra))
    assert r.returncode == 0, r.stderr
    kb = json.loads(r.stdout)
    assert 976 <= kb < 990, kb


def test_env_set_to_0_keeps_it_off(tmp_path):
    r = run_python(["-c", SCRIPT], cwd=tmp_path, env=child_env(TRACEPATCH_TRACK_MEMORY="0"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) is None


def test_track_memory_must_be_a_bool():
    with pytest.raises(TypeError, match="track_memory"):
        trace(track_memory="yes")
