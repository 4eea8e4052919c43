"""%load_ext tracepatch and the %tracepatch / %%tracepatch magics, in
IPython's own InteractiveShell."""

from __future__ import annotations

import html
import re

import pytest

pytest.importorskip("IPython")
from IPython.core.error import UsageError  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

import tracepatch  # noqa: E402
from tracepatch._ipython import parse_options  # noqa: E402

SETUP = '''
def leaf(x):
    return x + 1

def branch(n):
    total = 0
    for i in range(n):
        total += leaf(i)
    return total
'''


@pytest.fixture(scope="module")
def shell():
    sh = InteractiveShell.instance()
    sh.run_cell("%load_ext tracepatch", store_history=False)
    sh.run_cell(SETUP, store_history=False)
    yield sh
    InteractiveShell.clear_instance()


def displayed(captured):
    assert len(captured.outputs) == 1
    return captured.outputs[0].data


def test_load_ext_registers_line_and_cell_magics(shell):
    magics = shell.magics_manager.magics
    assert "tracepatch" in magics["line"] and "tracepatch" in magics["cell"]


def test_cell_magic_runs_the_cell_in_the_user_namespace_and_displays_the_trace(shell):
    with capture_output() as cap:
        shell.run_cell("%%tracepatch --label cell-test --var t\nresult = branch(3)\n")
    assert shell.user_ns["result"] == 6
    t = shell.user_ns["t"]
    assert t.label == "cell-test"
    assert sorted(n.args for r in t.roots for n in r.walk() if n.name == "leaf") == \
        ["x=0", "x=1", "x=2"]
    # The cell's code is the one root: nothing of IPython's is recorded.
    assert [r.full_name for r in t.roots] == ["__main__.<module>"]
    data = displayed(cap)
    assert data["text/plain"] == t.tree()
    assert "branch(n=3) -> 6" in data["text/plain"]


def test_notebook_rendering_is_the_inline_html_report_without_external_urls(shell):
    with capture_output() as cap:
        shell.run_cell("%%tracepatch --var t\nbranch(2)\n")
    page = displayed(cap)["text/html"]
    m = re.fullmatch(r'<iframe title="[^"]*" sandbox="allow-scripts" style="[^"]*" '
                     r'srcdoc="([^"]*)"></iframe>', page)
    assert m is not None
    inner = html.unescape(m.group(1))
    assert inner == shell.user_ns["t"].to_html()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", inner)
    assert "http://" not in inner and "https://" not in inner


def test_line_magic_traces_one_statement_with_options(shell):
    with capture_output() as cap:
        shell.run_cell("%tracepatch --max-calls 2 --var t value = branch(5)")
    t = shell.user_ns["t"]
    assert shell.user_ns["value"] == 15
    assert t.call_count == 2 and t.was_limited
    assert "text/plain" in displayed(cap)


def test_exception_in_the_cell_is_shown_and_the_trace_still_displayed(shell):
    with capture_output() as cap:
        shell.run_cell("%%tracepatch --var t\nleaf(1)\nraise KeyError('gone')\n")
    assert "KeyError" in cap.stdout + cap.stderr
    t = shell.user_ns["t"]
    assert any(n.name == "leaf" for r in t.roots for n in r.walk())
    assert "text/plain" in displayed(cap)


def test_unknown_option_is_a_usage_error(shell):
    with pytest.raises(UsageError, match="unknown option --nope"):
        shell.run_line_magic("tracepatch", "--nope 1")
    with pytest.raises(UsageError, match="--max-calls: not a number"):
        shell.run_cell_magic("tracepatch", "--max-calls many", "pass\n")


def test_parse_options_keeps_the_statement_verbatim():
    assert parse_options('--label "a b" --ignore os --ignore re --threads --no-cache f("--x")') \
        == ({"label": "a b", "ignore_modules": ["os", "re"], "threads": True, "cache": False},
            'f("--x")')
    assert parse_options("--max-depth 3 --max-time 1.5") == (
        {"max_depth": 3, "max_time": 1.5}, "")


def test_load_ipython_extension_is_the_package_hook():
    assert callable(tracepatch.load_ipython_extension)
