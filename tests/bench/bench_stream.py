"""Benchmark of streaming traces from the extension to tphd.

Run with a build of the extension and tphd:

    TRACEPATCH_BUILD=build PYTHONPATH=build/client_ext:/usr/lib/python3/dist-packages \\
        python3 tests/bench/bench_stream.py [--json] [--traces N] [--gap MS]

Starts a tphd on a temporary socket and database (HTTP off), then, one trace
at a time (N of them, 100 by default), each ~100 calls:
- hand-over: how long the traced thread spends leaving the `with` block
  (stop + upload() hand-over), against the same trace with daemon="off" and
  no file (the recording alone);
- end -> ACK: from the end of the `with` block until wait_upload() returns;
- end -> visible: from the end of the `with` block until a `list` query on a
  second connection (what `tph logs` sends) shows the trace, polling every
  0.2 ms.
--gap MS sleeps that long between traces (100 ms lets the sender thread end
between traces, so each upload also starts a thread). Then one big trace
(200,000 calls): end -> ACK and the rate.

Then a live trace (--live S seconds, 3 by default) that streams while it
records (stream_after=0.05): one thread calls work(50) in a loop, noting its
call count every 10 ms, while another thread polls tphd's `list` every 2 ms
on its own connection; the latency of a sample is the time until tphd lists
at least that many calls. Also the call rate against the same loop with
daemon="off", end -> ACK of the live trace, the process's RSS growth and
the trace's event log at its end (bounded by stream_memory plus what tphd
has not stored yet).
Prints p50/p99 (ms) and figures; nothing here is a test.
"""

import json
import os
import resource
import statistics
import threading
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))

from tphd_wire import Daemon, tphd_binary  # noqa: E402

from tracepatch import trace  # noqa: E402


def leaf(i):
    return i * 2


def work(n):
    total = 0
    for i in range(n):
        total += leaf(i)
    return total


def pct(values, p):
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def summary(values):
    ms = [x * 1e3 for x in values]
    return {"p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(statistics.mean(ms), 3)}


def visible(conn, label):
    data = conn.qjson("list", {"label": label, "limit": 1})
    return data["total"] > 0


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def loop_for(seconds, samples=None, session=None, pace=0.0):
    """work(50) until `seconds` passed, sleeping `pace` s after each;
    samples gets (time, calls so far)."""
    end = time.perf_counter() + seconds
    next_sample = 0.0
    rounds = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            return rounds
        if samples is not None and now >= next_sample:
            samples.append((now, session.call_count))
            next_sample = now + 0.01
        work(50)
        rounds += 1
        if pace:
            time.sleep(pace)


def live(d, seconds, pace, label):
    seen, stop = [], threading.Event()

    def monitor():
        conn = d.connect()
        while not stop.is_set():
            data = conn.qjson("list", {"label": label, "limit": 1})
            if data["traces"]:
                seen.append((time.perf_counter(), data["traces"][0]["calls"]))
            time.sleep(0.002)
        conn.close()

    th = threading.Thread(target=monitor, daemon=True)
    th.start()
    samples = []
    rss0 = rss_mb()
    with trace(label=label, stream_after=0.05, max_calls=10**9) as t:
        rounds = loop_for(seconds, samples, t._session, pace)
        rss1 = rss_mb()
        log_mb = t._session.memory_bytes / 2**20
    end = time.perf_counter()
    t._session.wait_upload(60)
    to_ack = time.perf_counter() - end
    stop.set()
    th.join()
    calls, events, streamed, state = (t.call_count, t._session.event_count, t._session.streamed,
                                      t.upload_state)
    del t
    with trace(label="live-off", daemon="off", cache=False, max_calls=10**9) as t:
        rounds_off = loop_for(seconds, pace=pace)
    off_rate = t.call_count / seconds
    lat = []
    for ts, calls in samples[5:]:  # after stream_after
        first = next((tm for tm, c in seen if c >= calls and tm >= ts), None)
        if first is not None:
            lat.append(first - ts)
    return {
        "seconds": seconds, "pace_ms": pace * 1e3, "calls": calls, "events": events,
        "streamed": streamed, "state": state,
        "calls_per_s_streaming": round(calls / seconds),
        "calls_per_s_daemon_off": round(off_rate),
        "rate_ratio": round((calls / seconds) / off_rate, 3) if off_rate else None,
        "rounds": (rounds, rounds_off),
        "samples": len(lat), "call_to_visible": summary(lat) if lat else None,
        "end_to_ack_ms": round(to_ack * 1e3, 1), "rss_growth_mb": round(rss1 - rss0, 1),
        "log_mb_at_end": round(log_mb, 1),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main():
    as_json = "--json" in sys.argv
    n = 100
    if "--traces" in sys.argv:
        n = int(sys.argv[sys.argv.index("--traces") + 1])
    gap = 0.0
    if "--gap" in sys.argv:
        gap = float(sys.argv[sys.argv.index("--gap") + 1]) / 1e3
    tmp = tempfile.mkdtemp(prefix="bench-stream-")
    d = Daemon(tphd_binary(), tmp).start()
    try:
        os.environ["TRACEPATCH_SOCKET"] = d.sock
        os.chdir(tmp)
        conn = d.connect()
        # Warm up: the sender thread, the daemon's caches.
        for _ in range(5):
            with trace(label="warm") as t:
                work(50)
            t._session.wait_upload(5)
        off, handover, to_ack, to_visible = [], [], [], []
        for i in range(n):
            with trace(label="off", daemon="off", cache=False) as t:
                work(50)
                a = time.perf_counter()
            off.append(time.perf_counter() - a)

            label = "bench-%d" % i
            with trace(label=label) as t:
                work(50)
                a = time.perf_counter()
            end = time.perf_counter()
            handover.append(end - a)
            while not visible(conn, label):
                time.sleep(0.0002)
            to_visible.append(time.perf_counter() - end)
            t._session.wait_upload(5)
            to_ack.append(time.perf_counter() - end)
            assert t.upload_state == "acked", (t.upload_state, t.errors)
            if gap:
                time.sleep(gap)
        calls = t.call_count

        with trace(label="big", max_calls=300000) as big:
            work(200000)
        end = time.perf_counter()
        big._session.wait_upload(60)
        big_s = time.perf_counter() - end
        assert big.upload_state == "acked", big.errors
        conn.close()
        live_s = 3.0
        if "--live" in sys.argv:
            live_s = float(sys.argv[sys.argv.index("--live") + 1])
        live_out = [live(d, live_s, 0.0, "live"), live(d, live_s, 0.001, "live-paced")]
        out = {
            "traces": n, "calls_per_trace": calls, "gap_ms": gap * 1e3,
            "exit_with_block_daemon_off": summary(off),
            "exit_with_block_uploading": summary(handover),
            "end_to_ack": summary(to_ack),
            "end_to_visible_in_list": summary(to_visible),
            "big_trace": {"calls": big.call_count, "events": big._session.event_count,
                          "end_to_ack_ms": round(big_s * 1e3, 1),
                          "events_per_s": round(big._session.event_count / big_s)},
            "live": live_out,
        }
    finally:
        d.stop()
    if as_json:
        print(json.dumps(out, indent=2))
        return
    print(f"{n} traces of {out['calls_per_trace']} calls, one at a time, "
          f"{out['gap_ms']:g} ms apart")
    for key in ("exit_with_block_daemon_off", "exit_with_block_uploading", "end_to_ack",
                "end_to_visible_in_list"):
        s = out[key]
        print(f"  {key:30s} p50 {s['p50_ms']:8.3f} ms  p99 {s['p99_ms']:8.3f} ms  "
              f"max {s['max_ms']:8.3f} ms")
    b = out["big_trace"]
    print(f"  big trace: {b['calls']} calls, {b['events']} events, end -> ACK "
          f"{b['end_to_ack_ms']} ms ({b['events_per_s']:,} events/s)")
    for lv in out["live"]:
        print(f"  live trace, {lv['seconds']:g} s streaming, {lv['pace_ms']:g} ms sleep per 51 "
              f"calls: {lv['calls']:,} calls ({lv['calls_per_s_streaming']:,}/s; "
              f"{lv['calls_per_s_daemon_off']:,}/s with daemon off: {lv['rate_ratio']}x), "
              f"{lv['state']}, end -> ACK {lv['end_to_ack_ms']} ms, RSS +{lv['rss_growth_mb']} MB, "
              f"event log {lv['log_mb_at_end']} MB")
        c = lv["call_to_visible"]
        if c:
            print(f"    call -> visible in tph logs ({lv['samples']} samples): p50 "
                  f"{c['p50_ms']} ms  p99 {c['p99_ms']} ms  max {c['max_ms']} ms")


if __name__ == "__main__":
    main()
