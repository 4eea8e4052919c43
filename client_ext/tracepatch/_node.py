"""Node: one recorded call, built lazily from the native session's tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Iterator

# Flag bits of _tracepatch.Session.node() (TP_NODE_* in proto/tree.h).
NODE_EXC = 1      # the call ended by an exception propagating out
NODE_CAUGHT = 2   # an exception was raised and handled inside; the call returned
NODE_OPEN = 4     # still running when the trace stopped
NODE_GEN = 8      # generator / coroutine / async generator: first resume to completion
NODE_SPAWNED = 0x80  # an asyncio task's coroutine, under the call that created the task


class Node:
    """One call in a finished trace, built when first reached: a node's
    children (and theirs) are made only when ``children`` is read, so
    ``t.roots[0].children[0]`` costs the same on a trace of any size.

    Attributes:
        name: the function's own name (last part of ``qualname``).
        qualname: qualified name, e.g. ``"MyClass.method"``.
        module: module name, e.g. ``"__main__"``.
        args: the arguments as recorded, e.g. ``"uid=42"`` (None if not captured).
        return_value: repr of the return value (None if not captured, or raised).
        exception: ``"Type: message"`` when the call ended by an exception, else None.
        exception_type: the exception's type name (raised or caught), else None.
        caught: True when an exception was raised inside the call and handled there.
        caught_exception: ``"Type: message"`` of that handled exception, else None.
        start, end: Unix time in seconds (floats).
        elapsed: the call's active time in seconds: ``end - start`` for a plain
            call; for a generator or coroutine, the time it ran (the sum of
            its resumed intervals), not the time it waited. ``elapsed_ms``
            the same in milliseconds.
        span: ``end - start`` in seconds (first resume to end for a generator).
        self_time: seconds the call itself ran, its children's active time
            excluded (never negative).
        file, lineno: where the function is defined ("" / 0 when unknown).
        unfinished: True when the call was still running when the trace stopped.
        is_generator: True for generators, coroutines and async generators.
        spawned: True for an asyncio task's coroutine, placed under the call
            that created the task.
        suspends: how many times a generator/coroutine suspended.
        memory_delta_kb: with ``trace(track_memory=True)``, the memory
            tracemalloc traced at the call's end less at its start, in KiB
            (1024 bytes; negative when it freed more than it allocated; a
            generator's is summed over the intervals it ran); None when not
            measured (track_memory off, or the call was still running).
        memory_delta_bytes: the same in bytes (an int), or None.
        thread: index of the thread that made the call (0 = the tracing thread).
        depth: 0 for a root.
        parent: the calling Node, or None for a root.
        children: calls made by this one, in order (a read-only sequence).
    """

    __slots__ = ("name", "qualname", "module", "args", "return_value", "exception",
                 "exception_type", "caught", "caught_exception", "start", "end",
                 "elapsed", "span", "self_time", "file", "lineno", "unfinished",
                 "is_generator", "spawned", "suspends", "memory_delta_bytes", "thread",
                 "depth", "parent",
                 "index", "_children", "_src")

    @property
    def children(self) -> "NodeList":
        kids = self._children
        if kids is None:
            session, wall_start = self._src
            kids = self._children = NodeList(session, wall_start, self)
        return kids

    @children.setter
    def children(self, value) -> None:
        # Nodes made in Python (the 1.0.0 tree helpers, nodes read from a
        # file) carry a plain list instead of the session's lazy one.
        self._children = value

    @property
    def elapsed_ms(self) -> float:
        return self.elapsed * 1000.0

    @property
    def memory_delta_kb(self) -> float | None:
        b = self.memory_delta_bytes
        return None if b is None else b / 1024.0

    @property
    def full_name(self) -> str:
        """``module.qualname``, as the tree prints it."""
        return f"{self.module}.{self.qualname}" if self.module else self.qualname

    def walk(self) -> Iterator[Node]:
        """This node and all its descendants, depth first, in call order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def to_dict(self) -> dict[str, Any]:
        """The node and its subtree in the JSON trace schema's shape
        (memory_delta_kb only on a measured call, as in trace files)."""
        mem = getattr(self, "memory_delta_bytes", None)
        extra = {} if mem is None else {"memory_delta_kb": round(mem / 1024.0, 3)}
        return {
            "name": self.qualname,  # JSON's "name" is the qualname (docs/API.md)
            "qualname": self.qualname,
            "module": self.module,
            "args": self.args,
            "return_value": self.return_value,
            "exception": self.exception,
            "start": self.start,
            "end": self.end,
            "elapsed_ms": round(self.elapsed_ms, 4),
            "file": self.file,
            "lineno": self.lineno,
            **extra,
            "children": [c.to_dict() for c in self.children],
        }

    def __repr__(self) -> str:
        if self.exception is not None:
            outcome = f" !! {self.exception}"
        elif self.return_value is not None:
            outcome = f" -> {self.return_value}"
        else:
            outcome = ""
        return (f"<Node {self.full_name}({self.args or ''}){outcome} "
                f"[{self.elapsed_ms:.3f}ms] children={len(self.children)}>")


def _exc_text(exc_type: str | None, exc_msg: str | None) -> str | None:
    if exc_type is None:
        return None
    return f"{exc_type}: {exc_msg}" if exc_msg else exc_type


def _make(session, wall_start: float, index: int, parent: Node | None) -> Node:
    (_, module, qualname, file, lineno, args, ret, exc_type, exc_msg, start_ns, end_ns,
     flags, suspends, thread, active_ns, self_ns, mem) = session.node(index)
    node = Node()
    node.index = index
    node.module = module
    node.qualname = qualname
    node.name = qualname.rpartition(".")[2]
    node.file = file
    node.lineno = lineno
    node.args = args
    node.return_value = ret
    raised = bool(flags & NODE_EXC)
    node.caught = bool(flags & NODE_CAUGHT) and not raised
    node.exception_type = exc_type
    node.exception = _exc_text(exc_type, exc_msg) if raised else None
    node.caught_exception = _exc_text(exc_type, exc_msg) if node.caught else None
    node.start = wall_start + start_ns / 1e9
    node.end = wall_start + end_ns / 1e9
    node.span = (end_ns - start_ns) / 1e9
    node.elapsed = active_ns / 1e9
    node.self_time = self_ns / 1e9
    node.unfinished = bool(flags & NODE_OPEN)
    node.is_generator = bool(flags & NODE_GEN)
    node.spawned = bool(flags & NODE_SPAWNED)
    node.suspends = suspends
    node.memory_delta_bytes = mem
    node.thread = thread
    node.parent = parent
    node.depth = 0 if parent is None else parent.depth + 1
    node._children = None
    node._src = (session, wall_start)
    return node


class NodeList(Sequence):
    """The children of a node (or a trace's roots), each Node made when it
    is first reached. Compares equal to a list of the same nodes."""

    __slots__ = ("_session", "_wall_start", "_parent", "_index", "_made")

    def __init__(self, session, wall_start: float, parent: Node | None):
        self._session = session
        self._wall_start = wall_start
        self._parent = parent
        self._index = session.children(-1 if parent is None else parent.index)
        self._made: list = [None] * len(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self._index)))]
        node = self._made[k]
        if node is None:
            i = k if k >= 0 else k + len(self._index)
            node = self._made[i] = _make(self._session, self._wall_start, self._index[i],
                                         self._parent)
        return node

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, NodeList)):
            return len(self) == len(other) and all(a is b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


def build_roots(session, wall_start: float) -> NodeList:
    """The roots of a finished session's tree, as lazily built Nodes.
    wall_start is the trace's Unix start time in seconds; the session's node
    times are ns since then."""
    return NodeList(session, wall_start, None)
