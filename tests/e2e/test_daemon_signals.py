"""tphd and signals: every signal whose default action would kill it is a
logged clean stop (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPWR, SIGXCPU) or a
logged no-op (SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO,
SIGSTKFLT, SIGRTMIN..SIGRTMAX); SIGPIPE and SIGXFSZ are ignored; the fault
signals keep their default. Handlers are installed before tphd accepts its
first connection."""
import os
import signal
import socket
import subprocess
import time

import pytest

import tphd_wire
from tphd_wire import TPHD, Daemon, assert_clean_stop, simple_trace

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")


def tid(n):
    return f"5{n:031x}"


def open_trace(d, n):
    """A trace that has begun and has events but no END."""
    c = d.connect()
    simple_trace(c, tid(n), end=False)
    # A query on the same connection is answered after the frames before it.
    c.qjson("list")
    return c


@pytest.mark.parametrize("sig,name", [(signal.SIGHUP, "Hangup"), (signal.SIGQUIT, "Quit"),
                                      (signal.SIGPWR, "Power failure"),
                                      (signal.SIGXCPU, "CPU time limit exceeded")])
def test_hangup_and_quit_stop_cleanly_with_a_log_line(tmp_path, sig, name):
    d = Daemon(TPHD, tmp_path).start()
    c = open_trace(d, 1)
    assert d.stop(sig=sig, timeout=20) == 0, d.read_log()
    c.close()
    log = d.read_log()
    assert f"tphd: {name}: stopping\n" in log
    assert log.endswith("tphd: stopped\n"), log
    # A clean stop marks the open trace truncated itself: the next start finds
    # nothing left open by a crash.
    d.start()
    assert_clean_stop(d)
    second_start = d.read_log()[len(log):]
    assert "left open by a crash" not in second_start, second_start


@pytest.mark.parametrize("sig,name", [(signal.SIGUSR1, "User defined signal 1"),
                                      (signal.SIGUSR2, "User defined signal 2"),
                                      (signal.SIGALRM, "Alarm clock")])
def test_user_and_alarm_signals_are_logged_and_ignored(tmp_path, sig, name):
    d = Daemon(TPHD, tmp_path).start()
    d.proc.send_signal(sig)
    tphd_wire.wait_for(lambda: "ignored" in d.read_log(), timeout=10)
    assert d.proc.poll() is None
    with d.connect() as c:
        simple_trace(c, tid(2))
        assert c.recv()[0] == tphd_wire.ACK
    assert f"tphd: {name}: ignored ({STOPPERS})\n" in d.read_log()
    assert_clean_stop(d)


STOPPERS = "only SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPWR and SIGXCPU stop tphd"
# Every other signal whose default action ends a process, but for the
# faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS) and
# SIGKILL: nothing in tphd uses them, so one that arrives is logged and
# changes nothing.
IGNORED = ([signal.SIGVTALRM, signal.SIGPROF, signal.SIGIO, signal.SIGSTKFLT]
           + list(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)))


def test_every_other_fatal_signal_is_logged_and_ignored(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    for sig in IGNORED:
        line = f"tphd: {signal.strsignal(sig)}: ignored ({STOPPERS})\n"
        d.proc.send_signal(sig)
        assert tphd_wire.wait_for(lambda: line in d.read_log(), timeout=10), (sig, d.read_log())
        assert d.proc.poll() is None, (sig, d.read_log())
    # SIGPOLL is SIGIO; SIGXFSZ is ignored without a line (a write past the
    # file size limit fails with EFBIG instead, and the log may be that file).
    assert signal.SIGPOLL == signal.SIGIO
    d.proc.send_signal(signal.SIGXFSZ)
    with d.connect() as c:
        simple_trace(c, tid(3))
        assert c.recv()[0] == tphd_wire.ACK
    assert d.proc.poll() is None
    log = d.read_log()
    assert log.count(": ignored (") == len(IGNORED), log
    assert_clean_stop(d)


@pytest.mark.parametrize("sig", [signal.SIGTRAP, signal.SIGSYS])
def test_trap_and_bad_system_call_keep_their_default_action(tmp_path, sig):
    # Like SIGSEGV, these report a fault in tphd itself (a breakpoint, a
    # system call a seccomp filter forbids): handling one on the loop would
    # return to the faulting instruction. They end tphd with a core dump,
    # which systemd and the shell report.
    d = Daemon(TPHD, tmp_path).start()
    d.proc.send_signal(sig)
    assert d.proc.wait(20) == -sig
    d.start()
    assert "left open by a crash" not in d.read_log()
    assert_clean_stop(d)


def test_sigpipe_from_a_client_that_hung_up_is_harmless(tmp_path):
    d = Daemon(TPHD, tmp_path).start()
    for n in range(20):
        c = d.connect()
        c.qid += 1
        # Ask for something and hang up before the reply is written.
        c.send(tphd_wire.QUERY, {"id": c.qid, "op": "list", "args": "{}"})
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        c.close()
    with d.connect() as c:
        assert c.qjson("list") is not None
    assert_clean_stop(d)


def test_sigterm_as_soon_as_it_accepts_stops_cleanly(tmp_path):
    # The first connection is accepted while the HTTP server may still be
    # starting: a SIGTERM then must already find its handler.
    for n in range(8):
        run = tmp_path / f"r{n}"
        d = Daemon(TPHD, run)
        d.args = lambda d=d: [d.binary, "--socket", d.sock, "--db", d.db, "--http",
                              "127.0.0.1:0"] + d.extra
        os.makedirs(os.path.dirname(d.sock), mode=0o700)
        d.start(wait=False)
        deadline = time.monotonic() + 20
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(d.sock)
                break
            except OSError:
                assert d.proc.poll() is None and time.monotonic() < deadline, d.read_log()
            finally:
                s.close()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(20) == 0, d.read_log()
