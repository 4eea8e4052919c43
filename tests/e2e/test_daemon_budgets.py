"""tphd's limits hold in total, not per connection: one budget for what all
clients' partial frames hold, a cap on connections below the descriptor
limit (raised to its hard limit at start), the frame timeout for every
frame of a chunked import, and an idle timeout after HELLO. Each refusal is
an ERROR frame naming the limit and a log line."""
import os
import socket
import struct
import subprocess
import time

import msgpack
import pytest

import tphd_wire
from tphd_wire import ACK, ERROR, QUERY, TPHD, Conn, Daemon, assert_clean_stop, simple_trace

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")

MiB = 1 << 20


def hold_partial_frame(c, size=16 * MiB, sent=8 * MiB):
    """Declare a frame of size bytes and send only the first sent of them.
    A refused client can send on: tphd reads and drops its bytes until it
    hangs up, so that it can read the ERROR."""
    c.send_raw(struct.pack(">I", size) + b"\x92" + b"\0" * (sent - 1))


def test_partial_frames_of_all_clients_share_one_budget(tmp_path):
    d = Daemon(TPHD, tmp_path, extra=["--max-buffered", "40M"]).start()
    conns = [d.connect(timeout=10) for _ in range(5)]
    for c in conns:
        hold_partial_frame(c)
        time.sleep(0.1)  # in order: the first two fit in 40 MiB, the rest do not
    refused = []
    for c in conns[2:]:
        msg = c.recv()
        assert msg is not None and msg[0] == ERROR, msg
        refused.append((msg[1]["name"], msg[1]["msg"]))
        assert c.recv() is None
    text = ("tphd is holding 32 MiB of partial frames from all clients (--max-buffered 40 MiB): "
            "this frame is refused, try again later")
    assert refused == [("ENOBUFS", text)] * 3
    # The two that fit are still being read; a well-behaved client still works.
    with d.connect(timeout=10) as good:
        simple_trace(good, "b" * 32)
        assert good.recv()[0] == ACK
    for c in conns:
        c.close()
    log = d.read_log()
    assert log.count(f"refused: {text}\n") == 3, log
    assert_clean_stop(d)


def test_connections_beyond_the_cap_are_refused_with_a_message(tmp_path):
    d = Daemon(TPHD, tmp_path, extra=["--max-connections", "4"]).start()
    held = [d.connect(timeout=10) for _ in range(4)]
    text = "tphd serves at most 4 connections at once (its descriptor limit): try again later"
    with d.connect(hello=False, timeout=10) as extra:
        msg = extra.recv()
        assert msg is not None and msg[0] == ERROR, msg
        assert (msg[1]["name"], msg[1]["msg"]) == ("EMFILE", text)
        assert extra.recv() is None
    held.pop().close()
    # The slot is free again once tphd has seen the close.
    ok = tphd_wire.wait_for(lambda: Conn(d.sock, timeout=10).welcome is not None, timeout=10)
    assert ok
    for c in held:
        c.close()
    assert "refused (1 so far): " + text + "\n" in d.read_log()
    assert_clean_stop(d)


def test_descriptor_limit_is_raised_to_the_hard_limit(tmp_path):
    d = Daemon(TPHD, tmp_path)
    base = d.args
    d.args = lambda: ["prlimit", "--nofile=256:4096", "--"] + base()
    d.start()
    with open(f"/proc/{d.proc.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert line.split()[3:5] == ["4096", "4096"], line
    assert_clean_stop(d)


def test_chunked_import_obeys_the_frame_timeout(tmp_path):
    d = Daemon(TPHD, tmp_path, extra=["--frame-timeout", "1"]).start()
    with d.connect(timeout=10) as c:
        # The first part of an import's body, then nothing.
        c.send(QUERY, {"id": 1, "op": "import", "args": "{}", "body": b"{\"trace\": [",
                       "more": True})
        # Exempt from the frame timeout, the import would hold the
        # connection past the socket's 10 s (recv raises) with no ERROR.
        msg = c.recv()
    assert msg is not None and msg[0] == ERROR, msg
    assert (msg[1]["name"], msg[1]["msg"]) == ("ETIMEDOUT", "no part of the query body within 1 s")
    assert_clean_stop(d)


def test_idle_connection_after_hello_is_closed(tmp_path):
    d = Daemon(TPHD, tmp_path, extra=["--idle-timeout", "2"]).start()
    with d.connect(timeout=10) as idle, d.connect(timeout=10) as busy:
        t0 = time.monotonic()
        # busy sends a frame every half second and stays open.
        while time.monotonic() - t0 < 3.5:
            assert busy.qjson("status") is not None
            time.sleep(0.5)
        msg = idle.recv()
        assert msg is not None and msg[0] == ERROR, msg
        assert (msg[1]["name"], msg[1]["msg"]) == ("ETIMEDOUT",
                                                   "idle: no frame for 2 s (--idle-timeout)")
        assert busy.qjson("status") is not None
    assert "closed: idle: no frame for 2 s (--idle-timeout)\n" in d.read_log()
    assert_clean_stop(d)


def test_http_connections_cannot_take_the_sockets_descriptors(tmp_path):
    """HTTP clients get at most 128 connections, taken from the descriptors
    kept below the socket's cap: 400 of them leave the socket's clients their
    WELCOME (before: every descriptor went to HTTP and a socket client was
    reset unseen, with no log line)."""
    from test_http_api import WebDaemon

    d = WebDaemon(tmp_path)
    base = d.args
    d.args = lambda: ["prlimit", "--nofile=300:300", "--"] + base()
    d.start()
    d.wait_http()
    socks = [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(400)]

    def closed_by_tphd():
        import select
        ready, _, _ = select.select(socks, [], [], 0)
        return [s for s in ready if s.recv(1, socket.MSG_PEEK) == b""]

    assert tphd_wire.wait_for(lambda: len(closed_by_tphd()) == 400 - 128, timeout=30)
    with d.connect(timeout=10) as c:
        assert c.welcome is not None
        assert c.qjson("status") is not None
    for s in socks:
        s.close()
    # Once they are gone, HTTP serves again.
    assert tphd_wire.wait_for(lambda: d.request("/api/status").status == 200, timeout=10)
    log = d.read_log()
    line = ("tphd: HTTP connection refused (1 so far): tphd serves at most 128 HTTP "
            "connections at once\n")
    assert line in log, log
    assert log.count("HTTP connection refused") == 10 + (400 - 128) // 1000, log
    assert_clean_stop(d)


def test_refused_connections_cannot_hold_the_descriptors(tmp_path):
    """Under a descriptor limit of 300 (44 connections), 600 clients that
    connect past the cap and then neither read nor hang up: each is refused
    with its ERROR, but at most 64 refused connections at a time wait for
    their client to hang up; past that tphd closes them at once. So tphd
    keeps descriptors for its own files and the next client still reads why
    it was refused (before: the refused ones held every descriptor for 5 s
    and later clients were reset unseen, with no log line)."""
    import select

    d = Daemon(TPHD, tmp_path)
    base = d.args
    d.args = lambda: ["prlimit", "--nofile=300:300", "--"] + base()
    d.start()
    held = [d.connect(timeout=10) for _ in range(44)]
    flood = []
    for _ in range(600):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        flood.append(s)
    # Every refused client has its ERROR, or its connection closed.
    assert tphd_wire.wait_for(
        lambda: len(select.select(flood, [], [], 0)[0]) == len(flood), timeout=60)
    fds = len(os.listdir(f"/proc/{d.proc.pid}/fd"))
    assert fds <= 44 + 64 + 40, fds  # served, refused and waiting, tphd's own
    with d.connect(hello=False, timeout=10) as extra:
        msg = extra.recv()
        assert msg is not None and msg[0] == ERROR, msg
        assert msg[1]["name"] == "EMFILE", msg
    log = d.read_log()
    assert "refused connections are waiting for their clients to hang up; closed at once" in log, log
    for s in flood:
        s.close()
    for c in held:
        c.close()
    assert_clean_stop(d)
