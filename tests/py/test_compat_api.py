"""tracepatch 1.0.0's documented Python API (docs/api-reference.md,
quickstart.md, reading-tree.md, data-science.md of levinismynameirl/tracepatch),
run as written, with the documented output (timings normalised)."""

import re
import socket
import os
import textwrap
import warnings

import pytest

from conftest import norm, qualname
import tracepatch
from tracepatch import (ConfigError, TraceSummary, TracepatchConfig, collapse_tree,
                        fold_repeated_calls, load_config, render_summary_header, render_tree,
                        trace)

M = __name__
_MS = re.compile(r"\d+(\.\d+)?(us|ms|s)\b")


def ms_norm(text):
    """1.0.0's fixed units ("0.05ms", "42us", "2.500s") become T."""
    return _MS.sub("T", text)


# --- quickstart.md, section 2 --------------------------------------------

def load_user(user_id):
    return {"id": user_id, "name": "Alice", "email": "alice@example.com"}


def validate(user):
    assert user["name"], "name required"
    return True


def handle_signup(user_id):
    user = load_user(user_id)
    validate(user)
    return user


def signup_trace():
    with trace(label="signup", cache=False) as t:
        handle_signup(42)
    return t


USER = "{'id': 42, 'name': 'Alice', 'email': 'alice@example.com'}"


def test_quickstart_render_tree_draws_what_1_0_0_draws():
    t = signup_trace()
    assert ms_norm(render_tree(t.roots)) == (
        f"└── {M}.handle_signup(user_id=42) -> {USER}  [T]\n"
        f"    ├── {M}.load_user(user_id=42) -> {USER}  [T]\n"
        f"    └── {M}.validate(user={USER}) -> True  [T]")


def test_tree_takes_1_0_0_keyword_names():
    t = signup_trace()
    ours = t.tree(header=False, args=False, returns=False, source=True, self_time=True)
    assert t.tree(header=False, show_args=False, show_return=False, show_source=True,
                  show_self_time=True) == ours
    assert norm(t.tree(header=False, show_args=False)) == (
        f"└── {M}.handle_signup() -> {USER}  [T]\n"
        f"    ├── {M}.load_user() -> {USER}  [T]\n"
        f"    └── {M}.validate() -> True  [T]")


def test_render_tree_styles_and_options():
    t = signup_trace()
    assert ms_norm(render_tree(t.roots, style="unicode", show_args=False,
                               show_return=False)) == (
        f"└─ {M}.handle_signup()  [T]\n"
        f"   ├─ {M}.load_user()  [T]\n"
        f"   └─ {M}.validate()  [T]")
    src = ms_norm(render_tree(t.roots, show_source=True, show_self_time=True))
    first = src.splitlines()[0]
    line = handle_signup.__code__.co_firstlineno
    assert first.endswith(f"[T / self: T]  ({__file__}:{line})")
    with pytest.raises(ValueError):
        render_tree(t.roots, style="fancy")


# --- TraceSummary ----------------------------------------------------------

def square(x):
    return x * x


def total(n):
    return sum(square(i) for i in range(n))


def test_summary_is_a_trace_summary_with_1_0_0_fields():
    with trace(label="stats", cache=False) as t:
        total(3)
    s = t.summary()
    assert isinstance(s, TraceSummary)
    assert s.call_count == 5  # total, the genexpr, square x3
    assert s.max_depth_reached == 2
    assert s.unique_functions == {f"{M}.total", f"{M}.{qualname('total.<locals>.<genexpr>')}",
                                  f"{M}.square"}
    assert s.unique_modules == {M}
    assert s.unique_function_count == 3 and s.unique_module_count == 1
    assert s.most_called[0] == (f"{M}.square", 3)
    assert s.slowest_call_name == f"{M}.total"
    assert s.slowest_call_ms == pytest.approx(t.roots[0].elapsed_ms, abs=1e-3)
    assert s.total_duration_ms == pytest.approx(t.roots[0].elapsed_ms, abs=1e-3)
    # print(t.summary()) shows the header block above t.tree().
    assert str(s) == t.tree().split("\n\n")[0].split("\n", 1)[1] or \
        str(s) in t.tree()


def test_summary_from_roots_matches_render_summary_header():
    t = signup_trace()
    s = TraceSummary.from_roots(t.roots)
    assert (s.call_count, s.max_depth_reached, s.most_called[0][1]) == (3, 1, 1)
    header = ms_norm(render_summary_header(t.roots, label="signup"))
    rule = "─" * 72
    lines = header.splitlines()
    assert lines[:4] == [
        "Trace: signup", rule,
        "Recorded:     3 calls across 1 modules  | Duration: T",
        "Max depth:    1 levels                  | Unique functions: 3"]
    assert re.fullmatch(rf"Slowest:      {M}\.handle_signup \[T\] *\| "
                        rf"Most called: {M}\.handle_signup \[×1\]", lines[4])
    assert lines[5:] == [rule]


def test_empty_trace_summary():
    with trace(cache=False) as t:
        pass
    s = t.summary()
    assert (s.call_count, s.slowest_call_name, s.most_called) == (0, "", [])


# --- fold_repeated_calls / collapse_tree ----------------------------------

def loop(n):
    for i in range(n):
        square(i)


def test_fold_repeated_calls_folds_runs_of_threshold():
    with trace(cache=False) as t:
        loop(4)
        loop(2)
    folded = fold_repeated_calls(t.roots[0].children)
    assert len(folded) == 1
    assert re.fullmatch(r"\.\.\.  \[×4\]  \[avg: T, min: T, max: T\]", ms_norm(folded[0].args))
    assert folded[0].elapsed == pytest.approx(sum(c.elapsed for c in t.roots[0].children))
    assert len(fold_repeated_calls(t.roots[1].children)) == 2  # below the threshold
    assert len(fold_repeated_calls(t.roots[1].children, threshold=2)) == 1
    assert len(t.roots[0].children) == 4  # the trace itself is not changed


def nest(n):
    return nest(n - 1) if n else 0


def test_collapse_tree_hides_levels_below_max_depth():
    with trace(cache=False) as t:
        nest(6)
    out = collapse_tree(t.roots, max_depth=2)
    text = ms_norm(render_tree(out, show_return=False, show_args=False))
    assert text.splitlines()[:3] == [
        f"└── {M}.nest()  [T]",
        f"    └── {M}.nest()  [T]",
        f"        └── {M}.nest()  [T]"]
    # 1.0.0 prints ".[+4 more calls, ...]" (an empty module and its dot).
    assert re.fullmatch(r"            └── \[\+4 more calls, T total\]\(\)  \[T\]",
                        text.splitlines()[3])


# --- explain() --------------------------------------------------------------

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def get_user(uid):
    return {"id": uid}


def page():
    return [get_user(1) for _ in range(3)]


def boom():
    raise KeyError("k")


def test_explain_names_recursion_loops_repeats_and_exceptions():
    with trace(label="x", cache=False) as t:
        fib(4)
        page()
        try:
            boom()
        except KeyError:
            pass
    text = t.explain()
    import sys
    calls = 14 if sys.version_info >= (3, 12) else 15  # 3.12 inlines the list comprehension
    assert text.startswith(f"The program made 3 top-level calls: {M}.fib, {M}.page, {M}.boom.\n"
                           f"In total, {calls} function call(s) were recorded across 1 module(s).\n"
                           f"The deepest the call stack reached was 3 level(s).\n\n"
                           f"Key observations:\n")
    assert f"  ● {M}.fib is called recursively (max depth 3, 8 recursive call(s))" in text
    assert (f"  ● {M}.get_user(uid=1) is called 3 times with the same arguments from "
            f"{M}.{qualname('page.<locals>.<listcomp>')}") in text or \
        (f"  ● {M}.get_user(uid=1) is called 3 times with the same arguments from {M}.page") in text
    assert f"  ● {M}.boom raised: KeyError: 'k'" in text
    assert "Complexity hints" not in text
    verbose = t.explain(verbose=True)
    assert f"  ● {M}.fib: O(2^n) — binary recursion (observed pattern)" in verbose
    # Deterministic apart from timings.
    assert ms_norm(re.sub(r"[\d.]+%", "P", t.explain())) == \
        ms_norm(re.sub(r"[\d.]+%", "P", text))


def test_explain_of_an_empty_trace():
    with trace(cache=False) as t:
        pass
    assert t.explain() == "The trace is empty — no calls were captured."


# --- show() / flame graph -----------------------------------------------------

def test_show_prints_the_tree_outside_a_notebook(capsys):
    t = signup_trace()
    t.show()
    out = capsys.readouterr().out
    assert out.endswith("\n") and norm(out) == norm(t.tree())


def test_repr_html_inlines_the_report():
    t = signup_trace()
    html = t._repr_html_()
    assert html.startswith('<iframe style="width:100%;height:600px;border:0" '
                           'sandbox="allow-scripts" srcdoc="')
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "handle_signup" in html


def test_to_flamegraph_writes_an_svg(tmp_path):
    t = signup_trace()
    t.to_flamegraph(tmp_path / "profile.svg")
    svg = (tmp_path / "profile.svg").read_text()
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg ')
    assert f"<title>{M}.handle_signup (" in svg
    assert ">signup (" in svg
    import xml.dom.minidom
    xml.dom.minidom.parseString(svg)  # well-formed


# --- settings -----------------------------------------------------------------

def test_max_calls_0_disables_tracing():
    with trace(max_calls=0, cache=True) as t:
        handle_signup(1)
    assert (t.enabled, t.call_count, t.roots, t.cache_path) == (False, 0, [], None)


def test_default_label_templates_are_expanded(tmp_path):
    (tmp_path / "work" / "tracepatch.toml").write_text(
        'default_label = "svc-{hostname}-{pid}-{timestamp}-{other}"\n')
    with trace(cache=False) as t:
        pass
    assert re.fullmatch(rf"svc-{re.escape(socket.gethostname())}-{os.getpid()}-"
                        r"\d{8}_\d{6}-\{other\}", t.label)
    with trace(label="{pid}", cache=False) as t:
        pass
    assert t.label == "{pid}"  # an explicit label is used as written


# --- load_config / TracepatchConfig / ConfigError -------------------------------

def test_load_config_returns_config_and_path(tmp_path):
    cfg, path = load_config()
    assert path is None and cfg == TracepatchConfig.default()
    assert cfg.max_depth == 30
    f = tmp_path / "work" / "tracepatch.toml"
    f.write_text(textwrap.dedent("""\
        ignore_modules = ["logging", "urllib3"]
        max_depth = 12
        max_calls = 500

        [[test.files]]
        path = "app.py"
        """))
    cfg, path = load_config()
    assert path == f
    assert (cfg.max_depth, cfg.max_calls, cfg.ignore_modules) == (12, 500, ["logging", "urllib3"])
    assert cfg.test == {"files": [{"path": "app.py"}]}
    kwargs = cfg.to_trace_kwargs()
    assert kwargs["max_depth"] == 12 and "cache" not in kwargs
    with trace(**kwargs) as t:
        handle_signup(1)
    assert t.settings["max_calls"] == 500


def test_config_error_for_invalid_values():
    with pytest.raises(ConfigError, match="max_depth"):
        TracepatchConfig.from_dict({"max_depth": "deep"})
    cfg = TracepatchConfig(max_depth=0)
    try:
        cfg._validate()
    except ConfigError as e:
        assert "max_depth" in str(e)
    else:
        raise AssertionError("no ConfigError")
    assert TracepatchConfig.default()._validate({"nope": 1}) == ["Unknown config key: 'nope'"]


def test_load_config_with_bad_values_warns_and_uses_defaults(tmp_path):
    (tmp_path / "work" / "tracepatch.toml").write_text("max_depth = -1\n")
    with pytest.warns(tracepatch.TracepatchWarning, match="max_depth"):
        cfg, _ = load_config()
    assert cfg.max_depth == 30


# --- JSON files -----------------------------------------------------------------

def test_to_json_has_1_0_0_environment_keys():
    import json
    import platform
    import sys
    doc = json.loads(signup_trace().to_json())
    assert (doc["hostname"], doc["python_version"], doc["platform"], doc["working_directory"]) \
        == (socket.gethostname(), platform.python_version(), sys.platform, os.getcwd())
    keys = list(doc)
    assert keys[keys.index("trace_id") + 1:keys.index("trace_id") + 5] == [
        "hostname", "python_version", "platform", "working_directory"]


# --- data-science.md, "Memory Tracking (Opt-In)" ------------------------------

def load_huge_csv(path):
    return bytearray(3 << 20)


def transform(df):
    return bytearray(1 << 20)


def test_track_memory_deltas_appear_in_the_time_bracket_as_documented():
    """1.0.0's `load_huge_csv(...)  [1.2s, +128.4 MB]`: the delta after the
    time, in the same bracket, in t.tree() and in render_tree()."""
    with trace(track_memory=True, ignore_modules=["pandas"], cache=False) as t:
        big_df = load_huge_csv("data.csv")
        processed = transform(big_df)  # noqa: F841
    expect = (f"├── {M}.load_huge_csv(path='data.csv') -> BA  [T, +3.0 MB]\n"
              f"└── {M}.transform(df=BA) -> BA  [T, +1.0 MB]")
    bytes_repr = re.compile(r"bytearray\(b'[\\x0]*\.\.\.")  # cut at max_repr
    tree = norm(t.tree()).split("\n\n", 1)[1]
    assert bytes_repr.sub("BA", tree).rstrip("\n") == expect
    assert bytes_repr.sub("BA", ms_norm(render_tree(t.roots))) == expect


# --- sample= samples calls (1.0.0), sample_traces= samples traces ----------------

def tick():
    return 1


def test_sample_records_about_that_share_of_calls_and_counts_the_rest():
    with trace(sample=0.1, cache=False) as t:
        for _ in range(20000):
            tick()
    assert t.enabled
    assert t.call_count + t.sample_skipped == 20000
    assert 1600 <= t.call_count <= 2400  # 10% of 20000, far beyond 5 sigma (~42)
    assert t.settings["sample"] == 0.1


def test_sample_zero_and_one():
    with trace(sample=0.0, cache=False) as t0:
        square(1)
    with trace(sample=1.0, cache=False) as t1:
        square(1)
    assert (t0.enabled, t0.call_count, t0.sample_skipped) == (True, 0, 1)
    assert (t1.enabled, t1.call_count, t1.sample_skipped) == (True, 1, 0)


def test_sampled_out_calls_attach_their_callees_to_the_recorded_caller():
    with trace(sample=0.5, cache=False) as t:
        for _ in range(200):
            total(2)
    assert t.call_count + t.sample_skipped == 200 * 4
    for node in (n for r in t.roots for n in r.walk()):
        assert node.parent is None or node.parent.end >= node.end


# --- max_repr_args / max_repr_return ------------------------------------------------

def echo(text):
    return text


def test_max_repr_args_and_return_limit_each_side(tmp_path):
    long = "x" * 50
    with trace(max_repr_args=10, max_repr_return=20, cache=False) as t:
        echo(long)
    node = t.roots[0]
    assert node.args == "text='xxxxxx..."  # the value's repr: 10 characters
    assert node.return_value == "'xxxxxxxxxxxxxxxx..."  # 20
    (tmp_path / "work" / "tracepatch.toml").write_text("max_repr_return = 8\n")
    with trace(cache=False) as t:
        echo(long)
    assert t.roots[0].return_value == "'xxxx..." and len(t.roots[0].args) > 20
    cfg, _ = load_config()
    assert (cfg.max_repr_args, cfg.max_repr_return) == (None, 8)
    assert cfg.to_trace_kwargs()["max_repr_return"] == 8


# --- a broken __repr__ ------------------------------------------------------------------

class BadRepr:
    def __repr__(self):
        raise RuntimeError("no")


class OtherBad:
    def __repr__(self):
        raise ValueError("no")


def take(x):
    return None


def test_broken_repr_gives_1_0_0_note_once_per_type(capsys):
    with trace(cache=False) as t:
        take(BadRepr())
        take(BadRepr())
        take(OtherBad())
    assert t.roots[0].args == "x=<unprintable BadRepr>"
    assert capsys.readouterr().err == ("[tracepatch] repr failed: RuntimeError\n"
                                       "[tracepatch] repr failed: ValueError\n")
    with trace(cache=False) as t:
        take(BadRepr())
    assert capsys.readouterr().err == ""  # once per type


class QuietBad:
    def __repr__(self):
        raise RuntimeError("no")


def test_repr_notes_false_is_quiet(capsys):
    with trace(cache=False, repr_notes=False) as t:
        take(QuietBad())
    assert t.roots[0].args == "x=<unprintable QuietBad>"
    assert capsys.readouterr().err == ""
