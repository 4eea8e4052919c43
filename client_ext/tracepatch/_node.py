"""Node: one recorded call, built lazily from the native session's raw tree."""

from __future__ import annotations

from typing import Any, Iterator

# Flag bits of _tracepatch.Session.nodes() (TP_NODE_* in proto/tree.h).
NODE_EXC = 1      # the call ended by an exception propagating out
NODE_CAUGHT = 2   # an exception was raised and handled inside; the call returned
NODE_OPEN = 4     # still running when the trace stopped
NODE_GEN = 8      # generator / coroutine / async generator: first resume to completion


class Node:
    """One call in a finished trace.

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
        elapsed: ``end - start`` in seconds; ``elapsed_ms`` the same in milliseconds.
        file, lineno: where the function is defined ("" / 0 when unknown).
        unfinished: True when the call was still running when the trace stopped.
        is_generator: True for generators, coroutines and async generators.
        suspends: how many times a generator/coroutine suspended.
        thread: index of the thread that made the call (0 = the tracing thread).
        depth: 0 for a root.
        parent: the calling Node, or None for a root.
        children: calls made by this one, in order.
    """

    __slots__ = ("name", "qualname", "module", "args", "return_value", "exception",
                 "exception_type", "caught", "caught_exception", "start", "end",
                 "elapsed", "file", "lineno", "unfinished", "is_generator", "suspends",
                 "thread", "depth", "parent", "children", "index")

    @property
    def elapsed_ms(self) -> float:
        return self.elapsed * 1000.0

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
        """The node and its subtree in the JSON trace schema's shape."""
        return {
            "name": self.name,
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


def build_roots(raw: list, wall_start: float) -> list[Node]:
    """Turn Session.nodes() tuples into a tree of Node objects.

    raw is in call order and each tuple names its parent by index, so parents
    always come before their children. wall_start is the trace's Unix start
    time in seconds; node times in raw are ns since then.
    """
    nodes: list[Node] = []
    roots: list[Node] = []
    for index, item in enumerate(raw):
        (parent, module, qualname, file, lineno, args, ret, exc_type, exc_msg,
         start_ns, end_ns, flags, suspends, thread) = item
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
        node.elapsed = (end_ns - start_ns) / 1e9
        node.unfinished = bool(flags & NODE_OPEN)
        node.is_generator = bool(flags & NODE_GEN)
        node.suspends = suspends
        node.thread = thread
        node.children = []
        if 0 <= parent < index:
            up = nodes[parent]
            node.parent = up
            node.depth = up.depth + 1
            up.children.append(node)
        else:
            node.parent = None
            node.depth = 0
            roots.append(node)
        nodes.append(node)
    return roots
