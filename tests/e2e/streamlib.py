"""Helpers for the streaming tests (test_stream_*.py): run a script that uses
the real tracepatch extension in a real interpreter, against a real tphd on a
temporary socket (tphlib.Daemon), and read what it reports.

Interpreters:
- the main one is the interpreter running pytest, with the extension found on
  its PYTHONPATH (deploy/check.sh runs the e2e tests with
  PYTHONPATH=$TRACEPATCH_BUILD/client_ext);
- a Python 3.12 build (sys.monitoring hooks) comes from
  $TRACEPATCH_BUILD_PY312 (a build directory configured with
  -Dpython=<a 3.12 interpreter>, e.g. check.sh's $builddir/py-3.12.1), else
  the first $TRACEPATCH_BUILD/py-3.12.* directory; its interpreter from
  $TRACEPATCH_PY312, else the one that build was configured for, else
  pyenv's 3.12.*. Tests that need it skip, saying which, when it is absent.
"""

import glob
import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tphlib import BUILD, DEMO_APP, TPH, TPHD, Daemon, base_env, tph

needs_binaries = pytest.mark.skipif(not (TPH.exists() and TPHD.exists()),
                                    reason=f"{TPHD} or {TPH} not built")


def _importable(python, pythonpath):
    probe = "import tracepatch._tracepatch as n; assert hasattr(n.Session, 'upload')"
    env = dict(os.environ, PYTHONPATH=pythonpath)
    try:
        return subprocess.run([python, "-c", probe], env=env, capture_output=True,
                              timeout=60).returncode == 0
    except OSError:
        return False


MAIN_PYTHON = sys.executable
MAIN_PYTHONPATH = os.environ.get("PYTHONPATH", str(BUILD / "client_ext"))
MAIN_READY = _importable(MAIN_PYTHON, MAIN_PYTHONPATH)

needs_extension = pytest.mark.skipif(
    not MAIN_READY, reason="the tracepatch extension with Session.upload is not importable "
    "here (run with PYTHONPATH=<build>/client_ext)")


def _configured_python(build):
    """The interpreter a meson build directory was configured with (-Dpython)."""
    try:
        opts = json.loads((build / "meson-info" / "intro-buildoptions.json").read_text())
    except (OSError, ValueError):
        return None
    for o in opts:
        if o.get("name") == "python" and os.path.isabs(str(o.get("value"))):
            return o["value"]
    return None


def find_py312():
    """(python, pythonpath) of a 3.12 build, or (None, reason)."""
    build = os.environ.get("TRACEPATCH_BUILD_PY312")
    if build:
        build = Path(build)
    else:
        found = sorted(glob.glob(str(BUILD / "py-3.12.*")))
        if not found:
            return None, ("no Python 3.12 build: set TRACEPATCH_BUILD_PY312 to a build "
                          "directory configured with -Dpython=<python3.12>")
        build = Path(found[0])
    python = os.environ.get("TRACEPATCH_PY312") or _configured_python(build)
    if not python:
        pyroot = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        cands = sorted(glob.glob(os.path.join(pyroot, "versions", "3.12.*", "bin", "python3")))
        python = cands[0] if cands else None
    if not python:
        return None, "no Python 3.12 interpreter: set TRACEPATCH_PY312"
    pythonpath = f"{build / 'client_ext'}:/usr/lib/python3/dist-packages"
    if not _importable(python, pythonpath):
        return None, f"{build}/client_ext does not import under {python} (not built?)"
    return python, pythonpath


PRELUDE = '''
import json, os, sys, time, warnings
from tracepatch import trace
from tracepatch import _tracepatch
OUT = sys.argv[1]

''' + DEMO_APP + '''
def facts(t, **more):
    d = {"trace_id": t.trace_id, "label": t.label, "calls": t.call_count,
         "dropped": t.dropped, "errors": t.errors, "state": t.upload_state,
         "cache": str(t.cache_path) if t.cache_path else None, "pid": os.getpid(),
         "py": "%d.%d.%d" % sys.version_info[:3]}
    d.update(more)
    return d

def dump(obj):
    with open(OUT, "w") as fh:
        json.dump(obj, fh)
'''


def run_script(tmp_path, body, env, python=None, pythonpath=None, timeout=60, name="app.py",
               wait=True, args=()):
    """Runs PRELUDE + body under python in tmp_path/work (a directory with no
    config file); the script's dump() lands in the returned result's .out
    (parsed), its stdout/stderr in .stdout/.stderr. With wait=False returns
    (Popen, out_path) instead."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    script = work / name
    script.write_text(PRELUDE + textwrap.dedent(body))
    out = work / (name + ".json")
    env = dict(env)
    env["PYTHONPATH"] = pythonpath or MAIN_PYTHONPATH
    cmd = [python or MAIN_PYTHON, str(script), str(out), *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True), out
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    r.out = json.loads(out.read_text()) if out.exists() else None
    return r


def client_env(tmp_path, socket=None):
    """base_env plus TRACEPATCH_SOCKET (a path where nothing listens when
    socket is None, so no real daemon of the machine is ever reached)."""
    env = base_env(tmp_path)
    env["TRACEPATCH_SOCKET"] = str(socket or tmp_path / "nobody-listens.sock")
    return env


def logs(env):
    """`tph logs --json` as a list of summaries, newest first."""
    r = tph("--json", "logs", "--limit", "1000", env=env)
    assert (r.returncode, r.stderr) == (0, ""), r
    data = json.loads(r.stdout)
    return data["traces"]


def tree(env, trace_id, *flags):
    r = tph("tree", *flags, trace_id, env=env)
    assert (r.returncode, r.stderr) == (0, ""), r
    return r.stdout


def start_daemon(tmp_path, args=("--no-http",)):
    """A real tphd (tphlib.Daemon waits until it accepts connections)."""
    return Daemon(tmp_path, list(args))


@contextlib.contextmanager
def daemon_env(tmp_path, args=("--no-http",)):
    """A real tphd for one test and the client environment that reaches it:
    yields (daemon, env) and stops the daemon however the block ends."""
    d = start_daemon(tmp_path, args)
    try:
        yield d, client_env(tmp_path, d.socket)
    finally:
        d.stop()
