"""trace() keeps what its settings resolved to (a service opens a
trace(keep="slow") per request with the same keywords), and sees every
change of what they are read from all the same: the config file written,
created nearer, removed or given a [tool.tracepatch] table, a TRACEPATCH_*
variable set or unset, the working directory changed. Each test runs the
same trace() twice with a change in between, so the second one is the
cached case."""

import os
import warnings
from pathlib import Path

import pytest

from tracepatch import TracepatchWarning, trace
from tracepatch import _trace

KW = dict(keep="slow", keep_slower_than=1.0, daemon="off", cache=False)


def f1():
    return 1


def calls(n=5, **kw):
    """The call_count of a trace of n calls with KW (and kw)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with trace(**{**KW, **kw}) as t:
            for _ in range(n):
                f1()
    return t.call_count


def test_a_config_file_written_between_two_traces_is_seen():
    Path("tracepatch.toml").write_text("max_calls = 3\n")
    assert calls() == 3
    Path("tracepatch.toml").write_text("max_calls = 2  # another size\n")
    assert calls() == 2


def test_a_config_file_created_removed_or_replaced_between_two_traces_is_seen(tmp_path):
    # The working directory is tmp_path/work (conftest); its parent's file
    # applies until a nearer one appears.
    (tmp_path / "tracepatch.toml").write_text("max_calls = 4\n")
    assert calls() == 4
    Path("tracepatch.toml").write_text("max_calls = 2\n")
    assert calls() == 2
    Path("tracepatch.toml").unlink()
    assert calls() == 4
    # Replaced by a file of the same size (a rename, as editors save).
    (tmp_path / "new.toml").write_text("max_calls = 3\n")
    os.replace(tmp_path / "new.toml", tmp_path / "tracepatch.toml")
    assert calls() == 3
    (tmp_path / "tracepatch.toml").unlink()
    assert calls() == 5


def test_a_pyproject_table_added_between_two_traces_is_seen():
    Path("pyproject.toml").write_text('[project]\nname = "x"\n')
    assert calls() == 5
    Path("pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.tracepatch]\nmax_calls = 2\n')
    assert calls() == 2


def test_an_environment_variable_set_between_two_traces_is_seen(monkeypatch):
    assert calls() == 5
    monkeypatch.setenv("TRACEPATCH_MAX_CALLS", "2")
    assert calls() == 2
    monkeypatch.setenv("TRACEPATCH_MAX_CALLS", "3")
    assert calls() == 3
    monkeypatch.delenv("TRACEPATCH_MAX_CALLS")
    assert calls() == 5


def test_tracepatch_enabled_set_between_two_traces_is_seen(monkeypatch):
    assert calls() == 5
    monkeypatch.setenv("TRACEPATCH_ENABLED", "0")
    with trace(**KW) as t:
        f1()
    assert (t.enabled, t.call_count) == (False, 0)
    monkeypatch.delenv("TRACEPATCH_ENABLED")
    assert calls() == 5


def test_the_working_directory_changed_between_two_traces_is_seen(tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    (other / "tracepatch.toml").write_text("max_calls = 2\n")
    assert calls() == 5
    monkeypatch.chdir(other)
    assert calls() == 2


def test_a_bad_environment_value_warns_at_every_trace(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_MAX_DEPTH", "deep")
    with pytest.warns(TracepatchWarning) as caught:
        for _ in range(2):
            with trace(**KW):
                f1()
    assert [str(w.message) for w in caught] == [
        "tracepatch: TRACEPATCH_MAX_DEPTH='deep' is not an integer from 1 to 1000000; "
        "using max_depth=30 instead"] * 2


def test_a_bad_tracepatch_enabled_warns_at_every_trace(monkeypatch):
    monkeypatch.setenv("TRACEPATCH_ENABLED", "maybe")
    with pytest.warns(TracepatchWarning) as caught:
        for _ in range(2):
            with trace(**KW):
                f1()
    assert len(caught) == 2


def test_the_same_keywords_of_another_type_are_checked_again():
    assert calls(max_depth=1) == 5
    with pytest.raises(TypeError, match=r"trace\(\): max_depth must be an integer"):
        trace(**KW, max_depth=True)  # True == 1, but a bool is not a depth
    assert calls(sample_traces=1.0) == 5
    with pytest.raises(TypeError, match=r"trace\(\): sample_traces must be a number"):
        trace(**KW, sample_traces="1.0")


def test_an_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError) as caught:
        trace(max_dept=3)
    # What Python itself says of a function of trace's signature (3.13 adds
    # "Did you mean 'max_depth'?" to both).
    with pytest.raises(TypeError) as own:
        _trace._keywords(None, max_dept=3)
    assert str(caught.value).startswith(
        "trace.__init__() got an unexpected keyword argument 'max_dept'")
    assert str(caught.value) == str(own.value).replace("_keywords()", "trace.__init__()")


def test_cached_settings_give_the_same_trace_settings_and_sources(monkeypatch):
    Path("tracepatch.toml").write_text('max_calls = 50\ndefault_label = "svc-{pid}"\n')
    monkeypatch.setenv("TRACEPATCH_MAX_DEPTH", "7")
    traces = []
    for _ in range(2):
        with trace(**KW) as t:
            f1()
        traces.append(t)
    first, second = traces
    assert second.settings == first.settings
    assert second._sources == first._sources
    assert (second.settings["max_calls"], second.settings["max_depth"]) == (50, 7)
    assert second.label == f"svc-{os.getpid()}"
    assert (first._sources["max_calls"], first._sources["max_depth"],
            first._sources["keep"]) == ("config", "env", "keyword")
