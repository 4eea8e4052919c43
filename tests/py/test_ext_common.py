"""Helpers shared by the test_ext_*.py files, which test the C extension
tracepatch._tracepatch directly (the Python layer has its own tests).

Every test_ext file also runs as a plain script (for interpreters without
pytest, such as pyenv's 3.10):

    PYTHONPATH=build-ext310/client_ext python3.10 tests/py/test_ext_calls.py

runs each test_* function in it and prints a pytest-like summary.
"""

import os
import sys
import traceback

from tracepatch import _tracepatch as T

TRACE_ID = "0123456789abcdef0123456789abcdef"
PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)

# Node tuple fields (see Session.nodes()).
PARENT, MODULE, QUALNAME, FILE, LINENO, ARGS, RET, EXC_TYPE, EXC_MSG, START, END, FLAGS, \
    SUSPENDS, THREAD = range(14)


class Skip(Exception):
    """Raised by skip() when pytest is not there."""


def skip(reason):
    try:
        import pytest
    except ImportError:
        raise Skip(reason)
    pytest.skip(reason)


def session(**kw):
    kw.setdefault("trace_id", TRACE_ID)
    return T.Session(**kw)


def record(fn, *args, **kw):
    """Run fn(*args) inside a fresh session; return (session, result or exception)."""
    s = session(**kw)
    s.start()
    try:
        out = fn(*args)
    except BaseException as exc:  # the traced code's own exception
        out = exc
    finally:
        s.stop()
    return s, out


def shape(s, fields=(PARENT, QUALNAME, ARGS, RET, EXC_TYPE, EXC_MSG, FLAGS, SUSPENDS)):
    """The nodes reduced to the fields that do not depend on timing."""
    return [tuple(n[f] for f in fields) for n in s.nodes()]


def names(s):
    return [n[QUALNAME] for n in s.nodes()]


def check_times(s):
    """Every node within its parent and within the trace, start <= end."""
    nodes = s.nodes()
    dur = s.duration_ns
    for i, n in enumerate(nodes):
        assert 0 <= n[START] <= n[END] <= dur, (i, n, dur)
        if n[PARENT] >= 0:
            p = nodes[n[PARENT]]
            assert p[START] <= n[START] and n[END] <= p[END], (i, n, p)


def run_as_script(namespace):
    """Run the test_* functions of a module; exit status 1 on any failure."""
    tests = [(k, v) for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    passed = failed = skipped = 0
    for name, fn in tests:
        if fn.__code__.co_argcount:
            skipped += 1
            print(f"SKIP {name} (needs pytest fixtures)")
            continue
        try:
            fn()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            if type(exc).__name__ in ("Skip", "Skipped"):
                skipped += 1
                print(f"SKIP {name}: {exc}")
                continue
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
        else:
            passed += 1
    print(f"{os.path.basename(namespace.get('__file__', '?'))}: {passed} passed, "
          f"{failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)
