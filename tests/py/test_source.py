"""The trace file's "source" key: each traced function's source text, taken in
the traced process once per code object, bounded per function and per trace
(client_ext/tracepatch/_source.py, docs/API.md)."""

import importlib
import json
import sys

from tracepatch import _source, trace



def qn(qualname):
    """A nested code object's qualname as recorded: 3.10's code objects
    have no co_qualname, only the last part."""
    return qualname if sys.version_info >= (3, 11) else qualname.rsplit(".", 1)[-1]

def deco(fn):
    return fn


@deco
def decorated(x):
    # a comment with </script><!-- and \x1b[31m escapes
    return x + 1


def caller(n):
    f = lambda v: v * 2  # noqa: E731
    return [f(decorated(i)) for i in range(n)]


CALLER = caller.__code__.co_firstlineno
DECORATED = decorated.__code__.co_firstlineno


def run(fn, *args, **options):
    options.setdefault("cache", False)
    options.setdefault("daemon", "off")
    with trace(**options) as t:
        fn(*args)
    return t


def entries(t):
    return {e["qualname"]: e for e in json.loads(t.to_json())["source"]["functions"]}


def test_each_function_of_the_table_has_its_own_lines_once():
    t = run(caller, 2)
    doc = json.loads(t.to_json())
    assert list(doc)[-1] == "source"
    src = doc["source"]
    assert (src["max_function"], src["max_trace"], src["left_out"]) == (65536, 1 << 20, 0)
    # One entry per code object, in the order the recorder met them.
    names = [e["qualname"] for e in src["functions"]]
    comp = [] if sys.version_info >= (3, 12) else [qn("caller.<locals>.<listcomp>")]  # inlined
    assert names == ["caller", *comp, "decorated", qn("caller.<locals>.<lambda>")]
    got = entries(t)
    assert got["caller"] == {
        "module": "test_source", "qualname": "caller", "file": __file__, "line": CALLER,
        "text": "def caller(n):\n"
                "    f = lambda v: v * 2  # noqa: E731\n"
                "    return [f(decorated(i)) for i in range(n)]\n"}
    # The decorator line is where the code object starts, and the block
    # runs to the end of the body; the text is kept as written.
    assert got["decorated"]["line"] == DECORATED
    assert got["decorated"]["text"] == (
        "@deco\n" if DECORATED == CALLER - 6 else "") + (
        "def decorated(x):\n"
        "    # a comment with </script><!-- and \\x1b[31m escapes\n"
        "    return x + 1\n")
    # A lambda, a comprehension, a generator expression: the logical line
    # it starts in.
    assert got[qn("caller.<locals>.<lambda>")]["text"] == "    f = lambda v: v * 2  # noqa: E731\n"
    if comp:
        assert got[comp[0]]["text"] == "    return [f(decorated(i)) for i in range(n)]\n"


def spread(n):
    return sum(
        i
        for i in range(n))


def test_a_generator_expression_over_several_lines_is_its_logical_line():
    t = run(spread, 2)
    assert entries(t)[qn("spread.<locals>.<genexpr>")]["text"] == (
        "    return sum(\n        i\n        for i in range(n))\n")


def test_the_html_report_inlines_it_escaped():
    t = run(caller, 1)
    html = t.to_html()
    data = html.split('<script type="application/json" id="tp-data">', 1)[1].split("</script>")[0]
    assert "</script><!--" not in data
    src = json.loads(data)["source"]
    assert src == json.loads(t.to_json())["source"]


def test_text_is_taken_once_so_a_later_edit_does_not_change_it(tmp_path, monkeypatch):
    mod = tmp_path / "src_edit_mod.py"
    mod.write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    m = importlib.import_module("src_edit_mod")
    t = run(m.f)
    first = t.to_json()
    mod.write_text("def f():\n    return 'edited'\n")
    import linecache
    linecache.checkcache()
    assert t.to_json() == first
    assert entries(t)["f"]["text"] == "def f():\n    return 1\n"


def test_code_without_a_file_says_no_source():
    ns = {}
    exec(compile("def g():\n    return 2\n", "<string>", "exec"), ns)
    t = run(ns["g"])
    e = entries(t)["g"]
    assert (e["file"], e["line"], e["missing"], "text" in e) == ("<string>", 1, "no source", False)


def make_module(tmp_path, monkeypatch, name, bodies):
    """A module whose functions f0, f1, ... have a def line, the given
    number of lines of 66 bytes each, and a return line."""
    text = ""
    for i, n in enumerate(bodies):
        text += f"def f{i}():\n"
        text += "".join(f"    x{j:06d} = {'1' * 46}  # p\n" for j in range(n))
        text += "    return 0\n"
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def test_a_long_function_keeps_whole_lines_up_to_its_bound_and_counts_the_rest(
        tmp_path, monkeypatch):
    m = make_module(tmp_path, monkeypatch, "src_long_mod", [2000])
    assert len("    x000000 = " + "1" * 46 + "  # p\n") == 66
    t = run(m.f0)
    e = entries(t)["f0"]
    # "def f0():\n" is 10 bytes, then 66 per line: (65536 - 10) // 66 = 992.
    assert len(e["text"].encode()) == 10 + 992 * 66
    assert e["text"].endswith("    x000991 = " + "1" * 46 + "  # p\n")
    assert e["truncated"] == 2000 + 2 - 1 - 992


def test_past_the_trace_budget_functions_are_listed_as_missing(tmp_path, monkeypatch):
    # 18 functions of 59,423 bytes: 17 fit in 1 MiB, the 18th does not.
    m = make_module(tmp_path, monkeypatch, "src_budget_mod", [900] * 18)

    def all_of_them():
        for i in range(18):
            getattr(m, f"f{i}")()

    t = run(all_of_them)
    got = entries(t)
    size = len(got["f0"]["text"].encode())
    assert size == 10 + 900 * 66 + 13
    fit = (1 << 20) // size
    assert fit == 17
    assert [("text" in got[f"f{i}"]) for i in range(18)] == [True] * 17 + [False]
    assert got["f17"]["missing"] == "over the trace's source budget"
    assert sum(len(got[f"f{i}"]["text"].encode()) for i in range(17)) <= 1 << 20


def test_a_trace_with_lines_data_has_lines_then_source():
    t = run(caller, 1, lines=[caller])
    assert list(json.loads(t.to_json()))[-2:] == ["lines", "source"]
    assert list(json.loads(t.to_json(pretty=False)))[-2:] == ["lines", "source"]


def test_to_json_written_to_a_file_carries_it(tmp_path):
    t = run(caller, 1)
    path = tmp_path / "t.json"
    t.to_json(path)
    assert json.loads(path.read_text())["source"] == json.loads(t.to_json())["source"]


def test_capture_reads_each_code_object_once_across_traces(monkeypatch):
    run(caller, 1).to_json()
    calls = []
    real = _source._block
    monkeypatch.setattr(_source, "_block", lambda *a: calls.append(a) or real(*a))
    t = run(caller, 1)
    t.to_json()
    assert calls == [] and "text" in entries(t)["caller"]
    assert sys.modules[__name__]  # the module stays loaded: its text is cached
