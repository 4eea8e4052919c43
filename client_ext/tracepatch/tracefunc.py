"""tracefunc: what each statement of one function did, hit by hit.

    from tracepatch import tracefunc

    def demo(n):
        total = 0
        for i in range(n): total += i
        return total

    stack, result = tracefunc(demo, 3, target_func=demo)[0]
    # result["total += i"] == (3, {"total": [("int", "0"), ("int", "1"), ("int", "3")],
    #                              "i": [("int", "0"), ("int", "1"), ("int", "2")]})

How: statements are AST nodes, not lines, so ``x = 1; y = 2`` are two. The
target function is compiled again from its source with every statement (and
every comprehension or lambda) on a line of its own, a *synthetic* line
number, and runs with that code for the duration of the call; line events
then name statements exactly, on every interpreter. Line events are asked for
on the target's code objects only: ``sys.monitoring.set_local_events`` on
3.12+, a trace function that declines every other frame on 3.10 and 3.11.
Each statement's names are sampled when it has run (at the next line event of
its frame, or when the frame returns, yields or unwinds), one sample per hit.
While it runs, a traceback from inside the target shows the synthetic lines.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["tracefunc"]

# Longest sample text; longer reprs end in "...".
MAX_REPR = 120
# Samples kept per name and statement in one call (hits go on counting).
MAX_SAMPLES = 1000

_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
_ENCLOSING = "__tracepatch_enclosing__"
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR, CO_COROUTINE, CO_ASYNC_GENERATOR
_COMP_NAMES = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
_SCOPES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)


@dataclass
class _Stmt:
    snippet: str
    names: list
    real_line: int
    comp: bool = False  # a comprehension or lambda: its own entry inside a statement
    parent: int = 0  # comp: the synthetic line of the statement (or element) it sits in
    silent: bool = False  # a comprehension's loop: no hit, no sample (its element has them)
    head: int = 0  # a comprehension's element: the line of its loop


# ---------------------------------------------------------------------------
# Instrumenting: one synthetic line per statement
# ---------------------------------------------------------------------------


def _segment(lines: list, l1: int, c1: int, l2: int, c2: int) -> str:
    """Source text from (l1, c1) to (l2, c2), 1-based lines, UTF-8 columns."""
    if l1 == l2:
        return lines[l1 - 1].encode()[c1:c2].decode(errors="replace")
    parts = [lines[l1 - 1].encode()[c1:].decode(errors="replace")]
    parts += lines[l1:l2 - 1]
    parts.append(lines[l2 - 1].encode()[:c2].decode(errors="replace"))
    return "".join(parts)


def _child_blocks(node: ast.AST) -> list:
    """The statement lists (and except/case clauses) nested in node."""
    out = []
    for name in ("body", "orelse", "finalbody", "handlers", "cases"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.AST) and not \
                isinstance(node, (ast.Lambda, ast.IfExp)):
            out.append(value)
    return out


def _is_block_item(node: ast.AST) -> bool:
    return isinstance(node, (ast.stmt, ast.ExceptHandler)) or \
        type(node).__name__ == "match_case"


def _header_nodes(node: ast.AST) -> list:
    """The expression parts of a statement, without its nested blocks."""
    blocks = {id(x) for b in _child_blocks(node) for x in b}
    return [c for c in ast.iter_child_nodes(node) if id(c) not in blocks]


class _Instrumenter:
    def __init__(self, src: str, line_offset: int):
        self.lines = src.splitlines(keepends=True)
        self.offset = line_offset
        self.stmts: dict = {}  # synthetic line -> _Stmt
        self.next_line = 2  # line 1 is the function's own def

    def _snippet(self, node: ast.AST) -> str:
        if type(node).__name__ == "match_case":
            guard = f" if {ast.unparse(node.guard)}" if node.guard is not None else ""
            return f"case {ast.unparse(node.pattern)}{guard}:"
        if type(node).__name__ == "Match":
            return "match " + _segment(self.lines, node.subject.lineno, node.subject.col_offset,
                                       node.subject.end_lineno,
                                       node.subject.end_col_offset) + ":"
        blocks = _child_blocks(node)
        if blocks:
            first = blocks[0][0]
            return _segment(self.lines, node.lineno, node.col_offset, first.lineno,
                            first.col_offset).rstrip()
        return _segment(self.lines, node.lineno, node.col_offset, node.end_lineno,
                        node.end_col_offset)

    def _names(self, parts: list, own: list) -> list:
        names = list(own)
        todo = list(reversed(parts))
        while todo:
            n = todo.pop()
            if isinstance(n, _SCOPES):
                continue
            if isinstance(n, ast.Name) and n.id not in names:
                names.append(n.id)
            todo.extend(reversed(list(ast.iter_child_nodes(n))))
        return names

    @staticmethod
    def _own_names(node: ast.AST) -> list:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return [node.name]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return [(a.asname or a.name).partition(".")[0] for a in node.names if a.name != "*"]
        if isinstance(node, ast.ExceptHandler) and node.name:
            return [node.name]
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return list(node.names)
        return []

    def _set_line(self, nodes: list, line: int, parent_line: int) -> None:
        """Give every node of an expression tree line `line`; comprehensions
        and lambdas inside get lines (and entries) of their own."""
        todo = list(nodes)
        while todo:
            n = todo.pop()
            if isinstance(n, _SCOPES):
                self._scope(n, line)
                continue
            self._place(n, line)
            todo.extend(ast.iter_child_nodes(n))

    @staticmethod
    def _place(n: ast.AST, line: int) -> None:
        if "lineno" in n._attributes:
            n.lineno = n.end_lineno = line
            n.col_offset, n.end_col_offset = 0, 1

    def _scope(self, n: ast.AST, parent_line: int) -> None:
        """A comprehension or lambda inside a statement: an entry of its own.
        A comprehension's element gets a second line, so that each
        iteration is a line event (a hit) on every interpreter."""
        text = _segment(self.lines, n.lineno, n.col_offset, n.end_lineno, n.end_col_offset)
        real = n.lineno + self.offset
        names = self._scope_names(n)
        head = self._new_line()
        self._place(n, head)
        if isinstance(n, ast.Lambda):
            self.stmts[head] = _Stmt(text, names, real, comp=True, parent=parent_line)
            self._set_line(list(ast.iter_child_nodes(n)), head, head)
            return
        self.stmts[head] = _Stmt(text, [], real, comp=True, parent=parent_line, silent=True)
        self._set_line(n.generators, head, head)
        elt = self._new_line()
        self.stmts[elt] = _Stmt(text, names, real, comp=True, parent=parent_line, head=head)
        parts = [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]
        self._set_line(parts, elt, elt)

    def _scope_names(self, n: ast.AST) -> list:
        return self._names(list(ast.iter_child_nodes(n)), [])

    def _new_line(self) -> int:
        line = self.next_line
        self.next_line += 1
        return line

    def block(self, stmts: list) -> None:
        for node in stmts:
            line = self._new_line()
            parts = _header_nodes(node)
            first_line = node.lineno if hasattr(node, "lineno") else node.pattern.lineno
            self.stmts[line] = _Stmt(self._snippet(node),
                                     self._names(parts, self._own_names(node)),
                                     first_line + self.offset)
            # A def's decorators and defaults run at the def; its body is a
            # code object of its own whose first line is the def's.
            self._place(node, line)
            self._set_line(parts, line, line)
            for b in _child_blocks(node):
                self.block(b)

    def function(self, fdef: ast.AST) -> None:
        fdef.decorator_list = []
        self._place(fdef, 1)
        for part in _header_nodes(fdef):
            self._set_line([part], 1, 1)
        self.block(fdef.body)


def _code_consts(code: types.CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_consts(c)


def _fix_names(code: types.CodeType, prefix: str) -> types.CodeType:
    """Drop the enclosing scope the code was compiled in from its qualified
    names (and, on 3.10, from the qualname constants MAKE_FUNCTION uses)."""
    consts = []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            c = _fix_names(c, prefix)
        elif sys.version_info < (3, 11) and isinstance(c, str) and c.startswith(prefix):
            c = c[len(prefix):]
        consts.append(c)
    changes: dict = {"co_consts": tuple(consts)}
    if sys.version_info >= (3, 11) and code.co_qualname.startswith(prefix):
        changes["co_qualname"] = code.co_qualname[len(prefix):]
    return code.replace(**changes)


@dataclass
class _Plan:
    code: types.CodeType  # the code the target runs with
    original: types.CodeType
    codes: set  # every code object whose line events count
    stmts: dict  # synthetic line -> _Stmt
    exact: bool  # False: the target runs unchanged, statements are real lines
    separate: set = field(default_factory=set)  # comprehension lines with a frame of their own


def _plan(func: types.FunctionType) -> _Plan:
    code = func.__code__
    try:
        lines, start = inspect.getsourcelines(code)
        src = textwrap.dedent("".join(lines))
        tree = ast.parse(src)
        fdef = tree.body[0]
        if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)) or \
                fdef.name != code.co_name:
            raise ValueError("not a def statement")
        ins = _Instrumenter(src, start - 1)
        ins.function(fdef)
        new = _compile(fdef, func, code)
        codes = set(_code_consts(new))
        separate = {c.co_firstlineno for c in codes if c is not new and not
                    c.co_name.isidentifier()}
        return _Plan(new, code, codes, ins.stmts, True, separate)
    except (OSError, TypeError, ValueError, SyntaxError, LookupError):
        return _fallback(func, code)


def _compile(fdef: ast.AST, func: types.FunctionType, code: types.CodeType) -> types.CodeType:
    """fdef compiled where it has the same free variables (and class, for
    name mangling and super()) as func; its code object."""
    qual = code.co_qualname if sys.version_info >= (3, 11) else func.__qualname__
    outer_parts = qual.split(".")[:-1]
    body: list = [fdef]
    if outer_parts and outer_parts[-1] != "<locals>":
        body = [ast.ClassDef(name=outer_parts[-1], bases=[], keywords=[], body=body,
                             decorator_list=[], **({"type_params": []}
                                                   if sys.version_info >= (3, 12) else {}))]
    wrapped = bool(code.co_freevars) or body[0] is not fdef
    if wrapped:
        cells = [ast.Assign(targets=[ast.Name(id=v, ctx=ast.Store())],
                            value=ast.Constant(value=None)) for v in code.co_freevars
                 if v != "__class__"]
        args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                             kw_defaults=[], kwarg=None, defaults=[])
        extra = {"type_params": []} if sys.version_info >= (3, 12) else {}
        body = [ast.FunctionDef(name=_ENCLOSING, args=args, body=cells + body,
                                decorator_list=[], returns=None, **extra)]
    module = ast.Module(body=body, type_ignores=[])
    for node in ast.walk(module):
        if "lineno" in node._attributes and not hasattr(node, "lineno"):
            node.lineno = node.end_lineno = 1
            node.col_offset, node.end_col_offset = 0, 1
    compiled = compile(module, code.co_filename, "exec", dont_inherit=True)
    found = [c for c in _code_consts(compiled) if c.co_name == code.co_name and c is not compiled]
    if not found:
        raise LookupError(code.co_name)
    new = found[0]
    if wrapped:
        prefix = f"{_ENCLOSING}.<locals>."
        new = _fix_names(new, prefix)
    if sys.version_info >= (3, 11):
        new = new.replace(co_qualname=code.co_qualname)
    if new.co_freevars != code.co_freevars:
        raise LookupError("free variables differ")
    return new


def _fallback(func: types.FunctionType, code: types.CodeType) -> _Plan:
    """No source to recompile: the code runs as it is and a statement is the
    first one on its real line (as line events see them)."""
    stmts = {}
    try:
        lines, start = inspect.getsourcelines(code)
        text = "".join(lines)
        tree = ast.parse(textwrap.dedent(text))
        src_lines = textwrap.dedent(text).splitlines(keepends=True)
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and node is not tree.body[0]:
                line = node.lineno + start - 1
                if line not in stmts:
                    stmts[line] = _Stmt(src_lines[node.lineno - 1].strip(), [], line)
    except (OSError, TypeError, SyntaxError):
        pass
    return _Plan(code, code, set(_code_consts(code)), stmts, False)


# ---------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------


def _sample(value: Any) -> tuple:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a user __repr__ may fail
        text = f"<repr failed: {type(exc).__name__}>"
    text = _ADDRESS.sub("", text)
    if len(text) > MAX_REPR:
        text = text[: MAX_REPR - 3] + "..."
    return (type(value).__name__, text)


_MISSING = object()


def _lookup(frame: types.FrameType, name: str) -> Any:
    spaces = [frame.f_locals]
    if frame.f_code.co_name in _COMP_NAMES and frame.f_back is not None:
        # A comprehension with a frame of its own: the names of the scope
        # around it are its caller's (3.12+ runs most of them inline).
        spaces.append(frame.f_back.f_locals)
    spaces += (frame.f_globals, frame.f_builtins)
    for space in spaces:
        value = space.get(name, _MISSING)
        if value is not _MISSING:
            return value
    return _MISSING


@dataclass
class _Frame:
    result: dict | None  # the call result its statements go to
    pending: int = 0  # synthetic line whose sample is due (< 0: in a comprehension's call)
    outer: list = field(default_factory=list)  # statements waiting for their comprehension


class _Recorder:
    def __init__(self, plan: _Plan, fn_code: types.CodeType, base_dir: str, want_stack: bool):
        self.plan = plan
        self.fn_code = fn_code
        self.base_dir = base_dir
        self.want_stack = want_stack
        self.frames: dict = {}  # frame -> _Frame
        self.results: list = []
        self.busy = False

    # -- events -----------------------------------------------------------
    def start(self, frame: types.FrameType) -> None:
        if frame in self.frames:
            return  # a generator resuming
        code = frame.f_code
        if code is self.plan.code:
            result: dict = {}
            self.results.append((self._stack(frame) if self.want_stack else "", result))
        else:
            result = self._owner(frame)
        self.frames[frame] = _Frame(result)

    def line(self, frame: types.FrameType, line: int) -> None:
        st = self.frames.get(frame)
        if st is None:
            self.start(frame)
            st = self.frames[frame]
        code = frame.f_code
        if line == code.co_firstlineno and code.co_name.isidentifier() and self.plan.exact:
            return  # a function's own def line: its prologue, not a statement
        stmts = self.plan.stmts
        stmt = stmts.get(line)
        if stmt is None or st.result is None:
            return
        if stmt.comp and line in self.plan.separate and code.co_firstlineno != line:
            # Creating and calling a comprehension (3.10/3.11, generator
            # expressions) or a lambda that has a frame of its own: its hits
            # are counted there, and the statement goes on after it.
            if st.pending >= 0:
                if st.pending and st.pending == stmt.parent:
                    st.outer.append(st.pending)
                elif st.pending:
                    self._finish(frame, st)
                st.pending = -line
            return
        if st.pending < 0 and st.outer and line == st.outer[-1]:
            st.pending = st.outer.pop()
            return
        pending = stmts.get(st.pending)
        if pending is not None and pending.comp and st.outer and line == st.outer[-1]:
            # Back in the statement (or element) the comprehension is part of.
            if not pending.silent:
                self._take(frame, st, st.pending)
            st.pending = st.outer.pop()
            return
        if stmt.comp:
            if pending is None or not (pending.comp and (st.pending == line or
                                                         pending.head == line or
                                                         stmt.head == st.pending)):
                # Entering it from the statement (or element) it is part of.
                if st.pending:
                    st.outer.append(st.pending)
            elif not pending.silent:
                self._take(frame, st, st.pending)
            if not stmt.silent:
                self._hit(st, line)
            st.pending = line
            return
        self._finish(frame, st)
        self._hit(st, line)
        st.pending = line

    def _finish(self, frame: types.FrameType, st: _Frame) -> None:
        """Sample the statement that has run, and those it was part of."""
        pending = self.plan.stmts.get(st.pending)
        if pending is not None and not pending.silent:
            self._take(frame, st, st.pending)
        st.pending = 0
        while st.outer:
            self._take(frame, st, st.outer.pop())

    def leave(self, frame: types.FrameType, done: bool) -> None:
        st = self.frames.get(frame)
        if st is None:
            return
        self._finish(frame, st)
        if done:
            del self.frames[frame]

    # -- helpers ----------------------------------------------------------
    def _entry(self, st: _Frame, line: int) -> list:
        stmt = self.plan.stmts[line]
        entry = st.result.get(stmt.snippet)
        if entry is None:
            entry = st.result[stmt.snippet] = [0, {}, line]
        return entry

    def _hit(self, st: _Frame, line: int) -> None:
        self._entry(st, line)[0] += 1

    def _take(self, frame: types.FrameType, st: _Frame, line: int) -> None:
        stmt = self.plan.stmts.get(line)
        if stmt is None or st.result is None:
            return
        samples = self._entry(st, line)[1]
        for name in stmt.names:
            value = _lookup(frame, name)
            if value is _MISSING:
                continue
            got = samples.setdefault(name, [])
            if len(got) < MAX_SAMPLES:
                got.append(_sample(value))

    def _owner(self, frame: types.FrameType) -> dict | None:
        """The call result a nested function's or comprehension's frame
        reports to: the closest target call below it on the stack."""
        f = frame.f_back
        while f is not None:
            st = self.frames.get(f)
            if st is not None:
                return st.result
            f = f.f_back
        return None

    def _stack(self, frame: types.FrameType) -> str:
        """From the outermost frame of fn down to the target's."""
        chain = []
        f = frame
        while f is not None:
            chain.append(f)
            f = f.f_back
        fn_codes = {self.fn_code}
        if self.plan.original is self.fn_code:
            fn_codes.add(self.plan.code)
        top = max((i for i, f in enumerate(chain) if f.f_code in fn_codes), default=0)
        frames = chain[:top + 1]
        out = []
        for f in reversed(frames):
            code = f.f_code
            if f is frame:
                line = self.plan.original.co_firstlineno
            elif code in self.plan.codes and self.plan.exact:
                stmt = self.plan.stmts.get(f.f_lineno)
                line = stmt.real_line if stmt else f.f_lineno
            else:
                line = f.f_lineno
            out.append(f"{code.co_name} ({self._path(code.co_filename)}:{line})")
        return "\n".join(out)

    def _path(self, path: str) -> str:
        try:
            full = os.path.abspath(path)
            if self.base_dir and (full + os.sep).startswith(self.base_dir + os.sep):
                return os.path.relpath(full, self.base_dir)
        except (OSError, ValueError):
            pass
        return path


# ---------------------------------------------------------------------------
# Hooks: sys.monitoring on 3.12+, a trace function before
# ---------------------------------------------------------------------------


def _run_monitored(rec: _Recorder, call: Callable[[], Any]) -> Any:
    mon = sys.monitoring
    tool = next((t for t in (4, 3, 2, 5, 1, 0) if mon.get_tool(t) is None), None)
    if tool is None:
        raise RuntimeError("tracefunc: every sys.monitoring tool id is taken")
    E = mon.events
    mon.use_tool_id(tool, "tracepatch.tracefunc")
    codes = rec.plan.codes

    def guard(fn):
        def cb(code, *args):
            if rec.busy or code not in codes:
                return None
            rec.busy = True
            try:
                fn(sys._getframe(1), args)
            finally:
                rec.busy = False
            return None
        return cb

    callbacks = {
        E.PY_START: guard(lambda f, a: rec.start(f)),
        E.PY_RESUME: guard(lambda f, a: rec.start(f)),
        E.LINE: guard(lambda f, a: rec.line(f, a[0])),
        E.PY_RETURN: guard(lambda f, a: rec.leave(f, True)),
        E.PY_YIELD: guard(lambda f, a: rec.leave(f, False)),
        E.PY_UNWIND: guard(lambda f, a: rec.leave(f, True)),
    }
    try:
        for ev, cb in callbacks.items():
            mon.register_callback(tool, ev, cb)
        local = E.PY_START | E.PY_RESUME | E.LINE | E.PY_RETURN | E.PY_YIELD
        for code in codes:
            mon.set_local_events(tool, code, local)
        # Unwinding is a global event only; the callback drops other code.
        mon.set_events(tool, E.PY_UNWIND)
        return call()
    finally:
        mon.set_events(tool, 0)
        for code in codes:
            mon.set_local_events(tool, code, 0)
        for ev in callbacks:
            mon.register_callback(tool, ev, None)
        mon.free_tool_id(tool)


def _run_traced(rec: _Recorder, call: Callable[[], Any]) -> Any:
    codes = rec.plan.codes

    def local(frame, event, arg):
        if event == "line":
            rec.line(frame, frame.f_lineno)
        elif event == "return":
            # Also sent at a yield: a generator's frame keeps its state (it
            # resumes with a new 'call'), dropped when tracefunc returns.
            rec.leave(frame, not frame.f_code.co_flags & _GENERATOR_FLAGS)
        return local

    def glob(frame, event, arg):
        if event != "call" or frame.f_code not in codes:
            return None
        rec.start(frame)
        return local

    prev = sys.gettrace()
    sys.settrace(glob)
    try:
        return call()
    finally:
        sys.settrace(prev)


# ---------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------


def _function_of(obj: Any) -> types.FunctionType:
    obj = getattr(obj, "__func__", obj)
    obj = inspect.unwrap(obj)
    if not isinstance(obj, types.FunctionType):
        raise TypeError(f"tracefunc: target_func must be a Python function, not {obj!r}")
    return obj


def tracefunc(fn: Callable[..., Any], *args: Any, target_func: Callable[..., Any] | None = None,
              **kwargs: Any) -> list:
    """Run ``fn(*args, **kwargs)`` and return, for each call of target_func
    (fn itself when None), ``(stack_str, trace_dict)``.

    stack_str: the call stack from fn down to the target, one
    ``name (file:line)`` line per frame (files relative to fn's directory
    when they are under it); "" when target_func is None. trace_dict maps
    each statement's source (a compound statement by its header,
    ``for i in range(n):``), in source order, to ``(hits, {name: [(type_name, repr), ...]})``,
    one sample per hit of the names the statement uses, taken once it has
    run. Comprehensions and lambdas are entries of their own, sampled per
    iteration; nested functions' statements count in the call that defined
    them. An exception from fn propagates after the hooks are removed.
    """
    target = _function_of(target_func if target_func is not None else fn)
    plan = _plan(target)
    fn_func = getattr(fn, "__func__", fn)
    fn_code = getattr(inspect.unwrap(fn_func), "__code__", None)
    if fn_code is plan.original:
        fn_code = plan.code
    fn_file = getattr(fn_code, "co_filename", "") or ""
    base_dir = os.path.dirname(os.path.abspath(fn_file)) if fn_file else ""
    rec = _Recorder(plan, fn_code, base_dir, target_func is not None)
    saved = target.__code__
    target.__code__ = plan.code
    try:
        run = _run_monitored if sys.version_info >= (3, 12) else _run_traced
        run(rec, lambda: fn(*args, **kwargs))
    finally:
        target.__code__ = saved
    # Statements in source order (the synthetic lines count in that order).
    return [(stack, {k: (v[0], v[1]) for k, v in sorted(result.items(), key=lambda kv: kv[1][2])})
            for stack, result in rec.results]
