"""trace as a decorator, on every kind of function."""

import asyncio
import inspect

import pytest

from conftest import outline, qualname
from tracepatch import trace

M = __name__


def helper(x):
    return x * 10


class Boom(Exception):
    pass


@trace
def bare(x):
    """Bare decorator."""
    return helper(x) + 1


@trace(label="with-args", cache=False)
def labelled(x, *, y=2):
    return helper(x) + y


@trace(cache=False)
def raises(x):
    helper(x)
    raise Boom(f"bad {x}")


@trace(cache=False)
def gen(n):
    for i in range(n):
        yield helper(i)
    return "done"


@trace(cache=False, ignore_modules=["asyncio"])
async def coro(x):
    await asyncio.sleep(0)
    return helper(x)


@trace(cache=False, ignore_modules=["asyncio"])
async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield helper(i)


class Service:
    factor = 3

    @trace(cache=False)
    def method(self, x):
        return helper(x) * self.factor

    @staticmethod
    @trace(cache=False)
    def static(x):
        return helper(x)

    @classmethod
    @trace(cache=False)
    def klass(cls, x):
        return helper(x) * cls.factor

    @trace(cache=False)
    @staticmethod
    def static_below(x):
        return helper(x) + 1

    @trace(cache=False)
    @classmethod
    def klass_below(cls, x):
        return helper(x) + cls.factor


def test_bare_decorator_keeps_metadata_and_traces_each_call():
    assert bare.__name__ == "bare" and bare.__doc__ == "Bare decorator."
    assert bare.__wrapped__.__name__ == "bare"
    assert inspect.signature(bare) == inspect.signature(bare.__wrapped__)
    assert bare(1) == 11
    first = bare.last_trace
    assert bare(2) == 21
    second = bare.last_trace
    assert first is not second and first.trace_id != second.trace_id
    assert outline(first.roots, strip=M) == "bare(x=1) -> 11\n  helper(x=1) -> 10"
    assert outline(second.roots, strip=M) == "bare(x=2) -> 21\n  helper(x=2) -> 20"
    assert first.cache_path.is_file()  # default: saved like any trace


def test_decorator_with_arguments():
    assert labelled(1, y=5) == 15
    t = labelled.last_trace
    assert t.label == "with-args"
    assert outline(t.roots, strip=M) == "labelled(x=1, y=5) -> 15\n  helper(x=1) -> 10"
    assert t.cache_path is None


def test_exceptions_pass_through_untouched():
    with pytest.raises(Boom, match="bad 4") as info:
        raises(4)
    assert type(info.value) is Boom
    assert outline(raises.last_trace.roots, strip=M) == (
        "raises(x=4) !! Boom: bad 4\n  helper(x=4) -> 40")


def test_return_value_is_the_same_object():
    marker = object()

    @trace(cache=False)
    def identity(x):
        return x

    assert identity(marker) is marker


def test_generator_function_records_only_its_own_work():
    consumed = []
    g = gen(3)
    assert inspect.isgenerator(g)
    for value in g:
        consumed.append(helper(value))  # the consumer's calls are not in the trace
    assert consumed == [0, 100, 200]
    assert outline(gen.last_trace.roots, strip=M) == (
        "gen(n=3) -> 'done' [gen 3]\n"
        "  helper(x=0) -> 0\n"
        "  helper(x=1) -> 10\n"
        "  helper(x=2) -> 20")


def test_generator_return_value_send_throw_and_close():
    def outer():
        result = yield from gen(2)
        return result

    it = outer()
    assert next(it) == 0
    assert next(it) == 10
    with pytest.raises(StopIteration) as stop:
        next(it)
    assert stop.value.value == "done"

    g = gen(5)
    assert next(g) == 0
    with pytest.raises(Boom, match="stop"):
        g.throw(Boom("stop"))
    assert outline(gen.last_trace.roots, strip=M) == (
        "gen(n=5) !! Boom: stop [gen 1]\n  helper(x=0) -> 0")

    g = gen(5)
    next(g)
    g.close()  # not an error: no exception, no return value, finished
    assert outline(gen.last_trace.roots, strip=M) == "gen(n=5) [gen 1]\n  helper(x=0) -> 0"


def test_coroutine_function():
    assert inspect.iscoroutinefunction(coro)
    assert asyncio.run(coro(2)) == 20
    assert outline(coro.last_trace.roots, strip=M) == "coro(x=2) -> 20 [gen 1]\n  helper(x=2) -> 20"


def test_async_generator_function():
    assert inspect.isasyncgenfunction(agen)

    async def consume():
        out = []
        async for v in agen(2):
            out.append(helper(v))
        return out

    assert asyncio.run(consume()) == [0, 100]
    assert outline(agen.last_trace.roots, strip=M) == (
        "agen(n=2) -> None [gen 4]\n"
        "  helper(x=0) -> 0\n"
        "  helper(x=1) -> 10")


def test_async_generator_break_and_athrow():
    async def first_only():
        it = agen(5)
        v = await it.__anext__()
        await it.aclose()  # what `async with contextlib.aclosing(...)` does on break
        return v

    async def throw_in():
        it = agen(5)
        await it.__anext__()
        with pytest.raises(Boom, match="in"):
            await it.athrow(Boom("in"))

    assert asyncio.run(first_only()) == 0
    assert outline(agen.last_trace.roots, strip=M) == "agen(n=5) [gen 2]\n  helper(x=0) -> 0"
    asyncio.run(throw_in())
    assert outline(agen.last_trace.roots, strip=M) == (
        "agen(n=5) !! Boom: in [gen 2]\n  helper(x=0) -> 0")


def test_methods_static_and_class_methods():
    s = Service()
    assert s.method(1) == 30
    assert Service.static(2) == 20
    assert s.static(2) == 20
    assert Service.klass(1) == 30
    assert Service.static_below(1) == 11
    assert Service.klass_below(1) == 13
    assert outline(Service.method.last_trace.roots, strip=M).splitlines()[1] == \
        "  helper(x=1) -> 10"
    root = Service.method.last_trace.roots[0]
    assert (root.name, root.qualname, root.module) == ("method", qualname("Service.method"), M)
    assert outline(Service.static.last_trace.roots, strip=M) == (
        f"{qualname('Service.static')}(x=2) -> 20\n  helper(x=2) -> 20")
    assert outline(Service.klass.__func__.last_trace.roots, strip=M) == (
        f"{qualname('Service.klass')}(cls=<class '{M}.Service'>, x=1) -> 30\n"
        f"  helper(x=1) -> 10")
    assert isinstance(Service.__dict__["static_below"], staticmethod)
    assert isinstance(Service.__dict__["klass_below"], classmethod)
    assert Service.__dict__["static_below"].__func__.last_trace.roots[0].qualname == \
        qualname("Service.static_below")
    assert outline(Service.__dict__["klass_below"].__func__.last_trace.roots, strip=M) == (
        f"{qualname('Service.klass_below')}(cls=<class '{M}.Service'>, x=1) -> 13\n"
        f"  helper(x=1) -> 10")


def test_wraps_keeps_the_wrapped_function_reachable():
    assert Service.method.__wrapped__.__qualname__ == "Service.method"
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        assert getattr(coro, attr) == getattr(coro.__wrapped__, attr)
        assert getattr(agen, attr) == getattr(agen.__wrapped__, attr)
        assert getattr(gen, attr) == getattr(gen.__wrapped__, attr)


def test_decorated_call_inside_a_trace_nests_cleanly():
    with trace(cache=False) as outer:
        bare(3)
    # The outer trace sees the user's calls, and nothing of tracepatch's own
    # work (config lookup, saving the inner trace...).
    assert outline(outer.roots, strip=M) == "bare(x=3) -> 31\n  helper(x=3) -> 30"
    assert outline(bare.last_trace.roots, strip=M) == "bare(x=3) -> 31\n  helper(x=3) -> 30"


def test_bad_uses():
    with pytest.raises(TypeError, match="keyword arguments only"):
        trace(lambda: 1, label="x")
    with pytest.raises(TypeError, match="keyword arguments only"):
        trace("label")
    with pytest.raises(TypeError, match="not classes"):
        trace(Service)


@trace
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@trace
def countdown(n):
    if n:
        yield from countdown(n - 1)
    yield n


@trace(ignore_modules=["asyncio"])
async def nest(n):
    return n if n == 0 else await nest(n - 1) + 1


def test_recursive_decorated_function_is_one_trace_and_one_file(tmp_path):
    saved_before = sorted(p.name for p in (tmp_path / "work").rglob("*.json"))
    assert saved_before == []
    assert fib(4) == 3
    t = fib.last_trace
    assert outline(t.roots, strip=M) == "\n".join([
        "fib(n=4) -> 3",
        "  fib(n=3) -> 2",
        "    fib(n=2) -> 1",
        "      fib(n=1) -> 1",
        "      fib(n=0) -> 0",
        "    fib(n=1) -> 1",
        "  fib(n=2) -> 1",
        "    fib(n=1) -> 1",
        "    fib(n=0) -> 0",
    ])
    assert t.call_count == 9
    assert [p.name for p in (tmp_path / "work").rglob("*.json")] == [t.cache_path.name]
    # The next top-level call is a trace of its own again.
    assert fib(1) == 1 and fib.last_trace is not t
    assert fib.last_trace.call_count == 1


def test_recursive_generator_and_coroutine_are_one_trace(tmp_path):
    assert list(countdown(2)) == [0, 1, 2]
    t = countdown.last_trace
    assert [n.full_name for n in t.roots[0].walk()] == [f"{M}.countdown"] * 3
    assert t.call_count == 3
    assert [p.name for p in (tmp_path / "work").rglob("*.json")] == [t.cache_path.name]
    t.cache_path.unlink()
    assert asyncio.run(nest(2)) == 2
    t = nest.last_trace
    assert outline(t.roots, strip=M) == (
        "nest(n=2) -> 2 [gen 0]\n  nest(n=1) -> 1 [gen 0]\n    nest(n=0) -> 0 [gen 0]")
    assert [p.name for p in (tmp_path / "work").rglob("*.json")] == [t.cache_path.name]


@trace
def spawner(depth):
    import threading
    if depth == 0:
        th = threading.Thread(target=spawner, args=(1,))
        th.start()
        th.join()
    return depth


def test_recursion_through_another_thread_is_a_trace_of_its_own(tmp_path):
    # The nesting is per thread (and context): the call made in the new
    # thread is not inside the outer trace, so it records its own.
    assert spawner(0) == 0
    assert spawner.last_trace.roots[0].args == "depth=0"
    files = sorted((tmp_path / "work").rglob("*.json"))
    assert len(files) == 2


@trace(ignore_modules=["asyncio"])
async def walk_down(n):
    if n:
        async for item in walk_down(n - 1):
            yield item
    yield n


def test_recursive_async_generator_is_one_trace(tmp_path):
    async def collect():
        return [x async for x in walk_down(2)]

    assert asyncio.run(collect()) == [0, 1, 2]
    t = walk_down.last_trace
    # (The event loop's first-iteration hook adds each to a WeakSet: recorded too.)
    assert [n.args for n in t.roots[0].walk() if n.name == "walk_down"] == ["n=2", "n=1", "n=0"]
    assert [p.name for p in (tmp_path / "work").rglob("*.json")] == [t.cache_path.name]
