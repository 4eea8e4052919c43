"""Shared setup for the tracepatch Python tests.

Run against a build tree:

    ninja -C build-py311
    PYTHONPATH=build-py311/client_ext:/usr/lib/python3/dist-packages \\
        python3 -m pytest tests/py

Every test runs in its own empty working directory with no TRACEPATCH_*
variables set, so config files, saved traces and the environment of the
machine never leak into a test (or out of one).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tracepatch
    from tracepatch import _tracepatch
except ImportError as exc:  # pragma: no cover - a setup problem, not a test failure
    raise pytest.UsageError(
        f"cannot import tracepatch ({exc}); build it and run the tests with "
        f"PYTHONPATH=<build dir>/client_ext") from exc

if not hasattr(_tracepatch, "Session"):  # pragma: no cover
    raise pytest.UsageError(f"{_tracepatch.__file__} has no Session: the build is not current")

# The directory holding the tracepatch package under test; child processes
# get it on PYTHONPATH so they import the same build.
PACKAGE_PARENT = str(Path(tracepatch.__file__).resolve().parent.parent)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("TRACEPATCH_") or name == "NO_COLOR":
            monkeypatch.delenv(name)
    # No test here may reach a tphd the machine happens to run: point the
    # default daemon at a socket where nothing listens (tests/e2e use real ones).
    monkeypatch.setenv("TRACEPATCH_SOCKET", str(tmp_path / "no-tphd.sock"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield


# ---------------------------------------------------------------------------
# Helpers (import them: ``from conftest import norm``)
# ---------------------------------------------------------------------------

_DURATION = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:ns|µs|us|ms|s)(?![\w])")
_COLUMNS = re.compile(r" *\| *")
_HEADER_ROWS = ("Recorded:", "Max depth:", "Slowest:")


def norm(text: str) -> str:
    """A tree with every duration replaced by "T" and the header's column
    padding (which depends on how long the durations were) made uniform."""
    text = _DURATION.sub("T", text)
    lines = []
    for line in text.splitlines():
        if line.startswith(_HEADER_ROWS):
            line = _COLUMNS.sub(" | ", line)
        lines.append(line.rstrip())
    return "\n".join(lines)


def outline(roots, strip: str | None = None) -> str:
    """Recorded calls as indented lines, for exact comparisons:

        name(args) -> value            a call that returned
        name(args) !! Type: message    a call that raised
        ... (caught Type)              an exception was handled inside
        ... [gen N]                    generator/coroutine that suspended N times
        ... [unfinished]               still running when the trace stopped

    Names are "module.qualname", or just the qualname for module strip.
    """
    lines = []

    def name(node):
        if strip is not None and node.module == strip:
            return node.qualname
        return node.full_name

    def walk(node, depth):
        text = f"{'  ' * depth}{name(node)}({node.args if node.args is not None else ''})"
        if node.exception is not None:
            text += f" !! {node.exception}"
        elif node.return_value is not None:
            text += f" -> {node.return_value}"
        if node.caught:
            text += f" (caught {node.exception_type})"
        if node.is_generator:
            text += f" [gen {node.suspends}]"
        if node.unfinished:
            text += " [unfinished]"
        lines.append(text)
        for child in node.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


def qualname(name: str) -> str:
    """The qualified name the extension can know: code objects carry
    co_qualname from 3.11 on; on 3.10 only the function's own name."""
    return name if sys.version_info >= (3, 11) else name.rpartition(".")[2]


def child_env(**extra) -> dict:
    """Environment for a child Python: this build first on PYTHONPATH, and
    the test's daemon socket (where nothing listens, see _isolated), so a
    child never reaches a tphd the machine happens to run."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRACEPATCH_") or k == "TRACEPATCH_SOCKET"}
    parts = [PACKAGE_PARENT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.pop("NO_COLOR", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _default_sigint():
    # A program started from a shell without job control (nohup, a
    # background job of a script) inherits SIGINT ignored, and Python then
    # never raises KeyboardInterrupt: children start as from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_python(args, cwd=None, env=None, stdin=None, timeout=120):
    """Run ``python args...`` with this build importable; returns CompletedProcess."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env or child_env(),
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_default_sigint)


@pytest.fixture
def live_frames(monkeypatch):
    """tracepatch.frames as if a tphd took frames, with no sender: what the
    frame calls record stays in the returned list (name, start, dur[, id])."""
    from tracepatch import frames

    pending: list = []
    monkeypatch.setattr(frames, "_live", True)
    monkeypatch.setattr(frames, "_started", True)
    monkeypatch.setattr(frames, "_pending", pending)
    monkeypatch.setattr(frames, "_counts", {"sent": 0, "dropped": 0, "cycles": 0})
    return pending
