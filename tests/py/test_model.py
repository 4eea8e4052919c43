"""The trace model as users read it: active time of generators and
coroutines, self time that never counts waiting, generators that end unseen."""

import asyncio
import json
import sys
import time

from tracepatch import trace


def walk(nodes):
    for n in nodes:
        yield n
        yield from walk(n["children"])


def numbers():
    for x in range(10):
        yield x


def short_circuit():
    return any(x > 2 for x in numbers())


def test_generators_closed_by_a_short_circuit_are_finished():
    # 3.13 closes a generator suspended outside a try block without any
    # event; the frame's reuse by the next generator (and stop()) says it is gone.
    with trace(daemon="off", max_calls=1_000_000) as t:
        for _ in range(50):
            short_circuit()
    nodes = list(walk(json.loads(t.to_json())["trace"]))
    assert len(nodes) == 150
    assert [n for n in nodes if n["unfinished"]] == []
    gens = [n for n in nodes if n["generator"]]
    assert len(gens) == 100
    for n in gens:
        # It ran 4 times (4 next() calls); its active time is within its span.
        assert n["suspends"] == 4
        assert n["active_ns"] <= n["end_ns"] - n["start_ns"]


def ticker():
    for i in range(4):
        yield i


def slow_consumer():
    out = []
    for v in ticker():
        time.sleep(0.01)  # the generator is suspended meanwhile
        out.append(v)
    return out


def test_suspended_generator_is_not_charged_its_waiting_time():
    with trace(daemon="off") as t:
        slow_consumer()
    (root,) = json.loads(t.to_json())["trace"]
    (gen,) = root["children"]
    assert (root["name"], gen["name"], gen["generator"], gen["suspends"]) == (
        "slow_consumer", "ticker", True, 4)
    span = gen["end_ns"] - gen["start_ns"]
    # 4 sleeps of 10 ms lie inside its span and outside its active time.
    assert span >= 30_000_000
    assert gen["active_ns"] * 4 < span
    assert gen["elapsed_ms"] == (gen["active_ns"] // 1000) / 1000  # whole µs, like 1.0.0
    assert gen["self_ns"] == gen["active_ns"]
    # The consumer was the innermost call while it slept: that is its self time.
    assert root["self_ns"] >= 30_000_000
    assert root["self_ns"] + gen["self_ns"] == root["active_ns"]


async def fetch(i):
    await asyncio.sleep(0)
    return i * 2


async def gather_three():
    a = asyncio.create_task(fetch(1))
    rest = await asyncio.gather(fetch(2), fetch(3))
    return [await a] + rest


def outline_of(t):
    def walk(nodes, depth):
        for n in nodes:
            yield f"{'  ' * depth}{n['name']}({n['args']}) -> {n['return_value']}"
            yield from walk(n["children"], depth + 1)
    return "\n".join(walk(json.loads(t.to_json())["trace"], 0))


def test_tasks_hang_under_the_call_that_created_them():
    with trace(daemon="off", ignore_modules=["_weakrefset"]) as t:
        assert asyncio.run(gather_three()) == [2, 4, 6]
    text = outline_of(t)
    # asyncio.run, the event loop and its callbacks are hidden; the tasks'
    # coroutines are children of the coroutine that created them.
    assert "gather_three() -> [2, 4, 6]\n  fetch(i=1) -> 2\n  fetch(i=2) -> 4\n  fetch(i=3) -> 6" in text
    names = {n["qualname"].rpartition(".")[2] for n in walk(json.loads(t.to_json())["trace"])}
    assert not names & {"_run", "_run_once", "call_soon"}


def test_tasks_of_a_trace_opened_inside_a_coroutine_are_not_separate_roots():
    async def scenario():
        async with trace(daemon="off", ignore_modules=["_weakrefset"]) as t:
            await gather_three()
        return t

    t = asyncio.run(scenario())
    assert outline_of(t) == ("gather_three() -> [2, 4, 6]\n  fetch(i=1) -> 2\n"
                             "  fetch(i=2) -> 4\n  fetch(i=3) -> 6")


def test_show_asyncio_records_the_event_loop():
    with trace(daemon="off", show_asyncio=True) as t:
        asyncio.run(gather_three())
    names = {n["qualname"].rpartition(".")[2] for n in walk(json.loads(t.to_json())["trace"])}
    assert {"_run", "_run_once", "call_soon"} <= names


def abandon_in_reverse():
    # Two generators left after their first value, the older one released
    # first: on 3.13 neither ends with an event, and the newer one's memory
    # (taken first by the next generator) says it is gone before the older's.
    first = numbers()
    next(first)
    second = numbers()
    next(second)
    del first, second
    return short_circuit() and short_circuit()


def test_generators_that_end_unseen_out_of_order_end_at_their_own_suspension():
    with trace(daemon="off") as t:
        abandon_in_reverse()
    (root,) = json.loads(t.to_json())["trace"]
    nodes = list(walk([root]))
    assert [n for n in nodes if n["unfinished"]] == []
    for n in nodes[1:]:
        assert root["start_ns"] <= n["start_ns"] <= n["end_ns"] <= root["end_ns"], n["name"]
    first, second = root["children"][:2]
    assert (first["name"], second["name"], first["suspends"], second["suspends"]) == (
        "numbers", "numbers", 1, 1)
    if sys.version_info >= (3, 13):
        # Each ends where it last suspended: before the other one started
        # (before 3.13 del closes them with an event, so they end there).
        assert first["end_ns"] < second["start_ns"]


async def group_two():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(fetch(1))
        tg.create_task(fetch(2))


async def future_one():
    return await asyncio.ensure_future(fetch(3))


async def group_then_future():
    if sys.version_info >= (3, 11):
        await group_two()
    return await future_one()


def test_taskgroup_and_ensure_future_tasks_hang_under_their_creator():
    with trace(daemon="off", ignore_modules=["_weakrefset"]) as t:
        assert asyncio.run(group_then_future()) == 6
    group = ("  group_two() -> None\n    fetch(i=1) -> 2\n    fetch(i=2) -> 4\n"
             if sys.version_info >= (3, 11) else "")
    assert ("group_then_future() -> 6\n" + group +
            "  future_one() -> 6\n    fetch(i=3) -> 6\n") in outline_of(t) + "\n"
    nodes = list(walk(json.loads(t.to_json())["trace"]))
    fetches = [n for n in nodes if n["name"] == "fetch"]
    assert [n.get("spawned") for n in fetches] == [True] * len(fetches)
