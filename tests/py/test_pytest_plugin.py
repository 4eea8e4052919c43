"""tracepatch.pytest_plugin, run with pytester (pytest's own fixture for
testing plugins) in a fresh pytest session per test."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "tracepatch.pytest_plugin")

APP = '''
def leaf(x):
    return x + 1

def branch(n):
    out = []
    for i in range(n):
        out.append(leaf(i))
    return out

def deep(n):
    return deep(n - 1) if n else 0
'''


@pytest.fixture
def app(pytester):
    pytester.makepyfile(app=APP)
    pytester.syspathinsert()
    return pytester


def run(pytester, *args):
    return pytester.runpytest_inprocess(*PLUGIN, "-p", "no:cacheprovider", *args)


def test_fixture_records_the_test_and_helpers_pass(app):
    app.makepyfile(test_a='''
import app

def test_it(tracepatch):
    assert app.branch(3) == [1, 2, 3]
    tracepatch.assert_called("app.branch")
    tracepatch.assert_called("app.*")
    tracepatch.assert_not_called("app.deep")
    tracepatch.assert_called_once("app.branch")
    tracepatch.assert_called_n_times("app.leaf", 3)
    tracepatch.assert_max_calls(tracepatch.call_count)
    tracepatch.assert_max_depth(2)
    assert [r.full_name for r in tracepatch.roots] == ["test_a.test_it"]
    tracepatch.assert_under_ms("app.*", 10_000)
    assert not tracepatch.was_limited
    assert "app.leaf" in tracepatch.tree()
''')
    result = run(app)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("call, message", [
    ('assert_called("app.deep")', "Expected a call matching 'app.deep', but none found"),
    ('assert_not_called("app.l*")',
     "Expected no calls matching 'app.l*', but found: app.leaf"),
    ('assert_called_once("app.leaf")',
     "Expected exactly 1 call matching 'app.leaf', but found 2"),
    ('assert_called_n_times("app.leaf", 3)',
     "Expected exactly 3 calls matching 'app.leaf', but found 2"),
    ('assert_max_depth(1)', "Expected max depth 1, but reached 2"),
    ('assert_under_ms("app.branch", -1)', "app.branch took *ms (total), exceeding limit of -1ms"),
])
def test_each_helper_fails_with_1_0_0s_message(app, call, message):
    app.makepyfile(test_a=f'''
import app

def test_it(tracepatch):
    app.branch(2)
    tracepatch.{call}
''')
    result = run(app)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_assert_max_calls_fails_above_the_limit(app):
    app.makepyfile(test_a='''
import app

def test_it(tracepatch):
    app.branch(4)
    tracepatch.assert_max_calls(5)
''')
    result = run(app)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Expected at most 5 calls, but got 6*"])


def test_reading_the_trace_ends_the_recording(app):
    app.makepyfile(test_a='''
import app

def test_it(tracepatch):
    app.leaf(1)
    assert tracepatch.call_count == 2  # test_it and leaf
    app.leaf(2)
    assert tracepatch.call_count == 2
    tracepatch.assert_called_once("app.leaf")
''')
    run(app).assert_outcomes(passed=1)


def test_trace_is_labelled_with_the_node_id_and_leaves_pytest_out(app):
    app.makepyfile(test_a='''
import app

def test_it(tracepatch):
    app.leaf(1)
    assert tracepatch.trace.label == "test_a.py::test_it"
    assert [r.full_name for r in tracepatch.roots] == ["test_a.test_it"]
''')
    run(app).assert_outcomes(passed=1)


def test_marker_passes_options_and_applies_the_fixture(app):
    app.makepyfile(test_a='''
import pytest
import app

@pytest.mark.tracepatch(max_calls=3)
def test_limited(request):
    app.branch(10)
    t = request.getfixturevalue("tracepatch")
    assert t.call_count == 3
    assert t.was_limited

def test_untraced(request):
    assert "tracepatch" not in request.fixturenames
''')
    run(app).assert_outcomes(passed=2)


def test_flag_traces_every_test(app):
    app.makepyfile(test_a='''
def test_one(request):
    assert "tracepatch" in request.fixturenames
''')
    run(app, "--tracepatch").assert_outcomes(passed=1)
    run(app).assert_outcomes(failed=1)


def test_fail_on_limited_errors_a_limited_test(app):
    app.makepyfile(test_a='''
import pytest
import app

@pytest.mark.tracepatch(max_calls=2)
def test_limited(tracepatch):
    app.branch(5)

def test_fine(tracepatch):
    app.leaf(1)
''')
    result = run(app, "--tracepatch-fail-on-limited")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*Trace was limited for test_a.py::test_limited (max_calls)*"])
    run(app).assert_outcomes(passed=2)


def test_save_writes_every_trace_to_the_output_dir(app):
    app.makepyfile(test_a='''
import app

def test_ok(tracepatch):
    app.leaf(1)

def test_bad(tracepatch):
    app.leaf(2)
    assert False
''')
    out = app.path / "out"
    result = run(app, "--tracepatch-save", "--tracepatch-output", str(out))
    result.assert_outcomes(passed=1, failed=1)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["test_a.py__test_bad.json", "test_a.py__test_ok.json"]
    data = json.loads((out / "test_a.py__test_ok.json").read_text())
    assert data["label"] == "test_a.py::test_ok"
    assert [n["name"] for n in data["trace"]] == ["test_ok"]
    assert data["trace"][0]["children"][0]["name"] == "leaf"


def test_save_on_failure_writes_only_failed_tests_to_the_default_dir(app):
    app.makepyfile(test_a='''
import app

def test_ok(tracepatch):
    app.leaf(1)

def test_bad(tracepatch):
    app.leaf(2)
    assert False
''')
    result = run(app, "--tracepatch-save-on-failure")
    result.assert_outcomes(passed=1, failed=1)
    saved = app.path / ".tracepatch" / "traces"
    # (the other files there are trace()'s own cache, saved without a tphd)
    assert sorted(p.name for p in saved.iterdir()
                  if p.name.startswith("test_a.py__")) == ["test_a.py__test_bad.json"]
    result.stdout.fnmatch_lines(["trace saved to: .tracepatch/traces/test_a.py__test_bad.json"])


def test_failing_test_report_shows_the_tail_of_its_call_tree(app):
    app.makepyfile(test_a='''
import app

def test_bad(tracepatch):
    app.deep(25)
    app.branch(1)
    app.deep(20)
    raise ValueError("the end")
''')
    result = run(app)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    section = out[out.index("- tracepatch -"):].split("\n=====")[0]
    lines = section.splitlines()[1:]
    assert lines[0].startswith("... ") and lines[0].endswith(" lines above not shown")
    assert len(lines) == 1 + 40
    assert "app.deep(n=0) -> 0" in lines[-1]  # where the test was last
    assert any("app.branch(n=1)" in line for line in lines)
    assert not any("app.deep(n=25)" in line for line in lines)  # the start is cut
    assert "Trace: test_a.py::test_bad" not in section
    assert "report:" not in section  # no tphd stored it


def test_short_failing_trace_is_shown_whole(app):
    app.makepyfile(test_a='''
import app

def test_bad(tracepatch):
    app.leaf(1)
    assert False
''')
    result = run(app)
    result.stdout.fnmatch_lines(["*- tracepatch -*", "Trace: test_a.py::test_bad",
                                 "*app.leaf(x=1) -> 2*"])


def test_passing_test_report_has_no_trace_section(app):
    app.makepyfile(test_a='''
import app

def test_ok(tracepatch):
    app.leaf(1)
''')
    result = run(app, "-rA")
    result.assert_outcomes(passed=1)
    assert "- tracepatch -" not in result.stdout.str()


def test_async_test_is_recorded_through_pytest_asyncio(app):
    pytest.importorskip("pytest_asyncio")
    app.makepyfile(test_a='''
import asyncio
import pytest
import app

async def fetch(n):
    await asyncio.sleep(0)
    return app.leaf(n)

@pytest.mark.asyncio
async def test_it(tracepatch):
    assert await fetch(1) == 2
    tracepatch.assert_called_once("app.leaf")
    tracepatch.assert_called("test_a.fetch")
''')
    run(app, "-p", "asyncio").assert_outcomes(passed=1)


def test_entry_point_is_declared_for_installs():
    from pathlib import Path

    try:
        import tomllib
    except ImportError:  # 3.10
        import tomli as tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"tracepatch": "tracepatch.pytest_plugin"}


def test_1_0_0s_further_helpers_pass(app):
    app.makepyfile(test_a='''
import app
from tracepatch.pytest_plugin import TraceResult, _TraceResult

def test_it(tracepatch):
    app.leaf(1)
    app.branch(2)
    app.deep(1)
    assert _TraceResult is TraceResult and isinstance(tracepatch, TraceResult)
    tracepatch.assert_call_order(["app.leaf", "app.branch", "app.deep"])
    tracepatch.assert_self_time_under_ms("app.*", 10_000)
''')
    run(app).assert_outcomes(passed=1)


@pytest.mark.parametrize("body, message", [
    ('app.leaf(1)\n    app.branch(1)\n    tracepatch.assert_call_order(["app.branch", "app.leaf"])',
     "Expected 'app.leaf' to be called after 'app.branch', but it appeared earlier or at the "
     "same position"),
    ('app.leaf(1)\n    tracepatch.assert_call_order(["app.leaf", "app.deep"])',
     "Expected a call matching 'app.deep', but none found"),
    ('app.leaf(1)\n    tracepatch.assert_self_time_under_ms("app.leaf", -1)',
     "app.leaf self-time was *ms, exceeding limit of -1ms"),
    ('try:\n        app.leaf(None)\n    except TypeError:\n        pass\n'
     '    tracepatch.assert_no_exceptions()',
     "app.leaf raised an exception: TypeError: unsupported operand type(s) for +: "
     "'NoneType' and 'int'"),
])
def test_1_0_0s_further_helpers_fail_with_its_messages(app, body, message):
    app.makepyfile(test_a=f'''
import app

def test_it(tracepatch):
    {body}
''')
    result = run(app)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_flag_traces_methods_and_leaves_unittest_cases_working(app):
    from conftest import qualname

    root = "test_a." + qualname("TestThing.test_method")
    app.makepyfile(test_a='''
import unittest
import app

class TestThing:
    def test_method(self, tracepatch):
        app.leaf(3)
        tracepatch.assert_called_once("app.leaf")
        assert [r.full_name for r in tracepatch.roots] == [ROOT]

class Legacy(unittest.TestCase):
    def test_case(self):
        self.assertEqual(app.leaf(1), 2)
'''.replace("ROOT", repr(root)))
    run(app, "--tracepatch").assert_outcomes(passed=2)
