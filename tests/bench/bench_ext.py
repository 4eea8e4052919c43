"""Benchmark of the _tracepatch extension against cProfile, in one process.

Run with a release build of the extension on PYTHONPATH:

    meson setup build-rel . -Dpython=python3.12 -Ddaemon=false --buildtype=release
    ninja -C build-rel
    PYTHONPATH=build-rel/client_ext python3.12 tests/bench/bench_ext.py [--json]

Workloads: fib(25) (242,786 calls with run_fib) and a loop of 300,000 calls to a
two-argument function. Times are the thread's CPU time (time.thread_time()),
which a loaded machine disturbs far less than wall-clock time. For each, the best of REPEAT runs of: untraced,
cProfile, tracepatch structure only (show_args=False, show_return=False) and
tracepatch with arguments and return values. Overhead per call is
(time traced - time untraced) / calls; the ratio divides ours by cProfile's.
Also track_memory=True (structure only): tracemalloc alone (the workload
untraced while tracemalloc traces) and tracepatch with track_memory, whose
overhead per call is given over each of the two baselines.
Also: memory of the event log per recorded call (the session's own count and
tracemalloc's), and the time of Session.tree() and to_json() on 200k calls.
Nothing here is a test: it prints figures, after asserting that each trace
recorded every call of its workload (call_count exact, no limit hit).
"""

import cProfile
import gc
import json
import os
import sys
import time
import tracemalloc

from tracepatch import _tracepatch

REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
CLOCK = time.thread_time
LOOP = 300_000


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def two(a, b):
    return a if a & 1 else b


def loop():
    f = two
    for i in range(LOOP):
        f(i, "xy")


def run_fib():
    fib(25)


# Python calls of each workload, its run_fib / loop function included:
# fib(n) makes 2 * fib(n + 1) - 1 calls, so fib(25) is 242,785.
WORKLOADS = {"fib(25)": (run_fib, 242_785 + 1), "loop 300k two(a, b)": (loop, LOOP + 1)}
FIB24_CALLS = 150_049
OUTPUT_CALLS = 200_000


def timed(fn, setup=None, teardown=None):
    best = float("inf")
    for _ in range(REPEAT):
        gc.collect()
        gc.disable()
        ctx = setup() if setup else None
        t0 = CLOCK()
        fn()
        t1 = CLOCK()
        if teardown:
            teardown(ctx)
        gc.enable()
        best = min(best, t1 - t0)
    return best


def session(args, mem=False):
    return _tracepatch.Session(max_calls=2_000_000, max_depth=1000, max_time=600.0,
                               show_args=args, show_return=args, track_memory=mem)


def traced(fn, args, mem=False):
    sessions = []

    def setup():
        if mem:
            tracemalloc.start()
        s = session(args, mem)
        s.start()
        sessions.append(s)
        return s

    def teardown(s):
        s.stop()
        if mem:
            tracemalloc.stop()

    t = timed(fn, setup, teardown)
    return t, sessions[-1]


def tracemalloc_alone(fn):
    return timed(fn, lambda: tracemalloc.start(), lambda _: tracemalloc.stop())


def profiled(fn):
    def setup():
        p = cProfile.Profile()
        p.enable()
        return p

    def teardown(p):
        p.disable()

    return timed(fn, setup, teardown)


def memory(fn, args):
    """Bytes per recorded call: (session count, tracemalloc peak delta)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    s = session(args)
    s.start()
    fn()
    s.stop()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    calls = s.call_count
    return s.memory_bytes / calls, used / calls, s


def outputs():
    """Session.tree() and to_json() on about 200k recorded calls."""
    # fib(24) is 150,049 calls (2 * fib(25) - 1), the loop the rest of 200,000.
    # max_calls is above the total so that no limit cuts the trace short.
    s = _tracepatch.Session(max_calls=OUTPUT_CALLS + 1, max_depth=1000)
    s.start()
    fib(24)
    f = two
    for i in range(OUTPUT_CALLS - FIB24_CALLS):
        f(i, "xy")
    s.stop()
    assert s.call_count == OUTPUT_CALLS and not s.was_limited, (s.call_count, s.limit_reason)
    t0 = time.perf_counter()
    tree_text = s.tree()  # the first output also builds the tree from the log
    t1 = time.perf_counter()
    s.tree()
    t2 = time.perf_counter()
    js = s.to_json(pretty=False)
    t3 = time.perf_counter()
    return s.call_count, t1 - t0, t2 - t1, t3 - t2, len(tree_text), len(js)


def main():
    as_json = "--json" in sys.argv
    ver = "%d.%d.%d" % sys.version_info[:3]
    results = {"python": ver, "hook": _tracepatch.HOOK, "workloads": {}}
    for name, (fn, calls) in WORKLOADS.items():
        base = timed(fn)
        prof = profiled(fn)
        t_struct, s1 = traced(fn, False)
        t_args, s2 = traced(fn, True)
        t_tm = tracemalloc_alone(fn)
        t_mem, s4 = traced(fn, False, mem=True)
        n = s1.call_count
        # A figure is only worth printing for the calls it claims to cover
        # (the workload's, and teardown(), which calls stop()).
        for s in (s1, s2, s4):
            assert s.call_count == calls + 1 and not s.was_limited, (name, s.call_count, calls,
                                                                     s.limit_reason)
        over_prof = (prof - base) / calls
        over_struct = (t_struct - base) / n
        over_args = (t_args - base) / s2.call_count
        mem_struct, tm_struct, _ = memory(fn, False)
        mem_args, tm_args, s3 = memory(fn, True)
        text_per_call = (s3.memory_bytes - mem_struct * s3.call_count) / s3.call_count
        results["workloads"][name] = {
            "calls": n,
            "untraced_s": base,
            "cprofile_s": prof,
            "structure_s": t_struct,
            "args_s": t_args,
            "cprofile_ns_per_call": over_prof * 1e9,
            "structure_ns_per_call": over_struct * 1e9,
            "args_ns_per_call": over_args * 1e9,
            "structure_ratio": over_struct / over_prof,
            "args_ratio": over_args / over_prof,
            "tracemalloc_s": t_tm,
            "track_memory_s": t_mem,
            "track_memory_ns_per_call": (t_mem - base) / n * 1e9,
            "track_memory_over_tracemalloc_ns_per_call": (t_mem - t_tm) / n * 1e9,
            "structure_bytes_per_call": mem_struct,
            "structure_tracemalloc_bytes_per_call": tm_struct,
            "args_bytes_per_call": mem_args,
            "args_tracemalloc_bytes_per_call": tm_args,
            "args_text_bytes_per_call": text_per_call,
        }
    calls, t_tree, t_tree2, t_json, ltree, ljson = outputs()
    results["outputs"] = {"calls": calls, "tree_s": t_tree, "tree_again_s": t_tree2,
                          "to_json_s": t_json, "tree_chars": ltree, "json_chars": ljson}
    if as_json:
        print(json.dumps(results, indent=2))
        return
    print(f"Python {ver} ({results['hook']}), best of {REPEAT}")
    for name, r in results["workloads"].items():
        print(f"  {name}: {r['calls']} calls")
        print(f"    untraced {r['untraced_s'] * 1e3:8.1f} ms | cProfile {r['cprofile_s'] * 1e3:8.1f} ms"
              f" | structure {r['structure_s'] * 1e3:8.1f} ms | args+returns {r['args_s'] * 1e3:8.1f} ms")
        print(f"    overhead/call: cProfile {r['cprofile_ns_per_call']:6.1f} ns | structure "
              f"{r['structure_ns_per_call']:6.1f} ns ({r['structure_ratio']:.2f}x) | args+returns "
              f"{r['args_ns_per_call']:6.1f} ns ({r['args_ratio']:.2f}x)")
        print(f"    track_memory: tracemalloc alone {r['tracemalloc_s'] * 1e3:8.1f} ms | "
              f"traced {r['track_memory_s'] * 1e3:8.1f} ms | overhead/call "
              f"{r['track_memory_ns_per_call']:6.1f} ns "
              f"({r['track_memory_over_tracemalloc_ns_per_call']:6.1f} ns over tracemalloc)")
        print(f"    memory/call: structure {r['structure_bytes_per_call']:.1f} B (tracemalloc "
              f"{r['structure_tracemalloc_bytes_per_call']:.1f} B) | args+returns "
              f"{r['args_bytes_per_call']:.1f} B (text {r['args_text_bytes_per_call']:.1f} B, "
              f"tracemalloc {r['args_tracemalloc_bytes_per_call']:.1f} B)")
    o = results["outputs"]
    print(f"  outputs on {o['calls']} calls: first tree() {o['tree_s'] * 1e3:.1f} ms "
          f"(builds the tree; {o['tree_chars']} chars), again {o['tree_again_s'] * 1e3:.1f} ms | "
          f"to_json(pretty=False) {o['to_json_s'] * 1e3:.1f} ms ({o['json_chars']} chars)")


if __name__ == "__main__":
    main()
