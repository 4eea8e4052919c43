"""Property test of the trace model over random programs run by the real
interpreter: generators, coroutines, asyncio tasks (create_task, gather,
ensure_future, TaskGroup) and exceptions, nested at random. Whatever the
program, every call lies inside its parent's span, a call's active time lies
inside its own span, self times are >= 0 and sum to no more than the trace's
duration per thread, and each function is recorded exactly as often as it ran."""

import asyncio
import json
import random
import sys
from collections import Counter

import pytest

from tracepatch import trace

RAN = Counter()


class Boom(Exception):
    pass


# ---- the program's building blocks (each one a recorded function) ----------

def run_sync(plan):
    for op, arg in plan:
        if op == "call":
            call(arg)
        elif op == "gen":
            for _ in gen(arg):
                pass
        elif op == "gen_early":  # abandoned after its first value
            g = gen(arg)
            next(g, None)
            g.close()
        elif op == "raise":
            try:
                fail(arg)
            except Boom:
                pass
        elif op == "gen_raise":
            try:
                for _ in gen_fail(arg):
                    pass
            except Boom:
                pass


def call(plan):
    RAN["call"] += 1
    run_sync(plan)


def gen(plans):
    RAN["gen"] += 1
    for p in plans:
        run_sync(p)
        yield len(p)


def gen_fail(plans):
    RAN["gen_fail"] += 1
    for p in plans:
        run_sync(p)
        yield len(p)
    raise Boom()


def fail(plan):
    RAN["fail"] += 1
    run_sync(plan)
    raise Boom()


async def run_async(plan):
    for op, arg in plan:
        if op == "sync":
            run_sync(arg)
        elif op == "await":
            await coro(arg)
        elif op == "sleep":
            await asyncio.sleep(0)
        elif op == "task":
            t = asyncio.create_task(coro(arg))
            await asyncio.sleep(0)
            await t
        elif op == "future":
            await asyncio.ensure_future(coro(arg))
        elif op == "gather":
            await asyncio.gather(*(coro(p) for p in arg))
        elif op == "group":
            async with asyncio.TaskGroup() as tg:
                for p in arg:
                    tg.create_task(coro(p))
        elif op == "araise":
            try:
                await coro_fail(arg)
            except Boom:
                pass


async def coro(plan):
    RAN["coro"] += 1
    await run_async(plan)


async def coro_fail(plan):
    RAN["coro_fail"] += 1
    await run_async(plan)
    raise Boom()


# ---- random plans ---------------------------------------------------------

SYNC_OPS = ["call", "gen", "gen_early", "raise", "gen_raise"]
ASYNC_OPS = ["sync", "await", "sleep", "task", "future", "gather", "araise"] + (
    ["group"] if sys.version_info >= (3, 11) else [])


def sync_plan(rng, depth):
    if depth == 0:
        return []
    plan = []
    for _ in range(rng.randint(0, 3)):
        op = rng.choice(SYNC_OPS)
        if op in ("gen", "gen_early", "gen_raise"):
            arg = [sync_plan(rng, depth - 1) for _ in range(rng.randint(1, 3))]
        else:
            arg = sync_plan(rng, depth - 1)
        plan.append((op, arg))
    return plan


def async_plan(rng, depth):
    if depth == 0:
        return []
    plan = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(ASYNC_OPS)
        if op == "sync":
            arg = sync_plan(rng, depth - 1)
        elif op in ("gather", "group"):
            arg = [async_plan(rng, depth - 1) for _ in range(rng.randint(1, 3))]
        else:
            arg = async_plan(rng, depth - 1)
        plan.append((op, arg))
    return plan


COUNTED = {"call", "gen", "gen_fail", "fail", "coro", "coro_fail"}


def walk(nodes, parent=None):
    for n in nodes:
        yield n, parent
        yield from walk(n["children"], n)


@pytest.mark.parametrize("seed", range(40))
def test_random_programs_keep_intervals_self_times_and_counts(seed):
    rng = random.Random(seed)
    RAN.clear()
    plan = sync_plan(rng, 5) if seed % 2 else async_plan(rng, 4)
    with trace(daemon="off", max_calls=1_000_000, max_depth=1000,
               include_modules=[__name__]) as t:
        if seed % 2:
            run_sync(plan)
        else:
            asyncio.run(coro(plan))
    doc = json.loads(t.to_json())
    assert (doc["was_limited"], doc["dropped"]) == (False, 0)
    # Tasks hang under their creator: one root, the program's first call.
    assert [r["name"] for r in doc["trace"]] == ["run_sync" if seed % 2 else "coro"]
    nodes = list(walk(doc["trace"]))
    self_per_thread = Counter()
    for n, parent in nodes:
        span = n["end_ns"] - n["start_ns"]
        assert not n["unfinished"], n["name"]
        assert 0 <= n["self_ns"] <= n["active_ns"] <= span, n["name"]
        if parent is not None:
            assert parent["start_ns"] <= n["start_ns"] <= n["end_ns"] <= parent["end_ns"], \
                (parent["name"], n["name"])
            assert parent["thread"] == n["thread"]
        self_per_thread[n["thread"]] += n["self_ns"]
    for ns in self_per_thread.values():
        assert ns <= doc["duration_ns"]
    recorded = Counter(n["name"] for n, _ in nodes if n["name"] in COUNTED)
    assert recorded == +RAN
