"""A very deep trace queried through a real tphd (issue #10, item 5): the
text tree's indentation stops at 64 levels ("[+N] " says how many are left
out), so `tph tree` of a 20,000-deep chain is one line per call and grows
linearly (it was 800 MB, depth squared), and tphd's memory stays small."""
import os
import subprocess

import pytest

import tphd_wire
from tphd_wire import ACK, TPHD, Daemon, Events, assert_clean_stop
from tphlib import TPH

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")

MiB = 1 << 20
TID = "d" * 32
DEPTH = 20_000


@pytest.fixture(autouse=True)
def _no_daemon_left_behind():
    yield
    tphd_wire.stop_all()


def hwm(d):
    with open(f"/proc/{d.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_tree_of_a_very_deep_trace_is_linear_with_elided_indentation(tmp_path):
    d = Daemon(TPHD, tmp_path, extra=["--no-http"]).start()
    base = hwm(d)
    with d.connect(timeout=60) as c:  # the hostile client: one chain, DEPTH deep
        c.funcs({0: ("m", "r", "m.py", 1)})
        c.begin(TID, label="deep")
        ev = Events()
        for i in range(DEPTH):
            ev.call(0, i)
        for i in range(DEPTH):
            ev.ret(DEPTH + i)
        c.events(TID, 0, ev)
        c.end(TID, 2 * DEPTH, DEPTH)
        assert c.recv()[0] == ACK
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEPATCH_", "TPH_"))}
    env["TPH_TIMEOUT"] = "300"
    r = subprocess.run([str(TPH), "--socket", d.sock, "tree", TID, "--style", "ascii"],
                       capture_output=True, env=env, timeout=600)
    assert (r.returncode, r.stderr) == (0, b"")
    lines = r.stdout.decode().splitlines()
    calls = [ln for ln in lines if "m.r()" in ln]
    assert len(calls) == DEPTH
    # The deepest call: the marker, 64 levels of 4 columns, the connector.
    want = f"[+{DEPTH - 1 - 64}] " + "    " * 64 + "`-- m.r()  [1ns]"
    assert calls[-1] == want
    assert max(len(ln) for ln in calls) <= len(want) + 8
    # Linear: about 300 bytes a call (depth squared would be 800 MB).
    assert len(r.stdout) < DEPTH * 300
    assert hwm(d) - base < 64 * MiB, ((hwm(d) - base) >> 20)
    assert_clean_stop(d)
