"""Output speed of a finished trace: tree() and to_json() on 200k calls.

    PYTHONPATH=build-312/client_ext python3.12 tests/bench/bench_output.py [--json]

Two traces of exactly OUTPUT_CALLS calls recorded with arguments and return
values (the defaults): "fib+loop" (fib(24), 150,049 calls, then a loop of
two-argument calls for the rest: shallow, short arguments) and "stdlib"
(email parsing and the pure-Python json encoder, repeated: deeper stacks,
real objects as arguments). For each, the best of REPEAT wall-clock runs of
trace.to_json() (the default, pretty text), to_json(compact=True),
to_json(path) (streamed to a file), tree() and tree(fold=False). The first
output of a trace also builds its call tree from the event log; that
one-time cost is printed apart ("build").

Nothing here is a test: it prints figures, after asserting that each trace
recorded exactly OUTPUT_CALLS calls and hit no limit.
"""

import gc
import json
import os
import sys
import tempfile
import time

import tracepatch
from tracepatch import _tracepatch

REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
OUTPUT_CALLS = 200_000
FIB24_CALLS = 150_049  # fib(n) makes 2 * fib(n + 1) - 1 calls


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def two(a, b):
    return a if a & 1 else b


def fib_loop():
    fib(24)
    f = two
    # The loop makes up the rest; fib_loop itself is one call.
    for i in range(OUTPUT_CALLS - FIB24_CALLS - 1):
        f(i, "xy")


MESSAGE = (
    "From: Ada <ada@example.com>\n"
    "To: Bob <bob@example.org>\n"
    "Subject: the numbers\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Hello Bob,\nhere they are.\n"
)
DATA = {"items": [{"id": i, "pair": [i * 0.5, i], "tag": "t%d" % i} for i in range(10)]}


def stdlib_round():
    import email
    import json.encoder

    m = email.message_from_string(MESSAGE)
    m.get("Subject")
    enc = json.encoder.JSONEncoder()
    "".join(enc.iterencode(DATA))


def record(fn, max_calls):
    t = tracepatch.trace(max_calls=max_calls, max_depth=1000, max_time=600.0, daemon="off",
                         cache=False)
    with t:
        fn()
    return t


def stdlib_trace():
    """A stdlib trace of exactly OUTPUT_CALLS calls: rounds until the limit,
    measured first so that the final round stops short by itself."""
    import json.encoder

    json.encoder.c_make_encoder = None  # the pure-Python encoder
    stdlib_round()  # imports and caches: the first round is not like the others
    per_round = record(stdlib_round, 10_000_000).call_count  # stdlib_round included
    rounds = (OUTPUT_CALLS - 1) // per_round
    rest = OUTPUT_CALLS - rounds * per_round

    def run():
        for _ in range(rounds):
            stdlib_round()
        f = two
        for i in range(rest - 1):  # run() itself is one call
            f(i, "xy")

    return record(run, 10_000_000)


def best(fn):
    times = []
    for _ in range(REPEAT):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(t):
    assert t.call_count == OUTPUT_CALLS and not t.was_limited, (t.call_count, t.limit_reason)
    out = {"calls": t.call_count}
    t0 = time.perf_counter()
    t.stats  # noqa: B018 (the first output builds the tree)
    out["build_s"] = time.perf_counter() - t0
    out["to_json_s"] = best(t.to_json)
    out["to_json_bytes"] = len(t.to_json().encode())
    out["to_json_compact_s"] = best(lambda: t.to_json(compact=True))
    with tempfile.TemporaryDirectory(prefix="tpbench-") as d:
        path = os.path.join(d, "trace.json")
        out["to_json_path_s"] = best(lambda: t.to_json(path))
    out["tree_s"] = best(t.tree)
    out["tree_nofold_s"] = best(lambda: t.tree(fold=False))
    return out


def main():
    results = {"python": "%d.%d.%d" % sys.version_info[:3], "hook": _tracepatch.HOOK,
               "traces": {}}
    results["traces"]["fib+loop"] = measure(record(fib_loop, 10_000_000))
    results["traces"]["stdlib"] = measure(stdlib_trace())
    if "--json" in sys.argv:
        print(json.dumps(results, indent=2))
        return
    print("Python %s (%s), best of %d, wall clock" % (results["python"], results["hook"], REPEAT))
    for name, r in results["traces"].items():
        print("  %s: %d calls with args and returns, build %.0f ms" % (name, r["calls"],
                                                                         r["build_s"] * 1e3))
        print("    to_json() %.0f ms (%.1f MB) | compact %.0f ms | to_json(path) %.0f ms"
              % (r["to_json_s"] * 1e3, r["to_json_bytes"] / 1e6, r["to_json_compact_s"] * 1e3,
                 r["to_json_path_s"] * 1e3))
        print("    tree() %.0f ms | tree(fold=False) %.0f ms" % (r["tree_s"] * 1e3,
                                                                 r["tree_nofold_s"] * 1e3))


if __name__ == "__main__":
    main()
