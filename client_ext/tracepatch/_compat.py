"""tracepatch 1.0.0's helpers over our call trees: TraceSummary, the tree
helpers (render_tree, fold_repeated_calls, render_summary_header,
collapse_tree) and the narrative of ``trace.explain()``.

They work on :class:`tracepatch.Node` trees (``t.roots``) and on anything
with the same attributes (1.0.0's ``TraceNode`` has them too), and print
what 1.0.0 prints, its fixed "0.05ms" units included, so that code and
documentation written for 1.0.0 keep working. ``t.tree()`` is the richer
renderer of our own (in C, with folding, filters and auto units).
"""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Iterable

from ._node import Node

__all__ = ["TraceSummary", "render_tree", "fold_repeated_calls", "render_summary_header",
           "collapse_tree", "explain", "expand_label"]


def _fqn(node: Any) -> str:
    """``module.qualname`` as our trees print it (1.0.0 has no qualname)."""
    name = getattr(node, "qualname", None) or node.name
    return f"{node.module}.{name}" if node.module else name


def _stat_fqn(rec: dict) -> str:
    """``module.qualname`` of a function record in the C statistics, whose
    ``name`` is the qualname with ``module`` beside it (docs/API.md)."""
    return f"{rec['module']}.{rec['name']}" if rec.get("module") else rec["name"]


def _elapsed_text(seconds: float) -> str:
    """1.0.0's units: whole microseconds below 1 ms, then ms with 2 decimals,
    then seconds with 3."""
    ms = seconds * 1000
    if ms < 1:
        return f"{seconds * 1_000_000:.0f}us"
    if ms < 1000:
        return f"{ms:.2f}ms"
    return f"{seconds:.3f}s"


def _walk(nodes: Iterable[Any], depth: int = 0):
    """(node, depth) for every node, depth first in call order, without
    recursion (traces may be deeper than Python's recursion limit)."""
    stack = [(n, depth) for n in reversed(list(nodes))]
    while stack:
        node, d = stack.pop()
        yield node, d
        stack.extend((c, d + 1) for c in reversed(node.children))


# ---------------------------------------------------------------------------
# TraceSummary
# ---------------------------------------------------------------------------

@dataclass
class TraceSummary:
    """A trace's statistics, as tracepatch 1.0.0's ``t.summary()`` returns them.

    ``str(summary)`` is the statistics block printed above ``t.tree()``.
    """

    call_count: int = 0
    max_depth_reached: int = 0
    unique_functions: set = field(default_factory=set)
    unique_modules: set = field(default_factory=set)
    total_duration_ms: float = 0.0
    slowest_call_ms: float = 0.0
    slowest_call_name: str = ""
    most_called: list = field(default_factory=list)
    # The header text of our renderer; print(t.summary()) shows it.
    _text: str = field(default="", repr=False, compare=False)

    @property
    def unique_function_count(self) -> int:
        return len(self.unique_functions)

    @property
    def unique_module_count(self) -> int:
        return len(self.unique_modules)

    def __str__(self) -> str:
        return self._text or render_summary_header_from(self, None)

    @classmethod
    def from_roots(cls, roots: Iterable[Any]) -> "TraceSummary":
        """Statistics of a tree of nodes (1.0.0's rules: depth 0 is a root,
        total duration is the sum of the roots', most_called the top 10)."""
        summary = cls()
        counts: dict[str, int] = {}
        roots = list(roots)
        for node, depth in _walk(roots):
            summary.call_count += 1
            summary.max_depth_reached = max(summary.max_depth_reached, depth)
            name = _fqn(node)
            summary.unique_functions.add(name)
            if node.module:
                summary.unique_modules.add(node.module)
            counts[name] = counts.get(name, 0) + 1
            ms = node.elapsed * 1000
            if ms > summary.slowest_call_ms:
                summary.slowest_call_ms, summary.slowest_call_name = ms, name
        summary.total_duration_ms = sum(r.elapsed for r in roots) * 1000
        summary.most_called = sorted(counts.items(), key=lambda kv: -kv[1])[:10]
        return summary

    @classmethod
    def _from_stats(cls, stats: dict, text: str) -> "TraceSummary":
        """From Session.stats() (the C statistics every view shares)."""
        functions = stats.get("functions") or []
        most = sorted(((_stat_fqn(f), f["count"]) for f in functions), key=lambda kv: -kv[1])
        slowest = stats.get("slowest") or {}
        return cls(
            call_count=stats.get("calls", 0),
            max_depth_reached=stats.get("max_depth", 0),
            unique_functions={_stat_fqn(f) for f in functions},
            unique_modules={f["module"] for f in functions if f["module"]},
            total_duration_ms=stats.get("duration_ms", 0.0),
            slowest_call_ms=slowest.get("ms", 0.0) if slowest else 0.0,
            slowest_call_name=_stat_fqn(slowest) if slowest else "",
            most_called=most[:10],
            _text=text,
        )


# ---------------------------------------------------------------------------
# Tree helpers
# ---------------------------------------------------------------------------

_STYLES = {
    # 1.0.0 calls its default "ascii" but draws box characters; we draw the same.
    "ascii": ("\u2514\u2500\u2500 ", "\u251c\u2500\u2500 ", "\u2502   ", "    "),
    "unicode": ("\u2514\u2500 ", "\u251c\u2500 ", "\u2502  ", "   "),
    "ansi": ("\033[2m\u2514\u2500 \033[0m", "\033[2m\u251c\u2500 \033[0m",
             "\033[2m\u2502  \033[0m", "   "),
}


def render_tree(roots: Iterable[Any], *, style: str = "ascii", show_args: bool = True,
                show_return: bool = True, show_source: bool = False,
                show_self_time: bool = False) -> str:
    """Nodes as tracepatch 1.0.0's text tree (``"ascii"`` draws ``└── ``,
    ``"unicode"`` ``└─ ``, ``"ansi"`` dim ``└─ ``), no header, no folding."""
    if style not in _STYLES:
        raise ValueError(f"render_tree(): style must be 'ascii', 'unicode' or 'ansi', "
                         f"got {style!r}")
    last, mid, cont, space = _STYLES[style]
    lines: list[str] = []
    # Iterative walk: (node, prefix, is_last).
    roots = list(roots)
    stack = [(r, "", i == len(roots) - 1) for i, r in reversed(list(enumerate(roots)))]
    while stack:
        node, prefix, is_last = stack.pop()
        outcome = ""
        if show_return:
            if node.exception is not None:
                outcome = f" !! {node.exception}"
            elif node.return_value is not None:
                outcome = f" -> {node.return_value}"
        timing = _elapsed_text(node.elapsed)
        if show_self_time and node.children:
            own = max(0.0, node.elapsed - sum(c.elapsed for c in node.children))
            timing = f"{timing} / self: {_elapsed_text(own)}"
        memory = getattr(node, "memory_delta_kb", None)
        if memory is not None:
            timing += (f", {memory / 1024:+.1f} MB" if abs(memory) >= 1024
                       else f", {memory:+.1f} KB")
        args = f"({node.args or ''})" if show_args else "()"
        line = f"{prefix}{last if is_last else mid}{_fqn(node)}{args}{outcome}  [{timing}]"
        if show_source and node.file and node.lineno is not None:
            line += f"  ({node.file}:{node.lineno})"
        lines.append(line)
        child_prefix = prefix + (space if is_last else cont)
        kids = node.children
        for i in range(len(kids) - 1, -1, -1):
            stack.append((kids[i], child_prefix, i == len(kids) - 1))
    return "\n".join(lines)


def _synthetic(like: Any, **fields: Any) -> Node:
    """A new Node with like's facts, some replaced (the helpers never change
    the tree they are given)."""
    node = Node()
    for slot in Node.__slots__:
        setattr(node, slot, getattr(like, slot, None))
    for key, value in fields.items():
        setattr(node, key, value)
    if node.qualname is None:
        node.qualname = node.name
    return node


def _marker(text: str, depth: int) -> Node:
    node = Node()
    for slot in Node.__slots__:
        setattr(node, slot, None)
    node.name = node.qualname = text
    node.module, node.args, node.children = "", "", []
    node.elapsed = node.start = node.end = 0.0
    node.depth = depth
    return node


def fold_repeated_calls(nodes: Iterable[Any], *, threshold: int = 3) -> list:
    """Runs of threshold or more consecutive sibling calls to one function
    become one node, with 1.0.0's ``...  [×N]  [avg: , min: , max: ]`` as its
    arguments and the run's children merged under it; recursively."""
    nodes = list(nodes)
    out: list = []
    i = 0
    while i < len(nodes):
        j = i
        key = (nodes[i].module, nodes[i].name)
        while j < len(nodes) and (nodes[j].module, nodes[j].name) == key:
            j += 1
        run = nodes[i:j]
        if len(run) >= threshold:
            times = [n.elapsed for n in run]
            merged = [c for n in run for c in n.children]
            out.append(_synthetic(
                run[0], return_value=None, exception=None, end=run[-1].end,
                elapsed=sum(times), children=fold_repeated_calls(merged, threshold=threshold),
                args=(f"...  [\u00d7{len(run)}]  [avg: {_elapsed_text(sum(times) / len(run))}, "
                      f"min: {_elapsed_text(min(times))}, max: {_elapsed_text(max(times))}]")))
        else:
            out.extend(_synthetic(n, children=fold_repeated_calls(n.children,
                                                                  threshold=threshold))
                       for n in run)
        i = j
    return out


def collapse_tree(nodes: Iterable[Any], *, max_depth: int = 4) -> list:
    """Below max_depth levels, a call's subtree becomes one line
    ``[+N more calls, T total]``."""
    def collapse(level: list, depth: int) -> list:
        out = []
        for n in level:
            if depth >= max_depth:
                hidden = sum(1 for _ in _walk(n.children))
                kids = ([_marker(f"[+{hidden} more calls, {_elapsed_text(n.elapsed)} total]",
                                 (n.depth or 0) + 1)] if n.children else [])
            else:
                kids = collapse(n.children, depth + 1)
            out.append(_synthetic(n, children=kids))
        return out
    return collapse(list(nodes), 0)


def render_summary_header_from(summary: TraceSummary, label: str | None) -> str:
    rule = "\u2500" * 72
    parts = [f"Trace: {label}"] if label else []
    parts.append(rule)
    left = f"Recorded:     {summary.call_count} calls across {summary.unique_module_count} modules"
    parts.append(f"{left:<40}| Duration: {_elapsed_text(summary.total_duration_ms / 1000)}")
    left = f"Max depth:    {summary.max_depth_reached} levels"
    parts.append(f"{left:<40}| Unique functions: {summary.unique_function_count}")
    if summary.slowest_call_name:
        left = (f"Slowest:      {summary.slowest_call_name} "
                f"[{_elapsed_text(summary.slowest_call_ms / 1000)}]")
    else:
        left = "Slowest:      \u2014"
    if summary.most_called:
        name, count = summary.most_called[0]
        right = f"Most called: {name} [\u00d7{count}]"
    else:
        right = "Most called: \u2014"
    parts.append(f"{left:<40}| {right}")
    parts.append(rule)
    return "\n".join(parts)


def render_summary_header(roots: Iterable[Any], *, label: str | None = None) -> str:
    """1.0.0's statistics block for a tree of nodes (its units)."""
    return render_summary_header_from(TraceSummary.from_roots(roots), label)


# ---------------------------------------------------------------------------
# explain()
# ---------------------------------------------------------------------------

_LOOP_MIN = 5        # calls of one function from one parent that read as a loop
_REPEAT_MIN = 3      # identical calls (same arguments) that read as N+1
_SLOW_PCT = 10.0     # share of the total time that makes a call worth naming
_DEEP = 10           # nesting that is worth a remark


def explain(roots: Iterable[Any], *, verbose: bool = False) -> str:
    """A plain-language account of a trace, computed by fixed rules (the same
    tree always gives the same text): how it started, then recursion, loops,
    repeated identical calls (the N+1 pattern), slow calls and exceptions."""
    roots = list(roots)
    if not roots:
        return "The trace is empty \u2014 no calls were captured."
    summary = TraceSummary.from_roots(roots)
    lines = []
    if len(roots) == 1:
        lines.append(f"The program started by calling {_fqn(roots[0])}({roots[0].args or ''}).")
    else:
        names = ", ".join(_fqn(r) for r in roots[:3])
        more = f" and {len(roots) - 3} more" if len(roots) > 3 else ""
        lines.append(f"The program made {len(roots)} top-level calls: {names}{more}.")
    lines.append(f"In total, {summary.call_count} function call(s) were recorded across "
                 f"{summary.unique_module_count} module(s).")
    lines.append(f"The deepest the call stack reached was {summary.max_depth_reached} level(s).")
    lines += ["", "Key observations:"]
    found = _observations(roots, summary)
    lines += [f"  \u25cf {text}" for text in found] or ["  (no notable patterns detected)"]
    if verbose:
        hints = _complexity_hints(roots)
        if hints:
            lines += ["", "Complexity hints (observed patterns, not proofs):"]
            lines += [f"  \u25cf {name}: {hint}" for name, hint in hints]
    lines += ["", f"Total time: {_elapsed_text(summary.total_duration_ms / 1000)} across "
                  f"{summary.call_count} call(s)."]
    if summary.slowest_call_name:
        lines.append(f"Slowest single call: {summary.slowest_call_name} "
                     f"[{_elapsed_text(summary.slowest_call_ms / 1000)}]")
    return "\n".join(lines)


def _observations(roots: list, summary: TraceSummary) -> list[str]:
    out: list[str] = []
    # Recursion: a function found among its own callers.
    recursion: dict[str, list[int]] = {}  # name -> [recursive calls, deepest level]
    stack: list = [(r, (), 0) for r in reversed(roots)]
    while stack:
        node, callers, depth = stack.pop()
        name = _fqn(node)
        if name in callers:
            entry = recursion.setdefault(name, [0, 0])
            entry[0] += 1
            entry[1] = max(entry[1], depth)
        inner = callers + (name,) if name not in callers else callers
        stack.extend((c, inner, depth + 1) for c in reversed(node.children))
    for name, (count, deepest) in recursion.items():
        out.append(f"{name} is called recursively (max depth {deepest}, "
                   f"{count} recursive call(s))")
    # Loops and N+1: many calls of one function from one call.
    loops, repeats = [], []
    for parent, _ in _walk(roots):
        counts: dict[str, int] = {}
        same: dict[tuple, int] = {}
        for c in parent.children:
            counts[_fqn(c)] = counts.get(_fqn(c), 0) + 1
            if c.args:
                same[(_fqn(c), c.args)] = same.get((_fqn(c), c.args), 0) + 1
        for name, count in counts.items():
            if count >= _LOOP_MIN:
                loops.append(f"{name} is called {count} times from {_fqn(parent)} "
                             f"(possible loop)")
        for (name, args), count in same.items():
            if count >= _REPEAT_MIN:
                repeats.append(f"{name}({args}) is called {count} times with the same "
                               f"arguments from {_fqn(parent)} (repeated work, N+1 pattern: "
                               f"cache it or fetch once)")
    out += loops[:5] + repeats[:5]
    total = summary.total_duration_ms
    if total > 0:
        slow = [(n, n.elapsed * 1000) for n, _ in _walk(roots)
                if n.elapsed * 1000 / total * 100 >= _SLOW_PCT]
        for node, ms in slow[:5]:
            out.append(f"{_fqn(node)} is slow \u2014 {round(ms, 2)}ms "
                       f"({round(ms / total * 100, 1)}% of total time)")
    raised = [n for n, _ in _walk(roots) if n.exception]
    for node in raised[:3]:
        out.append(f"{_fqn(node)} raised: {node.exception}")
    if summary.max_depth_reached > _DEEP:
        out.append(f"Deep nesting detected ({summary.max_depth_reached} levels) \u2014 "
                   f"consider refactoring to reduce call depth")
    return out


def _complexity_hints(roots: list) -> list[tuple[str, str]]:
    branches: dict[str, int] = {}
    for node, _ in _walk(roots):
        name = _fqn(node)
        own = sum(1 for c in node.children if _fqn(c) == name)
        if own:
            branches[name] = max(branches.get(name, 0), own)
    hints = []
    for name, k in branches.items():
        if k == 1:
            hints.append((name, "O(n) \u2014 linear recursion (observed pattern)"))
        elif k == 2:
            hints.append((name, "O(2^n) \u2014 binary recursion (observed pattern)"))
        else:
            hints.append((name, f"O({k}^n) \u2014 {k}-way recursion (observed pattern)"))
    return hints


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------

def expand_label(label: str | None) -> str | None:
    """default_label's templates, as 1.0.0 expands them: {hostname}, {pid},
    {timestamp} (YYYYmmdd_HHMMSS, local time). Other braces stay as written."""
    if label is None or "{" not in label:
        return label
    values = {"hostname": socket.gethostname(), "pid": str(os.getpid()),
              "timestamp": datetime.datetime.now().strftime("%Y%m%d_%H%M%S")}
    for key, value in values.items():
        label = label.replace("{" + key + "}", value)
    return label


# ---------------------------------------------------------------------------
# TracepatchConfig / load_config
# ---------------------------------------------------------------------------

class ConfigError(ValueError):
    """A config value of the wrong type or out of range
    (``TracepatchConfig.from_dict`` and ``_validate`` raise it)."""


# 1.0.0's fields that are settings of our schema (the rest come after).
_CONFIG_FIELDS = ("ignore_modules", "include_modules", "max_depth", "max_calls", "max_repr",
                  "max_time", "cache", "cache_dir", "default_label", "auto_save", "show_args",
                  "show_return", "tree_style", "color")


@dataclass(frozen=True)
class TracepatchConfig:
    """The client configuration, as tracepatch 1.0.0's ``load_config()``
    returns it: the file's settings over the built-in defaults (environment
    variables applied), plus its ``[test]`` table. The rules are the
    settings schema's (tracepatch._settings)."""

    ignore_modules: list = field(default_factory=list)
    include_modules: list = field(default_factory=list)
    max_depth: int = 30
    max_calls: int = 10000
    max_repr: int = 120
    max_repr_args: int | None = None
    max_repr_return: int | None = None
    max_time: float = 60.0
    cache: bool = True
    cache_dir: str | None = None
    default_label: str | None = None
    auto_save: bool = True
    show_args: bool = True
    show_return: bool = True
    tree_style: str = "unicode"
    color: bool = False
    test: dict = field(default_factory=dict)
    # Settings given by the file or the environment (not defaults).
    _given: frozenset = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def default(cls) -> "TracepatchConfig":
        from . import _settings
        return cls(**{k: _list(_settings.default(k)) for k in _CONFIG_FIELDS})

    @classmethod
    def from_dict(cls, data: dict) -> "TracepatchConfig":
        """From a parsed TOML table; ConfigError names the first bad key."""
        from . import _config
        settings, problems = _config.validate_table(data)
        bad = [(k, p) for k, p in problems if not k.startswith("test")
               and p != "unknown key"]
        if bad:
            raise ConfigError("; ".join(f"{k}: {p}" for k, p in bad))
        test = data.get("test", {})
        if not isinstance(test, dict):
            raise ConfigError(f"test: expected a table, got {type(test).__name__}")
        base = cls.default()
        values = {k: _list(v) for k, v in settings.items()
                  if k in _CONFIG_FIELDS or k in ("max_repr_args", "max_repr_return")}
        return _replace(base, test=dict(test), _given=frozenset(settings), **values)

    def _validate(self, raw_data: dict | None = None) -> list[str]:
        """Raises ConfigError for a bad value; returns warnings for unknown keys."""
        from . import _settings
        for name in _CONFIG_FIELDS:
            value = getattr(self, name)
            if value is None and _settings.default(name) is None:
                continue
            try:
                _settings.BY_NAME[name].check(value, _settings.FILE)
            except _settings.Invalid as exc:
                raise ConfigError(f"{name}: {exc}") from None
        for name in ("max_repr_args", "max_repr_return"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        known = set(_CONFIG_FIELDS) | {"max_repr_args", "max_repr_return", "test"}
        return [f"Unknown config key: {k!r}" for k in (raw_data or {}) if k not in known]

    def effective_max_repr_args(self) -> int:
        return self.max_repr_args if self.max_repr_args is not None else self.max_repr

    def effective_max_repr_return(self) -> int:
        return self.max_repr_return if self.max_repr_return is not None else self.max_repr

    def expand_label(self, label: str | None = None) -> str | None:
        return expand_label(label if label is not None else self.default_label)

    def to_trace_kwargs(self) -> dict:
        """Keywords for ``trace(**config.to_trace_kwargs())``. cache is passed
        only when the file or environment set it, so that a default config
        does not ask for a file beside tphd (an explicit cache=True does)."""
        kwargs = {
            "ignore_modules": list(self.ignore_modules),
            "include_modules": list(self.include_modules),
            "max_depth": self.max_depth, "max_calls": self.max_calls,
            "max_repr": self.max_repr, "max_repr_args": self.max_repr_args,
            "max_repr_return": self.max_repr_return, "max_time": self.max_time,
            "cache_dir": self.cache_dir, "label": self.expand_label(),
        }
        if "cache" in self._given:
            kwargs["cache"] = self.cache
        return kwargs


def _list(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _replace(config: TracepatchConfig, **changes: Any) -> TracepatchConfig:
    import dataclasses
    return dataclasses.replace(config, **changes)


def load_config(path: str | os.PathLike | None = None,
                search_parents: bool = True) -> tuple[TracepatchConfig, Any]:
    """(config, path of the file used or None), as in tracepatch 1.0.0:
    path if given, else tracepatch.toml or pyproject.toml's
    [tool.tracepatch] from the working directory upward (only there when
    search_parents is False); TRACEPATCH_* variables override. A file with
    bad values gives a TracepatchWarning and those keys keep their
    defaults, as for trace()."""
    from pathlib import Path

    from . import _config
    found = None
    if path is not None:
        p = Path(path)
        if p.is_file():
            found = (p, "tool.tracepatch" if p.name == "pyproject.toml" else None)
    else:
        found = _config.find_config_file()
        if found is not None and not search_parents and found[0].parent != Path.cwd():
            found = None
    cfg = _config.read_config_file(*found) if found is not None else None
    # stacklevel 2: the warning points at load_config's caller.
    settings, sources = _config.resolve({}, stacklevel=2, config=cfg)
    test = _read_test_table(found) if cfg is not None and cfg.unreadable is None else {}
    given = frozenset(k for k, src in sources.items() if src in ("config", "env"))
    values = {k: _list(settings[k]) for k in _CONFIG_FIELDS + ("max_repr_args", "max_repr_return")}
    config = TracepatchConfig(**values, test=test, _given=given)
    return config, (found[0] if found is not None and cfg is not None else None)


def _read_test_table(found) -> dict:
    from . import _config
    path, section = found
    try:
        with open(path, "rb") as fh:
            data = _config._toml.load(fh)
    except (OSError, ValueError, AttributeError):
        return {}
    for part in (section.split(".") if section else ()):
        data = data.get(part, {}) if isinstance(data, dict) else {}
    test = data.get("test", {}) if isinstance(data, dict) else {}
    return test if isinstance(test, dict) else {}


# ---------------------------------------------------------------------------
# Trace files as nodes (tph view / tph explain)
# ---------------------------------------------------------------------------

def nodes_from_json(doc: dict) -> list:
    """The "trace" list of a tracepatch JSON file (ours or 1.0.0's) as Nodes."""
    roots: list = []
    stack = [(d, None, roots) for d in reversed(doc.get("trace") or [])]
    while stack:
        d, parent, siblings = stack.pop()
        node = Node()
        for slot in Node.__slots__:
            setattr(node, slot, None)
        # JSON's "name" is the qualname; Node.name is its last part.
        node.qualname = d.get("qualname") or d.get("name") or ""
        node.name = node.qualname.rpartition(".")[2]
        node.module = d.get("module") or ""
        node.args = d.get("args")
        node.return_value = d.get("return_value")
        node.exception = d.get("exception")
        node.start, node.end = d.get("start") or 0.0, d.get("end") or 0.0
        node.elapsed = (d.get("elapsed_ms") or 0.0) / 1000.0
        node.file, node.lineno = d.get("file"), d.get("lineno")
        mem_b, mem_kb = d.get("memory_delta_bytes"), d.get("memory_delta_kb")
        if isinstance(mem_b, int) and not isinstance(mem_b, bool):
            node.memory_delta_bytes = mem_b
        elif isinstance(mem_kb, (int, float)) and not isinstance(mem_kb, bool):
            node.memory_delta_bytes = round(mem_kb * 1024)
        node.parent = parent
        node.depth = 0 if parent is None else parent.depth + 1
        node.children = []
        siblings.append(node)
        stack.extend((c, node, node.children) for c in reversed(d.get("children") or []))
    return roots
