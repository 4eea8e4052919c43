"""The settings schema: each setting's name, type, range, default and doc, once.

Everything that takes a setting reads this table: the keyword arguments of
``trace()``, the ``TRACEPATCH_*`` environment variables, config files,
``python -m tracepatch config --validate``, the ``run`` command's options,
``init``'s starter file and the README's settings table (checked by
tests/py/test_settings.py). The extension's ``Session`` accepts exactly the
numeric ranges written here (a test passes it every boundary value), so a
value that passes this module never raises inside ``with trace()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

from . import _tracepatch

__all__ = ["Setting", "Invalid", "SETTINGS", "BY_NAME", "DEFAULTS", "ALL_DEFAULTS", "TRUE_WORDS",
           "FALSE_WORDS", "settings_markdown", "starter_config"]

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
DAEMON_WORDS = ("auto", "off", "required")

# Where a value comes from changes only how the expectation is spelled
# (True in Python, true in TOML, 1/0 in the environment).
KEYWORD, FILE, ENV = "keyword", "file", "env"


class Invalid(Exception):
    """A value outside its setting's type or range.

    error is TypeError (wrong type) or ValueError (right type, out of range);
    expected says what is accepted ("an integer from 1 to 1000000"), got
    describes what was given."""

    def __init__(self, error: type[Exception], expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.error = error
        self.expected = expected
        self.got = got


def _typed(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


@dataclass(frozen=True)
class Setting:
    """One setting. kind is one of int, seconds, fraction, bool, modules (or
    names: any non-empty strings; functions: names or, as keywords, function
    objects too), str, path, choice, daemon; lo/hi bound an
    int (both inclusive) and seconds (lo exclusive, hi inclusive)."""

    name: str
    kind: str
    default: Any
    doc: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    env: str | None = None
    env_inverted: bool = False  # TRACEPATCH_NO_CACHE=1 means cache=false
    keyword: bool = True  # accepted by trace(...)
    file: bool = True  # accepted in tracepatch.toml / [tool.tracepatch]
    group: str = "Tracing"
    # A value outside lo..hi that is accepted and turns tracing off instead
    # of reaching the session (max_calls=0, as in tracepatch 1.0.0).
    off: Any = None

    def expected(self, source: str = KEYWORD) -> str:
        """What this setting accepts, in the words of source."""
        kind = self.kind
        if kind == "int":
            if self.off is not None:
                return (f"an integer from {_num(self.lo)} to {_num(self.hi)} "
                        f"(or {self.off}: no tracing)")
            return f"an integer from {_num(self.lo)} to {_num(self.hi)}"
        if kind == "seconds":
            return f"a number of seconds > {_num(self.lo)} and <= {_num(self.hi)}"
        if kind == "fraction":
            return "a number from 0 to 1"
        if kind == "bool":
            if source == ENV:
                return "1/true/yes/on or 0/false/no/off"
            return "true or false" if source == FILE else "True or False"
        if kind == "modules":
            return "a list of module names (non-empty strings)"
        if kind == "names":
            return "a list of non-empty strings"
        if kind == "functions":
            if source == KEYWORD:
                return "a list of functions or 'module.qualname' names"
            return "a list of 'module.qualname' names (non-empty strings)"
        if kind == "str":
            return "a string"
        if kind == "path":
            return "a path"
        if kind == "choice":
            return "one of " + ", ".join(map(repr, self.choices))
        return "'auto', 'off', 'required' or a socket path (containing '/')"

    def check(self, value: Any, source: str = KEYWORD) -> Any:
        """value, normalised (tuple for module lists, float for seconds, str
        for paths); raises Invalid."""
        kind = self.kind

        def bad(error: type[Exception], got: str | None = None) -> Invalid:
            return Invalid(error, self.expected(source), got or _typed(value))

        if kind in ("int", "seconds", "fraction"):
            numeric = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
            if isinstance(value, bool) or not numeric:
                raise bad(TypeError)
            if kind == "int":
                ok = self.lo <= value <= self.hi or (self.off is not None and value == self.off)
            elif kind == "seconds":
                ok = self.lo < value <= self.hi  # NaN fails both comparisons
            else:
                ok = 0.0 <= value <= 1.0
            if not ok:
                raise bad(ValueError, repr(value))
            return value if kind == "int" else float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise bad(TypeError)
            return value
        if kind in ("functions", "modules", "names"):
            # A keyword may be any iterable (a set, a generator); TOML has
            # lists. Only a keyword's functions= may hold callables.
            iterable = isinstance(value, (list, tuple)) or (
                source == KEYWORD and hasattr(value, "__iter__"))
            if isinstance(value, (str, bytes)) or not iterable:
                raise bad(TypeError)
            items = tuple(value)
            for item in items:
                if isinstance(item, str):
                    if not item:
                        raise bad(ValueError, "an empty string")
                elif not (kind == "functions" and source == KEYWORD and callable(item)):
                    raise bad(TypeError, f"an item {_typed(item)}")
            return items
        if kind == "str":
            if not isinstance(value, str):
                raise bad(TypeError)
            return value
        if kind == "path":
            if isinstance(value, str) or (source != FILE and isinstance(value, os.PathLike)):
                return os.fspath(value)
            raise bad(TypeError)
        if kind == "choice":
            if not isinstance(value, str):
                raise bad(TypeError)
            if value not in self.choices:
                raise bad(ValueError, repr(value))
            return value
        # daemon
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise bad(TypeError)
        if value in DAEMON_WORDS or os.sep in value or value.endswith(".sock"):
            return value
        raise bad(ValueError, repr(value))

    def parse(self, text: str) -> Any:
        """The value a piece of text (an environment variable, a command-line
        option) stands for, checked; raises Invalid (got is the text)."""
        raw = text.strip()
        kind = self.kind
        value: Any = raw
        try:
            if kind == "int":
                value = int(raw)
            elif kind in ("seconds", "fraction"):
                value = float(raw)
            elif kind == "bool":
                word = raw.lower()
                if word not in TRUE_WORDS and word not in FALSE_WORDS:
                    raise ValueError(word)
                value = (word in TRUE_WORDS) != self.env_inverted
        except ValueError:
            raise Invalid(ValueError, self.expected(ENV), repr(text)) from None
        try:
            return self.check(value, ENV)
        except Invalid as exc:
            raise Invalid(exc.error, exc.expected, repr(text)) from None


# The numeric settings' defaults and ranges are the extension's (its
# Session parses with the same table): name -> (default, lo, hi).
_LIMITS = _tracepatch.LIMITS


def _limited(name: str, kind: str, doc: str, **kw: Any) -> Setting:
    default, lo, hi = _LIMITS[name]
    return Setting(name, kind, default, doc, lo, hi, **kw)


SETTINGS: tuple[Setting, ...] = (
    Setting("label", "str", None, "a name for the trace (headers, file names)", file=False),
    Setting("default_label", "str", None, "the label of traces that give none",
            env="TRACEPATCH_LABEL", keyword=False),
    _limited("max_depth", "int", "deepest call nesting recorded", env="TRACEPATCH_MAX_DEPTH"),
    _limited("max_calls", "int", "stop recording after this many calls",
             env="TRACEPATCH_MAX_CALLS", off=0),
    _limited("max_time", "seconds", "stop recording after this many seconds",
             env="TRACEPATCH_MAX_TIME"),
    _limited("max_repr", "int",
             "longest repr() kept for an argument or return value (room for 1 character and '...')",
             env="TRACEPATCH_MAX_REPR"),
    _limited("max_repr_args", "int", "max_repr for arguments alone (tracepatch 1.0.0)"),
    _limited("max_repr_return", "int", "max_repr for return values alone (tracepatch 1.0.0)"),
    Setting("ignore_modules", "modules", (), "module prefixes to leave out"),
    Setting("include_modules", "modules", (), "if set, the only module prefixes recorded"),
    Setting("show_args", "bool", True, "capture arguments"),
    Setting("show_return", "bool", True, "capture return values"),
    Setting("repr_notes", "bool", True,
            "say \"[tracepatch] repr failed: RuntimeError\" on stderr when a type's __repr__ "
            "raises (once per type, when the trace ends; as tracepatch 1.0.0)"),
    Setting("show_asyncio", "bool", False,
            "also record asyncio's own code (the event loop, its callbacks and task steps)"),
    Setting("track_memory", "bool", False,
            "record each call's memory delta through tracemalloc (started for the trace "
            "when it is not tracing): memory_delta_kb in files, [1.23ms, +12.5 KB] in trees",
            env="TRACEPATCH_TRACK_MEMORY"),
    Setting("lines", "functions", (),
            "functions whose statements are recorded: line hits and variable values"),
    Setting("line_samples", "int", 10,
            "values kept per variable, line and call of a lines= function", 1, 100_000),
    Setting("sample", "fraction", None,
            "record each call with this probability (tracepatch 1.0.0's sampling; "
            "sample_skipped counts the rest)", file=False),
    Setting("sample_traces", "fraction", None,
            "record only this fraction of traces (decided once per trace)", file=False),
    Setting("threads", "bool", False, "also record threads started while the trace runs",
            file=False),
    Setting("keep", "choice", "all",
            "which finished traces are sent or saved: all, or slow (only those slower than "
            "keep_slower_than or that raised; recorded without arguments and return values, "
            "the rest dropped unsaved)", choices=("all", "slow")),
    Setting("keep_slower_than", "seconds", 0.2,
            "with keep=\"slow\": the duration a trace must exceed to be kept", 0, 1e9),
    Setting("daemon", "daemon", "auto",
            "where finished traces go (tphd when it listens, by default)",
            file=False),
    _limited("stream_after", "seconds",
             "a trace still recording after this long streams to tphd while it runs "
             "(tph logs shows it running, tph tree shows what it did so far)",
             env="TRACEPATCH_STREAM_AFTER"),
    _limited("stream_memory", "int",
             "MiB of event log a streaming trace keeps in the process once tphd stored it; "
             "beyond, what tphd stored is freed (t.tree() and the other views read it back "
             "from tphd)", env="TRACEPATCH_STREAM_MEMORY"),
    Setting("otel_parent", "str", None,
            "a W3C traceparent (the request's header) whose OpenTelemetry trace this one "
            "joins when tphd exports it (default: the opentelemetry API's current span)",
            file=False),
    Setting("cache", "bool", True, "save a finished trace as JSON when no daemon took it "
            "(an explicit cache=True, or auto_save=true in the file, saves it beside tphd too)",
            env="TRACEPATCH_NO_CACHE", env_inverted=True, group="Saving"),
    Setting("cache_dir", "path", None, "where .tracepatch/traces/ goes (default: the working "
            "directory)", env="TRACEPATCH_OUTPUT_DIR", group="Saving"),
    Setting("auto_save", "bool", True, "save finished traces at all (with cache)",
            keyword=False, group="Saving"),
    Setting("compact_json", "bool", False, "write trace files (the cache, to_json(path)) "
            "without indentation: the same document, often half the size",
            keyword=False, group="Saving"),
    Setting("tree_style", "choice", "unicode",
            "tree connectors (\"ascii\" draws what tracepatch 1.0.0 draws for it, box "
            "characters; \"7bit\" draws 7-bit ASCII)",
            choices=("unicode", "ascii", "ansi", "7bit"), keyword=False, group="Display"),
    Setting("color", "bool", False, "colour trees by duration (on a terminal only)",
            env="TRACEPATCH_COLOR", keyword=False, group="Display"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# The settings a trace starts from before its keywords: those a config file
# or the environment can give.
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS if s.file or s.env}


# Every setting's default, the trace()-only ones (label, sample, threads,
# daemon) included.
ALL_DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


def default(name: str) -> Any:
    """The built-in default of one setting."""
    return BY_NAME[name].default


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return repr(value)


def _file_settings() -> Iterator[Setting]:
    return (s for s in SETTINGS if s.file)


def starter_config() -> str:
    """The commented tracepatch.toml that ``python -m tracepatch init`` writes:
    every file setting with its default (commented out when it has none)."""
    lines = [
        "# tracepatch configuration. Precedence: trace(...) keywords > TRACEPATCH_*",
        "# environment variables > this file > built-in defaults.",
        "# Check it with: python -m tracepatch config --validate",
    ]
    group = None
    for s in _file_settings():
        if s.group != group:
            group = s.group
            lines += ["", f"# {group}"]
        note = s.doc
        if s.kind in ("int", "seconds", "choice"):
            note += f" ({s.expected(FILE)})"
        lines.append(f"# {note}")
        if s.default is None:
            example = {"str": '"my-app"', "path": '"/tmp/traces"', "int": "80"}[s.kind]
            lines.append(f"# {s.name} = {example}")
        else:
            lines.append(f"{s.name} = {_toml_value(s.default)}")
    return "\n".join(lines) + "\n"


def keyword_doc(indent: str = "") -> str:
    """The keywords of trace(), one line each, for its docstring."""
    lines = []
    for s in SETTINGS:
        if s.keyword:
            default = "unset" if s.default is None else repr(s.default)
            lines.append(f"{indent}{s.name}: {s.doc} ({s.expected()}; default {default})")
    return "\n".join(lines)


def _md_default(s: Setting) -> str:
    if s.default is None:
        return "unset"
    if isinstance(s.default, tuple):
        return "`[]`"
    if isinstance(s.default, bool):
        return f"`{s.default}`"
    return f"`{s.default!r}`"


def settings_markdown() -> str:
    """The README's settings table (between its settings markers). Print it
    with: python3 -c "from tracepatch import _settings as s; print(s.settings_markdown(), end='')"
    """
    rows = ["| setting | accepts | default | keyword | file | environment | meaning |",
            "|---|---|---|---|---|---|---|"]
    for s in SETTINGS:
        env = f"`{s.env}`" if s.env else ""
        if s.env_inverted:
            env += " (1 = false)"
        rows.append(f"| `{s.name}` | {s.expected(KEYWORD)} | {_md_default(s)} | "
                    f"{'yes' if s.keyword else ''} | {'yes' if s.file else ''} | {env} | "
                    f"{s.doc} |")
    return "\n".join(rows) + "\n"
