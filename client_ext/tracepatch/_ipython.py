"""IPython and Jupyter: ``%load_ext tracepatch`` and the tracepatch magics.

    %load_ext tracepatch

    %%tracepatch --label etl --max-calls 5000
    result = pipeline(data)

    %tracepatch --max-depth 5 fib(10)

The cell (or the statement after the options) runs in the user's namespace
inside one trace, then the trace is displayed: a notebook renders the HTML
report inline (``t.to_html()``: the same UI, every asset inlined, no
external URL) in a sandboxed iframe, so its styles and scripts cannot touch
the notebook's; a terminal prints the call tree. An exception in the code is
shown as IPython shows it, and the trace up to it is displayed too.

Options: ``--label NAME``, ``--max-depth N``, ``--max-calls N``,
``--max-repr N``, ``--max-time S``, ``--ignore MOD`` / ``--include MOD``
(repeatable), ``--threads``, ``--no-cache`` (tracepatch 1.0.0's), and
``--var NAME`` to keep the trace object in the namespace as NAME.
IPython is imported only here, when the extension is loaded.
"""

from __future__ import annotations

import html
import re
from typing import Any

from ._trace import trace

__all__ = ["TraceView", "load_ipython_extension", "parse_options"]

# Option -> (trace() keyword, converter); None converter: a flag.
_OPTIONS = {
    "--label": ("label", str),
    "--max-depth": ("max_depth", int),
    "--max-calls": ("max_calls", int),
    "--max-repr": ("max_repr", int),
    "--max-time": ("max_time", float),
    "--ignore": ("ignore_modules", list),
    "--include": ("include_modules", list),
    "--threads": ("threads", None),
    "--no-cache": ("cache", None),
    "--var": ("_var", str),
}
_TOKEN = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|\S+)""")


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


def parse_options(line: str) -> tuple[dict[str, Any], str]:
    """Split a magic's line into trace() keywords (plus "_var") and the rest
    of the line, which is kept verbatim (the statement of the line magic).
    Raises ValueError for an unknown option or a bad value."""
    kwargs: dict[str, Any] = {}
    pos = 0
    while True:
        m = _TOKEN.match(line, pos)
        if m is None or not m.group(1).startswith("--"):
            break
        option = m.group(1)
        if option not in _OPTIONS:
            raise ValueError(f"unknown option {option}; known: {', '.join(_OPTIONS)}")
        name, convert = _OPTIONS[option]
        pos = m.end()
        if convert is None:
            kwargs[name] = name != "cache"  # --threads: True; --no-cache: cache=False
            continue
        value = _TOKEN.match(line, pos)
        if value is None:
            raise ValueError(f"{option} needs a value")
        pos = value.end()
        text = _unquote(value.group(1))
        if convert is list:
            kwargs.setdefault(name, []).append(text)
        else:
            try:
                kwargs[name] = convert(text)
            except ValueError:
                raise ValueError(f"{option}: not a number: {text!r}") from None
    return kwargs, line[pos:].strip()


class TraceView:
    """A finished trace as IPython displays it: text/html (the inline report)
    for notebooks, text/plain (the call tree) for terminals."""

    def __init__(self, t: trace) -> None:
        self.trace = t

    def _repr_html_(self) -> str:
        page = self.trace.to_html()
        title = html.escape(self.trace.label or "tracepatch trace", quote=True)
        # srcdoc keeps the report a document of its own; sandbox without
        # allow-same-origin keeps it away from the notebook's origin.
        return (f'<iframe title="{title}" sandbox="allow-scripts" '
                f'style="width:100%;height:600px;border:1px solid #ccc" '
                f'srcdoc="{html.escape(page, quote=True)}"></iframe>')

    def __repr__(self) -> str:
        return self.trace.tree()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.trace.tree())


def _run(shell: Any, line: str, source: str) -> None:
    from IPython.core.error import UsageError
    from IPython.display import display

    try:
        kwargs, rest = parse_options(line)
    except ValueError as exc:
        raise UsageError(f"%tracepatch: {exc}") from None
    var = kwargs.pop("_var", None)
    code_text = shell.transform_cell(source if source is not None else rest)
    try:
        code = compile(code_text, "<tracepatch>", "exec")
    except SyntaxError:
        shell.showsyntaxerror()
        return
    try:
        t = trace(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"%tracepatch: {exc}") from None
    # Looked up before the trace starts: they are properties, and would be
    # recorded as calls of the cell.
    global_ns, local_ns = shell.user_global_ns, shell.user_ns
    try:
        with t:
            exec(code, global_ns, local_ns)
    except Exception:  # noqa: BLE001 - shown like any cell's error, then the trace
        shell.showtraceback()
    if var is not None:
        shell.user_ns[var] = t
    display(TraceView(t))


def load_ipython_extension(shell: Any) -> None:
    """Register ``%tracepatch`` (line) and ``%%tracepatch`` (cell)."""

    def line_magic(line: str) -> None:
        _run(shell, line, None)

    def cell_magic(line: str, cell: str) -> None:
        _run(shell, line, cell)

    line_magic.__doc__ = cell_magic.__doc__ = __doc__
    shell.register_magic_function(line_magic, "line", "tracepatch")
    shell.register_magic_function(cell_magic, "cell", "tracepatch")
