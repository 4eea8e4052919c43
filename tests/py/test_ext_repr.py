"""The extension's bounded repr (also what arguments and return values use)."""

import sys
import time

from test_ext_common import T, record, run_as_script, session, ARGS, QUALNAME, RET

safe_repr = T.safe_repr

SAMPLES = [
    None, True, False, 0, 1, -1, 7, 2**63 - 1, -2**63, 2**64, -(10**30), 0.0, -0.0, 1.5, 1e300,
    float("inf"), float("-inf"), float("nan"), 1 / 3, 1e-7, "", "a", "it's", 'say "hi"',
    "both ' and \"", "tab\tnew\nline\rret", "back\\slash", "\x00\x1f\x7f", "é", "日本語",
    "\u200b", "\U0001f600", "\ud800", "\xa0\xad", b"", b"bytes", b"it's", b'"', b"\x00\xff\t\\",
    (), (1,), (1, 2), [], [1, [2, [3]]], {}, {"a": 1, 2: [3]}, set(), {1}, frozenset(),
    frozenset({"x"}), ([], {}, ()), {"nested": {"k": (1, "v")}},
]


def test_builtin_values_match_repr():
    for v in SAMPLES:
        assert safe_repr(v, 1000) == repr(v), v


PURE = [v for v in SAMPLES if type(v) in (type(None), bool, int, float, str)] + [
    "x" * 200, "é" * 300, "日本" * 100 + "'", 10**40, -(2**100), 12345678901, 2.5e-300,
    "\U0001f600" * 200]


def echo(a, b=None, *rest, k=None, **kw):
    return a


def pair(a, b, *, k):
    return b


def calls_of_echo(max_repr, nested):
    """Each PURE value passed to pair() and echo(), recorded by one session
    (the text goes straight into its log) or by two nested ones (the text
    goes through the thread's scratch, shared by both): the echo nodes'
    (args, return) of the inner session."""
    def run():
        for v in PURE:
            pair(v, None, k=v)
            echo(v, v, v, k=v, z=v)
    outer = session(show_args=True, show_return=True, max_repr=max_repr)
    inner = session(show_args=True, show_return=True, max_repr=max_repr)
    if nested:
        outer.start()
    inner.start()
    run()
    inner.stop()
    if nested:
        outer.stop()
    return [(n[ARGS], n[RET]) for n in inner.nodes() if n[QUALNAME] in ("pair", "echo")]


def test_arguments_rendered_in_the_log_match_the_shared_scratch():
    for max_repr in (4, 10, 120, 1000):
        alone, shared = calls_of_echo(max_repr, False), calls_of_echo(max_repr, True)
        assert len(alone) == 2 * len(PURE)
        assert alone == shared, max_repr
        for v, (args, ret) in zip(PURE, alone[::2]):
            assert args == "a=" + safe_repr(v, max_repr) + ", b=None, k=" + safe_repr(v, max_repr)
            assert ret == "None"
        for v, (args, ret) in zip(PURE, alone[1::2]):
            assert ret == safe_repr(v, max_repr)
            r = safe_repr(v, max_repr)
            assert args == f"a={r}, b={r}, *rest=" + safe_repr((v,), max_repr) + \
                f", k={r}, **kw=" + safe_repr({"z": v}, max_repr)


def test_default_limit_is_120():
    assert safe_repr("x" * 200) == repr("x" * 200)[:117] + "..."
    assert len(safe_repr("x" * 200)) == 120


def test_truncation_is_exact_at_the_limit():
    # exactly max_repr characters fit; one more is cut to max_repr - 3 + "..."
    assert safe_repr("a" * 8, 10) == "'aaaaaaaa'"
    assert safe_repr("a" * 9, 10) == "'aaaaaa..."
    assert safe_repr(list(range(10)), 12) == "[0, 1, 2,..."
    assert safe_repr(12345678901, 10) == "1234567..."
    assert safe_repr("日本語日本語", 6) == "'日本..."
    assert len(safe_repr("é" * 50, 20)) == 20


def test_smallest_limit():
    assert safe_repr("abcdef", 4) == "'..."
    assert safe_repr(1, 4) == "1"
    try:
        safe_repr(1, 3)
    except ValueError as exc:
        assert "at least 4" in str(exc)
    else:
        raise AssertionError("max_repr=3 accepted")


class Counted:
    calls = 0

    def __repr__(self):
        Counted.calls += 1
        return "c"


def test_huge_containers_are_truncated_without_visiting_everything():
    big = list(range(10_000_000))
    assert safe_repr(big, 30) == "[0, 1, 2, 3, 4, 5, 6, 7, 8,..."
    assert safe_repr(dict.fromkeys(range(1_000_000)), 30) == "{0: None, 1: None, 2: None,..."
    assert safe_repr("y" * 50_000_000, 30) == "'" + "y" * 26 + "..."
    assert safe_repr(tuple(big[:1000]), 30) == "(0, 1, 2, 3, 4, 5, 6, 7, 8,..."
    assert safe_repr(set(range(5)), 1000) == repr(set(range(5)))
    # The rendering stops at the limit: of a million elements, only those
    # shown are ever rendered (each one's __repr__ runs once).
    Counted.calls = 0
    assert safe_repr([Counted()] * 1_000_000, 30) == "[" + "c, " * 8 + "c,..."
    assert Counted.calls == 10  # the 10th makes the text pass 30 characters
    Counted.calls = 0
    assert safe_repr({i: Counted() for i in range(100_000)}, 20) == "{0: c, 1: c, 2: c..."
    assert Counted.calls == 3


def test_cycles():
    a = [1]
    a.append(a)
    assert safe_repr(a) == "[1, <circular reference>]"
    d = {}
    d["self"] = d
    assert safe_repr(d) == "{'self': <circular reference>}"
    t = ([],)
    t[0].append(t)
    assert safe_repr(t) == "([<circular reference>],)"
    shared = [0]
    assert safe_repr([shared, shared]) == "[[0], [0]]"  # shared, not circular


def test_deep_nesting_is_cut():
    v = []
    for _ in range(1000):
        v = [v]
    r = safe_repr(v, 10000)
    assert r.startswith("[" * 64) and r.endswith("...")


class Broken:
    def __repr__(self):
        raise RuntimeError("no repr for you")


class Recursive:
    def __repr__(self):
        return repr(self)


class Good:
    def __repr__(self):
        return "Good<ü>"


class Long:
    def __repr__(self):
        return "L" * 1000


def test_other_objects_use_their_repr():
    assert safe_repr(Good()) == "Good<ü>"
    assert safe_repr([Good(), 1]) == "[Good<ü>, 1]"
    assert safe_repr(Long(), 10) == "LLLLLLL..."


def test_broken_and_recursive_repr():
    assert safe_repr(Broken()) == "<unprintable Broken>"
    assert safe_repr([1, Broken()]) == "[1, <unprintable Broken>]"
    assert safe_repr(Recursive()) == "<unprintable Recursive>"
    assert sys.exc_info() == (None, None, None)


def test_broken_repr_prints_nothing(capfd):
    safe_repr(Broken())
    safe_repr(Recursive())
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_exception_in_flight_is_kept():
    try:
        raise KeyError("outer")
    except KeyError:
        safe_repr(Broken())
        assert sys.exc_info()[0] is KeyError


def test_subclasses_use_their_own_repr():
    from collections import OrderedDict, namedtuple
    P = namedtuple("P", "x y")

    class MyList(list):
        pass

    assert safe_repr(OrderedDict(a=1)) == repr(OrderedDict(a=1))
    assert safe_repr(P(1, 2)) == "P(x=1, y=2)"
    assert safe_repr(MyList([1])) == "[1]"
    assert safe_repr(True) == "True"


def test_big_ints():
    assert safe_repr(10**40, 100) == str(10**40)
    # past Python's 4300-digit limit repr() raises: shown as unprintable
    assert safe_repr(10**5000, 50) == "<unprintable int>"


def returns_broken(a, b):
    return Broken()


def test_args_and_returns_use_it():
    s, _ = record(returns_broken, "x" * 10, [1, [2]], max_repr=8)
    n = s.nodes()[0]
    assert n[ARGS] == "a='xxxx..., b=[1, [2]]"
    assert n[RET] == "<unpr..."


class Traced:
    calls = 0

    def __repr__(self):
        Traced.calls += 1
        return repr_helper()


def repr_helper():
    return "T"


def identity(x):
    return x


def test_repr_calls_are_not_recorded():
    Traced.calls = 0
    s, _ = record(identity, Traced())
    assert [(n[2], n[ARGS], n[RET]) for n in s.nodes()] == [("identity", "x=T", "T")]
    assert Traced.calls == 2


if __name__ == "__main__":
    run_as_script(globals())


def _join_workload():
    import threading
    import time

    def work():
        return 1

    def start_and_join(th):
        th.start()
        # Let the worker finish first (time.sleep is C: not recorded): then
        # is_alive(), run by a repr of the thread, would _stop() it.
        time.sleep(0.05)
        th.join()
        return th

    th = threading.Thread(target=work, name="w1", daemon=True)
    return start_and_join(th)


def _calls(show_args):
    from tracepatch import trace
    with trace(cache=False, show_args=show_args, show_return=show_args) as t:
        _join_workload()
    return [n.full_name for root in t.roots for n in root.walk()], t


def test_thread_arguments_do_not_change_the_recorded_calls():
    # repr(Thread) calls is_alive(), which may run _stop() and make join()
    # take another path: the capture must not run it.
    with_args, t = _calls(True)
    without_args, _ = _calls(False)
    assert with_args[0].endswith("_join_workload")
    # From join() on: whether start()'s Event.wait blocks is up to the
    # scheduler, not to the capture.
    # (3.10 names methods module.name: "threading.join".)
    def from_join(calls):
        return calls[next(k for k, c in enumerate(calls) if c.endswith(".join")):]
    assert from_join(with_args) == from_join(without_args)


def test_thread_repr_is_built_from_its_fields():
    import threading
    from tracepatch import trace

    def take(th):
        return None

    initial = threading.Thread(target=lambda: None, name="idle")
    done = threading.Thread(target=lambda: None, name="done", daemon=True)
    done.start()
    done.join()
    main = threading.main_thread()
    with trace(cache=False) as t:
        take(initial)
        take(done)
        take(main)
    args = [n.args for n in t.roots]
    assert args[0] == "th=<Thread(idle, initial)>"
    assert args[1] == f"th=<Thread(done, stopped daemon {done.ident})>"
    assert args[2] == f"th=<_MainThread(MainThread, started {main.ident})>"
    # The same text repr() gives, where repr() has no side effect to avoid.
    assert args[:2] == [f"th={initial!r}", f"th={done!r}"]
