"""--max-db-size protects the disk: on a small filesystem (a 20 MiB tmpfs
mounted here) the database and its WAL together stay near the limit while
traces keep coming (older ones are pruned as commits pass it, not once a
minute), and `tph clean` works even when something else filled the disk."""
import os
import shutil
import subprocess
import time

import pytest

import tphd_wire
from tphd_wire import ACK, ERROR, TPHD, Daemon, Events, assert_clean_stop

pytestmark = [
    pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built"),
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

MiB = 1 << 20


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    yield mnt
    tphd_wire.stop_all()
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def daemon_on(small_disk, tmp_path, extra):
    d = Daemon(TPHD, tmp_path, extra=extra)
    d.db = str(small_disk / "traces.db")
    return d.start()


def send_trace(c, trace, ncalls=4000, pad=200):
    """About ncalls * (pad + 40) bytes of stored text; returns the reply."""
    c.funcs({0: ("m", "f", "m.py", 1)})
    c.begin(trace)
    ev = Events()
    for i in range(ncalls):
        ev.call(0, 10 * i + 1, f"x={i}," + "p" * pad).ret(10 * i + 5, str(i))
    c.events(trace, 0, ev)
    c.end(trace, 10 * ncalls + 10, ncalls)
    return c.recv()


def db_bytes(path):
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def test_database_and_wal_stay_under_the_limit_on_a_small_disk(small_disk, tmp_path):
    d = daemon_on(small_disk, tmp_path, ["--max-db-size", "8M"])
    peak = 0
    with d.connect(timeout=30) as c:
        for k in range(40):  # about 40 MiB of traces through an 8 MiB budget
            msg = send_trace(c, f"{k:032x}")
            assert msg is not None and msg[0] == ACK, (k, msg, d.read_log()[-2000:])
            peak = max(peak, db_bytes(d.db))
        # The newest are kept, the oldest went.
        listed = [t["id"] for t in c.qjson("list", {"limit": 100})["traces"]]
    print(f"database and WAL peak {peak / MiB:.2f} MiB for --max-db-size 8M")
    assert listed[0] == f"{39:032x}"
    assert len(listed) < 40
    # Within the limit plus a quarter: the oldest go right after the commit
    # that passes half of it, and a WAL that a running checkpoint kept from
    # being truncated waits for the next commit. (Before: the disk filled.)
    assert peak <= 10 * MiB, f"database and WAL reached {peak / MiB:.1f} MiB"
    assert_clean_stop(d)


def test_a_trace_bigger_than_the_prune_target_is_kept_once_acknowledged(small_disk, tmp_path):
    # Pruning aims at half the limit; a trace of more than that used to be
    # acknowledged and deleted by the very commit's prune: an ACK then
    # meant nothing. The newest finished trace is never pruned; the one
    # before it goes when the next arrives.
    d = daemon_on(small_disk, tmp_path, ["--max-db-size", "8M"])
    with d.connect(timeout=30) as c:
        for k in range(3):
            msg = send_trace(c, f"{k:032x}", ncalls=16000)  # about 3.7 MiB of text each
            assert msg is not None and msg[0] == ACK, (k, msg, d.read_log()[-2000:])
            listed = [t["id"] for t in c.qjson("list", {"limit": 100})["traces"]]
            assert listed[0] == f"{k:032x}", (k, listed)
            assert c.qjson("get", {"id": f"{k:032x}"})["calls"] == 16000
    assert_clean_stop(d)


def test_clean_works_on_a_full_disk_and_enospc_is_named(small_disk, tmp_path):
    # With --max-db-size the WAL stays small, so what the traces hold is in
    # the main file and deleting them needs little room: the reserve's.
    d = daemon_on(small_disk, tmp_path, ["--max-db-size", "12M"])
    with d.connect(timeout=30) as c:
        for k in range(6):
            assert send_trace(c, f"{k:032x}")[0] == ACK
    # Let tphd finish with them (folding and statistics), then something
    # else fills the disk.
    time.sleep(1.0)
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def fill():
        wrote = 0
        for size in (MiB, 4096, 1):
            try:
                while n := os.write(fd, b"\0" * size):
                    wrote += n
            except OSError:
                pass
        return wrote

    try:
        # tphd may still free room (a checkpoint shrinking the WAL) after a
        # first fill on a loaded machine: fill until the disk stays full.
        fill()
        for _ in range(50):
            time.sleep(0.2)
            if fill() == 0:
                break
    finally:
        os.close(fd)
    assert os.statvfs(small_disk).f_bavail == 0
    with d.connect(timeout=30) as c:
        msg = send_trace(c, f"{99:032x}")
        assert msg is not None and msg[0] == ERROR, msg
        assert msg[1]["name"] == "ENOSPC", msg
        # The message and the log lines name it too, as tp_err names every
        # errno (before: "commit failed: database or disk is full" alone).
        assert msg[1]["msg"].endswith(" (ENOSPC)"), msg
    log = d.read_log().splitlines()
    client = [l for l in log if l.startswith("tphd: client ") and "database or disk is full" in l]
    assert client and all(l.endswith(" (ENOSPC)") for l in client), log[-20:]
    # The refused trace is ended (truncated) once its connection is gone;
    # tph clean leaves a trace that is still open alone, so wait for that
    # (cleaning at once left it listed, open, in a loaded run).
    with d.connect(timeout=30) as c:
        assert tphd_wire.wait_for(
            lambda: all(t["age_ms"] is None for t in c.qjson("list")["traces"]), timeout=30)
        # Whether its BEGIN was stored or not, it is never listed as complete.
        refused = [t for t in c.qjson("list")["traces"] if t["id"] == f"{99:032x}"]
        assert [t["status"] for t in refused] in ([], ["truncated"]), refused
    env = dict(os.environ, TRACEPATCH_SOCKET=d.sock)
    tph = os.path.join(os.path.dirname(os.path.dirname(TPHD)), "tph", "tph")
    r = subprocess.run([tph, "--socket", d.sock, "clean", "--all", "--daemon"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    with d.connect(timeout=30) as c:
        assert c.qjson("list")["traces"] == []
    os.unlink(small_disk / "filler")
    with d.connect(timeout=30) as c:
        assert send_trace(c, f"{100:032x}")[0] == ACK
    assert_clean_stop(d)
