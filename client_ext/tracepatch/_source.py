"""The source text of a trace's functions: the trace file's "source" key.

A report may be read on another machine, or after the code changed, so the
text is taken in the traced process, when the trace is first written out
(to_json, to_html) or uploaded to tphd, from the function table the
recorder interned (one entry per code object, docs/API.md "source"). Nothing
of it runs while the trace records.

Each function's lines are read through ``linecache`` from its file and
first line (``co_firstlineno``): the block ``inspect.getblock`` finds there
(decorators, the ``def`` and its body), or, for a lambda, a comprehension
or a generator expression, the logical line it starts in; for a module's
code, the rest of the file. The text of one
code object is kept in a process-wide table, so a function is read once per
process however many traces call it.

Bounds, and what is left out is said:
- one function keeps at most ``MAX_FUNCTION`` bytes of text (UTF-8), whole
  lines only; ``"truncated": N`` counts the lines left out;
- one trace keeps at most ``MAX_TRACE`` bytes of text in all; a function
  past that budget is listed with ``"missing": "over the trace's source
  budget"``, and past ``MAX_ENTRIES`` entries functions are only counted
  (``"left_out"``);
- a function whose file cannot be read (built-in, ``<string>``, deleted)
  is listed with ``"missing": "no source"``.
"""

from __future__ import annotations

import inspect
import json
import linecache
import threading
import tokenize
from typing import Any

MAX_FUNCTION = 64 * 1024  # bytes of text kept per function
MAX_TRACE = 1 << 20  # bytes of text kept per trace, all functions together
MAX_ENTRIES = 65536  # functions listed per trace (with or without text)
_MAX_CACHED = 8192  # code objects whose text the process keeps between traces

# The first words of a line where a block (decorators, def, class) starts.
_BLOCKS = ("def ", "async def ", "class ", "@")
NO_SOURCE = "no source"
OVER_BUDGET = "over the trace's source budget"

# (file, first line) -> (text, lines left out, its UTF-8 bytes) or None (no
# source). One code object starts at one line of one file, so this is once
# per code object.
_cache: dict[tuple[str, int, bool], tuple[str, int, int] | None] = {}
# One encoder for every trace (json.dumps with options makes one per call).
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_cache_lock = threading.Lock()


def _block(file: str, first: int, module: bool) -> tuple[str, int] | None:
    """The text of the code starting at file:first (a module's code: the
    rest of the file), cut to MAX_FUNCTION."""
    if not file or first < 1 or file.startswith("<"):
        return None
    try:
        lines = linecache.getlines(file)
    except Exception:  # noqa: BLE001 - a loader's get_source may raise anything
        return None
    if first > len(lines):
        return None
    rest = lines[first - 1:]
    if module:
        block = rest
    else:
        try:
            if rest[0].lstrip().startswith(_BLOCKS):
                block = inspect.getblock(rest)
            else:
                block = rest[:_logical_end(rest)]
        except Exception:  # noqa: BLE001 - tokenize errors on odd text
            block = rest[:1]
    kept, size = [], 0
    for line in block:
        n = len(line.encode("utf-8", "replace"))
        if size + n > MAX_FUNCTION:
            break
        kept.append(line)
        size += n
    return "".join(kept), len(block) - len(kept)


def _logical_end(lines: list) -> int:
    """How many physical lines the logical line at lines[0] spans (a lambda,
    a comprehension or a generator expression starts inside one)."""
    it = iter(lines)
    for tok in tokenize.generate_tokens(lambda: next(it, "")):
        if tok.type == tokenize.NEWLINE:
            return tok.end[0]
    return len(lines)


def _text(file: str, first: int, module: bool) -> tuple[str, int, int] | None:
    key = (file, first, module)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    block = _block(file, first, module)
    got = None if block is None else (*block, len(block[0].encode("utf-8", "replace")))
    with _cache_lock:
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[key] = got
    return got


def capture(functions: list) -> dict[str, Any] | None:
    """The "source" value for a function table [(module, qualname, file,
    line)], or None for an empty table."""
    if not functions:
        return None
    out: list[dict[str, Any]] = []
    budget = MAX_TRACE
    for module, qualname, file, line in functions[:MAX_ENTRIES]:
        entry: dict[str, Any] = {"module": module, "qualname": qualname, "file": file,
                                 "line": line}
        got = _text(file, line, qualname == "<module>")
        if got is None:
            entry["missing"] = NO_SOURCE
        elif got[2] > budget:
            entry["missing"] = OVER_BUDGET
        else:
            budget -= got[2]
            entry["text"] = got[0]
            if got[1]:
                entry["truncated"] = got[1]
        out.append(entry)
    return {"max_function": MAX_FUNCTION, "max_trace": MAX_TRACE, "functions": out,
            "left_out": max(0, len(functions) - MAX_ENTRIES)}


def to_bytes(source: dict[str, Any]) -> bytes:
    """The value as tphd takes it (PROTOCOL.md 4.6b): compact UTF-8 JSON; a
    lone surrogate reads "?"."""
    return _encoder.encode(source).encode("utf-8", "replace")
