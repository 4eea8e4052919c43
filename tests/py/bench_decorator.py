"""Cost of the trace decorator (a benchmark, not a test: pytest does not collect it).

    PYTHONPATH=build-py311/client_ext python3 tests/py/bench_decorator.py

Prints ns per call for:
  plain           an undecorated function
  disabled        @trace with TRACEPATCH_ENABLED=0 when decorating (the
                  function itself is returned: the difference should be ~0)
  off-at-call     decorated while enabled, TRACEPATCH_ENABLED=0 when called
                  (a no-op trace per call)
  enabled         a recorded trace per call (Session, start, stop), cache off
"""

import os
import sys
import timeit


def main() -> None:
    import tracepatch

    def plain(x):
        return x + 1

    os.environ["TRACEPATCH_ENABLED"] = "0"

    @tracepatch.trace
    def disabled(x):
        return x + 1

    os.environ["TRACEPATCH_ENABLED"] = "1"

    @tracepatch.trace(cache=False)
    def enabled(x):
        return x + 1

    def per_call(fn, number):
        best = min(timeit.repeat(lambda: fn(1), number=number, repeat=7))
        return best / number * 1e9

    n = 200_000
    base = per_call(plain, n)
    rows = [("plain", base), ("disabled", per_call(disabled, n))]
    os.environ["TRACEPATCH_ENABLED"] = "0"
    rows.append(("off-at-call", per_call(enabled, 20_000)))
    os.environ["TRACEPATCH_ENABLED"] = "1"
    rows.append(("enabled", per_call(enabled, 5_000)))
    print(f"Python {sys.version.split()[0]}")
    for name, ns in rows:
        print(f"  {name:<12} {ns:10.1f} ns/call   (+{ns - base:.1f} ns vs plain)")


if __name__ == "__main__":
    main()
