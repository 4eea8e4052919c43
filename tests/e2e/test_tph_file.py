"""tph on tracepatch JSON files, with no daemon anywhere: tree (every flag),
stats, diff, export, --json, and the errors for broken files."""

import csv
import io
import json
import os
import re
import sys

import pytest

from tphlib import BUILD, DATA, NO_DAEMON_HINT, base_env, needs_tph, tph

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
from report_pack import report_data  # noqa: E402

pytestmark = needs_tph

SMALL = DATA / "small.json"
SMALL_B = DATA / "small_b.json"
LOOP = DATA / "loop.json"

RULE = "─" * 72
SMALL_TREE = f"""\
Trace: debug-request
{RULE}
Recorded:     3 calls across 1 modules    | Duration: 0.05ms
Max depth:    1 levels                    | Unique functions: 3
Slowest:      __main__.handle_request [0.05ms]| Most called: __main__.handle_request [×1]
{RULE}

└── __main__.handle_request(uid=42) -> {{'id': 42, 'name': 'Alice'}}  [0.05ms]
    ├── __main__.load_user(uid=42) -> {{'id': 42, 'name': 'Alice'}}  [0.01ms]
    └── __main__.validate(user={{'id': 42, ...}}) -> True  [0.01ms]
"""

LOOP_BODY = """\
└── app.main() !! ValueError: bad value  [2.00ms]
    ├── app.transform(...)  [×3]  [600\u00b5s total, avg 200\u00b5s, min 100\u00b5s, max 300\u00b5s]
    └── app.rules.Checker.check(self=<Checker>, value=6) !! ValueError: bad value  [500\u00b5s]
        └── logging.log(msg='checking') -> None  [100\u00b5s]
(trace limited: max_calls; 6 calls recorded)
"""


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path)


def ok(r):
    assert (r.returncode, r.stderr) == (0, "")
    return r.stdout


# ---- tree ------------------------------------------------------------------------


def test_tree_file_is_tracepatch_output(env):
    # With --units ms, tracepatch 1.0.0's look byte for byte.
    assert ok(tph("tree", SMALL, "--units", "ms", env=env)) == SMALL_TREE


def test_tree_durations_have_three_significant_digits_by_default(env):
    out = ok(tph("tree", SMALL, env=env))
    assert "| Duration: 50.0\u00b5s" in out
    assert "-> True  [10.0\u00b5s]\n" in out
    assert out.replace("50.0\u00b5s", "0.05ms").replace("10.0\u00b5s", "0.01ms") == SMALL_TREE


def test_tree_units_must_be_auto_or_ms(env):
    r = tph("tree", SMALL, "--units", "us", env=env)
    assert (r.returncode, r.stdout) == (2, "")
    assert "invalid --units 'us' (auto or ms)" in r.stderr


def test_tree_reads_stdin(env):
    assert ok(tph("tree", "-", "--units", "ms", env=env, input=SMALL.read_text())) == SMALL_TREE


def test_tree_ascii_self_time_source(env):
    out = ok(tph("tree", SMALL, "--no-stats", "--style", "ascii", "--self-time", "--show-source",
                 env=env))
    assert out == (
        "`-- __main__.handle_request(uid=42) -> {'id': 42, 'name': 'Alice'}  "
        "[50.0us / self: 30.0us]  (app.py:10)\n"
        "    |-- __main__.load_user(uid=42) -> {'id': 42, 'name': 'Alice'}  "
        "[10.0us / self: 10.0us]  (app.py:3)\n"
        "    `-- __main__.validate(user={'id': 42, ...}) -> True  [10.0us / self: 10.0us]  "
        "(app.py:6)\n")


def test_tree_folds_and_shows_exceptions(env):
    out = ok(tph("tree", LOOP, env=env))
    assert out.startswith("Trace: batch-job\n")
    assert out.endswith("\n\n" + LOOP_BODY)
    assert ok(tph("tree", LOOP, "--no-stats", env=env)) == LOOP_BODY


def test_tree_no_fold_no_args(env):
    assert ok(tph("tree", LOOP, "--no-stats", "--no-fold", "--no-args", env=env)) == """\
└── app.main() !! ValueError: bad value  [2.00ms]
    ├── app.transform() -> 2  [100\u00b5s]
    ├── app.transform() -> 4  [200\u00b5s]
    ├── app.transform() -> 6  [300\u00b5s]
    └── app.rules.Checker.check() !! ValueError: bad value  [500\u00b5s]
        └── logging.log() -> None  [100\u00b5s]
(trace limited: max_calls; 6 calls recorded)
"""


def test_tree_no_return(env):
    out = ok(tph("tree", SMALL, "--no-stats", "--no-return", env=env))
    assert out == ("└── __main__.handle_request(uid=42)  [50.0\u00b5s]\n"
                   "    ├── __main__.load_user(uid=42)  [10.0\u00b5s]\n"
                   "    └── __main__.validate(user={'id': 42, ...})  [10.0\u00b5s]\n")


def test_tree_filters(env):
    out = ok(tph("tree", LOOP, "--no-stats", "--filter", "app.*", "--filter", "!app.rules*",
                 env=env))
    assert out == """\
└── app.main() !! ValueError: bad value  [2.00ms]
    └── app.transform(...)  [×3]  [600\u00b5s total, avg 200\u00b5s, min 100\u00b5s, max 300\u00b5s]
(trace limited: max_calls; 6 calls recorded)
"""


def test_tree_depth(env):
    out = ok(tph("tree", LOOP, "--no-stats", "--depth", "1", env=env))
    assert out == """\
└── app.main() !! ValueError: bad value  [2.00ms]
    └── [4 nested calls...]
(trace limited: max_calls; 6 calls recorded)
"""


def test_tree_color_only_when_asked(env):
    plain = ok(tph("tree", SMALL, env=env))
    assert "\x1b[" not in plain
    assert ok(tph("tree", SMALL, "--color=auto", env=env)) == plain  # stdout is a pipe
    assert ok(tph("tree", SMALL, "--color=never", env=env)) == plain
    colored = ok(tph("tree", SMALL, "--color", env=env))
    assert "\x1b[1m__main__.handle_request\x1b[0m" in colored
    assert ok(tph("tree", SMALL, "--color=always", env=env)) == colored


def run_on_tty(args, env):
    """Run tph with stdout on a pseudo-terminal; returns what it wrote."""
    import pty
    import subprocess

    from tphlib import TPH

    main, sub = pty.openpty()
    proc = subprocess.Popen([str(TPH), *map(str, args)], stdout=sub, stderr=subprocess.PIPE,
                            env=env)
    os.close(sub)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.wait(timeout=30) == 0
    return out.decode().replace("\r\n", "\n")


def test_tree_color_auto_on_a_terminal(env):
    colored = ok(tph("tree", SMALL, "--color", env=env))
    assert run_on_tty(["tree", SMALL, "--color=auto"], env) == colored
    assert run_on_tty(["tree", SMALL, "--units", "ms"], env) == SMALL_TREE  # never by default, even on a TTY


def test_tree_json_is_the_trace_document(env):
    out = ok(tph("tree", SMALL, "--json", env=env))
    assert out.count("\n") == 1  # compact, as tphd sends it
    doc = json.loads(out)
    assert doc["trace_id"] == "3f2a9c1b5d7e4f60a1b2c3d4e5f60718"
    assert doc["label"] == "debug-request"
    assert doc["call_count"] == 3
    assert [c["name"] for c in doc["trace"][0]["children"]] == ["load_user", "validate"]
    # Nothing to fold here, so it is the exported document.
    assert doc == json.loads(ok(tph("export", SMALL, "--format", "json", env=env)))
    assert ok(tph("--json", "tree", SMALL, env=env)) == out


def test_tree_json_is_folded_like_the_text_unless_no_fold(env):
    doc = json.loads(ok(tph("tree", LOOP, "--json", env=env)))
    kids = doc["trace"][0]["children"]
    assert [(c["name"], c.get("count")) for c in kids] == [("transform", 3),
                                                          ("Checker.check", None)]
    raw = json.loads(ok(tph("tree", LOOP, "--json", "--no-fold", env=env)))
    assert [c["name"] for c in raw["trace"][0]["children"]] == ["transform"] * 3 + [
        "Checker.check"]
    assert raw == json.loads(ok(tph("export", LOOP, "--format", "json", env=env)))


def test_exported_json_renders_the_same(env, tmp_path):
    out = tmp_path / "again.json"
    assert ok(tph("export", LOOP, "-o", out, env=env)) == ""
    assert ok(tph("tree", out, env=env)) == ok(tph("tree", LOOP, env=env))


# ---- stats, diff -------------------------------------------------------------------


def test_stats_file(env):
    out = ok(tph("stats", LOOP, env=env))
    assert out.endswith("""
Functions by total time (4):
  function                  calls      total       self        min        max        avg
  app.main                      1     2.00ms      900µs     2.00ms     2.00ms     2.00ms
  app.transform                 3      600µs      600µs      100µs      300µs      200µs
  app.rules.Checker.check       1      500µs      400µs      500µs      500µs      500µs
  logging.log                   1      100µs      100µs      100µs      100µs      100µs

Modules by calls (3):
  module      calls  functions       self   share
  app             4          2     1.50ms     67%
  app.rules       1          1      400µs     17%
  logging         1          1      100µs     17%
""")
    assert out.startswith("Trace: batch-job\n" + RULE + "\n")


def test_stats_json(env):
    out = ok(tph("stats", LOOP, "--json", env=env))
    assert out.count("\n") == 1
    stats = json.loads(out)
    assert {k: stats[k] for k in ["calls", "unique_functions", "modules", "max_depth",
                                  "exceptions", "duration_ms", "slowest", "most_called"]} == {
        "calls": 6, "unique_functions": 4, "modules": 3, "max_depth": 2, "exceptions": 2,
        "duration_ms": 2.0, "slowest": {"name": "main", "module": "app", "node": 0, "ms": 2.0},
        "most_called": {"name": "transform", "module": "app", "count": 3}}
    assert stats["functions"][1] == {
        "name": "transform", "module": "app", "file": "app.py",
        "lineno": 8, "count": 3, "total_ms": 0.6, "self_ms": 0.6, "min_ms": 0.1, "max_ms": 0.3,
        "exceptions": 0}
    assert [m["module"] for m in stats["by_module"]] == ["app", "app.rules", "logging"]
    assert stats["by_module"][0] == {"module": "app", "calls": 4, "functions": 2, "self_ms": 1.5}


DIFF = """\
Calls:     3 -> 5 (+2)
Duration:  50.0µs -> 5.00ms (+9900%)

Functions added (1):
  + __main__.audit

Call paths (4):
  + __main__.handle_request > __main__.load_user > __main__.audit  [×1, 100µs]
  ~ __main__.handle_request > __main__.validate  calls ×1 -> ×2, time 10.0µs -> 200µs (+1900%)
  ~ __main__.handle_request  time 50.0µs -> 5.00ms (+9900%)
  ~ __main__.handle_request > __main__.load_user  time 10.0µs -> 4.00ms (+39900%)

Summary: 4 call paths differ: 0 removed, 1 added, 1 in call count, 2 in time
"""


def test_diff_files(env):
    assert ok(tph("diff", SMALL, SMALL_B, env=env)) == DIFF


def test_diff_same_file_has_no_changes(env):
    out = ok(tph("diff", SMALL, SMALL, env=env))
    assert out.startswith("Calls:     3 -> 3 (+0)\n")
    assert "Call paths" not in out


def test_diff_json(env):
    d = json.loads(ok(tph("diff", SMALL, SMALL_B, "--json", env=env)))
    assert d["calls_a"] == 3 and d["calls_b"] == 5
    assert d["duration_a_ms"] == pytest.approx(0.05) and d["duration_b_ms"] == 5.0
    assert d["functions_added"] == ["__main__.audit"]
    assert d["functions_removed"] == []
    assert [(c["kind"], c["function"], c["count_a"], c["count_b"]) for c in d["changes"]] == [
        ("added", "__main__.audit", 0, 1),
        ("count", "__main__.validate", 1, 2),
        ("time", "__main__.handle_request", 1, 1),
        ("time", "__main__.load_user", 1, 1),
    ]
    assert d["changes"][3]["total_b_ms"] == 4.0


def test_diff_file_and_id_needs_the_daemon(env, tmp_path):
    r = tph("diff", SMALL, "3f2a9c1b", env=env)
    path = tmp_path / "run" / "tracepatch" / "tphd.sock"
    assert (r.returncode, r.stderr) == (1, f"tph: no tphd at {path} {NO_DAEMON_HINT}\n")


# ---- export ---------------------------------------------------------------------------


def test_export_csv(env):
    rows = list(csv.reader(io.StringIO(ok(tph("export", SMALL, "--format", "csv", env=env)))))
    assert rows[0][:8] == ["module", "function", "args", "return_value", "elapsed_ms", "depth",
                           "parent", "exception"]
    assert [r[1] for r in rows[1:]] == ["handle_request", "load_user", "validate"]
    assert rows[3][2] == "user={'id': 42, ...}"


def test_export_folded(env):
    assert ok(tph("export", LOOP, "--format", "folded", env=env)) == (
        "app.main 900\n"
        "app.main;app.rules.Checker.check 400\n"
        "app.main;app.rules.Checker.check;logging.log 100\n"
        "app.main;app.transform 600\n")


def test_export_chrome(env):
    doc = json.loads(ok(tph("export", SMALL, "--format", "chrome", env=env)))
    events = [(e["cat"], e["name"], e["ts"], e["dur"]) for e in doc["traceEvents"] if e["ph"] == "X"]
    assert events == [("__main__", "handle_request", 0, 50), ("__main__", "load_user", 10, 10),
                      ("__main__", "validate", 30, 10)]


def test_export_format_from_output_name(env, tmp_path):
    out = tmp_path / "t.folded"
    assert ok(tph("export", SMALL, "-o", out, env=env)) == ""
    assert out.read_text() == ("__main__.handle_request 30\n"
                               "__main__.handle_request;__main__.load_user 10\n"
                               "__main__.handle_request;__main__.validate 10\n")


def test_export_html_of_file(env, tmp_path):
    """With the report UI linked in (web/), tph writes the self-contained
    report itself; without it, it says that only tphd can."""
    out = tmp_path / "report.html"
    r = tph("export", SMALL, "-o", out, env=env)
    if r.returncode == 0:
        html = out.read_text()
        assert html.startswith("<!DOCTYPE html>\n")
        assert '<script type="application/json" id="tp-data">' in html
        assert "3f2a9c1b5d7e4f60a1b2c3d4e5f60718" in html and "load_user" in html
        assert "<script src=" not in html  # nothing fetched: everything is inlined
    else:
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == (f"tph: {SMALL}: this tph was built without the report UI, so only "
                            f"tphd makes the HTML report: `tph import {SMALL}`, then "
                            "`tph export ID --format html`\n")
        assert not out.exists()


@pytest.mark.skipif(not (BUILD / "web" / "libtpweb.a").exists(),
                    reason="built without the report UI (web/)")
def test_export_html_of_file_is_the_ui_with_the_trace_inlined(env):
    """A build with web/ links it into tph: the report holds the trace's data
    as JSON, the UI's script and style inline, and nothing from elsewhere."""
    r = tph("export", SMALL, "--format", "html", env=env)
    assert (r.returncode, r.stderr) == (0, "")
    html = r.stdout
    assert html.startswith("<!DOCTYPE html>\n")
    assert "<title>tracepatch: debug-request</title>" in html
    data = html.split('<script type="application/json" id="tp-data">', 1)[1]
    data, ui = data.split("</script>", 1)
    ui = ui.split("</script>", 2)[2]  # after the packed tree and the groups' calls
    doc, roots = report_data(html)
    assert doc["trace"]["id"] == "3f2a9c1b5d7e4f60a1b2c3d4e5f60718"
    assert doc["trace"]["label"] == "debug-request"
    root = roots[0]
    assert (root["module"], root["name"], root["args"], root["ret"]) == \
        ("__main__", "handle_request", "uid=42", "{'id': 42, 'name': 'Alice'}")
    assert [k["name"] for k in root["kids"]] == ["load_user", "validate"]
    # The UI: the page's skeleton, its stylesheet and its script, inlined.
    assert '<main id="app"' in html and "<style>" in html
    assert ui.lstrip().startswith("<script>") and "function" in ui
    assert ui.endswith("</script>\n</body>\n</html>\n")
    # Nothing is fetched: no external URL, no src= at all, only data: links.
    assert re.findall(r"https?://", html) == []
    assert re.findall(r"\bsrc=", html) == []
    assert re.findall(r'href="([^"]*)"', html) == ["data:,", "/"]
    assert "default-src 'none'" in html  # the CSP allows only the inlined code


# ---- broken files ---------------------------------------------------------------------


@pytest.mark.parametrize("cmd", [["tree"], ["stats"], ["export"], ["diff", str(SMALL)],
                                 ["import"]])
def test_corrupt_file_names_line_and_column(env, cmd):
    r = tph(*cmd, DATA / "corrupt.json", env=env)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"tph: {DATA / 'corrupt.json'}: line 3 column 16: ':' expected near '\"oops\"'\n"


def test_not_a_trace(env):
    r = tph("tree", DATA / "not_a_trace.json", env=env)
    assert (r.returncode, r.stderr) == (1, f"tph: {DATA / 'not_a_trace.json'}: 'trace' must be an array\n")


def test_missing_file(env, tmp_path):
    r = tph("tree", tmp_path / "nope.json", env=env)
    assert (r.returncode, r.stderr) == (1, f"tph: {tmp_path / 'nope.json'}: No such file or directory\n")


def test_directory_is_not_a_trace(env, tmp_path):
    d = tmp_path / "traces.json"
    d.mkdir()
    r = tph("stats", d, env=env)
    assert (r.returncode, r.stderr) == (1, f"tph: {d}: is a directory, not a trace file\n")


def test_existing_path_without_json_suffix_is_a_file(env, tmp_path):
    f = tmp_path / "trace.txt"
    f.write_text(SMALL.read_text())
    assert ok(tph("tree", f, "--units", "ms", env=env)) == SMALL_TREE


def test_empty_file(env, tmp_path):
    f = tmp_path / "empty.json"
    f.write_text("")
    r = tph("tree", f, env=env)
    assert r.returncode == 1
    assert r.stderr == f"tph: {f}: empty document\n"
