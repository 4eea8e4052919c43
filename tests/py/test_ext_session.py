"""Session: configuration checks, life cycle, properties and outputs."""

import json
import sys
import time

from test_ext_common import (TRACE_ID, T, names, record, run_as_script, session)


def raises(exc, fn, *args, match=None, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        if match is not None:
            assert match in str(e), (match, str(e))
        return e
    raise AssertionError(f"{fn} did not raise {exc.__name__}")


def test_defaults():
    s = T.Session()
    assert s.label is None and len(s.trace_id) == 32
    assert int(s.trace_id, 16) >= 0 and s.trace_id == s.trace_id.lower()
    assert not s.active and not s.recording and s.call_count == 0
    assert s.limit_reason is None and not s.was_limited and s.dropped == 0
    assert s.duration_ns == 0 and s.errors == []
    assert T.Session().trace_id != s.trace_id


def test_validation():
    raises(TypeError, T.Session, "positional", match="positional")
    raises(ValueError, T.Session, trace_id="ABC", match="32 lowercase hex")
    raises(ValueError, T.Session, trace_id="0" * 31 + "G", match="32 lowercase hex")
    raises(TypeError, T.Session, trace_id=5, match="trace_id must be a str")
    raises(TypeError, T.Session, label=3, match="label must be a str or None")
    raises(ValueError, T.Session, max_depth=0, match="max_depth must be between 1")
    raises(TypeError, T.Session, max_depth=2.5, match="max_depth must be an int")
    raises(TypeError, T.Session, max_depth=True, match="max_depth must be an int")
    raises(ValueError, T.Session, max_calls=-1, match="max_calls must be between 1")
    raises(ValueError, T.Session, max_calls=2**40, match="max_calls must be between 1")
    raises(ValueError, T.Session, max_time=0, match="max_time must be a positive")
    raises(ValueError, T.Session, max_time=float("nan"), match="max_time must be a positive")
    raises(TypeError, T.Session, max_time="1", match="max_time must be a number")
    raises(ValueError, T.Session, max_repr=3, match="max_repr must be between 4")
    raises(TypeError, T.Session, show_args=1, match="show_args must be True or False")
    raises(TypeError, T.Session, threads=None, match="threads must be True or False")
    raises(TypeError, T.Session, ignore_modules="logging", match="not a string")
    raises(TypeError, T.Session, ignore_modules=[1], match="ignore_modules[0] must be a str")
    raises(ValueError, T.Session, include_modules=["a..b"], match="not a module name")
    raises(ValueError, T.Session, include_modules=[".a"], match="not a module name")
    raises(ValueError, T.Session, include_modules=[""], match="not a module name")
    raises(TypeError, T.Session, config_json={}, match="config_json must be a str")
    raises(TypeError, T.Session, nope=1)
    s = T.Session(label="x", trace_id=TRACE_ID, max_depth=5, max_calls=7, max_time=1,
                  max_repr=10, show_args=False, show_return=False, ignore_modules=("a.b",),
                  include_modules=["c"], threads=True, config_json="{}")
    assert s.label == "x" and s.trace_id == TRACE_ID


def f(x):
    return g(x) + 1


def g(x):
    return x * 2


def test_life_cycle():
    s = session()
    raises(RuntimeError, s.tree, match="never started")
    s.start()
    # no Python function calls here: they would be recorded
    assert s.active and s.recording
    try:
        s.start()
    except RuntimeError as e:
        assert "already recording" in str(e)
    else:
        assert False
    try:
        s.nodes()
    except RuntimeError as e:
        assert "still recording" in str(e)
    else:
        assert False
    f(1)
    assert s.duration_ns > 0
    s.stop()
    s.stop()  # idempotent
    assert not s.active and not s.recording
    raises(RuntimeError, s.start, match="records once")
    raises(RuntimeError, s.__init__, match="cannot be reconfigured")
    assert names(s) == ["f", "g"]
    d = s.duration_ns
    time.sleep(0.001)
    assert s.duration_ns == d
    assert s.wall_start_ns > 1.6e18
    assert s.memory_bytes >= 64 * 1024 and s.event_count == 5  # THREAD + 2 calls
    assert sys.getprofile() is None


def test_dropping_an_active_session_keeps_it_recording_until_stop():
    import ctypes
    s = session(ignore_modules=["ctypes"])
    s.start()
    address = id(s)
    del s
    f(1)
    # The registry of active sessions holds a reference, so the object still
    # lives at that address and is still recording: take it back and stop it.
    s = ctypes.cast(address, ctypes.py_object).value
    assert (s.active, s.recording) == (True, True)
    s.stop()
    assert names(s) == ["f", "g"]
    # Stopped, it is out of the registry: dropping it now frees it, and a new
    # session works.
    del s
    s2, _ = record(f, 2)
    assert names(s2) == ["f", "g"]


def test_outputs():
    s, _ = record(f, 3, label="demo")
    tree = s.tree(header=False)
    lines = tree.splitlines()
    assert lines[0].startswith("└── " + __name__ + ".f(x=3) -> 7  [")
    assert lines[1].startswith("    └── " + __name__ + ".g(x=3) -> 6  [")
    ascii_tree = s.tree(style="ascii", header=False, args=False, returns=False)
    assert ascii_tree.splitlines()[0].startswith("`-- " + __name__ + ".f()  [")
    raises(ValueError, s.tree, style="fancy")
    raises(TypeError, s.tree, filter="f")
    assert "g(" not in s.tree(header=False, filter=("!*.g",))
    assert s.tree(header=False, depth=1).splitlines()[1] == "    └── [1 nested calls...]"
    summary = s.summary()
    assert "Recorded:     2 calls across 1 modules" in summary
    data = json.loads(s.to_json())
    assert data["label"] == "demo" and data["trace_id"] == TRACE_ID
    assert data["call_count"] == 2 and data["was_limited"] is False
    assert data["trace"][0]["name"] == "f" and data["trace"][0]["args"] == "x=3"
    assert data["trace"][0]["children"][0]["return_value"] == "6"
    assert json.loads(s.to_json(pretty=False)) == data
    st = s.stats()
    assert st["calls"] == 2 and st["modules"] == 1 and st["unique_functions"] == 2
    assert st["max_depth"] == 1 and st["exceptions"] == 0
    # The same statistics tph stats --json prints: "name" is the qualname.
    assert (st["slowest"]["name"], st["slowest"]["module"]) == ("f", __name__)
    assert {(d["name"], d["module"]) for d in st["functions"]} == {("f", __name__), ("g", __name__)}
    assert st["by_module"][0]["module"] == __name__
    ev = s.events()
    assert [e[:6] for e in ev] == [
        (0, "call", __name__ + ".f", None, "x=3", "7"),
        (1, "call", __name__ + ".g", 0, "x=3", "6")]
    assert 0 <= ev[1][6] <= ev[0][6]
    assert s.to_csv().count("\n") == 3
    assert json.loads(s.to_chrome())["traceEvents"]
    assert s.to_folded().splitlines()[0].startswith(__name__ + ".f")


def test_config_json_and_limits_reach_the_json():
    s, _ = record(f, 1, config_json='{"max_depth": 1}', max_depth=1)
    data = json.loads(s.to_json())
    assert data["config"] == {"max_depth": 1}
    assert data["was_limited"] is True and data["limit_reason"] == "max_depth"


def test_raw_events_are_the_log():
    s, _ = record(f, 1)
    kinds = [e[0] for e in s._raw_events()]
    assert kinds == [7, 1, 1, 2, 2]  # THREAD, CALL f, CALL g, RETURN, RETURN
    assert s._raw_events()[1][4] == "x=1"
    times = [e[3] for e in s._raw_events()]
    assert times == sorted(times) and times[-1] <= s.duration_ns


def test_no_exception_leaks_into_the_program():
    class Bad:
        def __repr__(self):
            raise ValueError("repr")

    def uses(b):
        return b

    try:
        raise KeyError("mine")
    except KeyError:
        s, out = record(uses, Bad())
        assert sys.exc_info()[0] is KeyError
    assert out.__class__ is Bad and s.nodes()[0][5] == "b=<unprintable Bad>"


if __name__ == "__main__":
    run_as_script(globals())
