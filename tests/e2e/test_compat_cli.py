"""tph with tracepatch 1.0.0's flags and defaults (docs/cli-guide.md), on
trace files: exit codes and output."""

import json
import xml.dom.minidom

import pytest

from tphlib import DATA, base_env, needs_tph, tph

pytestmark = needs_tph

SMALL = DATA / "small.json"
LOOP = DATA / "loop.json"


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path)


def ok(r):
    assert (r.returncode, r.stderr) == (0, "")
    return r.stdout


def test_export_without_format_writes_csv_as_1_0_0(env):
    out = ok(tph("export", SMALL, env=env))
    assert out.splitlines()[0].startswith("module,function,")
    assert out == ok(tph("export", SMALL, "--format", "csv", env=env))


def test_export_flamegraph_is_an_svg(env, tmp_path):
    svg = ok(tph("export", SMALL, "--format", "flamegraph", env=env))
    xml.dom.minidom.parseString(svg)
    assert "<title>__main__.handle_request (50.0\u00b5s, 100.00%)</title>" in svg
    assert "<title>__main__.load_user (10.0\u00b5s, 20.00%)</title>" in svg
    out = tmp_path / "profile.svg"
    assert ok(tph("export", SMALL, "-o", out, env=env)) == ""
    assert out.read_text() == svg


def test_tree_style_ansi_is_unicode_in_colour(env):
    assert ok(tph("tree", SMALL, "--style", "ansi", env=env)) == \
        ok(tph("tree", SMALL, "--style", "unicode", "--color", env=env))
    assert "\x1b[" in ok(tph("tree", SMALL, "--style", "ansi", env=env))


def test_tree_format_json_is_json_and_output_writes_a_file(env, tmp_path):
    assert ok(tph("tree", SMALL, "--format", "json", env=env)) == \
        ok(tph("tree", SMALL, "--json", env=env))
    assert ok(tph("tree", SMALL, "--format", "text", env=env)) == ok(tph("tree", SMALL, env=env))
    out = tmp_path / "tree.txt"
    assert ok(tph("tree", SMALL, "-o", out, env=env)) == ""
    assert out.read_text() == ok(tph("tree", SMALL, env=env))
    out = tmp_path / "tree.json"
    assert ok(tph("tree", SMALL, "--format", "json", "--output", out, env=env)) == ""
    assert json.loads(out.read_text())["label"] == "debug-request"


def test_tree_format_html_writes_the_report(env, tmp_path):
    out = tmp_path / "report.html"
    r = tph("tree", SMALL, "--format", "html", "-o", out, env=env)
    if r.returncode == 0:
        assert out.read_text().startswith("<!DOCTYPE html>\n")
    else:
        assert r.returncode == 1 and "without the report UI" in r.stderr


def test_tree_fold_threshold(env):
    folded = ok(tph("tree", LOOP, "--no-stats", env=env))
    assert "app.transform(...)  [×3]" in folded
    # Runs of 3 fold at threshold 3, not at 4.
    assert "[×3]" in ok(tph("tree", LOOP, "--no-stats", "--fold-threshold", "3", env=env))
    unfolded = ok(tph("tree", LOOP, "--no-stats", "--fold-threshold", "4", env=env))
    assert "[×3]" not in unfolded and unfolded.count("app.transform(") == 3


def test_tree_collapse_summarises_below_the_depth(env):
    out = ok(tph("tree", SMALL, "--no-stats", "--collapse", "0", env=env))
    assert out.splitlines() == [
        "└── __main__.handle_request(uid=42) -> {'id': 42, 'name': 'Alice'}  [50.0\u00b5s]",
        "    └── [2 nested calls...]"]


@pytest.mark.parametrize("args,message", [
    (["--style", "fancy"], "invalid --style 'fancy' (unicode, ascii or ansi)"),
    (["--format", "xml"], "invalid --format 'xml' (text, json or html)"),
    (["--fold-threshold", "1"], "invalid --fold-threshold '1' (a number from 2)"),
    (["--collapse", "x"], "invalid --collapse 'x' (expected a depth)"),
])
def test_tree_bad_compat_options_are_usage_errors(env, args, message):
    r = tph("tree", SMALL, *args, env=env)
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == f"tph: {message}"
