"""tph without a daemon: usage errors, help, version, the no-daemon message,
timeouts and broken daemons (a scripted fake), and the commands handed to
Python."""

import os
import socket
import stat
import subprocess
import time

import pytest

from tphlib import (
    NO_DAEMON_HINT,
    TPH,
    VERSION,
    DATA,
    FakeDaemon,
    base_env,
    frame,
    needs_tph,
    read_frame,
    tph,
    usage_error,
    usage_line,
)

pytestmark = needs_tph

COMMANDS = ["logs", "tree", "stats", "diff", "export", "open", "clean", "status", "import"]


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path)


def test_version(env):
    r = tph("--version", env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"tph {VERSION}\n", "")


def test_no_command_is_usage_error(env):
    r = tph(env=env)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == usage_error(None, "missing command")


def test_unknown_command_is_usage_error(env):
    r = tph("frobnicate", env=env)
    assert r.returncode == 2
    assert r.stderr == usage_error(None, "unknown command 'frobnicate'")


def test_unknown_global_option_is_usage_error(env):
    r = tph("--frob", "logs", env=env)
    assert r.returncode == 2
    assert r.stderr == usage_error(None, "unknown option '--frob'")


def test_global_help_lists_every_command(env):
    r = tph("--help", env=env)
    assert r.returncode == 0
    assert r.stdout.startswith(f"usage: {usage_line(None)}\n")
    for cmd in COMMANDS + ["run", "init", "config", "help"]:
        assert f"\n  {cmd:<8} " in r.stdout
    assert tph("help", env=env).stdout == r.stdout
    assert tph("-h", env=env).stdout == r.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_flag_and_help_command_agree(env, cmd):
    a = tph(cmd, "--help", env=env)
    b = tph("help", cmd, env=env)
    assert a.returncode == 0 and b.returncode == 0
    assert a.stdout == b.stdout
    assert a.stdout.startswith(f"usage: {usage_line(cmd)}\n\n")
    assert "  --json " in a.stdout and "  -h, --help " in a.stdout


def test_tree_help_lists_tracepatch_flags(env):
    out = tph("tree", "-h", env=env).stdout
    for flag in ["--color[=WHEN]", "--self-time", "--style STYLE", "--no-args", "--no-return",
                 "--show-source", "--filter PATTERN", "--depth N", "--no-fold", "--no-stats"]:
        assert f"  {flag} " in out


def test_help_unknown_command_is_usage_error(env):
    r = tph("help", "nope", env=env)
    assert r.returncode == 2
    assert r.stderr == "tph: unknown command 'nope'\nusage: tph help [COMMAND]\n" \
                       "Try 'tph help help' for more.\n"


@pytest.mark.parametrize("args,cmd,message", [
    (["tree", "--bogus", "x.json"], "tree", "unknown option '--bogus'"),
    (["tree", "-q", "x.json"], "tree", "unknown option '-q'"),
    (["tree"], "tree", "missing trace ID or FILE"),
    (["tree", "a.json", "b.json"], "tree", "unexpected argument 'b.json'"),
    (["tree", "x.json", "--depth"], "tree", "option '--depth' needs an argument"),
    (["tree", "--depth", "x", "a.json"], "tree", "invalid --depth 'x' (expected a number of levels)"),
    (["tree", "--depth=-1", "a.json"], "tree", "invalid --depth '-1' (expected a number of levels)"),
    (["tree", "--style", "fancy", "a.json"], "tree", "invalid --style 'fancy' (unicode, ascii or ansi)"),
    (["tree", "--color=sometimes", "a.json"], "tree",
     "invalid --color 'sometimes' (always, auto or never)"),
    (["tree", "--no-args=1", "a.json"], "tree", "option '--no-args' takes no argument"),
    (["logs", "extra"], "logs", "unexpected argument 'extra'"),
    (["logs", "--since", "yesterday"], "logs", "invalid --since 'yesterday' (use e.g. 30m, 1h, 7d)"),
    (["logs", "--limit", "0"], "logs", "invalid --limit '0' (expected 1 to 10000)"),
    (["logs", "--limit", "10001"], "logs", "invalid --limit '10001' (expected 1 to 10000)"),
    (["logs", "--offset", "-3"], "logs", "invalid --offset '-3' (expected a count)"),
    (["clean"], "clean", "say which traces to delete: --older-than DUR, --traces or --all"),
    (["clean", "--older-than", "7x"], "clean", "invalid --older-than '7x' (use e.g. 12h, 7d, 2w)"),
    (["clean", "--older-than", "7d", "--all"], "clean", "--older-than, --traces and --all exclude each other"),
    (["export", "a.json", "--format", "xml"], "export",
     "invalid --format 'xml' (json, csv, html, chrome, folded, flamegraph or otlp-json)"),
    (["export", "a.json", "-o"], "export", "option '-o' needs an argument"),
    (["diff", "a.json"], "diff", "missing two traces to compare (IDs or files)"),
    (["diff", "a.json", "b.json", "c.json"], "diff", "unexpected argument 'c.json'"),
    (["stats"], "stats", "missing trace ID or FILE"),
    (["open"], "open", "missing trace ID"),
    (["open", "abc", "def"], "open", "unexpected argument 'def'"),
    (["status", "now"], "status", "unexpected argument 'now'"),
    (["import"], "import", "missing FILE"),
    (["import", "a.json", "b.json"], "import",
     "unexpected argument 'b.json' (import one file at a time)"),
])
def test_bad_command_line_exits_2_with_usage(env, args, cmd, message):
    r = tph(*args, env=env)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == usage_error(cmd, message)


def test_bad_timeout_environment_is_usage_error(env):
    env["TPH_TIMEOUT"] = "soon"
    r = tph("status", env=env)
    assert r.returncode == 2
    assert r.stderr == usage_error(None, "TPH_TIMEOUT='soon' is not a number of seconds")


# ---- no daemon -----------------------------------------------------------------


# logs and clean also work on local trace files: see test_compat_cli.py.
@pytest.mark.parametrize("args", [["status"], ["tree", "3f2a"], ["stats", "3f2a"],
                                  ["diff", "3f2a", "9b1c"], ["export", "3f2a"], ["open", "3f2a"],
                                  ["clean", "--all", "--daemon"],
                                  ["import", str(DATA / "small.json")] ])
def test_no_daemon_is_one_line_and_exit_1(env, tmp_path, args):
    path = tmp_path / "run" / "tracepatch" / "tphd.sock"
    r = tph(*args, env=env, cwd=tmp_path)  # clean --all also removes ./.tracepatch
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == f"tph: no tphd at {path} {NO_DAEMON_HINT}\n"


def test_no_daemon_names_socket_option(env, tmp_path):
    path = tmp_path / "elsewhere.sock"
    r = tph("--socket", path, "status", env=env)
    assert (r.returncode, r.stderr) == (1, f"tph: no tphd at {path} {NO_DAEMON_HINT}\n")
    r = tph("status", "--socket", path, env=env)
    assert (r.returncode, r.stderr) == (1, f"tph: no tphd at {path} {NO_DAEMON_HINT}\n")
    r = tph("logs", "--socket", path, env=env)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == f"no traces: no tphd at {path}, and no trace files in ./.tracepatch/traces/\n"


def test_no_daemon_names_environment_socket(env, tmp_path):
    env["TRACEPATCH_SOCKET"] = str(tmp_path / "env.sock")
    r = tph("status", env=env)
    assert (r.returncode, r.stderr) == (1, f"tph: no tphd at {tmp_path / 'env.sock'} {NO_DAEMON_HINT}\n")


def test_no_daemon_without_runtime_dir_uses_tmp(env):
    # A user tphd the machine runs at that default path (the quickstart's)
    # is hidden under an empty tmpfs in a private mount namespace.
    del env["XDG_RUNTIME_DIR"]
    d = f"/tmp/tracepatch-{os.getuid()}"
    path = f"{d}/tphd.sock"
    hide = f'mount -t tmpfs none {d} && ' if os.path.isdir(d) else ""
    r = subprocess.run(["unshare", "-m", "sh", "-c", hide + 'exec "$0" status', str(TPH)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (1, f"tph: no tphd at {path} {NO_DAEMON_HINT}\n")


def test_stale_socket_file_is_no_daemon(env, tmp_path):
    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # bound, never listening: connect() is refused
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    r = tph("--socket", path, "status", env=env)
    assert (r.returncode, r.stderr) == (1, f"tph: no tphd at {path} {NO_DAEMON_HINT}\n")


# ---- broken daemons ---------------------------------------------------------------


def silent(fake, conn):
    read_frame(conn)  # HELLO, then nothing


def hang_up(fake, conn):
    conn.close()


def refuse_version(fake, conn):
    fake.hellos.append(read_frame(conn))
    conn.sendall(frame(8, {"code": -4006, "name": "VERSION",
                           "msg": "client speaks protocol 1, tphd speaks 2"}))
    conn.close()


def test_silent_daemon_times_out(env, tmp_path):
    path = tmp_path / "silent.sock"
    fake = FakeDaemon(path, silent)
    env["TPH_TIMEOUT"] = "0.3"
    t0 = time.monotonic()
    try:
        r = tph("--socket", path, "status", env=env)
    finally:
        fake.close()
    elapsed = time.monotonic() - t0
    # tph gave up after its timeout, not when the fake closed the socket.
    assert 0.3 <= elapsed < 5, elapsed
    assert r.returncode == 1
    assert r.stderr == f"tph: tphd at {path} did not answer within 0.3 s\n"


def test_daemon_hanging_up_is_reported(env, tmp_path):
    path = tmp_path / "hangup.sock"
    fake = FakeDaemon(path, hang_up)
    try:
        r = tph("--socket", path, "status", env=env)
    finally:
        fake.close()
    assert r.returncode == 1
    assert r.stderr == f"tph: cannot talk to tphd at {path}: tphd closed the connection\n"


def test_daemon_error_in_handshake_is_reported(env, tmp_path):
    path = tmp_path / "v2.sock"
    fake = FakeDaemon(path, refuse_version)
    try:
        r = tph("--socket", path, "logs", env=env)
    finally:
        fake.close()
    assert r.returncode == 1
    assert r.stderr == (f"tph: cannot talk to tphd at {path}: "
                        "tphd: client speaks protocol 1, tphd speaks 2\n")
    # What tph sent first, and what the ERROR answered, was its HELLO.
    ((msg_type, body),) = fake.hellos
    assert (msg_type, body["magic"], body["v"]) == (1, "TPH1", 1)


def test_hello_identifies_tph(env, tmp_path):
    path = tmp_path / "hello.sock"
    seen = []

    def record(fake, conn):
        seen.append(read_frame(conn))
        conn.close()

    fake = FakeDaemon(path, record)
    try:
        tph("--socket", path, "status", env=env)
    finally:
        fake.close()
    msg_type, body = seen[0]
    assert msg_type == 1
    assert body["magic"] == "TPH1"
    assert body["v"] == 1
    assert body["caps"] == 2
    assert body["client"] == f"tph/{VERSION}"
    assert isinstance(body["pid"], int) and body["pid"] > 0


# ---- run, init, config: handed to Python --------------------------------------------


@pytest.fixture
def fake_python(tmp_path):
    script = tmp_path / "fakepython"
    script.write_text('#!/bin/sh\nprintf "%s|" "$@"\necho\necho "socket=$TRACEPATCH_SOCKET"\n'
                      "exit 7\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("args", [["run", "app.py", "--port", "80"],
                                  ["run", "-m", "http.server"],
                                  ["init"],
                                  ["config", "--validate"],
                                  ["run", "--help"]])
def test_python_commands_exec_tracepatch(env, fake_python, args):
    env["TRACEPATCH_PYTHON"] = str(fake_python)
    r = tph(*args, env=env)
    assert r.returncode == 7  # the child's status: tph exec'd it
    assert r.stdout == "-m|tracepatch|" + "".join(a + "|" for a in args) + "\nsocket=\n"
    assert r.stderr == ""


def test_python_commands_pass_socket_on(env, fake_python, tmp_path):
    env["TRACEPATCH_PYTHON"] = str(fake_python)
    r = tph("--socket", tmp_path / "s.sock", "run", "app.py", env=env)
    assert r.stdout == f"-m|tracepatch|run|app.py|\nsocket={tmp_path / 's.sock'}\n"


def test_python_missing_interpreter_fails(env):
    env["TRACEPATCH_PYTHON"] = "/nonexistent/python9"
    r = tph("init", env=env)
    assert r.returncode == 1
    assert r.stderr == ("tph: cannot run /nonexistent/python9: No such file or directory "
                        "(set TRACEPATCH_PYTHON to a Python with tracepatch installed)\n")


@pytest.mark.parametrize("cmd", ["setup", "disable"])
def test_the_1_0_aliases_take_help_too(env, cmd):
    a = tph(cmd, "--help", env=env)
    assert (a.returncode, a.stderr) == (0, "")
    assert a.stdout == tph("help", cmd, env=env).stdout
    assert a.stdout.startswith(f"usage: tph {cmd}\n\n")
    assert tph(cmd, "-h", env=env).stdout == a.stdout
