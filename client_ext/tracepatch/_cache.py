"""Saving finished traces as JSON files, the way tracepatch 1.0.0 does.

Layout (under the working directory, or cache_dir)::

    .tracepatch/
        README.md
        traces/
            .gitignore          ("*": trace logs are never committed)
            <label>_<YYYYmmdd>_<HHMMSS>_<id8>.json
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path

from ._config import TracepatchWarning

DATA_DIR = ".tracepatch"
TRACES_DIR = "traces"

_README = """\
This directory is managed by tracepatch.

traces/  JSON trace logs written when a trace() finishes (git-ignored).
         Read one with `tph tree FILE` or `python -c "import json; json.load(open(FILE))"`.
"""
_GITIGNORE = "# Written by tracepatch: trace logs are not committed.\n*\n"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_label(label: str | None) -> str:
    """A label usable in a file name: runs of other characters become "-"."""
    if not label:
        return "trace"
    text = _UNSAFE.sub("-", label).strip("-")[:64]
    return text or "trace"


def traces_dir(cache_dir: str | os.PathLike | None) -> Path:
    """The traces/ directory for cache_dir (its .tracepatch/ subdirectory, or
    cache_dir itself when it is named .tracepatch)."""
    base = Path(cache_dir) if cache_dir is not None else Path.cwd()
    data = base if base.name == DATA_DIR else base / DATA_DIR
    return data / TRACES_DIR


def open_private(path, mode: str = "w"):
    """Open path for writing as a file only its owner may read (0600,
    whatever the umask): traces hold argument values, passwords included.
    A file that already exists keeps the mode its owner gave it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0),
                 0o600)
    try:
        return os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")
    except BaseException:
        os.close(fd)
        raise


def _private_dir(path: Path) -> None:
    """path as a directory only its owner may enter (0700), like tphd's
    database directory; one made by an older tracepatch (0755) is tightened
    when it is ours."""
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        os.chmod(path, st.st_mode & 0o700)


def _prepare(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private_dir(directory.parent)
    _private_dir(directory)
    readme = directory.parent / "README.md"
    if not readme.exists():
        readme.write_text(_README, encoding="utf-8")
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_GITIGNORE, encoding="utf-8")


def file_name(label: str | None, wall_start: float, trace_id: str) -> str:
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(wall_start))
    return f"{safe_label(label)}_{stamp}_{trace_id[:8]}.json"


def save(t, cache_dir) -> Path | None:
    """Write trace t to the cache; returns the path, or None after warning.

    A failure (read-only directory, full disk...) is a TracepatchWarning with
    the reason, never an exception: saving is a convenience, the traced
    program must not suffer for it.
    """
    directory = tmp = None
    try:
        directory = traces_dir(cache_dir)
        _prepare(directory)
        path = directory / file_name(t.label, t._wall_start or time.time(), t.trace_id)
        tmp = path.with_name(path.name + ".tmp")
        with open_private(tmp) as fh:
            t.to_json(fh)  # streamed: a big trace is never whole in memory
        os.replace(tmp, path)
        return path
    except Exception as exc:  # noqa: BLE001 - any failure becomes a warning
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        where = directory if directory is not None else cache_dir
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError) and exc.filename:
            reason = f"{reason}: {exc.filename}"
        warnings.warn(f"tracepatch: could not save trace {t.trace_id[:8]} "
                      f"({t.label or 'no label'}) to {where}: {reason}",
                      TracepatchWarning, stacklevel=6)
        return None


def list_saved(cache_dir=None, limit: int = 50) -> list:
    """Saved traces, newest first: dicts with file, timestamp, label, call_count..."""
    directory = traces_dir(cache_dir)
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    out = []
    for path in files[:limit]:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        out.append({
            "file": str(path),
            "timestamp": data.get("timestamp"),
            "label": data.get("label"),
            "trace_id": data.get("trace_id"),
            "call_count": data.get("call_count", 0),
            "was_limited": data.get("was_limited", False),
        })
    return out
