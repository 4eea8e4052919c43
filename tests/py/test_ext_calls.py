"""Calls, arguments, return values, generators and exceptions, as nodes."""

import asyncio
import sys

from test_ext_common import (ARGS, EXC_MSG, EXC_TYPE, FILE, FLAGS, LINENO, MODULE, PARENT,
                             PY312, QUALNAME, RET, SUSPENDS, T, THREAD, check_times, names,
                             record, run_as_script, session, shape, skip)

EXC, CAUGHT, OPEN, GEN = T.NODE_EXC, T.NODE_CAUGHT, T.NODE_OPEN, T.NODE_GEN


def load_user(uid):
    return {"id": uid, "name": "Alice"}


def validate(user):
    return user["name"] != ""


def handle_request(uid):
    user = load_user(uid)
    validate(user)
    return user


def test_nested_calls_with_args_and_returns():
    s, out = record(handle_request, 42)
    assert out == {"id": 42, "name": "Alice"}
    assert shape(s) == [
        (-1, "handle_request", "uid=42", "{'id': 42, 'name': 'Alice'}", None, None, 0, 0),
        (0, "load_user", "uid=42", "{'id': 42, 'name': 'Alice'}", None, None, 0, 0),
        (0, "validate", "user={'id': 42, 'name': 'Alice'}", "True", None, None, 0, 0),
    ]
    n = s.nodes()[1]
    assert n[MODULE] == __name__
    assert n[FILE] == __file__
    assert n[LINENO] == load_user.__code__.co_firstlineno
    assert n[THREAD] == 0
    assert s.call_count == 3 and not s.was_limited and s.limit_reason is None
    check_times(s)


def kinds(a, /, b, c=3, *args, d, e=5, **kwargs):
    return a


class Box:
    def __init__(self, v):
        self.v = v

    def __repr__(self):
        return f"Box({self.v})"

    def get(self, extra=0):
        return self.v + extra

    @staticmethod
    def st(x):
        return x

    @classmethod
    def cm(cls, y):
        return y


def closure_param(x, y):
    def inner():
        return x + y
    return inner()


def call_all():
    kinds(1, 2, d=4)
    kinds(1, 2, 3, 6, 7, d=4, e=8, z=9)
    b = Box(2)
    b.get(extra=1)
    Box.st(5)
    Box.cm(6)
    closure_param(10, 20)


def test_parameter_kinds():
    s, _ = record(call_all)
    got = [(n[QUALNAME], n[ARGS]) for n in s.nodes()][1:]
    q = (lambda name: name) if sys.version_info >= (3, 11) else (lambda name: name.split(".")[-1])
    assert got == [
        ("kinds", "a=1, b=2, c=3, *args=(), d=4, e=5, **kwargs={}"),
        ("kinds", "a=1, b=2, c=3, *args=(6, 7), d=4, e=8, **kwargs={'z': 9}"),
        (q("Box.__init__"), "self=<unprintable Box>, v=2"),
        (q("Box.get"), "self=Box(2), extra=1"),
        (q("Box.st"), "x=5"),
        (q("Box.cm"), "cls=<class 'test_ext_calls.Box'>, y=6".replace("test_ext_calls", __name__)),
        ("closure_param", "x=10, y=20"),
        (q("closure_param.<locals>.inner"), ""),
    ]


def test_show_args_and_show_return_off():
    s, _ = record(handle_request, 7, show_args=False, show_return=False)
    assert shape(s) == [
        (-1, "handle_request", None, None, None, None, 0, 0),
        (0, "load_user", None, None, None, None, 0, 0),
        (0, "validate", None, None, None, None, 0, 0),
    ]


def gen(n):
    for i in range(n):
        yield i
    return "done"


def consume_gen():
    return sum(gen(3))


def partial_gen():
    g = gen(10)
    next(g)
    next(g)
    return g


def test_generator_is_one_node_with_suspensions():
    s, out = record(consume_gen)
    assert out == 3
    assert shape(s) == [
        (-1, "consume_gen", "", "3", None, None, 0, 0),
        (0, "gen", "n=3", "'done'", None, None, GEN, 3),
    ]
    check_times(s)


def test_suspended_generator_is_unfinished():
    s, g = record(partial_gen)
    assert shape(s) == [
        (-1, "partial_gen", "", repr(g), None, None, 0, 0),
        (0, "gen", "n=10", None, None, None, GEN | OPEN, 2),
    ]
    assert s.nodes()[1][10] == s.duration_ns


def gen_with_children(n):
    for i in range(n):
        yield load_user(i)


def drive_gen():
    out = []
    for u in gen_with_children(2):
        out.append(validate(u))
    return out


def test_generator_children_attach_to_it():
    s, _ = record(drive_gen)
    assert [(n[PARENT], n[QUALNAME]) for n in s.nodes()] == [
        (-1, "drive_gen"), (0, "gen_with_children"), (1, "load_user"), (0, "validate"),
        (1, "load_user"), (0, "validate")]
    assert s.nodes()[1][SUSPENDS] == 2
    check_times(s)


def early_break():
    for x in gen(5):
        if x == 1:
            break
    return "e"


def close_explicitly():
    g = gen(5)
    next(g)
    g.close()
    return "c"


def test_generator_closed_early():
    # close() (by `break` dropping the generator, or explicitly) ends the call
    # without an exception and without a return value. 3.13 closes a
    # generator suspended outside any try block without running it, so with
    # no event: stop() notices and ends the call at its last suspension.
    for fn, suspends in ((early_break, 2), (close_explicitly, 1)):
        s, _ = record(fn)
        n = s.nodes()[1]
        assert (n[QUALNAME], n[RET], n[EXC_TYPE], n[FLAGS], n[SUSPENDS]) == (
            "gen", None, None, GEN, suspends)
        check_times(s)


def keep_suspended():
    g = gen(5)
    next(g)
    return g


def test_generator_still_suspended_at_stop_is_unfinished():
    s, g = record(keep_suspended)
    n = s.nodes()[1]
    assert (n[QUALNAME], n[FLAGS], n[SUSPENDS]) == ("gen", GEN | OPEN, 1)
    assert n[10] == s.duration_ns


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def use_agen():
    return [x async for x in agen(2)]


def in_task(coro_fn, **kw):
    """Record coro_fn() inside a task, as `async with trace()` does."""
    async def scenario():
        s = session(ignore_modules=["asyncio", "_weakrefset"], **kw)
        s.start()
        try:
            return s, await coro_fn()
        finally:
            s.stop()
    return asyncio.run(scenario())


def test_async_generator_is_one_node():
    s, out = in_task(use_agen)
    assert out == [0, 1]
    sh = shape(s)
    if sys.version_info < (3, 12):
        # the async comprehension is a code object of its own before 3.12
        comp = "<listcomp>" if sys.version_info < (3, 11) else "use_agen.<locals>.<listcomp>"
        assert sh == [
            (-1, "use_agen", "", "[0, 1]", None, None, GEN, 2),
            (0, comp, f".0={s.nodes()[1][ARGS][3:]}", "[0, 1]", None, None, GEN, 2),
            (1, "agen", "n=2", "None", None, None, GEN, 4),
        ]
        assert s.nodes()[1][ARGS].startswith(".0=<async_generator object agen at 0x")
    else:
        assert sh == [
            (-1, "use_agen", "", "[0, 1]", None, None, GEN, 2),
            (0, "agen", "n=2", "None", None, None, GEN, 4),
        ]
    check_times(s)


class Boom(Exception):
    pass


async def aclose_early():
    it = agen(5)
    v = await it.__anext__()
    await it.aclose()
    return v


async def athrow_in():
    it = agen(5)
    await it.__anext__()
    try:
        await it.athrow(Boom("in"))
    except Boom:
        return "thrown"


def test_async_generator_aclose_and_athrow():
    s, out = in_task(aclose_early)
    assert out == 0
    ag = [n for n in shape(s) if n[1] == "agen"]
    assert ag == [(0, "agen", "n=5", None, None, None, GEN, 2)]
    s, out = in_task(athrow_in)
    assert out == "thrown"
    ag = [n for n in shape(s) if n[1] == "agen"]
    assert ag == [(0, "agen", "n=5", None, "Boom", "in", GEN | EXC, 2)]
    assert shape(s)[0][4:7] == ("Boom", "in", GEN | CAUGHT)


def fail(msg):
    raise ValueError(msg)


def catches():
    try:
        fail("bad")
    except ValueError:
        return 1


def propagates():
    fail("worse")


def reraises():
    try:
        fail("again")
    except ValueError:
        raise


def raises_new():
    try:
        fail("first")
    except ValueError:
        raise KeyError("second")


def test_caught_exception():
    s, out = record(catches)
    assert out == 1
    assert shape(s) == [
        (-1, "catches", "", "1", "ValueError", "bad", CAUGHT, 0),
        (0, "fail", "msg='bad'", None, "ValueError", "bad", EXC, 0),
    ]


def test_propagated_exception():
    s, out = record(propagates)
    assert isinstance(out, ValueError)
    assert shape(s) == [
        (-1, "propagates", "", None, "ValueError", "worse", EXC, 0),
        (0, "fail", "msg='worse'", None, "ValueError", "worse", EXC, 0),
    ]


def test_reraised_is_not_caught():
    s, out = record(reraises)
    assert shape(s)[0] == (-1, "reraises", "", None, "ValueError", "again", EXC, 0)


def test_new_exception_from_handler():
    s, out = record(raises_new)
    assert isinstance(out, KeyError)
    assert shape(s) == [
        (-1, "raises_new", "", None, "KeyError", "'second'", EXC, 0),
        (0, "fail", "msg='first'", None, "ValueError", "first", EXC, 0),
    ]


def same_frame():
    try:
        raise KeyError("k")
    except KeyError:
        return 2


def test_exception_handled_in_the_same_frame():
    s, _ = record(same_frame)
    if PY312:
        assert shape(s) == [(-1, "same_frame", "", "2", "KeyError", "'k'", CAUGHT, 0)]
    else:
        # A profile function sees no event for it (see hooks_legacy.c).
        assert shape(s) == [(-1, "same_frame", "", "2", None, None, 0, 0)]


def builtin_raises():
    try:
        int("x")
    except ValueError:
        pass
    d = {}
    try:
        return d["missing"]
    except KeyError:
        return None


def next_raises():
    it = iter([])
    try:
        next(it)
    except StopIteration:
        return "stop"


def test_stop_iteration_is_not_an_error():
    s, _ = record(next_raises)
    assert shape(s) == [(-1, "next_raises", "", "'stop'", None, None, 0, 0)]
    s, _ = record(consume_gen)
    assert all(n[FLAGS] & (EXC | CAUGHT) == 0 for n in s.nodes())


class Raiser:
    def __str__(self):
        raise RuntimeError("no str")


class OddError(Exception):
    def __str__(self):
        raise RuntimeError("no str")


def odd():
    raise OddError()


def test_exception_with_broken_str():
    s, _ = record(odd)
    assert shape(s) == [(-1, "odd", "", None, "OddError", "<unprintable OddError>", EXC, 0)]


class Iter:
    def __init__(self):
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        if self.i > 2:
            raise StopIteration
        return self.i


def iterate_in_python():
    out = []
    for x in Iter():
        out.append(x)
    return out


def iterate_in_c():
    return list(Iter())


def test_iterator_protocol():
    s, out = record(iterate_in_python)
    assert out == [1, 2]
    assert [(n[QUALNAME].split(".")[-1], n[RET], n[EXC_TYPE], n[FLAGS]) for n in s.nodes()] == [
        ("iterate_in_python", "[1, 2]", None, 0), ("__init__", "None", None, 0),
        ("__iter__", repr(out)[:0] + s.nodes()[2][RET], None, 0), ("__next__", "1", None, 0),
        ("__next__", "2", None, 0),
        # the last __next__ raised StopIteration: a call that raised, honestly shown
        ("__next__", None, "StopIteration", EXC)]


def test_exception_swallowed_by_c_code():
    s, out = record(iterate_in_c)
    last = s.nodes()[-1]
    assert last[QUALNAME].endswith("__next__") and last[FLAGS] == EXC
    if T.HOOK != "profile":
        # sys.monitoring and the eval-frame hook see it leave the frame.
        assert last[EXC_TYPE] == "StopIteration"
    else:
        # list() cleared the exception before any Python frame saw it: a
        # profile function cannot know what it was (see hooks_legacy.c).
        assert (last[EXC_TYPE], last[EXC_MSG]) == ("<unknown>", "")


def recurse(n):
    return 0 if n == 0 else recurse(n - 1) + 1


def test_5000_deep_recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 6000))
    try:
        s, out = record(recurse, 5000, max_depth=10000, max_calls=100000)
    finally:
        sys.setrecursionlimit(old)
    assert out == 5000
    nodes = s.nodes()
    assert len(nodes) == 5001 and s.call_count == 5001
    assert nodes[5000][ARGS] == "n=0" and nodes[5000][PARENT] == 4999
    assert nodes[0][RET] == "5000"
    check_times(s)


def blow(n):
    return blow(n + 1)


def test_recursion_error_inside_trace():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        s, out = record(blow, 0, max_depth=100000, max_calls=100000)
    finally:
        sys.setrecursionlimit(old)
    assert isinstance(out, RecursionError)
    nodes = s.nodes()
    assert len(nodes) > 100 and s.call_count == len(nodes)
    assert all(n[EXC_TYPE] == "RecursionError" for n in nodes)
    assert s.errors == []


def test_tracepatch_frames_never_appear():
    import types
    mod = types.ModuleType("tracepatch._fake")
    exec("def wrapper(f, x):\n    return f(x)\n", mod.__dict__)
    s, out = record(mod.wrapper, load_user, 5)
    assert names(s) == ["load_user"]
    assert s.nodes()[0][PARENT] == -1


if __name__ == "__main__":
    run_as_script(globals())
