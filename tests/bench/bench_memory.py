"""Memory per recorded call, structure only (show_args/show_return off), on
call-only and generator-heavy workloads: what the event log holds (16 B per
record: a call is CALL + RETURN, a generator's suspension is YIELD + RESUME)
against the process's RSS growth while it records (measured inside the
`with` block), once the trace has ended (cache off: no file written), and
once t.tree() has built the call tree every output reads.

    PYTHONPATH=build/client_ext python3 tests/bench/bench_memory.py [--scale N]

Each workload runs in its own child process so RSS starts fresh. Prints one
line per workload: calls, suspensions, records, log bytes per call and per
record, and RSS growth per call."""

import argparse
import json
import subprocess
import sys

CHILD = r'''
import gc, json, sys
from tracepatch import trace

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def loop(n):
    def f(i):
        return i
    for i in range(n):
        f(i)

def gens(n):
    def g(k):
        for i in range(k):
            yield i
    for _ in range(n // 8):
        sum(g(7))

def stdlib(n):
    import difflib, email, json as js, re
    msg = "From: a@b\nTo: c@d\nSubject: hi\n\n" + "body line\n" * 20
    a = ["line %d" % i for i in range(60)]
    b = a[:30] + ["x"] + a[31:]
    done = 0
    while done < n:
        email.message_from_string(msg)
        js.loads(js.dumps({"k": list(range(50)), "s": "t" * 40}))
        re.findall(r"\w+@\w+", msg)
        list(difflib.unified_diff(a, b))
        done += 1
    return done

name, scale = sys.argv[1], int(sys.argv[2])
work = {"fib": lambda: fib(scale), "loop": lambda: loop(scale), "gens": lambda: gens(scale),
        "stdlib": lambda: stdlib(scale)}[name]
work()  # imports and caches outside the measurement
gc.collect()
before = rss()
with trace(daemon="off", cache=False, show_args=False, show_return=False, max_calls=10**9,
           max_depth=10**6, max_time=3600) as t:
    work()
    recorded = rss()  # what recording held, before stop() and any tree
after = rss()
t.tree()  # the call tree the outputs read, built once and kept
built = rss()
s = t._session
susp = 0
if name in ("gens", "stdlib"):
    stack = list(t.roots)
    while stack:
        n = stack.pop()
        susp += n.suspends
        stack.extend(n.children)
print(json.dumps({"calls": s.call_count, "records": s.event_count, "log": s.memory_bytes,
                  "rss": recorded - before, "rss_after": after - before, "rss_tree": built - before, "susp": susp}))
'''

SCALES = {"fib": 27, "loop": 400_000, "gens": 800_000, "stdlib": 300}


def run(name, scale):
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(scale)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = {}
    for name, scale in SCALES.items():
        sc = scale if name == "fib" else int(scale * a.scale)
        r = run(name, sc)
        r["log_per_call"] = r["log"] / r["calls"]
        r["log_per_record"] = r["log"] / r["records"]
        r["rss_per_call"] = r["rss"] / r["calls"]
        r["rss_after_per_call"] = r["rss_after"] / r["calls"]
        r["rss_tree_per_call"] = r["rss_tree"] / r["calls"]
        rows[name] = r
        if not a.json:
            print(f"{name:7} calls {r['calls']:>9,} suspensions {r['susp']:>9,} records "
                  f"{r['records']:>10,} | log {r['log_per_call']:6.1f} B/call "
                  f"{r['log_per_record']:5.2f} B/record | RSS +{r['rss_per_call']:6.1f} B/call recording, "
                  f"+{r['rss_after_per_call']:6.1f} ended, +{r['rss_tree_per_call']:6.1f} with its tree")
    if a.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
