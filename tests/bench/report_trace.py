"""A less regular 1M-call trace than seed.py's "big" for bench_report.mjs:
real Python calls of three helpers in random order (few fold), random
arguments and timings, some handled exceptions. Writes t.to_html() to the
path given:
  PYTHONPATH=build/client_ext python3 tests/bench/report_trace.py /tmp/real.html
  TRACEPATCH_BUILD=$PWD/build node tests/bench/bench_report.mjs /tmp/real.html
"""
import random
import sys

from tracepatch import trace

random.seed(7)


def leaf(k, s):
    return len(s) + k


def parse(k, s):
    return s.upper()


def check(k, s):
    if k % 7 == 3:
        try:
            raise ValueError("bad " + s)
        except ValueError:
            pass
    return k


FS = [leaf, parse, check]


def mid(i, words):
    tot = 0
    for j, w in enumerate(words):
        FS[random.randrange(3)](j, w)
    return tot


def work(n):
    out = 0
    for i in range(n):
        words = [random.choice(["alpha", "beta", "gamma", "delta"]) + str(random.randint(0, 99999))
                 for _ in range(random.randint(3, 12))]
        out += mid(i, words)
    return out


random.seed(7)
with trace(label="bench-real", max_calls=1000000, max_depth=10, cache=False, daemon="off",
           include_modules=["__main__"]) as t:
    work(140000)
html = t.to_html()
with open(sys.argv[1], "w") as f:
    f.write(html)
print(f"{t.call_count} calls, {len(html.encode())} bytes, {len(html.encode()) / t.call_count:.2f} B/call")
