"""async with trace(), asyncio.gather, and tasks."""

import asyncio

from conftest import outline
from tracepatch import trace

M = __name__
QUIET = ["asyncio", "_weakrefset", "contextvars"]


def lookup(key):
    return {"a": 1, "b": 2}.get(key)


async def fetch(key):
    await asyncio.sleep(0)
    return lookup(key)


async def handler():
    a, b = await asyncio.gather(fetch("a"), fetch("b"))
    return a + b


def test_async_with_records_awaited_coroutines():
    async def main():
        async with trace(cache=False, ignore_modules=QUIET) as t:
            value = await fetch("a")
        return t, value

    t, value = asyncio.run(main())
    assert value == 1
    assert outline(t.roots, strip=M) == (
        "fetch(key='a') -> 1 [gen 1]\n"
        "  lookup(key='a') -> 1")


def test_gather_tasks_created_inside_are_recorded():
    async def main():
        async with trace(cache=False, ignore_modules=QUIET) as t:
            result = await handler()
        return t, result

    t, result = asyncio.run(main())
    assert result == 3
    text = outline(t.roots, strip=M)
    # handler() runs in the trace's task; the two fetches run in tasks that
    # gather() created inside the trace, so they are recorded too.
    assert text.splitlines()[0] == "handler() -> 3 [gen 1]"
    assert sorted(line.strip() for line in text.splitlines()[1:]) == sorted([
        "fetch(key='a') -> 1 [gen 1]", "lookup(key='a') -> 1",
        "fetch(key='b') -> 2 [gen 1]", "lookup(key='b') -> 2"])
    assert t.call_count == 5


def test_tasks_outside_the_trace_are_not_recorded():
    async def noise():
        for _ in range(3):
            lookup("z")
            await asyncio.sleep(0)

    async def main():
        other = asyncio.ensure_future(noise())  # started before the trace
        await asyncio.sleep(0)
        async with trace(cache=False, ignore_modules=QUIET) as t:
            await fetch("b")
            await asyncio.sleep(0)
        await other
        return t

    t = asyncio.run(main())
    assert outline(t.roots, strip=M) == "fetch(key='b') -> 2 [gen 1]\n  lookup(key='b') -> 2"


def test_concurrent_traces_are_isolated():
    async def job(key):
        async with trace(label=key, cache=False, ignore_modules=QUIET) as t:
            await fetch(key)
            await asyncio.sleep(0)
            lookup(key)
        return t

    async def main():
        return await asyncio.gather(job("a"), job("b"))

    ta, tb = asyncio.run(main())
    for t, key, value in ((ta, "a", 1), (tb, "b", 2)):
        assert outline(t.roots, strip=M) == (
            f"fetch(key='{key}') -> {value} [gen 1]\n"
            f"  lookup(key='{key}') -> {value}\n"
            f"lookup(key='{key}') -> {value}")
