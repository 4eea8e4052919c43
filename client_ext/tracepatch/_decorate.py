"""trace as a decorator: one trace per call, for every kind of function.

Functions and coroutine functions are traced around the call, in the
caller's context. Generators and async generators are different: between
two items the consumer's code runs, and it must not be recorded. So their
body runs in a private copy of the context (contextvars) where the trace is
active, one step at a time, and the consumer's code stays outside it. One
consequence: a ContextVar set inside a decorated generator is not seen by
its consumer (and vice versa after the first item).

A decorated function that calls itself (recursion, directly or through
other code) is recorded by the trace its outermost call started: a
per-function ContextVar holds the trace while it records, so a nested
activation in the same thread and context just runs (one trace, one file,
not one per level). Another thread or a context copied before the outer
call began does not see it and gets its own trace.
"""

from __future__ import annotations

import contextvars
import functools
import inspect

from . import _config
from ._quiet import quiet
from ._trace import trace


def decorate(func, explicit: dict, stacklevel: int = 2):
    """Wrap func so each call is recorded as its own trace (see trace()).

    stacklevel counts frames from here (1) up to the user's code."""
    return quiet(_decorate, func, explicit, stacklevel + 2)


def _decorate(func, explicit: dict, stacklevel: int):
    if isinstance(func, (staticmethod, classmethod)):
        # @trace above @staticmethod/@classmethod: wrap the function inside.
        return type(func)(_decorate(func.__func__, explicit, stacklevel + 1))
    if isinstance(func, type):
        raise TypeError(f"trace() decorates functions and methods, not classes ({func.__name__})")
    if not callable(func):
        raise TypeError(f"trace() can only decorate a callable, got {type(func).__name__}")
    if not _config.env_enabled(stacklevel + 1):
        # Disabled when decorating: the function itself, zero overhead.
        return func
    # Which trace of this function records in the current context, if any.
    active = contextvars.ContextVar(f"tracepatch.active:{getattr(func, '__qualname__', '?')}",
                                    default=None)
    if inspect.isasyncgenfunction(func):
        wrapper = _wrap_async_gen(func, explicit, active)
    elif inspect.iscoroutinefunction(func):
        wrapper = _wrap_coroutine(func, explicit, active)
    elif inspect.isgeneratorfunction(func):
        wrapper = _wrap_gen(func, explicit, active)
    else:
        wrapper = _wrap_sync(func, explicit, active)
    wrapper.last_trace = None
    return wrapper


def _new_trace(explicit: dict):
    t = object.__new__(trace)
    t._setup(explicit)
    return t


def _begin_in_context(explicit: dict, active):
    """A new trace begun in a copy of the current context, which each step of
    a generator then runs in (so the trace is active only inside its steps)."""
    t = _new_trace(explicit)
    ctx = contextvars.copy_context()
    ctx.run(active.set, t)
    ctx.run(t._begin, 4)  # warnings point at the wrapper's caller
    return t, ctx


def _recording(active) -> bool:
    """True when a trace of this function records in the current context."""
    t = active.get()
    return t is not None and t.active


def _wrap_sync(func, explicit, active):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _recording(active):
            return func(*args, **kwargs)
        t = _new_trace(explicit)
        token = active.set(t)  # before _begin: the set is not recorded
        t._begin(stacklevel=3)
        try:
            return func(*args, **kwargs)
        except BaseException:
            t._raised = True  # keep="slow" keeps a trace that raised
            raise
        finally:
            t._end()
            active.reset(token)
            wrapper.last_trace = t
    return wrapper


def _wrap_coroutine(func, explicit, active):
    @functools.wraps(func)
    async def wrapper(*args, **kwargs):
        if _recording(active):
            return await func(*args, **kwargs)
        t = _new_trace(explicit)
        token = active.set(t)
        t._begin(stacklevel=3)
        try:
            return await func(*args, **kwargs)
        except BaseException:
            t._raised = True
            raise
        finally:
            t._end()
            try:
                active.reset(token)
            except ValueError:  # finished in another context (a task's callback)
                active.set(None)
            wrapper.last_trace = t
    return wrapper


def _wrap_gen(func, explicit, active):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _recording(active):
            # Nested in its own trace: the body runs where the outer
            # generator's steps run, inside that trace's context.
            return (yield from func(*args, **kwargs))
        gen = func(*args, **kwargs)
        t, ctx = _begin_in_context(explicit, active)
        try:
            value, error = None, None
            while True:
                try:
                    if error is None:
                        item = ctx.run(gen.send, value)
                    else:
                        item = ctx.run(gen.throw, error)
                except StopIteration as stop:
                    return stop.value
                finally:
                    error = None
                try:
                    value = yield item
                except GeneratorExit:
                    ctx.run(gen.close)
                    raise
                except BaseException as exc:  # thrown in by the consumer: pass it on
                    value, error = None, exc
        finally:
            ctx.run(t._end)
            wrapper.last_trace = t
    return wrapper


class _StepIn:
    """Await an awaitable with each of its steps run inside ctx."""

    __slots__ = ("ctx", "awaitable")

    def __init__(self, ctx, awaitable):
        self.ctx = ctx
        self.awaitable = awaitable

    def __await__(self):
        it = self.awaitable.__await__()
        run = self.ctx.run
        value, error = None, None
        while True:
            try:
                if error is None:
                    signal = run(it.send, value)
                else:
                    signal = run(it.throw, error)
            except StopIteration as stop:
                return stop.value
            finally:
                error = None
            try:
                value = yield signal
            except BaseException as exc:  # cancellation and the like go to the step
                value, error = None, exc


def _wrap_async_gen(func, explicit, active):
    @functools.wraps(func)
    async def wrapper(*args, **kwargs):
        if _recording(active):
            async for item in func(*args, **kwargs):
                yield item
            return
        agen = func(*args, **kwargs)
        t, ctx = _begin_in_context(explicit, active)
        try:
            value, error = None, None
            while True:
                try:
                    if error is None:
                        item = await _StepIn(ctx, agen.asend(value))
                    else:
                        item = await _StepIn(ctx, agen.athrow(error))
                except StopAsyncIteration:
                    return
                finally:
                    error = None
                try:
                    value = yield item
                except GeneratorExit:
                    await _StepIn(ctx, agen.aclose())
                    raise
                except BaseException as exc:  # athrow() from the consumer: pass it on
                    value, error = None, exc
        finally:
            ctx.run(t._end)
            wrapper.last_trace = t
    return wrapper
