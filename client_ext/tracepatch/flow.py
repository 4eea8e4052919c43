"""FlowTrace's public API over tracepatch's recorder: ``import tracepatch.flow as flowtrace``.

    import tracepatch.flow as flowtrace

    @flowtrace.trace
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    fib(3)          # no session open: records this call and prints its tree

    flowtrace.start_tracing()
    fib(3)
    events = flowtrace.stop_tracing()
    flowtrace.print_tree(events)

The events are FlowTrace's: a ``CallEvent`` of kind "call" when a call
starts and one of kind "return" when it ends (``via_exception`` when an
exception ended it), an ``ExceptionEvent`` labelled caught or propagated,
and an ``AsyncTransitionEvent`` ("await", "yield", "resume") whenever a
coroutine or generator suspends or resumes. Each carries the
``ExecutionContext`` it happened in (thread, asyncio task, the task that
created it).

There is no second tracer here: a session is a tracepatch ``trace()``
(the C recorder, its limits, its daemon upload), and the events are read
from its log once it stops. Two things differ from FlowTrace's own code,
both where FlowTrace does not do what its README promises: arguments are
recorded for every call (its decorator never handed them to the session),
and a decorated coroutine function is traced across its awaits.

Only user code is recorded by default: the standard library and the
modules installed in site-packages / dist-packages stay out (pass
``user_only=False`` to start_tracing() to keep them).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import IO, Any, Callable, Iterable, Iterator, Literal, TypeVar, Union

from ._quiet import quiet
from ._trace import trace as _trace

__all__ = [
    "AsyncTransitionEvent",
    "CallEvent",
    "Config",
    "ExceptionEvent",
    "ExecutionContext",
    "active_tracing",
    "config",
    "format_tree",
    "get_config",
    "get_trace",
    "get_trace_data",
    "is_tracing_active",
    "print_events_debug",
    "print_summary",
    "print_tree",
    "start_tracing",
    "stop_tracing",
    "trace",
]

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

_DEFAULT_TB_DEPTH = 2  # show_exc=True: the two innermost frames


@dataclass
class Config:
    """What a session collects and how print_tree() prints it.

    show_exc: False (no traceback), True (a traceback of 2 frames) or the
    number of frames. inline_return: a call without children prints on one
    line, ``→ f() → 'ok'``.
    """

    show_args: bool = True
    show_result: bool = True
    show_timing: bool = True
    show_exc: Union[bool, int] = False
    inline_return: bool = False

    def exc_enabled(self) -> bool:
        return bool(self.show_exc)

    def exc_depth(self) -> int:
        if isinstance(self.show_exc, bool):
            return _DEFAULT_TB_DEPTH if self.show_exc else 0
        return max(0, int(self.show_exc))


_CONFIG = Config()


def get_config() -> Config:
    """The global configuration (config() replaces it)."""
    return _CONFIG


def config(*, show_args: bool | None = None, show_result: bool | None = None,
           show_timing: bool | None = None, show_exc: bool | int | None = None,
           inline_return: bool | None = None, exc_tb_depth: int | None = None) -> Config:
    """Change the global flags given (None leaves one as it is); returns the
    new Config. exc_tb_depth=N is show_exc=N."""
    global _CONFIG
    if exc_tb_depth is not None and show_exc is None:
        show_exc = int(exc_tb_depth)
    changes = {"show_args": show_args, "show_result": show_result, "show_timing": show_timing,
               "show_exc": show_exc, "inline_return": inline_return}
    _CONFIG = replace(_CONFIG, **{k: v for k, v in changes.items() if v is not None})
    return _CONFIG


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


@dataclass
class ExecutionContext:
    """Where an event happened: the thread (threading.get_ident(); for a
    thread of threads=True that has ended before stop_tracing(), the
    recorder's index of it, as its ident is gone), and under
    asyncio the task (numbered from 1 in each session), the task that created
    it, and its name (asyncio's, taken when the task was created)."""

    thread_id: int
    task_id: int | None = None
    task_parent_id: int | None = None
    task_name: str | None = None


@dataclass
class CallEvent:
    """A call starting (kind "call") or ending (kind "return").

    id: index in the event list. func_name: the function's bare name.
    parent_id: for a call, the id of its caller's call event (None at the
    top); for a return, the id of the call it ends. args_repr, result_repr,
    duration (seconds of active time) are set when collected (collect_*).
    via_exception: a return caused by an exception. module, qualname: the
    function's full name; exception: "Type: message" on a return by exception.
    """

    id: int
    kind: str
    func_name: str
    parent_id: int | None = None
    args_repr: str | None = None
    result_repr: str | None = None
    duration: float | None = None
    via_exception: bool | None = None
    collect_args: bool = False
    collect_result: bool = False
    collect_timing: bool = False
    context: ExecutionContext | None = None
    module: str = ""
    qualname: str = ""
    exception: str | None = None

    # FlowTrace's older names of the collect flags.
    @property
    def show_args(self) -> bool:
        return self.collect_args

    @property
    def show_result(self) -> bool:
        return self.collect_result

    @property
    def show_timing(self) -> bool:
        return self.collect_timing


@dataclass
class ExceptionEvent:
    """An exception in a call: caught (handled there, the call went on) or
    propagated (it ended the call). parent_id: the call event's id. exc_tb:
    ``file.py:LINE in func | ...``, innermost last, at most the configured
    depth; LINE is where the function is defined (the recorder keeps calls,
    not lines). None when show_exc is off."""

    id: int
    kind: str = "exception"
    func_name: str = ""
    parent_id: int | None = None
    exc_type: str | None = None
    exc_msg: str | None = None
    caught: bool | None = None
    via_exception: bool = False
    exc_tb: str | None = None
    context: ExecutionContext | None = None


@dataclass
class AsyncTransitionEvent:
    """A coroutine suspending ("await"), a generator or async generator
    suspending ("yield"), or either resuming ("resume"). async_id is the
    task's id, parent_async_id the creating task's; call_id is the id of the
    suspended call's call event."""

    id: int
    kind: Literal["await", "resume", "yield"]
    func_name: str
    async_id: int | None = None
    parent_async_id: int | None = None
    detail: str | None = None
    context: ExecutionContext | None = None
    call_id: int | None = None


TraceEvent = Union[CallEvent, ExceptionEvent, AsyncTransitionEvent]

# ---------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------


@dataclass
class _Flags:
    args: bool
    result: bool
    timing: bool
    tb_depth: int


class _Session:
    """One start_tracing() ... stop_tracing(): the trace and FlowTrace's
    per-call flags (the decorator's overrides, by call sequence number)."""

    def __init__(self, t: _trace, defaults: _Flags, thread_id: int, task: tuple | None,
                 user_only: bool):
        self.trace = t
        self.user_only = user_only
        self.defaults = defaults
        self.overrides: dict[int, _Flags] = {}
        self.thread_id = thread_id
        self.task = task  # (name,) of the asyncio task it started in, or None


_lock = threading.Lock()
_sessions: list[_Session] = []  # open sessions, innermost last
_last_events: list = []
_last_trace: _trace | None = None


def _user_only_ignores() -> tuple:
    """Module prefixes that are not user code: the standard library, and
    every top-level package imported from site-packages / dist-packages."""
    names = set(getattr(sys, "stdlib_module_names", ()))
    names.update(sys.builtin_module_names)
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None) or ""
        if "site-packages" in path or "dist-packages" in path:
            names.add(name.partition(".")[0])
    names.discard("__main__")
    return tuple(sorted(n for n in names if n))


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SYS_PREFIXES = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix)})


def _is_user_path(path: str) -> bool:
    """FlowTrace's rule for a file: user code unless it belongs to the
    interpreter's installation, to site-packages / dist-packages, or to
    tracepatch itself."""
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError, TypeError):
        return False
    if real.startswith(_SYS_PREFIXES) or real.startswith(_PACKAGE_DIR + os.sep):
        return False
    return f"{os.sep}site-packages{os.sep}" not in real and \
        f"{os.sep}dist-packages{os.sep}" not in real and real != sys.executable


def _is_user_code(code: Any) -> bool:
    """_is_user_path() of a code object's file."""
    return _is_user_path(getattr(code, "co_filename", ""))


def _current_task_name() -> tuple | None:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return None
    if task is None:
        return None
    try:
        return (task.get_name(),)
    except Exception:  # noqa: BLE001 - a foreign task type
        return (None,)


def start_tracing(default_show_args: bool | None = None, default_show_result: bool | None = None,
                  default_show_timing: bool | None = None,
                  default_exc_tb_depth: int | None = None, *, user_only: bool = True,
                  **options: Any) -> _trace:
    """Start a session in this thread and context (asyncio tasks created
    from here too). The default_* flags fall back to get_config(); other
    keywords are trace()'s (label=, max_calls=, threads=, ...). Sessions nest:
    stop_tracing() ends the innermost. Returns the session's trace object."""
    cfg = get_config()
    defaults = _Flags(
        cfg.show_args if default_show_args is None else bool(default_show_args),
        cfg.show_result if default_show_result is None else bool(default_show_result),
        cfg.show_timing if default_show_timing is None else bool(default_show_timing),
        cfg.exc_depth() if default_exc_tb_depth is None else max(0, int(default_exc_tb_depth)))
    options.setdefault("cache", False)
    t = _trace(**options)
    if user_only:
        t._extra_ignore = t._extra_ignore + quiet(_user_only_ignores)
    sess = _Session(t, defaults, threading.get_ident(), quiet(_current_task_name), user_only)
    t._begin(stacklevel=3)
    with _lock:
        _sessions.append(sess)
    return t


def is_tracing_active() -> bool:
    """Whether a session is open."""
    return bool(_sessions)


def stop_tracing() -> list:
    """End the innermost session and return its events ([] when none is open)."""
    global _last_events, _last_trace
    with _lock:
        if not _sessions:
            return []
        sess = _sessions.pop()
    sess.trace._end()
    events = quiet(_events_of, sess)
    _last_events, _last_trace = events, sess.trace
    return events


def get_trace_data() -> list:
    """The events of the last session stopped."""
    return list(_last_events)


def get_trace() -> _trace | None:
    """The trace object of the last session stopped (tree(), to_json(), ...)."""
    return _last_trace


@contextmanager
def active_tracing(**kwargs: Any) -> Iterator[_trace]:
    """A session for the block; its events are get_trace_data() afterwards.
    A nested block has a session (and data) of its own."""
    t = start_tracing(**kwargs)
    try:
        yield t
    finally:
        stop_tracing()


# ---------------------------------------------------------------------------
# The decorator
# ---------------------------------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., Any])


def trace(func: _F | None = None, *, show_args: bool | None = None,
          show_result: bool | None = None, show_timing: bool | None = None,
          measure_time: bool | None = None, exc_tb_depth: int | bool | None = None) -> Any:
    """Decorate a function (bare ``@trace`` or ``@trace(show_timing=True)``).

    Inside a session, the flags given override the session's for this
    function's calls only (its callees keep the session's). With no session
    open, a call records itself and its callees and prints the tree when it
    ends, as FlowTrace does. measure_time is show_timing's other name;
    exc_tb_depth (True = 2) is the traceback depth of its exceptions.
    """
    if show_timing is None:
        show_timing = measure_time
    if isinstance(exc_tb_depth, bool):
        exc_tb_depth = _DEFAULT_TB_DEPTH if exc_tb_depth else 0

    def decorate(fn: _F) -> _F:
        def before() -> bool:
            fresh = not _sessions
            if fresh:
                start_tracing()
            cfg = get_config()
            for sess in list(_sessions):
                session = sess.trace._session
                if session is None:
                    continue
                d = sess.defaults
                sess.overrides[session.call_count] = _Flags(
                    d.args if show_args is None else show_args,
                    d.result if show_result is None else show_result,
                    (cfg.show_timing if fresh else d.timing) if show_timing is None
                    else show_timing,
                    d.tb_depth if exc_tb_depth is None else max(0, int(exc_tb_depth)))
            return fresh

        def after(fresh: bool) -> None:
            if fresh:
                events = stop_tracing()
                print_tree(events)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                fresh = before()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    after(fresh)
            wrapper: Any = awrapper
        else:
            @functools.wraps(fn)
            def swrapper(*args: Any, **kwargs: Any) -> Any:
                fresh = before()
                try:
                    return fn(*args, **kwargs)
                finally:
                    after(fresh)
            wrapper = swrapper
        wrapper.__flowtrace_real_name__ = getattr(fn, "__name__", type(fn).__name__)
        return wrapper

    return decorate(func) if func is not None else decorate


# ---------------------------------------------------------------------------
# From the recorder's log to FlowTrace's events
# ---------------------------------------------------------------------------

# Event kinds of the log (proto/event.h).
_EV_CALL, _EV_RETURN, _EV_UNWIND, _EV_CAUGHT, _EV_YIELD, _EV_RESUME, _EV_THREAD, _EV_SPAWN = range(
    1, 9)


def _is_coroutine(module: str, qualname: str) -> bool:
    """Whether module.qualname names a coroutine function (an "await" rather
    than a "yield" when it suspends). The recorder keeps names, not code
    flags, so the function is looked up by name; one that cannot be found
    that way (a local function) counts as a coroutine when asyncio is loaded."""
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        if obj is None or part == "<locals>":
            break
        obj = getattr(obj, part, None)
    else:
        if callable(obj):
            return inspect.iscoroutinefunction(inspect.unwrap(obj))
    return "asyncio" in sys.modules


def _thread_ids(sess: _Session, raw: list) -> tuple:
    """The session's thread indices as threading idents (0 is the thread
    that started it; others are found by name while they live), and the
    names of the tasks spawned in the trace by the call number of their
    coroutine (the text of a SPAWN record)."""
    ids = {0: sess.thread_id}
    names = {}
    task_names = {}
    cur = 0
    seq = 0
    pending = None
    for ev in raw:
        if ev[0] == _EV_THREAD:
            cur = ev[2]
            if len(ev) > 4 and cur not in names:
                names[cur] = ev[4]
        elif ev[0] == _EV_SPAWN:
            pending = ev[4] if len(ev) > 4 else None
        elif ev[0] == _EV_CALL:
            if pending is not None:
                task_names[seq] = pending
                pending = None
            seq += 1
    by_name = {th.name: th.ident for th in threading.enumerate()}
    for idx, name in names.items():
        if idx not in ids:
            ids[idx] = by_name.get(name, idx)
    return ids, task_names


def _contexts(sess: _Session, nodes: list, thread_ids: dict, task_names: dict) -> list:
    """Each node's ExecutionContext: a task spawned in the trace is a new
    task under its creator's; a call runs in its caller's task; a top-level
    call in the task the session started in."""
    from . import _tracepatch

    contexts = []
    next_task = [1]
    root_task = None
    if sess.task is not None:
        root_task = (next_task[0], None, sess.task[0])
        next_task[0] += 1
    tasks = []  # per node: (task id, parent task id, name) or None
    for i, (parent, module, qualname, *_rest) in enumerate(nodes):
        flags, thread = _rest[-3], _rest[-1]
        if flags & _tracepatch.NODE_SPAWNED:
            creator = tasks[parent] if parent >= 0 else root_task
            task = (next_task[0], creator[0] if creator else None, task_names.get(i))
            next_task[0] += 1
        elif parent >= 0:
            task = tasks[parent]
        elif root_task is None and flags & _tracepatch.NODE_GEN and "asyncio" in sys.modules:
            # asyncio.run()'s main coroutine: its creator is the event loop.
            task = (next_task[0], None, None)
            next_task[0] += 1
        else:
            task = root_task
        tasks.append(task)
        tid = thread_ids.get(thread, thread)
        contexts.append(ExecutionContext(tid, *task) if task else ExecutionContext(tid))
    return contexts


def _traceback(nodes: list, children: dict, start: int, depth: int) -> str | None:
    """The chain of calls an exception went through, from node start down to
    the one that raised it, innermost last, cut to depth frames."""
    if depth <= 0:
        return None
    from . import _tracepatch

    chain = [start]
    node = start
    while True:
        kids = [k for k in children.get(node, ()) if nodes[k][11] & _tracepatch.NODE_EXC]
        if not kids:
            break
        node = kids[-1]
        chain.append(node)
    parts = [f"{os.path.basename(nodes[n][3])}:{nodes[n][4]} in {_bare(nodes[n][2])}"
             for n in chain[-depth:]]
    return " | ".join(parts)


def _bare(qualname: str) -> str:
    return qualname.rpartition(".")[2]


def _hidden_nodes(sess: _Session, nodes: list) -> set:
    """Calls a user-only session leaves out although the recorder kept them:
    code the standard library generates at run time (a namedtuple's
    ``__new__``, compiled from a string in a module of its own)."""
    if not sess.user_only:
        return set()
    return {i for i, node in enumerate(nodes)
            if node[3] == "<string>" and node[1].startswith("namedtuple_")}


def _events_of(sess: _Session) -> list:
    t = sess.trace
    session = t._done_session()
    if not session.call_count:
        return []
    nodes = session.nodes()
    durations = [ev[6] for ev in session.events()]
    raw = session._raw_events()
    thread_ids, task_names = _thread_ids(sess, raw)
    contexts = _contexts(sess, nodes, thread_ids, task_names)
    children: dict = {}
    for i, node in enumerate(nodes):
        if node[0] >= 0:
            children.setdefault(node[0], []).append(i)
    hidden = _hidden_nodes(sess, nodes)
    coro: dict = {}
    out: list = []
    call_eid: dict = {}
    stacks: dict = {}
    cur = 0
    seq = 0

    def flags_of(n: int) -> _Flags:
        return sess.overrides.get(n, sess.defaults)

    def exc_event(n: int, caught: bool, exc_type: str, exc_msg: str) -> None:
        out.append(ExceptionEvent(
            id=len(out), func_name=_bare(nodes[n][2]), parent_id=call_eid.get(n),
            exc_type=exc_type, exc_msg=exc_msg, caught=caught,
            exc_tb=_traceback(nodes, children, n, flags_of(n).tb_depth), context=contexts[n]))

    for ev in raw:
        kind = ev[0]
        if kind == _EV_THREAD:
            cur = ev[2]
            continue
        if kind == _EV_SPAWN:
            continue
        stack = stacks.setdefault(cur, [])
        if kind == _EV_CALL:
            n = seq
            seq += 1
            if n >= len(nodes):
                break
            stack.append(n)
            if n in hidden:
                continue
            parent, module, qualname = nodes[n][0], nodes[n][1], nodes[n][2]
            while parent >= 0 and parent in hidden:
                parent = nodes[parent][0]
            f = flags_of(n)
            call_eid[n] = len(out)
            out.append(CallEvent(
                id=len(out), kind="call", func_name=_bare(qualname),
                parent_id=call_eid.get(parent) if parent >= 0 else None,
                args_repr=(nodes[n][5] or "") if f.args else None,
                collect_args=f.args, collect_result=f.result, collect_timing=f.timing,
                context=contexts[n], module=module, qualname=qualname))
            continue
        if kind in (_EV_RETURN, _EV_UNWIND):
            if not stack:
                continue
            n = stack.pop()
            if n in hidden:
                continue
            f = flags_of(n)
            node = nodes[n]
            by_exc = kind == _EV_UNWIND
            exception = None
            if by_exc:
                exc_type, exc_msg = ev[4] if len(ev) > 4 else node[7], (
                    ev[5] if len(ev) > 5 else node[8])
                exc_event(n, False, exc_type or "", exc_msg or "")
                exception = f"{exc_type}: {exc_msg}" if exc_msg else exc_type
            out.append(CallEvent(
                id=len(out), kind="return", func_name=_bare(node[2]), parent_id=call_eid.get(n),
                result_repr=node[6] if f.result and not by_exc else None,
                duration=durations[n] if f.timing else None, via_exception=by_exc,
                collect_args=f.args, collect_result=f.result, collect_timing=f.timing,
                context=contexts[n], module=node[1], qualname=node[2], exception=exception))
            continue
        if kind == _EV_CAUGHT:
            if stack and stack[-1] not in hidden:
                n = stack[-1]
                exc_event(n, True, ev[4] if len(ev) > 4 else "", ev[5] if len(ev) > 5 else "")
            continue
        if kind in (_EV_YIELD, _EV_RESUME):
            n = ev[2]
            if n >= len(nodes):
                continue
            if kind == _EV_YIELD:
                if n in stack:
                    stack.remove(n)
                if n not in coro:
                    coro[n] = _is_coroutine(nodes[n][1], nodes[n][2])
                what = "await" if coro[n] else "yield"
            else:
                stack.append(n)
                what = "resume"
            if n in hidden:
                continue
            ctx = contexts[n]
            out.append(AsyncTransitionEvent(
                id=len(out), kind=what, func_name=_bare(nodes[n][2]), async_id=ctx.task_id,
                parent_async_id=ctx.task_parent_id, context=ctx, call_id=call_eid.get(n)))
    return out


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

_MAX_MSG = 200
_EMPTY = "[flowtrace] (empty trace)"


def _trim(s: str | None, n: int = _MAX_MSG) -> str:
    if not s:
        return ""
    return s if len(s) <= n else s[: n - 3] + "..."


def _sig(ev: CallEvent, names: str) -> str:
    name = ev.func_name
    if names == "full" and ev.qualname:
        name = f"{ev.module}.{ev.qualname}" if ev.module else ev.qualname
    return f"{name}({ev.args_repr or ''})"


def format_tree(events: Iterable[TraceEvent] | None = None, *, inline_return: bool | None = None,
                names: str = "short", timing: bool | None = None) -> str:
    """The text print_tree() prints, without the final newline."""
    if names not in ("full", "short"):
        raise ValueError(f"names must be 'full' or 'short', got {names!r}")
    events = list(get_trace_data() if events is None else events)
    if not events:
        return _EMPTY
    inline = get_config().inline_return if inline_return is None else inline_return
    calls = {e.id: e for e in events if isinstance(e, CallEvent) and e.kind == "call"}
    kids: dict = {}
    roots = []
    rets: dict = {}
    excs: dict = {}
    for e in events:
        if isinstance(e, CallEvent) and e.kind == "call":
            if e.parent_id is None or e.parent_id not in calls:
                roots.append(e)
            else:
                kids.setdefault(e.parent_id, []).append(e)
        elif isinstance(e, CallEvent) and e.kind == "return":
            rets.setdefault(e.parent_id, e)
        elif isinstance(e, ExceptionEvent):
            excs.setdefault(e.parent_id, []).append(e)

    def dur(ret: CallEvent | None) -> str:
        if ret is None or ret.duration is None or timing is False:
            return ""
        return f" [{ret.duration:.6f}s]"

    lines: list[str] = []
    # Iterative: a deep recursion in the traced program must not become a
    # RecursionError here. Entries: (call, depth, closing).
    stack = [(e, 0, False) for e in reversed(roots)]
    while stack:
        call, depth, closing = stack.pop()
        pad = "  " * depth
        sig = _sig(call, names)
        ret = rets.get(call.id)
        if closing:
            for ex in excs.get(call.id, ()):
                tag = " [caught]" if ex.caught is True else (
                    " [propagated]" if ex.caught is False else "")
                lines.append(f"{pad}  ↯ {sig} {ex.exc_type}: {_trim(ex.exc_msg)}{tag}")
                if ex.exc_tb:
                    lines.append(f"{pad}     ⤷ {ex.exc_tb}")
            by_exc = bool(ret and ret.via_exception)
            line = f"{pad}{'↯' if by_exc else '←'} {sig}{dur(ret)}"
            if ret is not None and not by_exc and ret.result_repr is not None:
                line += f" → {ret.result_repr}"
            if by_exc:
                line += " [exc-return]"
            lines.append(line)
            continue
        children = kids.get(call.id, [])
        if inline and not children and not excs.get(call.id) and ret is not None \
                and not ret.via_exception:
            line = f"{pad}→ {sig}{dur(ret)}"
            if ret.result_repr is not None:
                line += f" → {ret.result_repr}"
            lines.append(line)
            continue
        lines.append(f"{pad}→ {sig}")
        stack.append((call, depth, True))
        stack.extend((kid, depth + 1, False) for kid in reversed(children))
    return "\n".join(lines)


def print_tree(events: Iterable[TraceEvent] | None = None, indent: int = 0,
               parent_id: int | None = None, inline_return: bool | None = None, *,
               file: IO[str] | None = None, names: str = "short",
               timing: bool | None = None) -> None:
    """Print events as FlowTrace's arrow tree: ``→ f(args)`` when a call
    starts, ``← f(args) [0.000012s] → result`` when it ends (``↯ ...
    [exc-return]`` when an exception ended it), each exception under its
    call as ``↯ f(args) Type: message [caught]`` or ``[propagated]``. With
    inline_return (default: get_config()), a call without children or
    exceptions is one line. Timings print when they were collected (timing=False
    hides them). names="full" prints module.qualname. indent and parent_id
    start the tree at that depth and under that call. Prints
    ``[flowtrace] (empty trace)`` for no events."""
    quiet(_print_tree, events, indent, parent_id, inline_return, file, names, timing)


def _print_tree(events, indent, parent_id, inline_return, file, names, timing) -> None:
    events = list(get_trace_data() if events is None else events)
    if events and parent_id is not None:
        keep = _subtree_ids(events, parent_id)
        events = [e for e in events if _owner(e) in keep]
        events = [replace(e, parent_id=None) if isinstance(e, CallEvent) and e.kind == "call"
                  and e.parent_id == parent_id else e for e in events]
    text = format_tree(events, inline_return=inline_return, names=names, timing=timing)
    if indent and text != _EMPTY:
        text = "\n".join("  " * indent + line for line in text.split("\n"))
    out = file if file is not None else sys.stdout
    out.write(text + "\n")


def _owner(e: TraceEvent) -> int | None:
    if isinstance(e, CallEvent) and e.kind == "call":
        return e.id
    if isinstance(e, AsyncTransitionEvent):
        return e.call_id
    return e.parent_id


def _subtree_ids(events: list, root: int) -> set:
    kids: dict = {}
    for e in events:
        if isinstance(e, CallEvent) and e.kind == "call" and e.parent_id is not None:
            kids.setdefault(e.parent_id, []).append(e.id)
    out: set = set()
    todo = list(kids.get(root, ()))
    while todo:
        n = todo.pop()
        out.add(n)
        todo.extend(kids.get(n, ()))
    return out


def print_summary(events: Iterable[TraceEvent] | None = None, *,
                  file: IO[str] | None = None) -> None:
    """One line: ``[flowtrace] N events, 0.000123s, last function: f``
    (the time sums the collected durations of the top-level calls)."""
    events = list(get_trace_data() if events is None else events)
    out = file if file is not None else sys.stdout
    if not events:
        out.write(_EMPTY + "\n")
        return
    top = {e.id for e in events if isinstance(e, CallEvent) and e.kind == "call"
           and e.parent_id is None}
    total = sum(e.duration or 0.0 for e in events
                if isinstance(e, CallEvent) and e.kind == "return" and e.parent_id in top)
    last = next((e.func_name for e in reversed(events)
                 if isinstance(e, (CallEvent, ExceptionEvent))), "-")
    out.write(f"[flowtrace] {len(events)} events, {total:.6f}s, last function: {last}\n")


def _debug_line(e: TraceEvent) -> str:
    if isinstance(e, CallEvent):
        if e.kind == "call":
            return f"    call {e.func_name}" + (f" ({e.args_repr})" if e.args_repr is not None
                                                else "")
        bits = [f"    return {e.func_name}"]
        if e.via_exception:
            bits.append("[exc-return]")
        elif e.result_repr is not None:
            bits.append(f"→ {e.result_repr}")
        if e.duration is not None:
            bits.append(f"({e.duration:.6f}s)")
        return " ".join(bits)
    if isinstance(e, ExceptionEvent):
        tag = "caught" if e.caught is True else ("propagated" if e.caught is False else "raised")
        return f"    exception {e.func_name} {e.exc_type}: {_trim(e.exc_msg)} [{tag}]"
    detail = f" {e.detail}" if e.detail else ""
    return f"    {e.kind:7} {e.func_name}{detail}"


def print_events_debug(events: Iterable[TraceEvent] | None = None, *,
                       file: IO[str] | None = None) -> None:
    """Every event on its own line (``call f (x=1)``, ``return f → 2
    (0.000010s)``, ``exception f ValueError: boom [caught]``, ``await f``),
    then, when tasks ran, each task (``Task#2 (parent=1)``) and its calls."""
    events = list(get_trace_data() if events is None else events)
    out = file if file is not None else sys.stdout
    if not events:
        out.write(_EMPTY + "\n")
        return
    lines = ["[flowtrace] events:"] + [_debug_line(e) for e in events]
    tasks: dict = {}
    for e in events:
        ctx = e.context
        if ctx is not None and ctx.task_id is not None and ctx.task_id not in tasks:
            tasks[ctx.task_id] = ctx
    if tasks:
        lines.append("")
        for tid, ctx in tasks.items():
            header = f"Task#{tid}" + (f" {ctx.task_name}" if ctx.task_name else "")
            if ctx.task_parent_id is not None:
                header += f" (parent={ctx.task_parent_id})"
            lines.append(header)
            for e in events:
                if isinstance(e, CallEvent) and e.kind == "call" and e.context is not None \
                        and e.context.task_id == tid:
                    lines.append(f"  → {e.func_name}({e.args_repr or ''})")
    out.write("\n".join(lines) + "\n")
