"""Line data (trace(lines=...)) in a real tphd: the LINES message
(PROTOCOL.md 4.6a) is stored with its trace, answered by the lines query,
kept through export and import, deleted with its trace, and a bad one ends
that trace only. Spoken through tphd_wire, independently of the extension."""
import json
import os
import sqlite3

import pytest

from tphd_wire import ACK, ERR, ERROR, LINES, MS, TPHD, simple_trace
from tphlib import TPH, base_env, tph

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")

T1 = "ab" * 16
T2 = "abcd" + "0" * 28

RECORDS = [{
    "call": 1, "module": "app", "qualname": "helper", "file": "/src/app.py", "args": "x=0",
    "lines": [
        {"line": 21, "source": "    y = x * 2", "hits": 1, "values": {"x": ["0"], "y": ["0"]}},
        {"line": 22, "source": "    return '\x1b[31m' + str(y)  # \u202e </script>", "hits": 1,
         "values": {}},
    ]}]


def send_lines(conn, trace, data):
    conn.send(LINES, {"trace": trace, "json": data if isinstance(data, bytes)
                      else json.dumps(data).encode()})


def upload(d, trace=T1, records=RECORDS):
    with d.connect() as c:
        simple_trace(c, trace, end=False)
        send_lines(c, trace, records)
        c.end(trace, 10 * MS, 4)
        msg = c.recv()
        assert msg[0] == ACK, msg
        return msg[1]["trace"]


def test_lines_are_stored_and_answered_by_the_lines_query(tphd):
    tid = upload(tphd)
    with tphd.connect() as c:
        assert c.qjson("lines", {"id": tid[:8]}) == RECORDS
        simple_trace(c, T2)
        assert c.recv()[0] == ACK
        assert c.qjson("lines", {"id": T2}) == [], "a trace without line data has none"
        ok, code, msg = c.query("lines", {"id": "ffff"})
        assert (ok, code) == (False, ERR["NOT_FOUND"])


@pytest.mark.parametrize("data, message", [
    (b"[{\"call\": 0}", "LINES: the json is not valid JSON (']' expected near end of file, at byte 12)"),
    (b"[\x1b[31m", "LINES: the json is not valid JSON ("),
    (b"{\"call\": 0}", "LINES: the json is not an array"),
    (b"[{}, 3]", "LINES: item 1 of the json is not an object"),
])
def test_bad_lines_end_that_trace_only(tphd, data, message):
    with tphd.connect() as c:
        simple_trace(c, T1, end=False)
        simple_trace(c, T2, describe=False, end=False)
        send_lines(c, T1, data)
        mtype, body = c.recv()
        assert (mtype, body["code"], body["trace"]) == (ERROR, ERR["JSON"], T1)
        assert body["msg"].startswith(message), body["msg"]
        c.end(T1, 10 * MS, 4)  # ignored: the trace was discarded
        send_lines(c, T2, RECORDS)
        c.end(T2, 10 * MS, 4)
        mtype, body = c.recv()
        assert (mtype, body["trace"]) == (ACK, T2), "the connection and its other trace go on"
        assert c.qjson("get", {"id": T1})["status"] == "truncated"
        assert c.qjson("lines", {"id": T1}) == []
        assert c.qjson("lines", {"id": T2}) == RECORDS
    log = tphd.read_log()
    assert f"client 2: trace {T1}: JSON: {message.split(' (')[0]}" in log
    assert "\x1b" not in log, "client text in the log is escaped"


def test_a_second_lines_is_a_sequence_error(tphd):
    with tphd.connect() as c:
        simple_trace(c, T1, end=False)
        send_lines(c, T1, RECORDS)
        send_lines(c, T1, RECORDS)
        mtype, body = c.recv()
        assert (mtype, body["code"], body["msg"]) == (
            ERROR, ERR["SEQUENCE"], f"LINES: a second one for trace {T1}")


def test_lines_go_with_their_trace_when_cleaned(tphd):
    upload(tphd)
    db = sqlite3.connect(f"file:{tphd.db}?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM trace_lines").fetchone() == (1,)
    with tphd.connect() as c:
        assert c.qjson("clean", {"all": True}) == {"deleted": 1}
    assert db.execute("SELECT count(*) FROM trace_lines").fetchone() == (0,)
    db.close()


def test_export_carries_lines_and_import_keeps_them(tphd):
    tid = upload(tphd)
    with tphd.connect() as c:
        ok, ct, data = c.query("export", {"id": tid, "format": "json"})
        assert ok, data
        doc = json.loads(data)
        assert doc["lines"] == RECORDS
        assert doc["trace_id"] == tid
        new = c.qjson("import", body=data)["id"]
        assert new != tid
        assert c.qjson("lines", {"id": new}) == RECORDS
        ok, ct, page = c.query("export", {"id": tid, "format": "html"})
        assert ok, page
        page = page.decode()
        head = '<script type="application/json" id="tp-data">'
        data = page[page.index(head) + len(head):]
        data = data[:data.index("</script>")]
        assert json.loads(data)["lines"] == RECORDS, "the report file has the Lines tab's data"
        assert "<\\/script>" in data, "trace text cannot end the data element"
        bad = json.dumps(dict(doc, lines={"not": "a list"})).encode()
        ok, code, msg = c.query("import", body=bad)
        assert (ok, code, msg) == (False, ERR["JSON"],
                                   "the file's \"lines\" is not an array of objects")


@pytest.mark.skipif(not TPH.exists(), reason=f"{TPH} not built")
def test_tph_tree_lines_of_an_id_prints_the_line_section(tphd, tmp_path):
    tid = upload(tphd)
    env = base_env(tmp_path)
    env["TRACEPATCH_SOCKET"] = tphd.sock
    r = tph("tree", "--lines", tid[:10], env=env)
    assert (r.returncode, r.stderr) == (0, "")
    plain = tph("tree", tid[:10], env=env)
    assert r.stdout == plain.stdout + "\n" + (
        "lines of app.helper(x=0) [call 1]\n"
        "  21 │   1× │ y = x * 2   # x=0  y=0\n"
        "  22 │   1× │ return '\\x1b[31m' + str(y)  # \\u202e </script>\n")
    # The same section as for the exported file, whose "lines" key it reads.
    f = tmp_path / "t.json"
    assert tph("export", tid, "-o", f, env=env).returncode == 0
    assert tph("tree", "--lines", f, env=env).stdout.split("\n\n")[-1] == \
        r.stdout.split("\n\n")[-1]
