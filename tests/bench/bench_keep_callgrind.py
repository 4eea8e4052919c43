"""Instructions per request of a discarded keep="slow" trace, counted by
callgrind (bench_keep.py measures the same in CPU time, which drifts with
machine load; instruction counts do not).

    PYTHONPATH=build/client_ext python3 tests/bench/bench_keep_callgrind.py [N]

A request is bench_keep.py's handle(): 62 Python calls. Each mode runs in its
own process under valgrind twice, with 0 and with N requests (after 50 to warm
up); (instructions(N) - instructions(0)) / N is one request's cost:

  untraced     handle() alone
  session      the recording alone: a bare Session, structure only
  discarded    with trace(keep="slow", keep_slower_than=1.0): recorded, dropped
  frame        with tracepatch.frame("request", trace=True, ...): the same
               inside a frame

Nothing here is a test: it prints figures.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ("untraced", "session", "discarded", "frame")


def child(mode, n):
    sys.path.insert(0, HERE)
    import bench_keep as k  # sets TRACEPATCH_SOCKET where no daemon listens

    fn = {"untraced": k.untraced, "session": k.session_only, "discarded": k.discarded,
          "frame": k.frame_discarded}[mode]
    for _ in range(50):
        fn()
    for _ in range(n):
        fn()


def instructions(mode, n):
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                        sys.executable, os.path.abspath(__file__), "--child", mode, str(n)],
                       capture_output=True, text=True, check=True)
    return int(re.search(r"refs:\s+([\d,]+)", r.stderr).group(1).replace(",", ""))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    per = {m: (instructions(m, n) - instructions(m, 0)) / n for m in MODES}
    print(f"instructions per request of 62 calls, {sys.version.split()[0]}, N={n}")
    for m in MODES:
        extra = "" if m == "untraced" else f"  (+{per[m] - per['untraced']:,.0f} over untraced)"
        print(f"{m:10s} {per[m]:10,.0f}{extra}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
