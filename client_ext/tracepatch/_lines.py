"""trace(lines=[...]): the statements of chosen functions, hit by hit, inside a trace.

For each recorded call of a chosen function: how often each of its lines ran
and, for the names that line uses, the values they had once it ran (at most
``line_samples`` per name, line and call, each cut to ``max_repr``).

Cost: only the chosen functions pay. On 3.12+ line events are enabled on
their code objects alone (``sys.monitoring.set_local_events``). On 3.10
and 3.11, where line events need a trace function that every call of the
thread would reach, each chosen function runs, while the trace records, a
copy of its code compiled with a call before each statement (and at each
loop's next turn, as line events count a loop header); when that cannot be
done (no source), a trace function declining every other frame is the
fallback. tests/bench/bench_lines.py measures it.

The samples are matched to the recorder's calls by call number: the call a
frame of a chosen function belongs to is the last one recorded when its
first line runs; a call the recorder did not keep (filters, depth) is
dropped, as is any frame whose node turns out to be another function.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
import textwrap
import threading
import types
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
# One way to find a statement's names in a frame, shared with tracefunc.
from .tracefunc import _COMP_NAMES, _MISSING, _lookup  # noqa: E402


def resolve(targets: tuple) -> list:
    """The code objects of lines=: functions (methods, wrapped functions)
    as they are, "module.qualname" looked up among the imported modules.
    Returns (code, source_lines, first_line, names_by_line) per function;
    a name that resolves to nothing is skipped."""
    out = []
    seen = set()
    for target in targets:
        func = _function(target)
        if func is None or func.__code__ in seen:
            continue
        seen.add(func.__code__)
        out.append(_describe(func.__code__))
    return out


def _function(target: Any):
    if isinstance(target, str):
        module, _, rest = target.partition(":") if ":" in target else (None, "", target)
        obj = None
        if module is None:
            parts = target.split(".")
            for i in range(len(parts) - 1, 0, -1):
                mod = sys.modules.get(".".join(parts[:i]))
                if mod is not None:
                    obj, rest = mod, ".".join(parts[i:])
                    break
        else:
            obj = sys.modules.get(module)
        for part in rest.split(".") if obj is not None else ():
            obj = getattr(obj, part, None)
        target = obj
    target = getattr(target, "__func__", target)
    try:
        target = inspect.unwrap(target)
    except ValueError:
        return None
    return target if isinstance(target, types.FunctionType) else None


def _describe(code: types.CodeType) -> tuple:
    try:
        lines, start = inspect.getsourcelines(code)
    except (OSError, TypeError):
        return (code, {}, {})
    source = {start + i: text.rstrip("\n") for i, text in enumerate(lines)}
    names: dict = {}
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Name):
            line = node.lineno + start - 1
            got = names.setdefault(line, [])
            if node.id not in got:
                got.append(node.id)
    body = tree.body[0] if tree is not None and tree.body else None
    if isinstance(body, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for deco in body.decorator_list:  # run at the def, not in the call
            for line in range(deco.lineno, deco.end_lineno + 1):
                names.pop(line + start - 1, None)
    return (code, source, names)


_HOOK, _LEAVE = "__tracepatch_line__", "__tracepatch_leave__"
_active: list = []  # recorders using instrumented code (3.10/3.11)


def _line_hook(line: int) -> None:
    frame = sys._getframe(1)
    for rec in _active:
        if frame.f_code in rec.codes:
            rec._line(frame, line)


def _leave_hook() -> None:
    frame = sys._getframe(1)
    for rec in _active:
        if frame.f_code in rec.codes:
            rec._leave(frame, True)


def _hook_call(name: str, line: int, args: list) -> ast.stmt:
    call = ast.Expr(ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[]))
    for node in ast.walk(call):
        node.lineno = node.end_lineno = line
        node.col_offset, node.end_col_offset = 0, 1
    return call


def _hooked(stmts: list) -> list:
    """stmts with a line hook before each, loops also hooked at each turn."""
    out = []
    for stmt in stmts:
        out.append(_hook_call(_HOOK, stmt.lineno, [ast.Constant(stmt.lineno)]))
        out.append(stmt)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody"):
            block = getattr(stmt, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(stmt, name, _hooked(block))
        for handler in getattr(stmt, "handlers", ()) or ():
            handler.body = _hooked(handler.body)
        for case in getattr(stmt, "cases", ()) or ():
            case.body = _hooked(case.body)
        if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            # The header runs again at each next turn (a continue included).
            turn = _hook_call(_HOOK, stmt.lineno, [ast.Constant(stmt.lineno)])
            stmt.body = _with_turns(stmt.body, stmt.lineno) + [turn]
    return out


def _with_turns(stmts: list, header: int) -> list:
    """A loop body with the header's hook before each continue of this loop."""
    out = []
    for stmt in stmts:
        if isinstance(stmt, ast.Continue):
            out.append(_hook_call(_HOOK, header, [ast.Constant(header)]))
        elif not isinstance(stmt, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef,
                                   ast.AsyncFunctionDef, ast.ClassDef)):
            for name in ("body", "orelse", "finalbody"):
                block = getattr(stmt, name, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    setattr(stmt, name, _with_turns(block, header))
            for handler in getattr(stmt, "handlers", ()) or ():
                handler.body = _with_turns(handler.body, header)
        out.append(stmt)
    return out


def _instrument(func: types.FunctionType) -> types.CodeType | None:
    """func's code with the line hooks compiled in, or None (no source...)."""
    from .tracefunc import _compile
    code = func.__code__
    try:
        lines, start = inspect.getsourcelines(code)
        tree = ast.parse(textwrap.dedent("".join(lines)))
        fdef = tree.body[0]
        if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)) or \
                fdef.name != code.co_name:
            return None
        ast.increment_lineno(tree, start - 1)
        fdef.decorator_list = []
        body = fdef.body
        doc = []
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            doc, body = body[:1], body[1:]
        if not body:
            return None
        last = fdef.end_lineno or fdef.lineno
        wrapped = ast.Try(body=_hooked(body), handlers=[], orelse=[],
                          finalbody=[_hook_call(_LEAVE, last, [])])
        wrapped.lineno, wrapped.end_lineno = body[0].lineno, last
        wrapped.col_offset, wrapped.end_col_offset = 0, 1
        fdef.body = doc + [wrapped]
        new = _compile(fdef, func, code)
    except (OSError, TypeError, ValueError, SyntaxError, LookupError):
        return None
    import builtins
    if getattr(builtins, _HOOK, None) is not _line_hook:
        # Looked up like any builtin by the instrumented code; left in place,
        # so a generator resumed after the trace still finds them.
        setattr(builtins, _HOOK, _line_hook)
        setattr(builtins, _LEAVE, _leave_hook)
    return new


class LineRecorder:
    """Line events of the chosen functions while a session records."""

    def __init__(self, session: Any, targets: tuple, max_repr: int, cap: int, threads: bool):
        self.session = session
        self.described = resolve(targets)
        self.codes: dict = {}  # code that runs -> (the function's code, source, names)
        self.swapped: list = []  # (function, its own code) while instrumented code runs
        self.funcs = [f for f in (_function(t) for t in targets) if f is not None]
        for code, source, names in self.described:
            for c in _with_comprehensions(code):
                self.codes[c] = (code, source, names)
        # 3.10/3.11: compiled here, before the session starts (so that none of
        # this work is recorded); start() only swaps the code objects.
        self.prepared: list = []  # (function, instrumented code or None)
        if sys.version_info < (3, 12):
            self.prepared = [(f, _instrument(f) if f.__code__ in self.codes else None)
                             for f in self.funcs]
        self.max_repr = max_repr
        self.cap = cap
        self.thread = None if threads else threading.get_ident()
        self.frames: dict = {}  # frame -> [call number, pending line]
        self.calls: dict = {}  # call number -> {"code": code, "lines": {line: [hits, {name: [..]}]}}
        self.tool = None
        self.prev_trace = None
        self.busy = False

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        if not self.codes:
            return
        if sys.version_info >= (3, 12):
            self._start_monitoring()
            return
        fallback = False
        for func, new in self.prepared:
            if new is None:
                fallback = True
                continue
            self.codes[new] = self.codes[func.__code__]
            self.swapped.append((func, func.__code__))
            func.__code__ = new
        if self.swapped:
            _active.append(self)
        if fallback:
            self.prev_trace = sys.gettrace()
            sys.settrace(self._global)

    def stop(self) -> None:
        if not self.codes:
            return
        if sys.version_info >= (3, 12):
            self._stop_monitoring()
        else:
            for func, code in self.swapped:
                func.__code__ = code
            if self in _active:
                _active.remove(self)
            if sys.gettrace() == self._global:
                sys.settrace(self.prev_trace)
        for frame, st in list(self.frames.items()):
            self._finish(frame, st)
        self.frames.clear()

    def _start_monitoring(self) -> None:
        mon = sys.monitoring
        tool = next((t for t in (5, 4, 3, 2, 1) if mon.get_tool(t) is None), None)
        if tool is None:
            return
        mon.use_tool_id(tool, "tracepatch.lines")
        self.tool = tool
        E = mon.events
        mon.register_callback(tool, E.LINE, self._on_line)
        mon.register_callback(tool, E.PY_RETURN, self._on_return)
        mon.register_callback(tool, E.PY_YIELD, self._on_yield)
        for code in self.codes:
            mon.set_local_events(tool, code, E.LINE | E.PY_RETURN | E.PY_YIELD)

    def _stop_monitoring(self) -> None:
        if self.tool is None:
            return
        mon = sys.monitoring
        for code in self.codes:
            mon.set_local_events(self.tool, code, 0)
        for ev in (mon.events.LINE, mon.events.PY_RETURN, mon.events.PY_YIELD):
            mon.register_callback(self.tool, ev, None)
        mon.free_tool_id(self.tool)
        self.tool = None

    # -- events (3.12+) ---------------------------------------------------
    def _on_line(self, code, line):
        if not self.busy:
            self._line(sys._getframe(1), line)

    def _on_return(self, code, offset, value):
        if not self.busy:
            self._leave(sys._getframe(1), True)

    def _on_yield(self, code, offset, value):
        if not self.busy:
            self._leave(sys._getframe(1), False)

    # -- events (3.10/3.11) -----------------------------------------------
    def _global(self, frame, event, arg):
        if event == "call" and frame.f_code in self.codes:
            return self._local
        return None

    def _local(self, frame, event, arg):
        if event == "line":
            self._line(frame, frame.f_lineno)
        elif event == "return":
            self._leave(frame, not frame.f_code.co_flags & 0x2A0)
        return self._local

    # -- recording --------------------------------------------------------
    def _line(self, frame, line: int) -> None:
        if self.thread is not None and threading.get_ident() != self.thread:
            return
        self.busy = True
        try:
            st = self.frames.get(frame)
            if st is None:
                st = self.frames[frame] = [self._call_of(frame), 0]
            if st[0] is None:
                return
            if st[1]:
                self._take(frame, st)
            call = self.calls.setdefault(st[0], {"code": self.codes[frame.f_code][0],
                                                 "lines": {}})
            entry = call["lines"].setdefault(line, [0, {}])
            entry[0] += 1
            st[1] = line
        finally:
            self.busy = False

    def _call_of(self, frame) -> int | None:
        if frame.f_code.co_name in _COMP_NAMES:
            outer = self.frames.get(frame.f_back)
            return outer[0] if outer else None
        count = self.session.call_count
        return count - 1 if count else None

    def _leave(self, frame, done: bool) -> None:
        st = self.frames.get(frame)
        if st is None:
            return
        self.busy = True
        try:
            self._finish(frame, st)
            if done:
                del self.frames[frame]
        finally:
            self.busy = False

    def _finish(self, frame, st) -> None:
        if st[1] and st[0] is not None:
            self._take(frame, st)
        st[1] = 0

    def _take(self, frame, st) -> None:
        code, _source, names = self.codes[frame.f_code]
        entry = self.calls[st[0]]["lines"][st[1]]
        for name in names.get(st[1], ()):
            value = _lookup(frame, name)
            if value is _MISSING:
                continue
            got = entry[1].setdefault(name, [])
            if len(got) < self.cap:
                got.append(self._repr(value))

    def _repr(self, value: Any) -> str:
        from . import _tracepatch
        return _ADDRESS.sub("", _tracepatch.safe_repr(value, self.max_repr))

    # -- results ----------------------------------------------------------
    def records(self, nodes: list) -> list:
        """The calls with line data, checked against the recorder's nodes:
        [{"call", "module", "qualname", "file", "lines": [{"line", "source",
        "hits", "values"}]}], in call order."""
        out = []
        for seq in sorted(self.calls):
            code = self.calls[seq]["code"]
            if seq >= len(nodes):
                continue
            node = nodes[seq]
            qualname = getattr(code, "co_qualname", code.co_name)
            if node[3] != code.co_filename or not (node[2] == qualname or
                                                   node[2].endswith("." + code.co_name) or
                                                   node[2] == code.co_name):
                continue
            _c, source, _n = self.codes[code]
            lines = [{"line": line, "source": source.get(line, ""), "hits": hits,
                      "values": values}
                     for line, (hits, values) in sorted(self.calls[seq]["lines"].items())]
            out.append({"call": seq, "module": node[1], "qualname": node[2], "file": node[3],
                        "args": node[5], "lines": lines})
        return out


def _with_comprehensions(code: types.CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType) and c.co_name in _COMP_NAMES:
            yield from _with_comprehensions(c)


def render_text(records: list) -> str:
    """The lines section of t.tree(lines=True): each call, then its source
    lines with hit counts and the values sampled."""
    out = []
    for rec in records:
        name = f"{rec['module']}.{rec['qualname']}" if rec["module"] else rec["qualname"]
        out.append(f"lines of {name}({rec['args'] or ''}) [call {rec['call']}]")
        width = max((len(str(li["line"])) for li in rec["lines"]), default=1)
        for li in rec["lines"]:
            values = "  ".join(f"{k}={', '.join(v)}" for k, v in li["values"].items())
            text = f"  {li['line']:>{width}} │ {li['hits']:>3}× │ {li['source'].strip()}"
            out.append(f"{text}   # {values}" if values else text)
    return "\n".join(out)


_DATA_TAG = '<script type="application/json" id="tp-data">'


def splice_html(text: str, sections: tuple) -> str:
    """The HTML report with the sections ((key, JSON bytes): "lines", the
    Lines tab's data, and "source", the source view's) added to its inlined
    data, escaped so that no trace text ends the element."""
    start = text.find(_DATA_TAG)
    end = text.find("</script>", start) if start >= 0 else -1
    if end < 0 or text[end - 1] != "}" or not sections:
        return text
    added = ""
    for key, value in sections:  # (key, JSON bytes): _trace._sections()
        value = value.decode("utf-8", "replace")
        added += f',"{key}":' + value.replace("</", "<\\/").replace("<!--", "<\\u0021--")
    return text[:end - 1] + added + "}" + text[end:]
