"""trace(lines=[...]) against a real tphd: the extension sends the line data
(LINES, before the trace's END), so `tph tree --lines ID` prints the line
section t.tree(lines=True) has; line data over the wire's limit is left out
and the trace says why."""

import json

import pytest

from streamlib import daemon_env, needs_binaries, needs_extension, run_script
from tphlib import tph

pytestmark = [needs_binaries, needs_extension]

MOD = '''\
def func(n):
    total = 0
    for i in range(n):
        total += i
    return total
'''

SCRIPT = '''
sys.path.insert(0, os.getcwd())
import mod
with trace(label="lines", lines=["mod.func"], cache=False) as t:
    mod.func(3)
t._session.wait_upload(20)
dump(facts(t, tree=t.tree(lines=True, color=False), file_lines=json.loads(t.to_json())["lines"]))
'''


@pytest.fixture
def daemon_and_env(tmp_path):
    with daemon_env(tmp_path) as de:
        yield de


def test_tph_tree_lines_of_the_stored_trace_is_the_line_section(tmp_path, daemon_and_env):
    _daemon, env = daemon_and_env
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "mod.py").write_text(MOD)
    r = run_script(tmp_path, SCRIPT, env)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert (f["state"], f["errors"]) == ("acked", [])
    out = tph("tree", "--lines", f["trace_id"], env=env)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.split("\n\n")[-1] == (
        "lines of mod.func(n=3) [call 0]\n"
        "  2 │   1× │ total = 0   # total=0\n"
        "  3 │   4× │ for i in range(n):   # i=0, 1, 2, 2  range=<class 'range'>, "
        "<class 'range'>, <class 'range'>, <class 'range'>  n=3, 3, 3, 3\n"
        "  4 │   3× │ total += i   # total=0, 1, 3  i=0, 1, 2\n"
        "  5 │   1× │ return total   # total=3\n")
    assert out.stdout == f["tree"] + "\n", "tph prints what the trace object prints"
    # Rendered by tph itself (an option tphd's tree query does not take):
    # the same line section follows.
    local = tph("tree", "--lines", "--fold-threshold", "5", f["trace_id"], env=env)
    assert (local.returncode, local.stderr) == (0, "")
    assert local.stdout.split("\n\n")[-1] == out.stdout.split("\n\n")[-1]
    got = json.loads(tph("--json", "logs", env=env).stdout)["traces"][0]
    assert got["id"] == f["trace_id"]
    assert json.loads(tph("export", f["trace_id"], "--format", "json", env=env).stdout)["lines"] == f["file_lines"]


BIG = '''
import tracepatch._tracepatch as native
s = native.Session(label="big-lines", trace_id="%s")
s.start()
json.dumps([])
s.stop()
big = b"[" + b" " * (8 << 20) + b"]"
ok = s.upload(required=True, lines=big)
acked = s.wait_upload(20)
try:
    s.upload(lines="[]")
    typed = None
except TypeError as exc:
    typed = str(exc)
dump({"ok": ok, "acked": acked, "typed": typed})
'''


def test_lines_over_the_limit_are_left_out_and_the_trace_says_so(tmp_path, daemon_and_env):
    _daemon, env = daemon_and_env
    tid = "5" * 32
    r = run_script(tmp_path, BIG % tid, env)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.out == {"ok": True, "acked": True,
                     "typed": "lines must be bytes (JSON text) or None, got str"}
    got = json.loads(tph("--json", "export", tid, "--format", "json", env=env).stdout)
    assert "lines" not in got
    r2 = tph("--json", "logs", env=env)
    [s] = json.loads(r2.stdout)["traces"]
    assert (s["id"], s["status"]) == (tid, "complete")
    from tphd_wire import Conn  # the get answer has the drop reason
    with Conn(env["TRACEPATCH_SOCKET"]) as c:
        assert c.qjson("get", {"id": tid})["drop_reason"] == "lines over 8 MiB"
        assert c.qjson("lines", {"id": tid}) == []
