"""No test leaves a tphd behind, pass or fail.

Every tphd a test starts is a child of this pytest process (tphlib.Daemon,
tphd_wire.Daemon, the HTTP tests' WebDaemon, or a plain subprocess). After
each test, the tphd children that appeared during it and still run are
killed and reaped; daemons of module-scoped fixtures were started before the
test and are left to their fixture's teardown.
"""
import os
import signal
import time

import pytest

import tphd_wire


def _tphd_children():
    """pids of running (not zombie) tphd processes whose parent is us."""
    me = os.getpid()
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        state, ppid = stat[stat.rfind(")") + 2:].split()[:2]
        if comm == "tphd" and int(ppid) == me and state != "Z":
            found.add(int(name))
    return found


def kill_tphd(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by its Popen meanwhile
                break
            if done:
                break
            time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_tphd_left_running(request):
    before = _tphd_children()
    yield
    left = _tphd_children() - before
    if left:
        kill_tphd(left)
        request.node.add_report_section(
            "teardown", "tphd", f"killed {len(left)} tphd left running: pids {sorted(left)}")


def pytest_sessionfinish(session, exitstatus):
    kill_tphd(_tphd_children())


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path_factory, monkeypatch):
    """Each test, and every program it starts, works in an empty directory of
    its own: a trace a child saves (./.tracepatch/traces, when no tphd took
    it) never lands in the checkout, where `tph logs` and `tph clean`, which
    read ./.tracepatch, would see it in later tests."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _no_wire_daemon_left_behind():
    """The tphd_wire daemons a test started are gone after it, pass or fail
    (a module's daemon, started before the test, lives on)."""
    before = list(tphd_wire._running)
    yield
    tphd_wire.stop_started_since(before)


@pytest.fixture
def tphd(tmp_path):
    """A real tphd on a socket and database in tmp_path, stopped cleanly
    (SIGTERM, exit 0, nothing on stderr) after the test."""
    if not os.path.exists(tphd_wire.TPHD):
        pytest.skip(f"{tphd_wire.TPHD} not built")
    d = tphd_wire.Daemon(tphd_wire.TPHD, tmp_path).start()
    yield d
    tphd_wire.assert_clean_stop(d)
