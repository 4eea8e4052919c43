"""trace(keep="slow"): a trace is kept (uploaded or saved) only when it was
slower than keep_slower_than or raised; the rest are dropped unsaved."""

import json
import time

import pytest

from tracepatch import trace

# (label, seconds asleep, raises): the scripted workload.
WORKLOAD = [("fast-1", 0.0, False), ("slow-1", 0.25, False), ("fast-2", 0.0, False),
            ("fails", 0.0, True), ("slow-2", 0.3, False), ("fast-3", 0.01, False)]
KEPT = ["slow-1", "fails", "slow-2"]


def handle(seconds, raises):
    time.sleep(seconds)
    if raises:
        raise KeyError("boom")
    return "ok"


def run_workload(cache_dir, **kw):
    traces = []
    for label, seconds, raises in WORKLOAD:
        try:
            with trace(label=label, keep="slow", keep_slower_than=0.2, daemon="off",
                       cache_dir=cache_dir, **kw) as t:
                handle(seconds, raises)
        except KeyError:
            pass
        traces.append(t)
    return traces


def saved_labels(cache_dir):
    files = sorted((cache_dir / ".tracepatch" / "traces").glob("*.json"),
                   key=lambda p: p.stat().st_mtime_ns)
    return [json.loads(p.read_text())["label"] for p in files]


def test_keep_slow_saves_exactly_the_slow_and_failing_traces(tmp_path):
    traces = run_workload(tmp_path)
    assert [t.kept for t in traces] == [t.label in KEPT for t in traces]
    assert saved_labels(tmp_path) == KEPT


def test_keep_slow_records_structure_without_reprs(tmp_path):
    traces = run_workload(tmp_path)
    slow = json.loads(traces[1].to_json())["trace"][0]
    assert (slow["name"], slow["args"], slow["return_value"]) == ("handle", None, None)
    assert slow["elapsed_ms"] >= 250


def test_keep_slow_applies_to_a_decorated_function(tmp_path):
    @trace(keep="slow", keep_slower_than=0.2, daemon="off", cache_dir=tmp_path)
    def request(seconds, raises):
        return handle(seconds, raises)

    kept = []
    for label, seconds, raises in WORKLOAD:
        try:
            request(seconds, raises)
        except KeyError:
            pass
        kept.append(request.last_trace.kept)
    assert kept == [label in KEPT for label, _, _ in WORKLOAD]


def test_keep_all_is_the_default_and_keeps_a_fast_trace(tmp_path):
    with trace(daemon="off", cache_dir=tmp_path) as t:
        handle(0.0, False)
    assert (t.kept, t.settings["keep"], t.settings["keep_slower_than"]) == (True, "all", 0.2)


@pytest.mark.parametrize("kw, error", [({"keep": "fast"}, ValueError),
                                       ({"keep_slower_than": 0}, ValueError),
                                       ({"keep_slower_than": "1"}, TypeError)])
def test_bad_keep_settings_raise_before_recording(kw, error):
    with pytest.raises(error):
        trace(**kw)
