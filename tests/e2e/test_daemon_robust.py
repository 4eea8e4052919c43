"""tphd under stress and abuse: kill -9 during ingest, many clients at once,
hostile clients beside a good one, back-pressure, retention."""
import os
import random
import shutil
import socket
import sqlite3
import struct
import threading
import time

import msgpack
import pytest

from tphd_wire import (ACK, ERR, ERROR, EVENTS, HELLO, MS, QUERY, TPHD, Conn, Daemon, Events, frame,
                       assert_clean_stop,
                       simple_trace, wait_for)

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")


def tid(n, prefix="e"):
    return f"{prefix}{n:031x}"


def send_calls(c, trace, ncalls, batch=2000, label=None, arg="v"):
    """A flat trace of ncalls calls of m.f in batches; returns nothing."""
    c.begin(trace, label=label)
    seq = 0
    for start in range(0, ncalls, batch):
        ev = Events()
        for i in range(start, min(ncalls, start + batch)):
            ev.call(0, i * 1000, f"{arg}={i}").ret(i * 1000 + 500, str(i))
        c.events(trace, seq, ev)
        seq += 1
    c.end(trace, ncalls * 1000, ncalls)


# ---- crash safety ----------------------------------------------------------------


def test_kill_9_during_ingest_loses_nothing_acknowledged(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    acked = {}  # trace -> calls
    lock = threading.Lock()
    stop = threading.Event()

    def client(k):
        try:
            with d.connect() as c:
                c.funcs({0: ("m", "f", "m.py", 1)})
                # One trace that never ends: it must come back truncated.
                c.begin(tid(k, "0"))
                c.events(tid(k, "0"), 0, Events().call(0, 1, "open").ret(2))
                n = 0
                while not stop.is_set():
                    t = tid(k * 100000 + n)
                    calls = 3000 + 7 * n
                    send_calls(c, t, calls)
                    msg = c.recv()
                    if msg is None:
                        return
                    assert msg == (ACK, {"trace": t})
                    with lock:
                        acked[t] = calls
                    n += 1
        except OSError:
            pass  # tphd died under us: expected

    threads = [threading.Thread(target=client, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(acked) >= 12, timeout=60)
    d.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    db = sqlite3.connect(d.db)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    d.start()
    with d.connect() as c:
        traces = {t["id"]: t for t in c.qjson("list", {"limit": 10000})["traces"]}
        for t, calls in acked.items():
            assert (traces[t]["status"], traces[t]["calls"]) == ("complete", calls), t
        for k in range(1, 5):
            s = traces[tid(k, "0")]
            assert (s["status"], s["limit_reason"], s["calls"]) == ("truncated", "disconnected", 1)
        # The chunks of an acknowledged trace rebuild to exactly its calls.
        sample = sorted(acked)[:: max(1, len(acked) // 4)]
        for t in sample:
            st = c.qjson("stats", {"id": t, "format": "json"})
            assert st["calls"] == acked[t]
    assert_clean_stop(d)


# ---- many clients ------------------------------------------------------------------


def test_100_concurrent_clients_all_stored_exactly(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    errors = []
    barrier = threading.Barrier(100)

    def client(k):
        try:
            with d.connect() as c:
                c.funcs({0: ("m", "f", "m.py", 1)})
                barrier.wait(30)
                send_calls(c, tid(k), 500 + k, batch=97, label=f"client-{k}")
                assert c.recv() == (ACK, {"trace": tid(k)})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with d.connect() as c:
        doc = c.qjson("list", {"limit": 1000})
        assert doc["total"] == 100
        got = {t["label"]: (t["id"], t["calls"], t["status"]) for t in doc["traces"]}
        assert got == {f"client-{k}": (tid(k), 500 + k, "complete") for k in range(100)}
        for k in (0, 42, 99):
            g = c.qjson("get", {"id": tid(k)})
            assert g["events"] == 2 * (500 + k)
            ok, ct, csv = c.query("export", {"id": tid(k), "format": "csv"})
            assert len(csv.decode().splitlines()) == 1 + 500 + k
        assert c.qjson("status")["events_total"] == sum(2 * (500 + k) for k in range(100))
    assert_clean_stop(d)


def test_back_pressure_with_a_tiny_queue_stores_everything(tmp_path):
    """--max-queue 1M: the client is slowed down, never dropped."""
    d = Daemon(TPHD, tmp_path, extra=["--max-queue", "1M"]).start()
    with d.connect() as c:
        c.funcs({0: ("m", "f", "m.py", 1)})
        send_calls(c, tid(1), 200000, batch=20000, arg="x" * 40)
        assert c.recv() == (ACK, {"trace": tid(1)})
        assert c.qjson("get", {"id": tid(1)})["events"] == 400000
    assert_clean_stop(d)


# ---- hostile clients -----------------------------------------------------------------


def raw(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(d.sock)
    return s


def read_until_closed(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def first_error(data):
    (n,) = struct.unpack(">I", data[:4])
    mtype, body = msgpack.unpackb(data[4:4 + n], raw=False)
    assert mtype == ERROR
    return body


def hello_frame():
    return frame(HELLO, {"magic": "TPH1", "v": 1, "caps": 1, "pid": 1, "client": "x"})


def test_hostile_clients_beside_a_good_one(tmp_path):
    d = Daemon(TPHD, tmp_path, extra=["--frame-timeout", "1"]).start()
    good_acks = []
    stop = threading.Event()

    def good():
        with d.connect() as c:
            c.funcs({0: ("app", "main", "/src/app.py", 10), 1: ("app", "helper", "/src/app.py", 20)})
            n = 0
            while not stop.is_set():
                simple_trace(c, tid(n, "a"), describe=False)
                good_acks.append(c.recv())
                n += 1

    g = threading.Thread(target=good)
    g.start()
    try:
        rnd = random.Random(4)
        # Random bytes.
        for _ in range(20):
            s = raw(d)
            s.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 4096))))
            s.shutdown(socket.SHUT_WR)
            read_until_closed(s)
            s.close()
        # A declared length over the limit.
        s = raw(d)
        s.sendall(b"\xff\xff\xff\xff")
        assert first_error(read_until_closed(s))["code"] == ERR["FRAME_TOO_LARGE"]
        # A frame claiming 2^31 array elements in 10 bytes.
        s = raw(d)
        payload = b"\x92\x01\xdd\x80\x00\x00\x00"
        s.sendall(struct.pack(">I", len(payload)) + payload)
        assert first_error(read_until_closed(s))["code"] in (ERR["TRUNCATED"], ERR["LIMIT"],
                                                             ERR["TYPE"], ERR["MALFORMED"])
        # Wrong types: v as a string.
        s = raw(d)
        s.sendall(frame(HELLO, {"magic": "TPH1", "v": "1", "client": "x", "pid": 1}))
        assert first_error(read_until_closed(s))["code"] == ERR["TYPE"]
        # EVENTS records not a multiple of 16 bytes, after a good handshake.
        s = raw(d)
        s.sendall(hello_frame() + frame(EVENTS, {"trace": "a" * 32, "seq": 0, "ev": b"x" * 17}))
        data = read_until_closed(s)
        (n,) = struct.unpack(">I", data[:4])
        assert first_error(data[4 + n:])["code"] in (ERR["MALFORMED"], ERR["TYPE"])
        # Slow-loris: half a header, then silence; and a client that never says HELLO.
        t0 = time.time()
        loris, mute = raw(d), raw(d)
        loris.sendall(hello_frame() + b"\x00\x00")
        data = read_until_closed(loris)
        # WELCOME, then ERROR, then EOF.
        (n,) = struct.unpack(">I", data[:4])
        assert first_error(data[4 + n:])["code"] == -110  # -ETIMEDOUT
        assert first_error(read_until_closed(mute))["msg"] == "no HELLO within 1 s"
        assert time.time() - t0 < 10
    finally:
        stop.set()
        g.join(60)
    assert len(good_acks) >= 3
    assert all(m == (ACK, {"trace": tid(i, "a")}) for i, m in enumerate(good_acks))
    with d.connect() as c:
        assert c.qjson("status")["traces"] == len(good_acks)
    assert_clean_stop(d)


def test_peer_process_is_stamped(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    with d.connect() as c:
        simple_trace(c, tid(1))
        assert c.recv()[0] == ACK
        g = c.qjson("get", {"id": tid(1)})
    with open(f"/proc/{os.getpid()}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    assert (g["uid"], g["pid"], g["pstart"]) == (os.getuid(), os.getpid(), start)
    assert_clean_stop(d)


# ---- retention -------------------------------------------------------------------------


def test_retention_by_age_and_size(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    now = time.time_ns()
    with d.connect() as c:
        c.funcs({0: ("m", "f", "m.py", 1)})
        for k in range(10):
            c.begin(tid(k))
            ev = Events()
            for i in range(2000):
                ev.call(0, i, "p" * 200).ret(i + 1)
            c.events(tid(k), 0, ev)
            c.end(tid(k), 3000, 2000)
            assert c.recv()[0] == ACK
        simple_trace(c, tid(100), t0=now - 10 * 86400 * 10**9)  # ten days old
        assert c.recv()[0] == ACK
    assert_clean_stop(d)
    size = os.path.getsize(d.db)
    assert size > 4 << 20
    d.extra = ["--retention", "7d", "--max-db-size", "2M"]
    d.start()
    with d.connect() as c:
        left = wait_for(lambda: (lambda ids: ids if tid(100) not in ids and len(ids) < 10 else None)(
            [t["id"] for t in c.qjson("list")["traces"]]))
        assert left
        # The newest survive, the oldest went first.
        assert left == [tid(k) for k in range(9, 9 - len(left), -1)]
    assert_clean_stop(d)
    # Freed pages went back to the file system (they reach the main file at
    # the checkpoint on the way out).
    assert os.path.getsize(d.db) < 3 << 20


def test_shutdown_does_not_wait_forever_for_a_client_that_reads_nothing(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    with d.connect() as c:
        c.funcs({0: ("m", "f", "m.py", 1)})
        send_calls(c, tid(1), 60000, batch=20000, arg="a" * 200)
        assert c.recv()[0] == ACK
        # Ask for ~25 MB and never read it.
        c.qid += 1
        c.send(QUERY, {"id": c.qid, "op": "export", "args": '{"id": "%s"}' % tid(1)})
        time.sleep(1)
        t0 = time.time()
        assert_clean_stop(d, timeout=60)
        assert time.time() - t0 < 20


def test_sigterm_right_after_a_restart_with_work_left_stops_cleanly(tmp_path):
    """Shutdown while the finalizer (and the truncation of traces a crash
    left open) is still at work: every stop exits 0 with a log free of
    sanitizer reports, whatever moment the signal lands on."""
    base = tmp_path / "base"
    base.mkdir()
    d = Daemon(TPHD, base).start()
    with d.connect() as c:
        c.funcs({0: ("m", "f", "m.py", 1)})
        for k in range(4):
            c.begin(tid(k, "0"))
            c.events(tid(k, "0"), 0, Events().call(0, 1, "open").ret(2))
        # Acknowledged faster than the finalizer gets through them: most are
        # still unfinalized when tphd dies.
        for n in range(40):
            send_calls(c, tid(n), 5000 + n, batch=5000)
        assert sorted(c.recv()[1]["trace"] for _ in range(40)) == [tid(n) for n in range(40)]
        d.kill9()
    os.remove(d.sock)
    for i in range(10):
        run = tmp_path / f"run{i}"
        shutil.copytree(base / "state", run / "state")
        d = Daemon(TPHD, run).start()
        if i % 2:
            with d.connect() as c:
                assert c.qjson("list", {"limit": 1})["total"] == 44
        time.sleep(i * 0.002)
        assert_clean_stop(d)
        log = d.read_log()
        assert "4 left open by a crash marked truncated" in log, log
        assert "ERROR" not in log and "runtime error" not in log, log[-6000:]
