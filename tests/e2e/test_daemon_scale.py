"""tphd's cost grows no faster than n log n in what a client sends: a trace
whose thread ids arrive in descending order (each new id sorts first) is
stored, queried and finalized in time linear in its threads, and a SIGTERM
under such load stops within seconds."""
import os
import time

import pytest

import tphd_wire
from tphd_wire import ACK, TPHD, Daemon, Events

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")

NTHREADS = 150_000
# Stopping must fit well inside systemd's TimeoutStopSec=30; with a sorted
# thread table this load took 13-36 s.
STOP_BOUND_S = 5.0
QUERY_BOUND_S = 5.0


def send_descending_threads(c, trace, n=NTHREADS):
    """One call on each of n threads, numbered n..1 in the order they appear."""
    c.funcs({0: ("m", "f", "m.py", 1)})
    c.begin(trace)
    seq, ev, t = 0, Events(), 1000
    for k in range(n, 0, -1):
        ev.thread(k, t, "w").call(0, t + 1).ret(t + 2)
        t += 3
        if len(ev) >= 30_000:
            c.events(trace, seq, ev)
            seq, ev = seq + 1, Events()
    c.events(trace, seq, ev)
    c.end(trace, t + 10, n)
    return t + 10


def test_descending_thread_ids_are_stored_and_queried_in_linear_time(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    trace = "d" * 32
    # The connection's timeout bounds every answer below: 150k threads took
    # over 30 s to fold and count with the sorted table.
    with d.connect(timeout=30) as c:
        send_descending_threads(c, trace)
        assert c.recv()[0] == ACK
        # A first query rebuilds the tree from the stored events: 150k
        # threads took 7-40 s with the sorted table, 0.2 s with the hash.
        t0 = time.monotonic()
        stats = c.qjson("stats", {"id": trace, "format": "json"})
        took = time.monotonic() - t0
        assert (stats["calls"], stats["unique_functions"]) == (NTHREADS, 1)
        assert took < QUERY_BOUND_S, f"the first stats query took {took:.1f} s"
        summary = c.qjson("get", {"id": trace, "what": "summary"})
        assert (summary["calls"], summary["status"]) == (NTHREADS, "complete")
    t0 = time.monotonic()
    assert d.stop(timeout=60) == 0, d.read_log()
    assert time.monotonic() - t0 < STOP_BOUND_S


def test_sigterm_with_a_descending_thread_trace_queued_stops_within_bound(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    trace = "e" * 32
    with d.connect(timeout=30) as c:
        send_descending_threads(c, trace)
        assert c.recv()[0] == ACK
        # Acknowledged: committed, its fold and statistics under way (a stop
        # that comes before they start leaves them to the next start).
        time.sleep(0.3)
        t0 = time.monotonic()
        rc = d.stop(timeout=60)
        took = time.monotonic() - t0
    assert rc == 0, d.read_log()
    assert took < STOP_BOUND_S, f"stopping took {took:.1f} s"
    # Nothing acknowledged was lost: a restart serves it, complete.
    d.start()
    with d.connect(timeout=30) as c:
        summary = c.qjson("get", {"id": trace, "what": "summary"})
        assert (summary["calls"], summary["status"]) == (NTHREADS, "complete")
    tphd_wire.assert_clean_stop(d)
