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


# ---- the file workflow: tph logs / clean / view / explain on .tracepatch ----

def saved(tmp_path, name, label="signup", calls=3, limited=False, age_s=0):
    """A trace file as the package saves it, under tmp_path/.tracepatch/traces."""
    import os
    import time
    d = tmp_path / ".tracepatch" / "traces"
    d.mkdir(parents=True, exist_ok=True)
    doc = json.loads(SMALL.read_text())
    doc.update(label=label, call_count=calls, was_limited=limited,
               timestamp=f"2026-02-19T14:30:{len(list(d.iterdir())):02d}")
    path = d / name
    path.write_text(json.dumps(doc))
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def in_dir(env, tmp_path, *args):
    return tph(*args, env=env, cwd=tmp_path)


def test_logs_lists_local_files_without_a_daemon(env, tmp_path):
    a = saved(tmp_path, "signup_1.json", age_s=60)
    b = saved(tmp_path, "checkout_1.json", label="checkout", calls=9, limited=True)
    r = in_dir(env, tmp_path, "logs")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (
        "trace files in ./.tracepatch/traces/ (2):\n"
        "  file  2026-02-19T14:30:01  checkout  9 calls  LIMITED\n"
        "        ./.tracepatch/traces/checkout_1.json\n"
        "  file  2026-02-19T14:30:00  signup  3 calls\n"
        "        ./.tracepatch/traces/signup_1.json\n")
    assert ok(in_dir(env, tmp_path, "logs", "--limited")).count("  file  ") == 1
    assert "signup" not in ok(in_dir(env, tmp_path, "logs", "--label", "check*"))
    doc = json.loads(ok(in_dir(env, tmp_path, "--json", "logs")))
    assert doc["traces"] == [] and [f["file"] for f in doc["files"]] == [
        f"./.tracepatch/traces/{b.name}", f"./.tracepatch/traces/{a.name}"]
    # --cache-dir: the parent of .tracepatch/, from anywhere.
    out = ok(tph("logs", "--cache-dir", tmp_path, env=env))
    assert f"trace files in {tmp_path}/.tracepatch/traces/ (2):" in out


def test_logs_with_neither_daemon_nor_files_says_so(env, tmp_path):
    r = in_dir(env, tmp_path, "logs")
    sock = tmp_path / "run" / "tracepatch" / "tphd.sock"
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == f"no traces: no tphd at {sock}, and no trace files in ./.tracepatch/traces/\n"


def test_clean_traces_and_all_work_on_local_files(env, tmp_path):
    saved(tmp_path, "old.json", age_s=8 * 86400)
    saved(tmp_path, "new.json")
    assert ok(in_dir(env, tmp_path, "clean", "--older-than", "7d")) == \
        "removed 1 trace file from ./.tracepatch/traces/\n"
    assert [p.name for p in (tmp_path / ".tracepatch" / "traces").glob("*.json")] == ["new.json"]
    assert ok(in_dir(env, tmp_path, "clean", "--traces")) == \
        "removed 1 trace file from ./.tracepatch/traces/\n"
    assert (tmp_path / ".tracepatch" / "traces").is_dir()
    assert ok(in_dir(env, tmp_path, "clean", "--all")) == "removed ./.tracepatch/\n"
    assert not (tmp_path / ".tracepatch").exists()
    assert ok(in_dir(env, tmp_path, "clean", "--all")) == ""


def test_view_and_explain_a_file(env, tmp_path):
    out = ok(tph("view", SMALL, env=env))
    assert out.splitlines()[:9] == [
        "=" * 70, "TRACE METADATA", "=" * 70, f"File: {SMALL}",
        f"Timestamp: {json.loads(SMALL.read_text())['timestamp']}",
        "Label: debug-request", "Trace ID: 3f2a9c1b5d7e4f60a1b2c3d4e5f60718",
        "Call count: 3", "Was limited: False"]
    assert out.endswith("Root calls: 1\n")
    full = ok(tph("view", "--json", SMALL, env=env))
    assert json.loads(full.split("RAW JSON\n" + "=" * 70 + "\n", 1)[1]) == \
        json.loads(SMALL.read_text())
    text = ok(tph("explain", SMALL, env=env))
    assert text.startswith("The program started by calling __main__.handle_request(uid=42).\n"
                           "In total, 3 function call(s) were recorded across 1 module(s).\n")
    r = tph("view", tmp_path / "missing.json", env=env)
    assert r.returncode == 1 and "missing.json" in r.stderr


def test_aliases_and_init_yes(env, tmp_path):
    assert ok(in_dir(env, tmp_path, "disable")).startswith("nothing to disable")
    assert ok(in_dir(env, tmp_path, "init", "--yes")) == f"Wrote {tmp_path}/tracepatch.toml\n"
    (tmp_path / "tracepatch.toml").unlink()
    assert ok(in_dir(env, tmp_path, "init", "-y")) == f"Wrote {tmp_path}/tracepatch.toml\n"
    r = in_dir(env, tmp_path, "setup")  # no [[test.files]] in the starter file
    assert r.returncode == 1 and "has no [[test.files]]" in r.stderr


def test_run_without_arguments_runs_the_test_setup(env, tmp_path):
    (tmp_path / "app.py").write_text(
        "def load(uid, verbose=False):\n    return {'id': uid}\n"
        "def main():\n    return load(1)\n")
    (tmp_path / "tracepatch.toml").write_text(
        '[[test.files]]\npath = "app.py"\nfunctions = ["main", "load"]\n\n'
        '[[test.inputs]]\nfunction = "load"\nargs = [42]\nkwargs = {verbose = true}\n')
    r = in_dir(env, tmp_path, "run")
    assert (r.returncode, r.stderr) == (0, "")
    assert "└── app.main() -> {'id': 1}" in r.stdout
    assert "    └── app.load(uid=1, verbose=False) -> {'id': 1}" in r.stdout
    assert "└── app.load(uid=42, verbose=True) -> {'id': 42}" in r.stdout
    assert "Trace: app.load" in r.stdout
    assert len(list((tmp_path / ".tracepatch" / "traces").glob("*.json"))) == 2
    assert ok(in_dir(env, tmp_path, "setup")) .count("Trace: ") == 2


def test_run_without_config_fails(env, tmp_path):
    r = in_dir(env, tmp_path, "run")
    assert r.returncode == 1
    assert r.stderr.startswith("tph run: no tracepatch configuration file found")
