"""Figures for tphd and the extension at their limits (issue 10); nothing
here is a test. Run with a build of the extension and tphd:

    TRACEPATCH_BUILD=build PYTHONPATH=build/client_ext:/usr/lib/python3/dist-packages \\
        python3 tests/bench/bench_limits.py [--json]

- partial frames: 20 clients each declare a 16 MiB frame and send 15 MiB of
  it, then hold; tphd's peak RSS (VmHWM) and how many were refused
  (--max-buffered, default 256M), against an idle tphd;
- stop under load: a trace of 150,000 threads numbered downwards is
  acknowledged while 4 clients keep sending traces; the time from SIGTERM to
  exit;
- exit: a program records 1,000,000 calls and exits right after its `with`;
  what tphd stored (calls, status), or the file and the message, and how long
  the exit took.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))

from tphd_wire import ACK, ERROR, Daemon, Events, simple_trace, tphd_binary  # noqa: E402

MiB = 1 << 20


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def daemon(tmp, name, extra=()):
    (tmp / name).mkdir()
    return Daemon(tphd_binary(), tmp / name, extra=extra).start()


def partial_frames(tmp):
    d = daemon(tmp, "pf")
    idle = hwm_kib(d.proc.pid)
    conns = [d.connect(timeout=30) for _ in range(20)]
    for c in conns:
        try:
            c.send_raw(struct.pack(">I", 16 * MiB) + b"\x92" + b"\0" * (15 * MiB))
        except OSError:
            pass
    time.sleep(1.0)
    refused = 0
    for c in conns:
        c.sock.settimeout(0.2)
        try:
            msg = c.recv()
            refused += msg is not None and msg[0] == ERROR
        except OSError:
            pass
    peak = hwm_kib(d.proc.pid)
    for c in conns:
        c.close()
    d.stop()
    return {"clients": 20, "refused": refused, "idle_rss_mib": round(idle / 1024, 1),
            "peak_rss_mib": round(peak / 1024, 1)}


def stop_under_load(tmp):
    d = daemon(tmp, "sl")
    stop = threading.Event()

    def stream(k):
        n = 0
        try:
            with d.connect(timeout=30) as c:
                while not stop.is_set():
                    simple_trace(c, f"{k:x}{n:031x}", describe=n == 0)
                    c.recv()
                    n += 1
        except Exception:  # noqa: BLE001 - tphd stops under us
            pass

    workers = [threading.Thread(target=stream, args=(k,)) for k in range(1, 5)]
    for w in workers:
        w.start()
    with d.connect(timeout=60) as c:
        c.funcs({0: ("m", "f", "m.py", 1)})
        trace = "f" * 32
        c.begin(trace)
        seq, ev, t = 0, Events(), 1000
        for k in range(150_000, 0, -1):
            ev.thread(k, t, "w").call(0, t + 1).ret(t + 2)
            t += 3
            if len(ev) >= 30_000:
                c.events(trace, seq, ev)
                seq, ev = seq + 1, Events()
        c.events(trace, seq, ev)
        c.end(trace, t + 10, 150_000)
        assert c.recv()[0] == ACK
        time.sleep(0.3)
        t0 = time.monotonic()
        rc = d.stop(timeout=120)
        took = time.monotonic() - t0
    stop.set()
    for w in workers:
        w.join()
    return {"exit_status": rc, "stop_s": round(took, 2)}


PROGRAM = '''
import sys, time
from tracepatch import trace
def leaf(i):
    return i
with trace(label="exit-1m", max_calls=1_000_010) as t:
    for i in range(1_000_000):
        leaf(i)
sys.stderr.write("with-ended %r\\n" % time.monotonic())
'''


def exit_1m(tmp):
    d = daemon(tmp, "ex")
    work = tmp / "work"
    work.mkdir()
    (work / "prog.py").write_text(PROGRAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEPATCH_")}
    env["TRACEPATCH_SOCKET"] = d.sock
    r = subprocess.run([sys.executable, "prog.py"], cwd=work, env=env, capture_output=True,
                       text=True, timeout=300)
    end = time.monotonic()
    lines = r.stderr.splitlines()
    ended = float(lines[0].split()[1]) if lines and lines[0].startswith("with-ended") else None
    with d.connect(timeout=60) as c:
        traces = c.qjson("list", {"limit": 10})["traces"]
    d.stop()
    files = [str(p) for p in work.rglob("*.json")]
    return {"stored": [(t["calls"], t["status"]) for t in traces], "files": files,
            "messages": lines[1:], "exit_after_with_s": round(end - ended, 2) if ended else None}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = {"partial_frames": partial_frames(tmp), "stop_under_load": stop_under_load(tmp),
               "exit_1m_calls": exit_1m(tmp)}
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
