"""The session API in FlowTrace's style: start_tracing(), stop_tracing(), print_tree().

    from tracepatch import start_tracing, stop_tracing, print_tree

    start_tracing()
    fib(3)
    events = stop_tracing()
    print_tree(events)

prints::

    → fib(n=3)
      → fib(n=2)
        → fib(n=1) → 1
        → fib(n=0) → 0
      ← fib(n=2) → 1
      → fib(n=1) → 1
    ← fib(n=3) → 2

(``print_tree(events, names="full")`` adds the module: ``→ __main__.fib(n=3)``.)
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import IO, Any, Iterable

from ._quiet import quiet
from ._trace import trace

_lock = threading.Lock()
_current: trace | None = None
_last_events: list = []
_last_trace: trace | None = None


@dataclass
class CallEvent:
    """One call, FlowTrace's event model plus where it came from.

    id: index in call order. kind: "call". func_name: "module.qualname".
    parent_id: the caller's id, or None for a top-level call. args_repr /
    result_repr: the captured text (None when not captured, or when the call
    raised). duration: seconds. module, qualname: the two parts of
    func_name. exception: "Type: message" when the call raised, else None.
    """

    id: int
    kind: str
    func_name: str
    parent_id: int | None
    args_repr: str | None
    result_repr: str | None
    duration: float | None
    module: str = ""
    qualname: str = ""
    exception: str | None = None


def start_tracing(**options: Any) -> trace:
    """Start recording calls in this thread and context (asyncio tasks created
    afterwards too). Takes the same keyword arguments as trace(). One session
    at a time: call stop_tracing() before starting another."""
    global _current
    with _lock:
        if _current is not None:
            raise RuntimeError("tracing already started: call stop_tracing() first")
        t = trace(**options)
        _current = t
    try:
        t._begin(stacklevel=3)
    except BaseException:
        with _lock:
            _current = None
        raise
    return t


def stop_tracing() -> list:
    """Stop the session started by start_tracing(); return its CallEvents."""
    global _current, _last_events, _last_trace
    with _lock:
        t = _current
        if t is None:
            raise RuntimeError("tracing is not started: call start_tracing() first")
        _current = None
    t._end()
    events = quiet(events_of, t)
    _last_events, _last_trace = events, t
    return events


def get_trace_data() -> list:
    """The events of the last session stopped with stop_tracing()."""
    return list(_last_events)


def get_trace() -> trace | None:
    """The trace object of the last session (tree(), to_json(), ...)."""
    return _last_trace


def events_of(t: trace) -> list:
    """A finished trace's calls as CallEvents, in call order."""
    session = t._done_session()
    raw_events = session.events()
    raw_nodes = session.nodes()
    same = len(raw_events) == len(raw_nodes)
    out = []
    for i, ev in enumerate(raw_events):
        ev_id, kind, func_name, parent_id, args_repr, result_repr, duration = ev
        module, qualname, exception = "", func_name, None
        if same:
            node = raw_nodes[i]
            module, qualname = node[1], node[2]
            if node[11] & 1 and node[7] is not None:
                exception = f"{node[7]}: {node[8]}" if node[8] else node[7]
        out.append(CallEvent(ev_id, kind, func_name, parent_id, args_repr, result_repr,
                             duration, module, qualname, exception))
    return out


def _label(ev: CallEvent, names: str) -> str:
    qualname = getattr(ev, "qualname", None)
    name = qualname if names == "short" and qualname else ev.func_name
    return f"{name}({ev.args_repr or ''})"


def _outcome(ev: CallEvent, timing: bool) -> str:
    text = f" [{ev.duration:.6f}s]" if timing and ev.duration is not None else ""
    exception = getattr(ev, "exception", None)
    if exception is not None:
        return f"{text} !! {exception}"
    if ev.result_repr is not None:
        return f"{text} → {ev.result_repr}"
    return text


def format_tree(events, *, names: str = "short", timing: bool = False) -> str:
    """The text print_tree() prints (without the final newline)."""
    if names not in ("full", "short"):
        raise ValueError(f"names must be 'full' or 'short', got {names!r}")
    children: dict = {}
    roots = []
    known = {ev.id for ev in events}
    for ev in events:
        if ev.parent_id is None or ev.parent_id not in known:
            roots.append(ev)
        else:
            children.setdefault(ev.parent_id, []).append(ev)
    lines: list[str] = []
    # Iterative walk: deep recursion in the traced program must not become
    # a RecursionError here. Each stack entry is (event, depth, closing).
    stack = [(ev, 0, False) for ev in reversed(roots)]
    while stack:
        ev, depth, closing = stack.pop()
        pad = "  " * depth
        kids = children.get(ev.id)
        if closing:
            lines.append(f"{pad}← {_label(ev, names)}{_outcome(ev, timing)}")
        elif kids:
            lines.append(f"{pad}→ {_label(ev, names)}")
            stack.append((ev, depth, True))
            stack.extend((kid, depth + 1, False) for kid in reversed(kids))
        else:
            lines.append(f"{pad}→ {_label(ev, names)}{_outcome(ev, timing)}")
    return "\n".join(lines)


def print_tree(events: Iterable[CallEvent], file: IO[str] | None = None, *, names: str = "short",
               timing: bool = False) -> None:
    """Print events (from stop_tracing()) as FlowTrace's arrow tree.

    "→ f(args)" opens a call; a call without children is one line ending in
    "→ result"; a call with children closes with "← f(args) → result".
    names="full" prints "module.qualname" instead of the qualified name alone; timing=True
    adds each call's duration in seconds.
    """
    quiet(_print, events, file, names, timing)


def _print(events, file, names, timing) -> None:
    text = format_tree(events, names=names, timing=timing)
    out = file if file is not None else sys.stdout
    if text:
        out.write(text + "\n")
