"""What PROTOCOL.md says about trace errors, reused ids and END's count, as
tphd does it: a trace error ends that trace only (ERROR naming it, the
connection goes on), a BEGIN for an id tphd already stores gets a fresh id
(the ACK carries it), and the calls stored are the CALL records received,
whatever END claims."""
import os

import pytest

from tphd_wire import ACK, ERR, ERROR, MS, TPHD, Events, simple_trace

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")


def summary(c, trace):
    return c.qjson("get", {"id": trace, "what": "summary"})


def test_end_claiming_more_calls_than_sent_stores_the_calls_received(tphd):
    t = "a" * 32
    with tphd.connect() as c:
        c.funcs({0: ("app", "main", "/src/app.py", 10)})
        c.begin(t)
        c.events(t, 0, Events().call(0, 1 * MS, "").ret(2 * MS, "1"))
        c.end(t, 3 * MS, 5)
        assert c.recv() == (ACK, {"trace": t})
        s = summary(c, t)
        assert (s["calls"], s["status"]) == (1, "complete")
        assert [x["calls"] for x in c.qjson("list")["traces"]] == [1]


def test_unknown_function_ends_that_trace_and_the_connection_goes_on(tphd):
    bad, good = "b" * 32, "c" * 32
    with tphd.connect() as c:
        c.begin(bad)
        c.events(bad, 0, Events().call(7, 1 * MS))
        msg = c.recv()
        assert msg[0] == ERROR and msg[1]["code"] == ERR["UNKNOWN_FUNC"], msg
        assert msg[1]["trace"] == bad
        # Its END is ignored; another trace on the same connection is stored.
        c.end(bad, 2 * MS, 1)
        simple_trace(c, good)
        assert c.recv() == (ACK, {"trace": good})
        assert summary(c, bad)["status"] == "truncated"
        assert summary(c, good)["status"] == "complete"


def test_reused_trace_id_is_stored_under_a_fresh_id(tphd):
    t = "d" * 32
    with tphd.connect() as c:
        simple_trace(c, t)
        assert c.recv() == (ACK, {"trace": t})
    with tphd.connect() as c:
        simple_trace(c, t, label="again")
        mtype, body = c.recv()
        assert mtype == ACK and body["trace"] != t and len(body["trace"]) == 32
        assert summary(c, body["trace"])["label"] == "again"
        assert summary(c, t)["label"] == "t"
