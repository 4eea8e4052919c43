"""Config files: discovery, validation (``config --validate``), ``init``, and
their effect on trace()."""

import json
import textwrap
import warnings
from pathlib import Path

import pytest

from conftest import child_env, run_python
from tracepatch import TracepatchWarning, _cli, _config, trace

VALID = textwrap.dedent("""\
    ignore_modules = ["logging", "urllib3"]
    include_modules = ["myapp"]
    max_depth = 12
    max_calls = 500
    max_repr = 80
    max_time = 5
    cache = true
    cache_dir = ".custom_cache"
    auto_save = true
    show_args = true
    show_return = false
    tree_style = "ascii"
    color = false
    default_label = "svc"

    [[test.files]]
    path = "myapp/core.py"
    functions = ["process", "validate"]

    [[test.inputs]]
    function = "process"
    args = [42, "hello"]
    kwargs = {}

    [test.custom]
    enabled = false
    script = ""
    """)


def validate(cwd="."):
    return run_python(["-m", "tracepatch", "config", "--validate"], cwd=cwd)


def f1():
    return 1


def test_validate_valid_file_prints_ok():
    path = Path("tracepatch.toml").resolve()
    path.write_text(VALID)
    r = validate()
    assert (r.returncode, r.stdout, r.stderr) == (0, f"OK: {path}\n", "")


def test_validate_unknown_key_names_file_and_key():
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_dept = 5\nmax_calls = 10\n")
    r = validate()
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == (f"{path}: max_dept: unknown key\n"
                        f"INVALID: {path} (1 problem)\n")


def test_validate_wrong_types_are_each_reported():
    path = Path("tracepatch.toml").resolve()
    path.write_text(textwrap.dedent("""\
        max_depth = "deep"
        max_calls = -1
        ignore_modules = "logging"
        cache = 1
        max_time = -2.5
        tree_style = "fancy"
        """))
    r = validate()
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{path}: max_depth: expected an integer from 1 to 1000000, got str 'deep'",
        f"{path}: max_calls: expected an integer from 1 to 4294967293 (or 0: no tracing), "
        f"got -1",
        f"{path}: ignore_modules: expected a list of module names (non-empty strings), "
        f"got str 'logging'",
        f"{path}: cache: expected true or false, got int 1",
        f"{path}: max_time: expected a number of seconds > 0 and <= 1000000000, got -2.5",
        f"{path}: tree_style: expected one of 'unicode', 'ascii', 'ansi', '7bit', got 'fancy'",
        f"INVALID: {path} (6 problems)",
    ]


def test_validate_test_tables():
    path = Path("tracepatch.toml").resolve()
    path.write_text(textwrap.dedent("""\
        [[test.files]]
        path = 1
        functions = ["ok", 2]

        [test.custom]
        enabled = "yes"
        shell = "bash"

        [test.extra]
        """))
    r = validate()
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{path}: test.files[0].path: expected a string, got int 1",
        f"{path}: test.files[0].functions: expected a list of non-empty strings, "
        f"got an item int 2",
        f"{path}: test.custom.enabled: expected true or false, got str 'yes'",
        f"{path}: test.custom.shell: unknown key",
        f"{path}: test.extra: unknown key",
        f"INVALID: {path} (5 problems)",
    ]


def test_validate_accepts_tracepatch1_repr_limits_and_checks_them():
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_repr_args = 80\nmax_repr_return = 40\n")
    r = validate()
    assert (r.returncode, r.stdout) == (0, f"OK: {path}\n")
    path.write_text("max_repr_args = 2\n")
    r = validate()
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == (
        f"{path}: max_repr_args: expected an integer from 4 to 1000000, got 2")


def test_validate_broken_toml():
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_depth = \n")
    r = validate()
    assert r.returncode == 1
    first, last = r.stderr.splitlines()
    assert first.startswith(f"{path}: invalid TOML: ")
    assert "line 1" in first
    assert last == f"INVALID: {path}"


def test_validate_pyproject_section_keys_are_qualified():
    path = Path("pyproject.toml").resolve()
    path.write_text('[project]\nname = "x"\n\n[tool.tracepatch]\nmax_calls = "many"\n')
    r = validate()
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{path}: tool.tracepatch.max_calls: expected an integer from 1 to 4294967293 "
        f"(or 0: no tracing), "
        f"got str 'many'",
        f"INVALID: {path} (1 problem)",
    ]
    path.write_text('[project]\nname = "x"\n\n[tool.tracepatch]\nmax_calls = 77\n')
    r = validate()
    assert (r.returncode, r.stdout) == (0, f"OK: {path}\n")


def test_search_goes_upward_and_skips_pyproject_without_section():
    top = Path.cwd()
    (top / "tracepatch.toml").write_text("max_calls = 9\n")
    sub = top / "pkg" / "deep"
    sub.mkdir(parents=True)
    (top / "pkg" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    r = validate(cwd=sub)
    assert (r.returncode, r.stdout) == (0, f"OK: {(top / 'tracepatch.toml').resolve()}\n")


def test_tracepatch_toml_wins_over_pyproject_in_the_same_directory():
    Path("pyproject.toml").write_text("[tool.tracepatch]\nmax_calls = 1\n")
    Path("tracepatch.toml").write_text("max_calls = 2\n")
    r = validate()
    assert r.stdout == f"OK: {Path('tracepatch.toml').resolve()}\n"


def test_validate_without_config_file_is_ok():
    r = validate()
    assert r.returncode == 0
    assert r.stdout == (f"OK: no config file found (searched upward from {Path.cwd()}); "
                        f"defaults apply\n")


def test_validate_explicit_file_option():
    other = Path("elsewhere.toml").resolve()
    other.write_text("nonsense = true\n")
    r = run_python(["-m", "tracepatch", "config", "--validate", "--file", str(other)])
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f"{other}: nonsense: unknown key"


def test_missing_toml_library_gives_a_clear_message(monkeypatch, capsys):
    # What Python 3.10 without tomli sees.
    Path("tracepatch.toml").write_text("max_calls = 3\n")
    monkeypatch.setattr(_config, "_toml", None)
    monkeypatch.setattr(_config, "_cache", {})
    assert _cli.main(["config", "--validate"]) == 1
    err = capsys.readouterr().err
    path = Path("tracepatch.toml").resolve()
    assert err.splitlines() == [
        f"{path}: reading config files needs Python 3.11+ (tomllib) or the 'tomli' "
        f"package (pip install tomli)",
        f"INVALID: {path}",
    ]
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            f1()
    assert str(caught[0].message) == (
        f"tracepatch: ignoring config file {path}: reading config files needs Python "
        f"3.11+ (tomllib) or the 'tomli' package (pip install tomli); using the defaults "
        f"instead")
    assert t.settings["max_calls"] == 10000


def test_config_values_apply_to_trace():
    Path("tracepatch.toml").write_text(textwrap.dedent("""\
        max_calls = 3
        max_repr = 50
        default_label = "from-config"
        cache = false
        """))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with trace() as t:
            for _ in range(5):
                f1()
    assert t.call_count == 3
    assert (t.was_limited, t.limit_reason) == (True, "max_calls")
    assert t.label == "from-config"
    assert t.settings["max_repr"] == 50
    assert t.cache_path is None
    assert not Path(".tracepatch").exists()


def test_invalid_config_warns_once_and_keeps_the_valid_keys():
    path = Path("tracepatch.toml").resolve()
    path.write_text('max_depth = "x"\nmax_calls = 2\ncache = false\n')
    with pytest.warns(TracepatchWarning) as caught:
        with trace() as t:
            f1(), f1(), f1()
        with trace() as t2:
            f1()
    assert [str(w.message) for w in caught] == [
        f"tracepatch: config file {path} has invalid settings: max_depth: expected an "
        f"integer from 1 to 1000000, got str 'x'; using max_depth=30 instead"]
    assert caught[0].filename == __file__
    assert t.call_count == 2 and t.settings["max_depth"] == 30
    assert t2.call_count == 1


def test_broken_toml_at_trace_time_warns_and_uses_defaults():
    path = Path("tracepatch.toml").resolve()
    path.write_text("max_calls = [\n")
    with pytest.warns(TracepatchWarning) as caught:
        with trace(cache=False) as t:
            f1()
    assert str(caught[0].message).startswith(
        f"tracepatch: ignoring config file {path}: invalid TOML: ")
    assert t.settings["max_calls"] == 10000


def test_config_shows_effective_settings_and_sources():
    Path("tracepatch.toml").write_text("max_calls = 50\n")
    env = {"TRACEPATCH_MAX_DEPTH": "7"}
    r = run_python(["-m", "tracepatch", "config"], env=child_env(**env))
    assert r.returncode == 0
    lines = [" ".join(line.split()) for line in r.stdout.splitlines()]
    assert lines[0] == f"Config file: {Path('tracepatch.toml').resolve()}"
    assert lines[1] == "Tracing: enabled"
    assert "max_calls = 50 (config)" in lines
    assert "max_depth = 7 (env)" in lines
    assert "max_repr = 120 (default)" in lines
    assert 'tree_style = "unicode" (default)' in lines

    r = run_python(["-m", "tracepatch", "config", "--json"], env=child_env(**env))
    data = json.loads(r.stdout)
    assert data["settings"]["max_calls"] == 50 and data["sources"]["max_calls"] == "config"
    assert data["settings"]["max_depth"] == 7 and data["sources"]["max_depth"] == "env"
    assert data["file"] == str(Path("tracepatch.toml").resolve())
    assert data["enabled"] is True


def test_init_writes_a_valid_starter_and_refuses_to_overwrite():
    path = Path("tracepatch.toml").resolve()
    r = run_python(["-m", "tracepatch", "init"])
    assert (r.returncode, r.stdout) == (0, f"Wrote {path}\n")
    assert path.read_text() == _config.STARTER_CONFIG
    assert validate().stdout == f"OK: {path}\n"

    path.write_text("max_calls = 1\n")
    r = run_python(["-m", "tracepatch", "init"])
    assert r.returncode == 1
    assert r.stderr == f"tracepatch init: {path} already exists; use --force to overwrite it\n"
    assert path.read_text() == "max_calls = 1\n"

    r = run_python(["-m", "tracepatch", "init", "--force"])
    assert r.returncode == 0
    assert path.read_text() == _config.STARTER_CONFIG


def test_starter_config_values_are_the_defaults():
    if _config._toml is None:
        pytest.skip("no TOML parser (Python 3.10 without tomli)")
    settings, problems = _config.validate_table(_config._toml.loads(_config.STARTER_CONFIG))
    assert problems == []
    assert settings == {k: v for k, v in _config.DEFAULTS.items() if k in settings}
    # Every file setting that has a default is written out, the others as comments.
    assert sorted(settings) == ["auto_save", "cache", "color", "compact_json", "ignore_modules",
                                "include_modules", "keep", "keep_slower_than", "line_samples",
                                "lines", "max_calls", "max_depth", "max_repr",
                                "max_time", "repr_notes", "show_args", "show_asyncio",
                                "show_return", "stream_after", "stream_memory", "track_memory",
                                "tree_style"]
    assert "# cache_dir = " in _config.STARTER_CONFIG
    assert "# max_repr_args = 80" in _config.STARTER_CONFIG
    assert "# default_label = " in _config.STARTER_CONFIG
