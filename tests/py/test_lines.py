"""trace(lines=[...]): line hits and variable values of chosen functions only,
in t.tree(lines=True) and the trace file's JSON ("lines" key)."""

import json
import sys

import pytest

import tracepatch
from tracepatch import trace


def helper(x):
    return x * 2


def work(n):
    total = 0
    for i in range(n):
        total += helper(i)
    return total


W = work.__code__.co_firstlineno


def run(*calls, **options):
    options.setdefault("cache", False)
    options.setdefault("daemon", "off")
    with trace(**options) as t:
        for fn, arg in calls:
            fn(arg)
    return t


def test_tree_lists_each_call_of_a_chosen_function_with_hits_and_values():
    t = run((work, 3), lines=[work])
    text = t.tree(lines=True, header=False)
    assert text.split("\n\n", 1)[1] == "\n".join([
        "lines of test_lines.work(n=3) [call 0]",
        f"  {W + 1} │   1× │ total = 0   # total=0",
        f"  {W + 2} │   4× │ for i in range(n):   # i=0, 1, 2, 2  "
        "range=<class 'range'>, <class 'range'>, <class 'range'>, <class 'range'>  "
        "n=3, 3, 3, 3",
        f"  {W + 3} │   3× │ total += helper(i)   # total=0, 2, 6  "
        "helper=<function helper>, <function helper>, <function helper>  i=0, 1, 2",
        f"  {W + 4} │   1× │ return total   # total=6"])
    assert t.tree(header=False) == text.split("\n\n", 1)[0]


def test_json_has_a_lines_key_for_the_chosen_functions_only():
    t = run((work, 1), (helper, 5), lines=["test_lines.work"])
    data = json.loads(t.to_json())
    assert data["config"]["lines"] == ["test_lines.work"]
    assert data["lines"] == [{
        "call": 0, "module": "test_lines", "qualname": "work", "file": __file__,
        "args": "n=1", "lines": [
            {"line": W + 1, "source": "    total = 0", "hits": 1, "values": {"total": ["0"]}},
            {"line": W + 2, "source": "    for i in range(n):", "hits": 2,
             "values": {"i": ["0", "0"], "range": ["<class 'range'>"] * 2, "n": ["1", "1"]}},
            {"line": W + 3, "source": "        total += helper(i)", "hits": 1,
             "values": {"total": ["0"], "helper": ["<function helper>"], "i": ["0"]}},
            {"line": W + 4, "source": "    return total", "hits": 1,
             "values": {"total": ["0"]}}]}]
    assert json.loads(t.to_json(pretty=False))["lines"] == data["lines"]
    # The rest of the file is what a trace without lines= writes.
    plain = run((work, 1), (helper, 5))
    assert "lines" not in json.loads(plain.to_json())
    assert [n["name"] for n in data["trace"]] == ["work", "helper"]


def test_samples_are_capped_per_line_and_cut_to_max_repr():
    def long(n):
        s = ""
        for _ in range(n):
            s += "y" * 40
        return s

    t = run((long, 30), lines=[long], line_samples=3, max_repr=20)
    rec, = json.loads(t.to_json())["lines"]
    loop = next(li for li in rec["lines"] if li["source"].strip() == 's += "y" * 40')
    assert loop["hits"] == 30
    assert loop["values"]["s"] == ["'yyyyyyyyyyyyyyyy...", "'yyyyyyyyyyyyyyyy...",
                                   "'yyyyyyyyyyyyyyyy..."]


def test_without_lines_nothing_is_hooked_and_lines_true_adds_nothing():
    before = sys.gettrace()
    t = run((work, 2))
    assert sys.gettrace() is before
    assert t.tree(lines=True) == t.tree()


def test_hooks_are_removed_when_the_trace_ends():
    before = sys.gettrace()
    run((work, 2), lines=[work])
    assert sys.gettrace() is before
    if sys.version_info >= (3, 12):
        assert all(sys.monitoring.get_tool(i) != "tracepatch.lines" for i in range(6))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring")
def test_line_events_are_enabled_on_the_chosen_code_only():
    seen = {}

    def probe(n):
        tool = next(i for i in range(6) if sys.monitoring.get_tool(i) == "tracepatch.lines")
        seen["work"] = sys.monitoring.get_local_events(tool, work.__code__)
        seen["helper"] = sys.monitoring.get_local_events(tool, helper.__code__)
        seen["global"] = sys.monitoring.get_events(tool)
        return n

    run((probe, 1), lines=[work])
    E = sys.monitoring.events
    assert seen == {"work": E.LINE | E.PY_RETURN | E.PY_YIELD, "helper": 0, "global": 0}


def test_bad_lines_values_raise_before_tracing():
    with pytest.raises(TypeError, match="lines must be a list of functions"):
        trace(lines=[42])
    with pytest.raises(TypeError):
        trace(lines="test_lines.work")
    with pytest.raises(ValueError, match="line_samples"):
        trace(lines=[work], line_samples=0)


def test_unknown_names_record_no_lines():
    t = run((work, 1), lines=["no_such_module.f", "test_lines.nothing"])
    assert "lines" not in json.loads(t.to_json())
    assert tracepatch  # the package is importable with the new settings


def tagged():
    tag = "</script><!--x"
    return tag


def test_html_report_inlines_the_lines_escaped():
    with trace(lines=[tagged], cache=False, daemon="off") as t:
        tagged()
    html = t.to_html()
    start = html.index('<script type="application/json" id="tp-data">') + len(
        '<script type="application/json" id="tp-data">')
    data = html[start:html.index("</script>", start)]
    assert html.count("</script") == 4 and "<!--x" not in data  # tp-data, tp-tree, tp-members, the app
    lines = json.loads(data)["lines"]
    assert lines == json.loads(t.to_json())["lines"]
    assert lines[0]["lines"][0]["values"] == {"tag": ["'</script><!--x'"]}
    with trace(cache=False, daemon="off") as plain:
        tagged()
    assert ',"lines":[{' not in plain.to_html()


def evens(n):
    k = 0
    for i in range(n):
        if i % 2:
            continue
        k += i
    return k


def test_loop_turns_and_continue_count_as_line_events_do():
    t = run((evens, 4), lines=[evens])
    rec, = json.loads(t.to_json())["lines"]
    assert [(li["source"].strip(), li["hits"]) for li in rec["lines"]] == [
        ("k = 0", 1), ("for i in range(n):", 5), ("if i % 2:", 4), ("continue", 2),
        ("k += i", 2), ("return k", 1)]


def test_the_chosen_function_alone_is_hooked():
    seen = {}

    def probe(n):
        seen["trace"] = sys.gettrace()
        return n

    code = work.__code__
    run((probe, 1), (work, 1), lines=[work])
    assert seen == {"trace": None}  # no trace function for the thread
    assert work.__code__ is code  # 3.10/3.11 ran an instrumented copy only meanwhile
