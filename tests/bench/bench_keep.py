"""Per-request cost of trace(keep="slow") when the request is fast (the
trace is recorded, then dropped unserialised), against an untraced request,
cProfile around the request, and a kept trace (recorded and serialised);
also as frame("request", trace=True), one frame a request with its trace inside.
"Session only" is the recording without trace()'s
Python setup (settings, config file search). Also the cost of tracepatch.frame() / frame_mark() with no daemon.

    PYTHONPATH=build/client_ext python3 tests/bench/bench_keep.py

A "request" is handle(): 41 Python calls (a small view doing some parsing).
Times are the thread's CPU time, best of REPEAT runs of N requests, in µs
per request. Nothing here is a test: it prints figures.
"""

import cProfile
import os
import time
import timeit

os.environ["TRACEPATCH_SOCKET"] = "/nonexistent/tphd.sock"  # no daemon: nothing is sent

import tracepatch  # noqa: E402
from tracepatch import _tracepatch, trace  # noqa: E402

REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
N = int(os.environ.get("BENCH_N", "2000"))


def field(i):
    return i * 2


def parse(i):
    return field(i) + field(i + 1)


def handle(uid):
    return sum(parse(i) for i in range(uid))


def untraced():
    handle(20)


def discarded():
    with trace(keep="slow", keep_slower_than=1.0, daemon="off", cache=False):
        handle(20)


def frame_discarded():
    # The same, as a service writes it: one frame a request, its call tree
    # kept only when slow (here never: 1 s).
    with tracepatch.frame("request", trace=True, keep_slower_than=1.0, daemon="off",
                          cache=False):
        handle(20)


def session_only():
    # The recording alone: what keep="slow" pays beyond trace()'s setup.
    s = _tracepatch.Session(show_args=False, show_return=False)
    s.start()
    handle(20)
    s.stop()


def kept_json():
    with trace(keep="all", daemon="off", cache=False) as t:
        handle(20)
    t.to_json()


def profiled():
    p = cProfile.Profile()
    p.enable()
    handle(20)
    p.disable()


def best(fn):
    runs = []
    for _ in range(REPEAT):
        t0 = time.thread_time()
        for _ in range(N):
            fn()
        runs.append((time.thread_time() - t0) / N)
    return min(runs) * 1e6


def main():
    with trace() as t:
        handle(20)
    print(f"calls per request: {t.call_count}")
    base = best(untraced)
    print(f"untraced request          {base:8.2f} µs")
    for name, fn in (("keep=slow, discarded", discarded),
                     ("frame(trace=True), disc.", frame_discarded), ("Session only", session_only),
                     ("cProfile", profiled),
                     ("kept + to_json()", kept_json)):
        us = best(fn)
        print(f"{name:25s} {us:8.2f} µs  (+{us - base:.2f} µs)")
    tracepatch.frame_mark()  # the one probe for a daemon
    for stmt in ("frame_mark()", "with frame('request'): pass"):
        g = {"frame_mark": tracepatch.frame_mark, "frame": tracepatch.frame}
        ns = min(timeit.repeat(stmt, globals=g, number=200_000, repeat=REPEAT)) / 200_000 * 1e9
        print(f"no daemon: {stmt:30s} {ns:6.0f} ns")


if __name__ == "__main__":
    main()
