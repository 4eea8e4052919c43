"""The settings schema: one set of rules for keywords, environment, config
files, ``config --validate``, ``init``, the README and the C session."""

import json
import inspect
import math
import textwrap
import warnings
from pathlib import Path

import pytest

from conftest import child_env, run_python
from tracepatch import TracepatchWarning, _config, _settings, _tracepatch, trace

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- settings:begin -->\n", "<!-- settings:end -->"

# line_samples bounds the Python line recorder (_lines.py), not the C session;
# test_lines.py checks it.
NUMERIC = [s for s in _settings.SETTINGS if s.kind in ("int", "seconds")
           and s.name != "line_samples"]
# The numeric settings the C session takes itself (keep_slower_than is
# applied in Python, when the trace ends).
SESSION_NUMERIC = [s for s in NUMERIC
                   if s.name in inspect.signature(_tracepatch.Session).parameters]


def f1():
    return 1


def boundaries(s):
    """(accepted, rejected) values at both ends of a numeric setting's range."""
    if s.kind == "int":
        # An "off" value just below the range (max_calls=0) is accepted by
        # the schema but never reaches the session (test_max_calls_0_...).
        below = s.lo - 2 if s.off == s.lo - 1 else s.lo - 1
        return [s.lo, s.hi], [below, s.hi + 1]
    # seconds: lo is exclusive, hi inclusive
    return [math.ulp(float(s.lo)), float(s.hi)], [float(s.lo), math.nextafter(s.hi, math.inf)]


@pytest.mark.parametrize("setting", SESSION_NUMERIC, ids=lambda s: s.name)
def test_c_session_accepts_every_schema_boundary_and_nothing_beyond(setting):
    accepted, rejected = boundaries(setting)
    for value in accepted:
        assert setting.check(value) == value
        session = _tracepatch.Session(**{setting.name: value})
        session.start()
        session.stop()
    for value in rejected:
        with pytest.raises(_settings.Invalid):
            setting.check(value)
        with pytest.raises(ValueError):
            _tracepatch.Session(**{setting.name: value})


def test_the_session_s_numeric_options_are_exactly_the_schema_s():
    # One table (the extension's LIMITS) gives both their defaults and ranges.
    assert sorted(_tracepatch.LIMITS) == sorted(s.name for s in SESSION_NUMERIC)
    for s in SESSION_NUMERIC:
        assert _tracepatch.LIMITS[s.name] == (s.default, s.lo, s.hi)


def test_the_session_s_signature_shows_the_limits_defaults():
    # Session's text signature (its docstring, which help() and inspect
    # read) spells the defaults out: they are LIMITS'.
    params = inspect.signature(_tracepatch.Session).parameters
    for name, (default, _lo, _hi) in _tracepatch.LIMITS.items():
        assert params[name].default == default, name


def echo(x):
    return x


def deep(n):
    return 0 if n == 0 else deep(n - 1) + 1


def test_a_session_given_nothing_uses_the_schema_s_defaults():
    # Recursion past the default max_depth with an argument repr past the
    # default max_repr: a bare Session records what the schema's defaults do.
    def run(**kw):
        s = _tracepatch.Session(**kw)
        s.start()
        deep(45)
        echo("x" * 500)
        s.stop()
        return s.depth_skipped, [n[1:6] for n in s.nodes()]
    given = {s.name: s.default for s in SESSION_NUMERIC if s.default is not None}
    bare = run()
    assert bare == run(**given)
    assert bare[0] == 46 - given["max_depth"]
    assert len(bare[1][-1][4]) < 500  # echo's argument, cut to max_repr


@pytest.mark.parametrize("setting", NUMERIC, ids=lambda s: s.name)
def test_trace_runs_with_every_schema_boundary(setting):
    for value in boundaries(setting)[0]:
        with trace(cache=False, **{setting.name: value}) as t:
            pass
        assert t.settings[setting.name] == value


def descend(n):
    return descend(n - 1) if n else 0


def test_c_session_defaults_are_the_schema_defaults():
    # The C session's own defaults apply to a Session made without keywords;
    # they must not disagree with the schema.
    import inspect
    params = inspect.signature(_tracepatch.Session).parameters
    for name in ("max_depth", "max_calls", "max_time", "max_repr", "show_args", "show_return",
                 "threads"):
        assert params[name].default == _settings.default(name), name
    session = _tracepatch.Session()
    session.start()
    descend(_settings.default("max_depth") + 4)  # 35 nested calls
    for _ in range(_settings.default("max_calls")):
        f1()
    session.stop()
    assert session.call_count == _settings.default("max_calls")
    assert session.depth_skipped == 5


def test_readme_settings_table_is_generated_from_the_schema():
    text = README.read_text(encoding="utf-8")
    table = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    # To regenerate: python3 -c "from tracepatch import _settings as s;
    # print(s.settings_markdown(), end='')" and paste between the markers.
    assert table == _settings.settings_markdown()


def test_every_keyword_of_trace_is_in_the_schema_with_its_default():
    import inspect
    params = dict(inspect.signature(trace).parameters)
    params.pop("func")  # @trace without parentheses
    keywords = {s.name for s in _settings.SETTINGS if s.keyword}
    assert set(params) == keywords
    for name, p in params.items():
        default = _settings.default(name)
        # None stands for "not passed" where the default is not None too.
        assert repr(p.default) in (repr(default), "None"), name


def test_out_of_range_config_value_warns_once_and_traces_with_the_default():
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_depth = 2000000\nmax_calls = 5\n")
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            f1()
        with trace(cache=False) as t2:
            f1()
    assert [str(w.message) for w in caught] == [
        f"tracepatch: config file {path} has invalid settings: max_depth: expected an "
        f"integer from 1 to 1000000, got 2000000; using max_depth=30 instead"]
    assert (t.call_count, t.settings["max_depth"], t.settings["max_calls"]) == (1, 30, 5)
    assert t2.call_count == 1


def test_out_of_range_pyproject_value_warns_and_traces():
    path = Path("pyproject.toml").resolve()
    path.write_text("[tool.tracepatch]\nmax_repr = 2\n")
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            f1()
    assert [str(w.message) for w in caught] == [
        f"tracepatch: config file {path} has invalid settings: tool.tracepatch.max_repr: "
        f"expected an integer from 4 to 1000000, got 2; using max_repr=120 instead"]
    assert t.call_count == 1


def test_bad_config_value_warning_names_the_environment_value_used_instead(monkeypatch):
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_calls = -1\n")
    monkeypatch.setenv("TRACEPATCH_MAX_CALLS", "7")
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            f1()
    assert [str(w.message) for w in caught] == [
        f"tracepatch: config file {path} has invalid settings: max_calls: expected an "
        f"integer from 1 to 4294967293 (or 0: no tracing), got -1; using max_calls=7 instead"]
    assert t.settings["max_calls"] == 7


def test_keyword_only_setting_in_a_config_file_is_reported():
    path = Path("tracepatch.toml").resolve()
    path.write_text("threads = true\n")
    r = run_python(["-m", "tracepatch", "config", "--validate"])
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.splitlines() == [
        f"{path}: threads: not a config file setting (a trace() keyword only)",
        f"INVALID: {path} (1 problem)"]


def test_validate_rejects_what_a_trace_would_reject():
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_depth = 2000000\n")
    r = run_python(["-m", "tracepatch", "config", "--validate"])
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.splitlines() == [
        f"{path}: max_depth: expected an integer from 1 to 1000000, got 2000000",
        f"INVALID: {path} (1 problem)"]


def test_validate_checks_the_environment_too():
    r = run_python(["-m", "tracepatch", "config", "--validate"],
                   env=child_env(TRACEPATCH_MAX_DEPTH="2000000", TRACEPATCH_COLOR="blue"))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.splitlines() == [
        "environment: TRACEPATCH_MAX_DEPTH='2000000' is not an integer from 1 to 1000000",
        "environment: TRACEPATCH_COLOR='blue' is not 1/true/yes/on or 0/false/no/off",
        "INVALID: environment (2 problems)"]


def test_validate_counts_file_and_environment_problems_together():
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_calls = -1\n")
    r = run_python(["-m", "tracepatch", "config", "--validate"],
                   env=child_env(TRACEPATCH_MAX_TIME="0"))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{path}: max_calls: expected an integer from 1 to 4294967293 (or 0: no tracing), "
        f"got -1",
        "environment: TRACEPATCH_MAX_TIME='0' is not a number of seconds > 0 and <= 1000000000",
        f"INVALID: {path} (2 problems)"]


def test_validate_accepts_good_environment_values():
    r = run_python(["-m", "tracepatch", "config", "--validate"],
                   env=child_env(TRACEPATCH_MAX_DEPTH="1000000", TRACEPATCH_NO_CACHE="1"))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("OK: no config file found")


def test_bad_environment_value_is_one_warning_and_the_trace_runs(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_MAX_REPR", "2")
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            f1()
    assert [str(w.message) for w in caught] == [
        "tracepatch: TRACEPATCH_MAX_REPR='2' is not an integer from 4 to 1000000; "
        "using max_repr=120 instead"]
    assert (t.call_count, t.settings["max_repr"]) == (1, 120)


def test_bad_keyword_raises_before_the_body_runs():
    ran = []
    with pytest.raises(ValueError):
        with trace(max_depth=2_000_000):
            ran.append(1)
    assert ran == []


def test_config_file_option_shows_that_files_values():
    Path("tracepatch.toml").write_text("max_calls = 11\n")
    other = Path("other.toml").resolve()
    other.write_text("max_calls = 22\nmax_depth = 9\n")
    r = run_python(["-m", "tracepatch", "config", "--file", str(other)])
    assert r.returncode == 0, r.stderr
    lines = [" ".join(line.split()) for line in r.stdout.splitlines()]
    assert lines[0] == f"Config file: {other}"
    assert "max_calls = 22 (config)" in lines
    assert "max_depth = 9 (config)" in lines
    r = run_python(["-m", "tracepatch", "config", "--json", "--file", str(other)])
    data = json.loads(r.stdout)
    assert (data["file"], data["settings"]["max_calls"]) == (str(other), 22)


def test_run_options_use_the_schema_ranges():
    Path("app.py").write_text("print('hi')\n")
    r = run_python(["-m", "tracepatch", "run", "--max-depth", "2000000", "app.py"])
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1].endswith(
        "argument --max-depth: expected an integer from 1 to 1000000, got '2000000'")
    r = run_python(["-m", "tracepatch", "run", "--max-repr", "4", "--no-cache", "app.py"])
    assert (r.returncode, r.stdout) == (0, "hi\n")


def test_starter_file_has_every_file_setting_with_its_default():
    if _config._toml is None:
        pytest.skip("no TOML parser (Python 3.10 without tomli)")
    text = _settings.starter_config()
    uncommented = _config._toml.loads(text)
    commented = _config._toml.loads(textwrap.dedent("\n".join(
        line[2:] for line in text.splitlines() if line.startswith("# ") and " = " in line)))
    files = [s for s in _settings.SETTINGS if s.file]
    assert sorted(uncommented) == sorted(s.name for s in files if s.default is not None)
    assert sorted(commented) == sorted(s.name for s in files if s.default is None)
    for s in files:
        if s.default is not None:
            assert s.check(uncommented[s.name], _settings.FILE) == s.default


def test_schema_defaults_pass_their_own_checks():
    for s in _settings.SETTINGS:
        if s.default is not None:
            assert s.check(s.default) == s.default, s.name


def test_warnings_are_not_errors_for_good_settings(monkeypatch):
    Path("tracepatch.toml").write_text("max_depth = 1000000\nmax_repr = 4\n")
    monkeypatch.setenv("TRACEPATCH_MAX_TIME", "1e9")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with trace(cache=False) as t:
            f1()
    assert (t.settings["max_depth"], t.settings["max_repr"], t.settings["max_time"]) == \
        (1_000_000, 4, 1e9)
