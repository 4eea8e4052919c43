#!/usr/bin/env python3
"""tphd's peak memory (VmHWM) while it answers big queries: `tph tree` of a
trace 200,000 calls deep, and N concurrent `tph export --format json` of a
large trace. Prints figures; asserts nothing (issue #10: queries stream in
bounded memory).

    TRACEPATCH_BUILD=build python3 tests/bench/bench_query_mem.py [--calls N] [--clients N]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
import tphd_wire as w  # noqa: E402

BUILD = Path(os.environ.get("TRACEPATCH_BUILD", "build")).resolve()
TPHD, TPH = BUILD / "daemon" / "tphd" / "tphd", BUILD / "daemon" / "tph" / "tph"


def hwm_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def seed_deep(sock, depth):
    tid = "d" * 32
    with w.Conn(str(sock)) as c:
        c.funcs({0: ("deep", "level", "/srv/deep.py", 1)})
        c.begin(tid, label="deep")
        ev, t, seq = w.Events(), 1000, 0
        for i in range(2 * depth):
            t += 10
            if i < depth:
                ev.call(0, t, "n=1")
            else:
                ev.ret(t, "None")
            if len(ev) >= 50_000:
                c.events(tid, seq, ev)
                seq, ev = seq + 1, w.Events()
        c.events(tid, seq, ev)
        c.end(tid, t + 10, depth)
        while True:
            m = c.recv()
            if m is None or m[0] in (w.ACK, w.ERROR):
                break
    return tid


def seed_big(sock, calls):
    r = subprocess.run([sys.executable, str(HERE.parent / "e2e" / "web" / "seed.py"), str(sock),
                        "big", "--calls", str(calls)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["big"]


def start(tmp, db, extra):
    sock = Path(tmp) / f"s{time.monotonic_ns()}.sock"
    p = subprocess.Popen([str(TPHD), "--no-http", "--socket", str(sock), "--db", str(db), *extra],
                         stderr=subprocess.DEVNULL)
    while not sock.exists():
        time.sleep(0.02)
    time.sleep(0.2)
    return p, sock


def tph(sock, *args):
    return subprocess.run([str(TPH), "--socket", str(sock), *args], stdout=subprocess.DEVNULL,
                          env={**os.environ, "TPH_TIMEOUT": "300"},
                          stderr=subprocess.PIPE, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300_000)
    ap.add_argument("--depth", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("extra", nargs="*", help="more tphd options")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "t.db"
        p, sock = start(tmp, db, a.extra)
        deep, big = seed_deep(sock, a.depth), seed_big(sock, a.calls)
        time.sleep(3)  # finalization
        p.terminate()
        p.wait()
        # Each figure from a fresh tphd on the same database.
        p, sock = start(tmp, db, a.extra)
        base = hwm_kib(p.pid)
        t0 = time.monotonic()
        r = tph(sock, "tree", deep)
        print(f"tree depth {a.depth}: rc {r.returncode}, {time.monotonic() - t0:.1f} s, "
              f"VmHWM {base // 1024} -> {hwm_kib(p.pid) // 1024} MiB")
        p.terminate()
        p.wait()
        p, sock = start(tmp, db, a.extra)
        tph(sock, "export", big, "--format", "json", "-o", "/dev/null")  # the tree is cached
        base = hwm_kib(p.pid)
        rcs, errs = [], set()

        def one():
            r = tph(sock, "export", big, "--format", "json", "-o", "/dev/null")
            rcs.append(r.returncode)
            if r.returncode:
                errs.add(r.stderr.strip())
        t0 = time.monotonic()
        ts = [threading.Thread(target=one) for _ in range(a.clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print(f"{a.clients} concurrent exports of {a.calls} calls: rcs {sorted(set(rcs))}, "
              f"{time.monotonic() - t0:.1f} s, VmHWM {base // 1024} -> {hwm_kib(p.pid) // 1024} MiB")
        for e in sorted(errs):
            print("  error:", e)
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()
