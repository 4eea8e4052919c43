"""Benchmark: what trace(lines=[f]) costs the code that is not f.

    PYTHONPATH=build/client_ext python3 tests/bench/bench_lines.py

The workload (a loop of LOOP calls to a two-argument function, none of them
chosen) runs, best of REPEAT, untraced, in a trace() and in a
trace(lines=[chosen]) where `chosen` runs once. Times are the thread's CPU
time. The two traced figures should match within noise on every version:
line events are enabled on `chosen`'s code only (3.12+), or `chosen` alone
runs an instrumented copy of its code (3.10/3.11). Prints figures; no test.
"""

import os
import sys
import time

from tracepatch import trace

REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
LOOP = int(os.environ.get("BENCH_LOOP", "200000"))
CLOCK = time.thread_time


def two(a, b):
    return a if a & 1 else b


def chosen(n):
    total = 0
    for i in range(n):
        total += i
    return total


def workload():
    chosen(10)
    for i in range(LOOP):
        two(i, 1)


def best(run):
    times = []
    for _ in range(REPEAT):
        t0 = CLOCK()
        run()
        times.append(CLOCK() - t0)
    return min(times)


def traced(**options):
    def run():
        with trace(cache=False, daemon="off", max_calls=LOOP + 10, show_args=False,
                   show_return=False, **options):
            workload()
    return run


def main():
    base = best(workload)
    plain = best(traced())
    lines = best(traced(lines=[chosen]))
    print(f"python {sys.version.split()[0]}, {LOOP} calls, best of {REPEAT}")
    print(f"untraced        {base * 1e3:8.1f} ms")
    print(f"trace()         {plain * 1e3:8.1f} ms  ({(plain - base) / LOOP * 1e9:6.1f} ns/call)")
    print(f"trace(lines=)   {lines * 1e3:8.1f} ms  ({(lines - base) / LOOP * 1e9:6.1f} ns/call)")
    print(f"lines= / plain  {lines / plain:8.3f}")


if __name__ == "__main__":
    main()
