"""Two non-root users on one tphd cannot see or touch each other's traces;
root sees both. Clients run as other uids in forked children (os.setuid),
so this needs root; the uid tphd stamps comes from SO_PEERCRED, never from
what the client says."""
import json
import os
import shutil
import tempfile

import pytest

from tphd_wire import (ACK, ERR, TPHD, Conn, Daemon, as_user, assert_clean_stop,
                       simple_trace)

pytestmark = [
    pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built"),
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="needs root: clients run as other users through os.setuid"),
]


USER_A, USER_B = 65534, 65533  # nobody, and another unprivileged uid
TA = "a" * 32
TB = "b" * 32


@pytest.fixture
def shared():
    """A tphd whose socket other users may reach (as the system service's
    0770 directory and tracepatch group would allow). pytest's tmp_path sits
    in a 0700 directory, so this one lives directly under /tmp."""
    tmp = tempfile.mkdtemp(prefix="tphd-users-")
    os.chmod(tmp, 0o755)
    d = Daemon(TPHD, tmp)
    os.makedirs(os.path.dirname(d.sock), mode=0o755)
    d.start()
    os.chmod(d.sock, 0o666)
    yield d
    try:
        assert_clean_stop(d)
    finally:
        shutil.rmtree(tmp)


def upload_and_look(sock, trace, other):
    def run():
        with Conn(sock) as c:
            simple_trace(c, trace, label=f"uid{os.getuid()}")
            ack = c.recv()
            mine = [t["id"] for t in c.qjson("list")["traces"]]
            get_other = c.query("get", {"id": other})[:2]
            tree_other = c.query("tree", {"id": other[:4]})[:2]
            st = c.qjson("status")
            return {"ack": list(ack), "list": mine, "get_other": list(get_other),
                    "tree_other": list(tree_other), "status_traces": st["traces"]}
    return run


def test_users_see_only_their_own_traces(shared):
    a = as_user(USER_A, upload_and_look(shared.sock, TA, TB))
    b = as_user(USER_B, upload_and_look(shared.sock, TB, TA))
    assert a["ack"] == [ACK, {"trace": TA}] and b["ack"] == [ACK, {"trace": TB}]
    assert a["list"] == [TA] and b["list"] == [TB]
    assert b["get_other"] == [False, ERR["NOT_FOUND"]]
    assert b["tree_other"] == [False, ERR["NOT_FOUND"]]
    assert b["status_traces"] == 1
    with shared.connect() as c:  # root sees everything
        owners = {t["id"]: t["uid"] for t in c.qjson("list")["traces"]}
        assert owners == {TA: USER_A, TB: USER_B}


def test_users_clean_only_their_own_traces(shared):
    as_user(USER_A, upload_and_look(shared.sock, TA, TB))
    as_user(USER_B, upload_and_look(shared.sock, TB, TA))

    def clean_all():
        with Conn(shared.sock) as c:
            return c.qjson("clean", {"all": True})

    assert as_user(USER_B, clean_all) == {"deleted": 1}
    with shared.connect() as c:
        assert [t["id"] for t in c.qjson("list")["traces"]] == [TA]


def test_imports_belong_to_the_importer(shared):
    with shared.connect() as c:
        simple_trace(c, TA)
        assert c.recv()[0] == ACK
        doc = c.query("export", {"id": TA, "format": "json"})[2]

    def imp():
        with Conn(shared.sock) as c:
            new = c.qjson("import", {}, body=doc)["id"]
            return {"new": new, "list": [t["id"] for t in c.qjson("list")["traces"]]}

    r = as_user(USER_A, imp)
    assert r["list"] == [r["new"]]
    with shared.connect() as c:
        assert c.qjson("get", {"id": r["new"]})["uid"] == USER_A
