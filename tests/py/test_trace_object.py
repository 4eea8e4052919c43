"""The trace object: outputs, nodes, lifecycle, keyword validation."""

import csv
import io
import json
import re
import threading
import time
from pathlib import Path

import pytest

from conftest import norm, outline, qualname
from tracepatch import Node, trace

M = __name__


def square(x):
    return x * x


def total(n):
    result = 0
    for i in range(n):
        result += square(i)
    return result


def fails(x):
    raise KeyError(x)


def recovers(x):
    try:
        fails(x)
    except KeyError:
        return "recovered"


def loop(n):
    for i in range(n):
        square(i)
    return n


def test_trace_id_is_32_random_hex_digits():
    ids = {trace().trace_id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_outputs_while_recording_raise_a_clear_error():
    with trace(cache=False) as t:
        for read in (t.tree, t.summary, t.to_json, t.to_csv, t.to_chrome,
                     lambda: t.roots, lambda: t.stats):
            with pytest.raises(RuntimeError, match="still recording"):
                read()
        assert t.active
    assert not t.active
    t.tree()


def test_outputs_before_running_and_reuse():
    t = trace(cache=False)
    with pytest.raises(RuntimeError, match="has not run"):
        t.tree()
    with t:
        pass
    with pytest.raises(RuntimeError, match="already recorded"):
        with t:
            pass


@pytest.mark.parametrize("kwargs,error,message", [
    ({"max_depth": 0}, ValueError,
     "trace(): max_depth must be an integer from 1 to 1000000, got 0"),
    ({"max_depth": 1_000_001}, ValueError,
     "trace(): max_depth must be an integer from 1 to 1000000, got 1000001"),
    ({"max_calls": "many"}, TypeError,
     "trace(): max_calls must be an integer from 1 to 4294967293 (or 0: no tracing), "
     "got str 'many'"),
    ({"max_time": 0}, ValueError,
     "trace(): max_time must be a number of seconds > 0 and <= 1000000000, got 0"),
    ({"max_time": 2e9}, ValueError,
     "trace(): max_time must be a number of seconds > 0 and <= 1000000000, got 2000000000.0"),
    ({"max_repr": True}, TypeError,
     "trace(): max_repr must be an integer from 4 to 1000000, got bool True"),
    ({"max_repr": 3}, ValueError, "trace(): max_repr must be an integer from 4 to 1000000, got 3"),
    ({"ignore_modules": "logging"}, TypeError, "trace(): ignore_modules must be a list of "
     "module names (non-empty strings), got str 'logging'"),
    ({"include_modules": [""]}, ValueError, "trace(): include_modules must be a list of "
     "module names (non-empty strings), got an empty string"),
    ({"show_args": 1}, TypeError, "trace(): show_args must be True or False, got int 1"),
    ({"sample": 1.5}, ValueError, "trace(): sample must be a number from 0 to 1, got 1.5"),
    ({"label": 3}, TypeError, "trace(): label must be a string, got int 3"),
    ({"daemon": "sometimes"}, ValueError, "trace(): daemon must be 'auto', 'off', 'required' "
     "or a socket path (containing '/'), got 'sometimes'"),
    ({"daemon": 1}, TypeError, "trace(): daemon must be 'auto', 'off', 'required' "
     "or a socket path (containing '/'), got int 1"),
    ({"threads": "yes"}, TypeError, "trace(): threads must be True or False, got str 'yes'"),
])
def test_bad_keywords(kwargs, error, message):
    with pytest.raises(error) as caught:
        trace(**kwargs)
    assert str(caught.value) == message


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="bogus"):
        trace(bogus=1)


def test_daemon_setting_is_stored():
    assert trace().daemon == "auto"
    assert trace(daemon="off").daemon == "off"
    assert trace(daemon="/run/user/1000/tracepatch/tphd.sock").daemon == \
        "/run/user/1000/tracepatch/tphd.sock"
    assert trace(daemon=Path("/tmp/x.sock")).daemon == "/tmp/x.sock"
    with trace(daemon="required", cache=False) as t:
        square(2)
    assert t.call_count == 1 and t.url is None


def test_nodes():
    before = time.time()
    with trace(cache=False) as t:
        total(3)
        recovers("k")
    after = time.time()
    roots = t.roots
    assert all(isinstance(n, Node) for n in roots)
    assert outline(roots, strip=M) == (
        "total(n=3) -> 5\n"
        "  square(x=0) -> 0\n"
        "  square(x=1) -> 1\n"
        "  square(x=2) -> 4\n"
        "recovers(x='k') -> 'recovered' (caught KeyError)\n"
        "  fails(x='k') !! KeyError: 'k'")
    top = roots[0]
    assert (top.name, top.qualname, top.module) == ("total", "total", M)
    assert top.file == __file__ and top.lineno == total.__code__.co_firstlineno
    assert before <= top.start <= top.end <= after
    assert top.elapsed == pytest.approx(top.end - top.start, abs=1e-6)
    assert top.elapsed_ms == pytest.approx(top.elapsed * 1000)
    assert top.children[0].parent is top and top.parent is None
    assert top.children[2].depth == 1
    bad = roots[1].children[0]
    assert (bad.exception, bad.exception_type, bad.return_value) == ("KeyError: 'k'", "KeyError", None)
    assert roots[1].caught and roots[1].caught_exception == "KeyError: 'k'"
    assert roots[1].exception is None
    assert [n.qualname for n in top.walk()] == ["total", "square", "square", "square"]


def test_exceptions_leave_the_block_untouched():
    with pytest.raises(KeyError) as info:
        with trace(cache=False) as t:
            fails("z")
    assert info.value.args == ("z",)
    assert outline(t.roots, strip=M) == "fails(x='z') !! KeyError: 'z'"


def test_to_json_text_and_files(tmp_path):
    with trace(label="json", cache=False) as t:
        total(2)
    text = t.to_json()
    data = json.loads(text)
    for key in ("tracepatch_version", "schema_version", "timestamp", "label", "trace_id",
                "call_count", "was_limited", "limit_reason", "config", "stats", "trace"):
        assert key in data, key
    assert (data["label"], data["trace_id"], data["call_count"]) == ("json", t.trace_id, 3)
    assert data["config"]["max_calls"] == 10000
    node = data["trace"][0]
    assert (node["name"], node["module"], node["args"], node["return_value"]) == \
        ("total", M, "n=2", "1")
    assert [c["args"] for c in node["children"]] == ["x=0", "x=1"]

    out = tmp_path / "t.json"
    assert t.to_json(out) == out
    assert out.read_text() == text
    assert t.to_json(str(out)) == str(out)
    buf = io.StringIO()
    assert t.to_json(buf) is buf and buf.getvalue() == text


def test_to_csv_and_to_chrome(tmp_path):
    with trace(cache=False) as t:
        total(2)
    rows = list(csv.reader(io.StringIO(t.to_csv())))
    assert len(rows) == 4  # header + 3 calls
    assert "exception" in rows[0]
    chrome = json.loads(t.to_chrome())
    assert len([e for e in chrome["traceEvents"] if e.get("ph") == "X"]) == 3
    path = tmp_path / "c.json"
    assert t.to_chrome(path) == path and json.loads(path.read_text()) == chrome
    assert t.to_csv(tmp_path / "t.csv") == tmp_path / "t.csv"


def test_summary_and_stats():
    with trace(label="stats", cache=False) as t:
        total(3)
    assert t.stats["calls"] == 4
    assert t.stats["unique_functions"] == 2
    summary = norm(str(t.summary()))
    assert "Recorded:     4 calls across 1 modules" in summary
    assert f"Most called: {M}.square [×3]" in summary


def test_tree_options():
    with trace(label="opts", cache=False) as t:
        loop(3)
        fails_safely()
    src = f"{__file__}:"
    assert norm(t.tree(header=False, fold=False)) == (
        f"├── {M}.loop(n=3) -> 3  [T]\n"
        f"│   ├── {M}.square(x=0) -> 0  [T]\n"
        f"│   ├── {M}.square(x=1) -> 1  [T]\n"
        f"│   └── {M}.square(x=2) -> 4  [T]\n"
        f"└── {M}.fails_safely() -> None  [T]")
    assert norm(t.tree(header=False)) == (
        f"├── {M}.loop(n=3) -> 3  [T]\n"
        f"│   └── {M}.square(...)  [×3]  [T total, avg T, min T, max T]\n"
        f"└── {M}.fails_safely() -> None  [T]")
    assert norm(t.tree(header=False, style="ascii", fold=False, args=False, returns=False)) == (
        f"|-- {M}.loop()  [T]\n"
        f"|   |-- {M}.square()  [T]\n"
        f"|   |-- {M}.square()  [T]\n"
        f"|   `-- {M}.square()  [T]\n"
        f"`-- {M}.fails_safely()  [T]")
    assert norm(t.tree(header=False, depth=1)) == (
        f"├── {M}.loop(n=3) -> 3  [T]\n"
        f"│   └── [3 nested calls...]\n"
        f"└── {M}.fails_safely() -> None  [T]")
    assert norm(t.tree(header=False, filter="!*square")) == (
        f"├── {M}.loop(n=3) -> 3  [T]\n"
        f"└── {M}.fails_safely() -> None  [T]")
    assert norm(t.tree(header=False, filter=[f"{M}.square"], fold=False)) == (
        f"├── {M}.square(x=0) -> 0  [T]\n"
        f"├── {M}.square(x=1) -> 1  [T]\n"
        f"└── {M}.square(x=2) -> 4  [T]")
    assert norm(t.tree(header=False, source=True)) == (
        f"├── {M}.loop(n=3) -> 3  [T]  ({src}{loop.__code__.co_firstlineno})\n"
        f"│   └── {M}.square(...)  [×3]  [T total, avg T, min T, max T]  "
        f"({src}{square.__code__.co_firstlineno})\n"
        f"└── {M}.fails_safely() -> None  [T]  ({src}{fails_safely.__code__.co_firstlineno})")
    assert norm(t.tree(header=False, self_time=True, fold=False)).splitlines()[0] == \
        f"├── {M}.loop(n=3) -> 3  [T / self: T]"
    coloured = t.tree(header=False, color=True, fold=False)
    assert coloured.splitlines()[0].startswith(f"├── \x1b[1m{M}.loop\x1b[0m(n=3) -> 3  \x1b[")
    assert "\x1b[" not in t.tree()
    assert t.tree(style="ansi", header=False, fold=False) == coloured
    assert norm(t.tree(style="ascii")).splitlines() == [
        "Trace: opts",
        "-" * 72,
        "Recorded:     5 calls across 1 modules | Duration: T",
        "Max depth:    1 levels | Unique functions: 3",
        f"Slowest:      {M}.loop [T] | Most called: {M}.square [x3]",
        "-" * 72,
        "",
        f"|-- {M}.loop(n=3) -> 3  [T]",
        f"|   `-- {M}.square(...)  [x3]  [T total, avg T, min T, max T]",
        f"`-- {M}.fails_safely() -> None  [T]",
    ]
    with pytest.raises(ValueError, match="style"):
        t.tree(style="fancy")


def fails_safely():
    return None


def test_config_tree_style_is_the_default_style():
    Path("tracepatch.toml").write_text('tree_style = "7bit"\ncache = false\n')
    with trace() as t:
        square(1)
    assert norm(t.tree(header=False)) == f"`-- {M}.square(x=1) -> 1  [T]"
    assert norm(t.tree(header=False, style="unicode")) == f"└── {M}.square(x=1) -> 1  [T]"


def test_config_tree_style_ascii_draws_what_1_0_0_draws():
    # 1.0.0's `tph init` writes tree_style = "ascii"; its trees use box characters.
    Path("tracepatch.toml").write_text('tree_style = "ascii"\ncache = false\n')
    with trace() as t:
        square(1)
    assert norm(t.tree(header=False)) == f"└── {M}.square(x=1) -> 1  [T]"
    assert norm(t.tree(header=False, style="7bit")) == f"`-- {M}.square(x=1) -> 1  [T]"


def test_sample_traces_zero_records_nothing_and_one_records():
    with trace(sample_traces=0.0, cache=False) as t0:
        square(1)
    with trace(sample_traces=1.0, cache=False) as t1:
        square(1)
    assert (t0.enabled, t0.call_count) == (False, 0)
    assert (t1.enabled, t1.call_count) == (True, 1)


def test_show_args_and_show_return_false_capture_nothing():
    with trace(show_args=False, show_return=False, cache=False) as t:
        square(3)
    node = t.roots[0]
    assert (node.args, node.return_value) == (None, None)


def test_ignore_and_include_modules():
    import json as json_module
    with trace(cache=False, ignore_modules=["json"]) as t:
        json_module.dumps({"a": square(2)})
    assert outline(t.roots, strip=M) == "square(x=2) -> 4"
    with trace(cache=False, include_modules=[M]) as t:
        json_module.loads(json_module.dumps([square(3)]))
    assert outline(t.roots, strip=M) == "square(x=3) -> 9"


def worker():
    square(100)


def test_threads_are_recorded_only_with_threads_true():
    for threads in (False, True):
        with trace(cache=False, threads=threads, ignore_modules=["threading", "_weakrefset"]) as t:
            th = threading.Thread(target=worker)
            th.start()
            th.join()
            square(1)
        if not threads:
            assert outline(t.roots, strip=M) == "square(x=1) -> 1"
        else:
            assert sorted(outline([r], strip=M) for r in t.roots) == [
                "square(x=1) -> 1", "worker() -> None\n  square(x=100) -> 10000"]
            assert {r.qualname: r.thread for r in t.roots} == {"worker": 1, "square": 0}


def test_nested_traces_each_get_a_complete_record():
    with trace(cache=False) as outer:
        square(1)
        with trace(label="inner") as inner:
            square(2)
        square(3)
    assert outline(inner.roots, strip=M) == "square(x=2) -> 4"
    # Saving the inner trace (json, pathlib...) does not show up in the outer one.
    assert inner.cache_path is not None
    assert outline(outer.roots, strip=M) == (
        "square(x=1) -> 1\nsquare(x=2) -> 4\nsquare(x=3) -> 9")


def test_repr():
    t = trace(label="r", cache=False)
    assert repr(t) == f"<tracepatch.trace {t.trace_id[:8]} label='r' new>"
    with t:
        square(1)
    assert repr(t) == f"<tracepatch.trace {t.trace_id[:8]} label='r' finished calls=1>"


class _Named:
    def method(self):
        return 1


def test_name_means_the_qualname_in_every_json_shape():
    # "name" in JSON is the qualname with "module" beside it (docs/API.md):
    # Node.to_dict() has the trace file's shape, so it says the same, and a
    # node read back from the file has the live node's attributes.
    from tracepatch._compat import nodes_from_json
    with trace(daemon="off") as t:
        _Named().method()
    live = t.roots[0]
    filed = json.loads(t.to_json())["trace"][0]
    q = qualname("_Named.method")  # 3.10's code objects know only "method"
    assert (filed["name"], filed["qualname"]) == (q, q)
    assert {k: live.to_dict()[k] for k in ("name", "qualname", "module")} == \
        {k: filed[k] for k in ("name", "qualname", "module")}
    back = nodes_from_json(json.loads(t.to_json()))[0]
    assert (back.name, back.qualname, back.module) == \
        (live.name, live.qualname, live.module) == ("method", q, __name__)


def test_each_trace_file_says_its_own_settings_when_traces_alternate():
    # The config JSON is kept per distinct settings: traces that alternate
    # between two settings each carry their own.
    def config(**kw):
        with trace(daemon="off", cache=False, **kw) as t:
            _Named().method()
        return json.loads(t.to_json())["config"]
    a, b = config(max_depth=5, ignore_modules=["x"]), config(max_depth=7, lines=[_Named.method])
    assert (a["max_depth"], a["ignore_modules"], a["lines"]) == (5, ["x"], [])
    assert (b["max_depth"], b["ignore_modules"], b["lines"]) == (
        7, [], [f"{__name__}._Named.method"])
    assert config(max_depth=5, ignore_modules=["x"]) == a
    assert config(max_depth=7, lines=[_Named.method]) == b
    assert config(max_depth=5, ignore_modules=["x"], show_args=False)["show_args"] is False


def test_an_environment_change_applies_to_the_next_trace(monkeypatch):
    def depth():
        with trace(daemon="off", cache=False) as t:
            _Named().method()
        return json.loads(t.to_json())["config"]["max_depth"]
    monkeypatch.setenv("TRACEPATCH_MAX_DEPTH", "11")
    assert depth() == 11
    monkeypatch.setenv("TRACEPATCH_MAX_DEPTH", "12")
    assert depth() == 12
    monkeypatch.delenv("TRACEPATCH_MAX_DEPTH")
    assert depth() == 30
