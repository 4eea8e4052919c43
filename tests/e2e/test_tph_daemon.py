"""tph against a real tphd on a temporary socket and database: traces come in
through `tph import` and through the wire protocol (as the extension sends
them, with chosen ids), then every command and its --json."""

import json
import os
import re
import time

import pytest

from tphlib import (
    DATA,
    Daemon,
    Uploader,
    VERSION,
    base_env,
    call,
    needs_tph,
    needs_tphd,
    tph,
)

pytestmark = [needs_tph, needs_tphd]

SMALL = DATA / "small.json"
SMALL_B = DATA / "small_b.json"
LOOP = DATA / "loop.json"
HEX32 = re.compile(r"^[0-9a-f]{32}$")

LIVE1 = "abcd" + "0" * 27 + "1"
LIVE2 = "abcd" + "0" * 27 + "2"


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path, ["--no-http"])
    yield d
    d.stop()


@pytest.fixture
def env(tmp_path, daemon):
    e = base_env(tmp_path)
    e["TRACEPATCH_SOCKET"] = str(daemon.socket)
    return e


def ok(r):
    assert (r.returncode, r.stderr) == (0, "")
    return r.stdout


def imported(env, path):
    out = ok(tph("import", path, env=env))
    assert HEX32.match(out.strip()), out
    return out.strip()


@pytest.fixture
def files(env):
    """The three data files imported, oldest start first."""
    return {name: imported(env, DATA / f"{name}.json") for name in ["small", "loop", "small_b"]}


def upload_live(daemon, close=True):
    """Two traces sent the extension's way with ids LIVE1, LIVE2; and with
    close=False a third (LIVE3) left open. Returns the uploader."""
    u = Uploader(daemon.socket)
    u.funcs([(0, "app", "handle", "app.py", 10), (1, "app", "load", "app.py", 3)])
    now = time.time_ns()
    u.begin(LIVE1, "live-one", now)
    u.events(LIVE1, [call(0, 0, 3_000_000, "uid=1", "'ok'",
                          [call(1, 1_000_000, 2_000_000, "uid=1", "{}")])])
    u.end(LIVE1, 3_000_000, 2)
    u.begin(LIVE2, "live-two", now)
    u.events(LIVE2, [call(0, 0, 1_000_000, "uid=2", exc=("KeyError", "'x'"))])
    u.end(LIVE2, 1_000_000, 1, limit="max_calls", dropped=5)
    if close:
        u.close()
    return u


# ---- status, logs --------------------------------------------------------------------


def test_status(env, daemon):
    out = ok(tph("status", env=env))
    lines = out.splitlines()
    assert re.match(rf"^tphd {VERSION}, pid {daemon.proc.pid}, up \d+s$", lines[0])
    assert f"socket:      {daemon.socket}" in lines
    assert any(re.match(rf"^database:    {re.escape(str(daemon.db))} \([\d.]+ (B|KiB|MiB)\)$",
                        line) for line in lines)
    assert "traces:      0" in lines
    assert "connections: 1" in lines
    assert lines[-2:] == ["http:        off", "otlp:        off"]


def test_status_json(env, daemon, files):
    st = json.loads(ok(tph("status", "--json", env=env)))
    assert st["version"] == VERSION
    assert st["pid"] == daemon.proc.pid
    assert st["socket"] == str(daemon.socket)
    assert st["db"] == str(daemon.db)
    assert st["traces"] == 3
    assert st["http"] is None


def test_logs_empty(env):
    assert ok(tph("logs", env=env)) == (
        "no traces yet: record one with `tph run script.py`, or wrap code in "
        "`with tracepatch.trace(): ...` while tphd is running\n")


def test_logs_table_of_imports(env, files):
    lines = ok(tph("logs", env=env)).splitlines()
    assert lines[0].split() == ["ID", "START", "DURATION", "CALLS", "LABEL", "PROCESS", "FLAGS"]
    rows = [line.split() for line in lines[1:]]
    # Newest start first; an imported trace keeps the file's start time.
    assert [r[:7] for r in rows] == [
        [files["small_b"][:8], "2026-02-12", "14:35:00", "5.00ms", "5", "debug-request",
         "imported"],
        [files["loop"][:8], "2026-02-12", "14:31:00", "2.00ms", "6", "batch-job", "imported"],
        [files["small"][:8], "2026-02-12", "14:30:22", "50.0µs", "3", "debug-request",
         "imported"],
    ] and rows[1][-1] == "LIMITED"
    assert rows[0][-1] != "LIMITED" and rows[2][-1] != "LIMITED"


def test_logs_table_of_live_traces(env, daemon):
    u = upload_live(daemon, close=False)
    live3 = "abcd" + "0" * 27 + "3"
    u.begin(live3, "still-open", time.time_ns())
    try:
        out = ok(tph("logs", env=env))
    finally:
        u.close()
    proc = f"{os.getpid()} server.py"
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("abcd0000  ") and lines[1].endswith(f"still-open  {proc}  RUNNING")
    assert lines[2].endswith(f"1.00ms        1  live-two    {proc}  LIMITED DROPPED")
    assert lines[3].endswith(f"3.00ms        2  live-one    {proc}")
    # A client gone mid-trace leaves it truncated.
    deadline = time.monotonic() + 10
    while "TRUNCATED" not in (out := ok(tph("logs", "--label", "still-*", env=env))):
        assert time.monotonic() < deadline, out
        time.sleep(0.05)
    assert out.splitlines()[1].endswith(f"still-open  {proc}  TRUNCATED")


def test_logs_filters(env, files):
    def ids(*args):
        return [line.split()[0] for line in ok(tph("logs", *args, env=env)).splitlines()[1:]
                if not line.startswith("showing")]

    assert ids("--label", "debug-*") == [files["small_b"][:8], files["small"][:8]]
    assert ids("--limited") == [files["loop"][:8]]
    assert ok(tph("logs", "--since", "1h", env=env)) == \
        "no traces match (`tph logs` without filters lists them all)\n"
    out = ok(tph("logs", "--limit", "1", "--offset", "1", env=env)).splitlines()
    assert out[1].split()[0] == files["loop"][:8]
    assert out[2] == "showing 2-2 of 3 traces; --offset 2 for older ones"


def test_logs_json(env, files):
    doc = json.loads(ok(tph("logs", "--json", "--limit", "2", env=env)))
    assert doc["total"] == 3
    assert [t["id"] for t in doc["traces"]] == [files["small_b"], files["loop"]]
    assert doc["traces"][1]["limit_reason"] == "max_calls"


# ---- one trace: ID and FILE agree ---------------------------------------------------


TREE_FLAGS = [[], ["--no-stats"], ["--style", "ascii", "--self-time", "--show-source"],
              ["--no-fold", "--no-args", "--no-return"], ["--filter", "app.*", "--depth", "1"],
              ["--color"]]


@pytest.mark.parametrize("flags", TREE_FLAGS)
def test_tree_by_id_is_the_files_tree(env, files, flags):
    for name in ["small", "loop", "small_b"]:
        by_id = ok(tph("tree", files[name][:8], *flags, env=env))
        by_file = ok(tph("tree", DATA / f"{name}.json", *flags, env=env))
        assert by_id == by_file


def test_tree_json_by_id_is_the_files_but_for_the_id(env, files):
    for flags in [[], ["--no-fold"]]:
        by_id = json.loads(ok(tph("tree", files["loop"], "--json", *flags, env=env)))
        by_file = json.loads(ok(tph("tree", LOOP, "--json", *flags, env=env)))
        assert by_id.pop("trace_id") == files["loop"]
        by_file.pop("trace_id")
        assert by_id == by_file


def test_stats_by_id_is_the_files(env, files):
    assert ok(tph("stats", files["loop"][:5], env=env)) == ok(tph("stats", LOOP, env=env))
    assert ok(tph("stats", "--json", files["loop"], env=env)) == \
        ok(tph("stats", "--json", LOOP, env=env))


def test_diff_ids_files_and_mixed_agree(env, files):
    a, b = files["small"][:8], files["small_b"][:8]
    want = ok(tph("diff", SMALL, SMALL_B, env=env))
    assert want.startswith("Calls:     3 -> 5 (+2)\n")
    assert ok(tph("diff", a, b, env=env)) == want
    assert ok(tph("diff", a, SMALL_B, env=env)) == want
    assert ok(tph("diff", SMALL, b, env=env)) == want
    want_json = ok(tph("diff", "--json", SMALL, SMALL_B, env=env))
    assert ok(tph("diff", "--json", a, b, env=env)) == want_json
    assert ok(tph("diff", "--json", a, SMALL_B, env=env)) == want_json


@pytest.mark.parametrize("fmt", ["csv", "folded", "chrome"])
def test_export_by_id_is_the_files(env, files, fmt):
    assert ok(tph("export", files["small"], "--format", fmt, env=env)) == \
        ok(tph("export", SMALL, "--format", fmt, env=env))


def test_export_json_round_trips(env, files, tmp_path):
    out = tmp_path / "back.json"
    assert ok(tph("export", files["loop"], "-o", out, env=env)) == ""
    doc = json.loads(out.read_text())
    assert doc["trace_id"] == files["loop"]
    assert doc["label"] == "batch-job"
    assert ok(tph("tree", out, env=env)) == ok(tph("tree", LOOP, env=env))


def test_live_trace_tree(env, daemon):
    upload_live(daemon)
    assert ok(tph("tree", LIVE1, "--no-stats", env=env)) == (
        "└── app.handle(uid=1) -> 'ok'  [3.00ms]\n"
        "    └── app.load(uid=1) -> {}  [1.00ms]\n")
    out = ok(tph("tree", LIVE2, "--no-stats", env=env))
    assert out.startswith("└── app.handle(uid=2) !! KeyError: 'x'  [1.00ms]\n")


# ---- prefixes -------------------------------------------------------------------------


def test_prefix_unique_ambiguous_unknown(env, daemon):
    upload_live(daemon)
    assert ok(tph("tree", "abcd0000000000000000000000000001", "--no-stats", env=env)) == \
        ok(tph("tree", LIVE1, "--no-stats", env=env))
    assert ok(tph("tree", "ABCD0000000000000000000000000002", "--no-stats", env=env)) == \
        ok(tph("tree", LIVE2, "--no-stats", env=env))
    r = tph("tree", "abcd", env=env)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f'tph: ID "abcd" matches 2 traces: {LIVE1}, {LIVE2}\n'
    r = tph("stats", "ffff", env=env)
    assert (r.returncode, r.stderr) == (1, 'tph: no trace matches ID "ffff"\n')
    r = tph("export", "not-hex", env=env)
    assert (r.returncode, r.stderr) == (1, 'tph: "not-hex" is not a trace ID (hex digits)\n')
    r = tph("diff", "abcd", LIVE1, env=env)
    assert r.returncode == 1 and r.stderr.startswith('tph: ID "abcd" matches 2 traces')


# ---- import, clean, open ----------------------------------------------------------------


def test_import_json_and_errors(env):
    doc = json.loads(ok(tph("import", "--json", SMALL, env=env)))
    assert HEX32.match(doc["id"])
    r = tph("import", DATA / "corrupt.json", env=env)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"tph: {DATA / 'corrupt.json'}: line 3 column 16: ':' expected near '\"oops\"'\n"
    assert json.loads(ok(tph("logs", "--json", env=env)))["total"] == 1


def test_import_large_file(env, tmp_path):
    """A file too big for the arguments string (1 MiB) travels in the QUERY
    body, and 17 MiB of it over two frames."""
    doc = json.loads(SMALL.read_text())
    doc["trace"][0]["children"][1]["args"] = "user=" + "u" * (17 << 20)
    big = tmp_path / "big.json"
    big.write_text(json.dumps(doc))
    tid = imported(env, big)
    out = ok(tph("export", tid, "--format", "json", env=env))  # the answer comes back in chunks too
    assert json.loads(out)["trace"][0]["children"][1]["args"] == "user=" + "u" * (17 << 20)


def test_clean_older_than_keeps_recent(env, daemon, files):
    upload_live(daemon)
    assert ok(tph("clean", "--older-than", "1d", env=env)) == "deleted 3 traces\n"
    doc = json.loads(ok(tph("logs", "--json", env=env)))
    assert sorted(t["id"] for t in doc["traces"]) == [LIVE1, LIVE2]
    assert ok(tph("clean", "--older-than", "1d", env=env)) == "deleted 0 traces\n"
    # --all alone is the local .tracepatch/ (tracepatch 1.0.0); tphd's traces
    # go only with --daemon.
    r = tph("clean", "--all", env=env)
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr == ("tph: the traces stored in tphd were kept; "
                        "`tph clean --all --daemon` deletes them too\n")
    assert json.loads(ok(tph("clean", "--all", "--daemon", "--json", env=env))) == {"deleted": 2}
    assert ok(tph("logs", env=env)).startswith("no traces yet")


def test_open_without_http(env, files):
    r = tph("open", files["small"][:6], env=env)
    short = files["small"][:8]
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("tph: tphd does not serve the report UI (no http address in its status), "
                        f"so trace {short} has no URL; try `tph tree {short}` or "
                        f"`tph export {short} --format html -o report.html`\n")


def test_open_with_http(tmp_path):
    import http.client
    import urllib.parse

    d = Daemon(tmp_path, ["--http", "127.0.0.1:0"])
    try:
        env = base_env(tmp_path)
        env["TRACEPATCH_SOCKET"] = str(d.socket)
        base = json.loads(ok(tph("status", "--json", env=env)))["http"]
        if base is None:
            pytest.skip("this tphd was built without the report UI")
        tid = imported(env, SMALL)
        url = ok(tph("open", tid[:8], env=env)).strip()
        assert re.match(rf"^{re.escape(base)}/t/{tid}\?token=[0-9a-f]{{32}}$", url), url
        assert json.loads(ok(tph("open", "--json", tid[:8], env=env))) == \
            {"id": tid, "url": url}
        # The link works: its token is traded for a cookie and the token dropped.
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("GET", f"{u.path}?{u.query}")
        resp = conn.getresponse()
        assert resp.status == 302
        assert resp.getheader("Location").endswith(f"/t/{tid}")
        conn.close()
    finally:
        d.stop()
