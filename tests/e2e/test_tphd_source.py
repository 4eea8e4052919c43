"""The functions' source text in a real tphd: the SOURCE message
(PROTOCOL.md 4.6b) is stored with its trace, answered one function at a
time by the source query (bounded), kept through export (JSON and HTML) and
import, deleted with its trace, and a bad one ends that trace only; a real
traced program sends it (plain and streamed) and its stored trace exports
the "source" key its own file has."""
import json
import os
import sqlite3

import pytest

from streamlib import daemon_env, needs_binaries, needs_extension, run_script
from tphd_wire import ACK, ERR, ERROR, MS, SOURCE, TPHD, simple_trace
from tphlib import tph

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")

T1 = "cd" * 16
T2 = "cdef" + "0" * 28

HOSTILE = "    return '\x1b[31m' + '</script><img src=x onerror=alert(1)>'  # \u202e\n"
SRC = {"max_function": 65536, "max_trace": 1048576, "left_out": 0, "functions": [
    {"module": "app", "qualname": "main", "file": "/src/app.py", "line": 10,
     "text": "def main():\n    for i in range(3):\n        helper(i)\n    return 'done'\n"},
    {"module": "app", "qualname": "helper", "file": "/src/app.py", "line": 20,
     "text": "def helper(x):\n" + HOSTILE, "truncated": 3},
    {"module": "app", "qualname": "gone", "file": "<string>", "line": 1,
     "missing": "no source"},
]}


def send_source(conn, trace, data):
    conn.send(SOURCE, {"trace": trace, "json": data if isinstance(data, bytes)
                       else json.dumps(data).encode()})


def upload(d, trace=T1, source=SRC):
    with d.connect() as c:
        simple_trace(c, trace, end=False)
        send_source(c, trace, source)
        c.end(trace, 10 * MS, 4)
        msg = c.recv()
        assert msg[0] == ACK, msg
        return msg[1]["trace"]


def entry(func, e, **more):
    out = {"func": func, "module": e["module"], "qualname": e["qualname"], "file": e["file"],
           "line": e["line"], "text": e.get("text"), "truncated": e.get("truncated", 0),
           "missing": e.get("missing")}
    out.update(more)
    return out


def test_source_is_stored_and_answered_one_function_at_a_time(tphd):
    tid = upload(tphd)
    with tphd.connect() as c:
        # Function ids are the trace's own (simple_trace: 0 main, 1 helper).
        assert c.qjson("source", {"id": tid[:8], "func": 0}) == entry(0, SRC["functions"][0])
        assert c.qjson("source", {"id": tid, "func": 1}) == entry(1, SRC["functions"][1])
        # The report's tree names each node's function by that id.
        web = c.qjson("tree", {"id": tid, "format": "web", "depth": -1})
        nodes, todo = [], list(web["nodes"])
        while todo:
            n = todo.pop()
            nodes.append(n)
            todo += n.get("kids", [])
        assert sorted((n["name"], n["func"]) for n in nodes) == [("helper", 1), ("main", 0)]
        for n in nodes:
            got = c.qjson("source", {"id": tid, "func": n["func"]})
            assert (got["qualname"], got["line"]) == (n["name"], n["line"])
        ok, code, msg = c.query("source", {"id": tid, "func": 2})
        assert (ok, code, msg) == (False, ERR["NOT_FOUND"], "trace has no function 2")
        ok, code, msg = c.query("source", {"id": tid})
        assert (ok, code) == (False, ERR["MISSING"])
        simple_trace(c, T2)
        assert c.recv()[0] == ACK
        assert c.qjson("source", {"id": T2, "func": 0}) == entry(
            0, SRC["functions"][0], text=None, missing="not in the trace"), \
            "a trace without source says so"


def test_the_source_query_is_bounded_to_whole_lines(tphd):
    line = "    x = 'y' * 80  # " + "z" * 40 + "\n"  # 64 bytes
    n = 65536 // len(line) + 100
    big = dict(SRC, functions=[dict(SRC["functions"][0], text="def main():\n" + line * n,
                                    truncated=2)])
    tid = upload(tphd, source=big)
    with tphd.connect() as c:
        got = c.qjson("source", {"id": tid, "func": 0})
    kept = got["text"]
    assert len(kept.encode()) <= 65536 and kept.endswith("\n")
    assert kept == ("def main():\n" + line * n)[:len(kept)]
    assert got["truncated"] == 2 + (n + 1 - kept.count("\n")), "the cut lines are counted"


@pytest.mark.parametrize("data, message", [
    (b"{\"functions\": [", "SOURCE: the json is not valid JSON ("),
    (b"[]", "SOURCE: the json is not an object with a \"functions\" array"),
    (b"{\"functions\": {}}", "SOURCE: the json is not an object with a \"functions\" array"),
    (b"{\"functions\": [3]}", "SOURCE: function 0 of the json is not an object"),
    (json.dumps({"functions": [SRC["functions"][0], {"module": "m", "qualname": "q",
                                                      "file": "f"}]}).encode(),
     "SOURCE: function 1 of the json lacks an integer line"),
    (json.dumps({"functions": [dict(SRC["functions"][0], text=["x"])]}).encode(),
     "SOURCE: function 0 of the json has a text or missing that is not a str"),
    (json.dumps({"functions": [dict(SRC["functions"][0], module=None)]}).encode(),
     "SOURCE: function 0 of the json lacks a str module, qualname or file"),
])
def test_a_bad_source_ends_that_trace_only(tphd, data, message):
    with tphd.connect() as c:
        simple_trace(c, T1, end=False)
        simple_trace(c, T2, describe=False, end=False)
        send_source(c, T1, data)
        mtype, body = c.recv()
        assert (mtype, body["code"], body["trace"]) == (ERROR, ERR["JSON"], T1)
        assert body["msg"].startswith(message), body["msg"]
        c.end(T1, 10 * MS, 4)  # ignored: the trace was discarded
        send_source(c, T2, SRC)
        c.end(T2, 10 * MS, 4)
        mtype, body = c.recv()
        assert (mtype, body["trace"]) == (ACK, T2), "the connection and its other trace go on"
        assert c.qjson("get", {"id": T1})["status"] == "truncated"
        assert c.qjson("source", {"id": T1, "func": 0})["missing"] == "not in the trace"
        assert c.qjson("source", {"id": T2, "func": 1}) == entry(1, SRC["functions"][1])


def test_a_second_source_is_a_sequence_error(tphd):
    with tphd.connect() as c:
        simple_trace(c, T1, end=False)
        send_source(c, T1, SRC)
        send_source(c, T1, SRC)
        mtype, body = c.recv()
        assert (mtype, body["code"], body["msg"]) == (
            ERROR, ERR["SEQUENCE"], f"SOURCE: a second one for trace {T1}")


def test_source_goes_with_its_trace_when_cleaned(tphd):
    upload(tphd)
    db = sqlite3.connect(f"file:{tphd.db}?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM trace_source").fetchone() == (1,)
    with tphd.connect() as c:
        assert c.qjson("clean", {"all": True}) == {"deleted": 1}
    assert db.execute("SELECT count(*) FROM trace_source").fetchone() == (0,)
    db.close()


def html_data(page):
    head = '<script type="application/json" id="tp-data">'
    data = page[page.index(head) + len(head):]
    return data[:data.index("</script>")]


def test_export_carries_source_and_import_keeps_it(tphd):
    tid = upload(tphd)
    with tphd.connect() as c:
        ok, ct, data = c.query("export", {"id": tid, "format": "json"})
        assert ok, data
        doc = json.loads(data)
        assert doc["source"] == SRC
        assert list(doc)[-1] == "source", "the file's last key, as t.to_json() writes it"
        new = c.qjson("import", body=data)["id"]
        assert new != tid
        assert c.qjson("source", {"id": new, "func": 1}) == entry(1, SRC["functions"][1])
        ok, ct, again = c.query("export", {"id": new, "format": "json"})
        assert json.loads(again)["source"] == SRC
        ok, ct, page = c.query("export", {"id": tid, "format": "html"})
        assert ok, page
        data = html_data(page.decode())
        assert json.loads(data)["source"] == SRC, "the report file has the source view's data"
        assert "</script>" not in data and "<\\/script>" in data, \
            "trace text cannot end the data element"
        bad = json.dumps(dict(doc, source={"functions": "no"})).encode()
        ok, code, msg = c.query("import", body=bad)
        assert (ok, code, msg) == (False, ERR["JSON"],
                                   "the file's \"source\" is not an object with a"
                                   " \"functions\" array")


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
with trace(label="src", cache=False, STREAM) as t:
    mod.func(3)
    WAIT
    mod.func(2)
t._session.wait_upload(20)
dump(facts(t, streamed=t._session.streamed, source=json.loads(t.to_json())["source"]))
'''


@needs_binaries
@needs_extension
@pytest.mark.parametrize("streamed", [False, True])
def test_a_traced_program_sends_the_source_its_file_has(tmp_path, streamed):
    body = SCRIPT.replace("STREAM", "stream_after=0.05" if streamed else "stream_after=60")
    body = body.replace("WAIT", "time.sleep(0.3)" if streamed else "pass")
    with daemon_env(tmp_path) as (_daemon, env):
        (tmp_path / "work").mkdir()
        (tmp_path / "work" / "mod.py").write_text(MOD)
        r = run_script(tmp_path, body, env)
        assert (r.returncode, r.stderr) == (0, "")
        f = r.out
        assert (f["state"], f["errors"], f["streamed"]) == ("acked", [], streamed)
        [fn] = [e for e in f["source"]["functions"] if e["qualname"] == "func"]
        assert fn["text"] == MOD
        out = tph("export", f["trace_id"], "--format", "json", env=env)
        assert (out.returncode, out.stderr) == (0, "")
        assert json.loads(out.stdout)["source"] == f["source"], \
            "the stored trace exports the source the program's own file has"


def test_the_http_api_answers_one_functions_source(tmp_path):
    from test_http_api import WebDaemon, has_http
    if not has_http():
        pytest.skip(f"{TPHD} not built with HTTP")
    d = WebDaemon(tmp_path).start()
    try:
        d.wait_http()
        tid = upload(d)
        assert d.json(f"/api/traces/{tid}/source?func=1") == entry(1, SRC["functions"][1])
        r = d.request(f"/api/traces/{tid}/source?func=x")
        assert r.status == 400, r.body
        r = d.request(f"/api/traces/{tid}/source?func=7")
        assert r.status == 404, r.body
    finally:
        d.stop()
