"""``python -m tracepatch run``: whole programs under a trace, as real processes."""

import json
import textwrap
from pathlib import Path

from conftest import norm, run_python

PROG = textwrap.dedent("""\
    import sys

    def add(a, b):
        return a + b

    def main(argv):
        print("args:", argv[1:])
        print(add(1, 2))
        if "--fail" in argv:
            raise ValueError("boom")
        if "--exit" in argv:
            sys.exit(int(argv[argv.index("--exit") + 1]))
        if "--say" in argv:
            sys.exit("goodbye")
        return 0

    if __name__ == "__main__":
        main(sys.argv)
    """)

TREE = """\
└── __main__.<module>() -> None  [T]
    └── __main__.main(argv={argv}) -> 0  [T]
        └── __main__.add(a=1, b=2) -> 3  [T]"""


def write_prog():
    Path("prog.py").write_text(PROG)


def run(*args, stdin=None):
    return run_python(["-m", "tracepatch", "run", *args], stdin=stdin)


def test_success_keeps_stdout_and_prints_tree_on_stderr():
    write_prog()
    r = run("--no-header", "prog.py", "a", "b")
    assert r.returncode == 0
    assert r.stdout == "args: ['a', 'b']\n3\n"
    assert norm(r.stderr) == TREE.format(argv="['prog.py', 'a', 'b']")


def test_default_output_has_the_header_with_the_script_name_as_label():
    write_prog()
    r = run("prog.py")
    assert r.returncode == 0
    lines = norm(r.stderr).splitlines()
    assert lines[0] == "Trace: prog"
    assert lines[2] == "Recorded:     3 calls across 1 modules | Duration: T"
    assert lines[-3:] == TREE.format(argv="['prog.py']").splitlines()


def test_sys_exit_code_is_kept():
    write_prog()
    r = run("--no-header", "prog.py", "--exit", "3")
    assert r.returncode == 3
    assert r.stdout == "args: ['--exit', '3']\n3\n"
    assert norm(r.stderr).splitlines()[1] == (
        "    └── __main__.main(argv=['prog.py', '--exit', '3']) !! SystemExit: 3  [T]")


def test_sys_exit_with_a_message_prints_it_and_exits_1():
    write_prog()
    r = run("--no-header", "prog.py", "--say")
    assert r.returncode == 1
    assert r.stderr.startswith("goodbye\n")


def test_exception_prints_the_program_traceback_and_exits_1():
    write_prog()
    r = run("--no-header", "prog.py", "--fail")
    assert r.returncode == 1
    assert r.stdout == "args: ['--fail']\n3\n"
    err = r.stderr
    traceback_text, tree = err[:err.index("└──")], err[err.index("└──"):]
    prog = str(Path("prog.py").resolve())
    assert traceback_text.startswith(
        "Traceback (most recent call last):\n"
        f'  File "{prog}", line 18, in <module>\n'
        "    main(sys.argv)\n")
    assert traceback_text.endswith("ValueError: boom\n")
    assert "tracepatch" not in traceback_text
    assert norm(tree).splitlines()[:2] == [
        "└── __main__.<module>() !! ValueError: boom  [T]",
        "    └── __main__.main(argv=['prog.py', '--fail']) !! ValueError: boom  [T]",
    ]


def test_program_arguments_that_look_like_options_are_passed_through():
    write_prog()
    r = run("--no-header", "prog.py", "-o", "x", "--max-calls", "1", "-m", "y")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == "args: ['-o', 'x', '--max-calls', '1', '-m', 'y']"
    assert not Path("x").exists()


def test_stdin_is_the_programs():
    Path("cat.py").write_text(textwrap.dedent("""\
        import sys

        def shout(text):
            return text.upper()

        sys.stdout.write(shout(sys.stdin.read()))
        """))
    r = run("--no-header", "cat.py", stdin="hello\nworld\n")
    assert (r.returncode, r.stdout) == (0, "HELLO\nWORLD\n")
    assert "__main__.shout(text='hello\\nworld\\n') -> 'HELLO\\nWORLD\\n'" in r.stderr


def test_output_file_receives_the_tree():
    write_prog()
    r = run("--no-header", "-o", "tree.txt", "prog.py")
    assert (r.returncode, r.stdout, r.stderr) == (0, "args: []\n3\n", "")
    assert norm(Path("tree.txt").read_text()) == TREE.format(argv="['prog.py']")


def test_json_output_and_tree_options():
    write_prog()
    r = run("--no-header", "--no-args", "--no-returns", "--json", "t.json", "prog.py")
    assert r.returncode == 0
    assert norm(r.stderr) == ("└── __main__.<module>()  [T]\n"
                              "    └── __main__.main()  [T]\n"
                              "        └── __main__.add()  [T]")
    data = json.loads(Path("t.json").read_text())
    assert (data["label"], data["call_count"]) == ("prog", 3)


def test_max_calls_option_limits_the_trace():
    write_prog()
    r = run("--no-header", "--max-calls", "2", "prog.py")
    assert r.returncode == 0
    assert "(trace limited: max_calls; 2 calls recorded)" in r.stderr


def test_module_mode_runs_package_main_with_args():
    pkg = Path("mypkg")
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(textwrap.dedent("""\
        import sys

        def greet(name):
            return f"hi {name}"

        print(__name__, sys.argv[0].endswith("__main__.py"), sys.argv[1:])
        print(greet(sys.argv[1]))
        raise SystemExit(4)
        """))
    r = run("--no-header", "-m", "mypkg", "bob", "--x")
    assert r.returncode == 4
    assert r.stdout == "__main__ True ['bob', '--x']\nhi bob\n"
    assert norm(r.stderr).splitlines() == [
        "└── __main__.<module>() !! SystemExit: 4  [T]",
        "    └── __main__.greet(name='bob') -> 'hi bob'  [T]",
    ]


def test_script_directory_is_on_sys_path_and_file_is_absolute():
    sub = Path("app")
    sub.mkdir()
    (sub / "helper.py").write_text("def value():\n    return 41\n")
    (sub / "main.py").write_text(textwrap.dedent("""\
        import os
        import helper
        print(helper.value() + 1, os.path.isabs(__file__))
        """))
    # -S: no site-packages, whose import hooks (setuptools' _distutils_hack)
    # would be recorded as part of the program.
    r = run_python(["-S", "-m", "tracepatch", "run", "--no-header", "app/main.py"])
    assert (r.returncode, r.stdout) == (0, "42 True\n")
    # The import machinery is left out; the imported module's code is not.
    assert norm(r.stderr) == (
        "└── __main__.<module>() -> None  [T]\n"
        "    ├── helper.<module>() -> None  [T]\n"
        "    ├── helper.value() -> 41  [T]\n"
        "    └── posixpath.isabs(s='" + str(Path("app/main.py").resolve()) + "') -> True  [T]\n"
        "        └── posixpath._get_sep(path='" + str(Path("app/main.py").resolve())
        + "') -> '/'  [T]")
    r = run("--no-header", "--trace-imports", "app/main.py")
    assert "importlib._bootstrap._find_and_load(name='helper'" in r.stderr


def test_missing_script_and_module():
    r = run("nope.py")
    assert r.returncode == 2
    assert r.stderr == (f"tracepatch run: can't open file '{Path('nope.py').resolve()}': "
                        f"[Errno 2] No such file or directory\n")
    r = run("-m", "no_such_module_xyz")
    assert (r.returncode, r.stderr) == (1, "tracepatch run: No module named no_such_module_xyz\n")
    r = run("--no-cache")
    assert r.returncode == 2 and "give a SCRIPT to run, or -m MODULE" in r.stderr
    # With no arguments at all, run is tracepatch 1.0.0's test setup run,
    # which needs a config file (tests/e2e/test_compat_cli.py).
    r = run()
    assert r.returncode == 1
    assert r.stderr.startswith("tph run: no tracepatch configuration file found")


def test_help_texts():
    for args in ([], ["run"], ["config"], ["init"]):
        r = run_python(["-m", "tracepatch", *args, "--help"])
        assert r.returncode == 0, args
        assert r.stdout.startswith("usage: python -m tracepatch"), args
    r = run_python(["-m", "tracepatch", "run", "--help"])
    assert "(SCRIPT | -m MODULE) [args ...]" in r.stdout
    for option in ("--output", "--style", "--no-args", "--max-calls", "--filter", "--depth"):
        assert option in r.stdout
    r = run_python(["-m", "tracepatch", "--version"])
    assert r.stdout.startswith("tracepatch 2.")


PROBE = textwrap.dedent("""\
    import sys
    import __main__

    def depth(n=0):
        try:
            return depth(n + 1)
        except RecursionError:
            return n

    print("builtins", type(__builtins__).__name__, __builtins__.len("abc"))
    print("keys", sorted(vars(__main__)))
    print("name", __name__, "file", __file__, "package", __package__, "doc", __doc__)
    print("cached", getattr(__main__, "__cached__", "<unset>"))
    print("loader", type(__loader__).__name__, getattr(__loader__, "name", None),
          getattr(__loader__, "path", None))
    spec = __spec__
    print("spec", spec if spec is None else (spec.name, spec.origin, spec.parent,
                                             type(spec.loader).__name__, spec.cached))
    print("argv", sys.argv, "path0", sys.path[0])
    print("same main", sys.modules["__main__"] is __main__)
    print("room", depth(), file=sys.stderr)
    """)


def _room(stderr: str) -> int:
    assert stderr.startswith("room "), stderr
    return int(stderr.split()[1])


def _compare_with_plain(target_args):
    plain = run_python(target_args)
    traced = run("-o", "tree.txt", *target_args)
    assert plain.returncode == 0, plain.stderr
    assert (traced.returncode, traced.stdout) == (plain.returncode, plain.stdout)
    assert _room(traced.stderr) == _room(plain.stderr)
    assert Path("tree.txt").read_text().startswith("Trace: ")
    return plain.stdout


def test_script_sees_the_main_module_argv_and_recursion_room_of_a_plain_run():
    Path("probe.py").write_text(PROBE)
    out = _compare_with_plain(["probe.py", "a", "--b"])
    # What a plain run gives (the comparison above is the test; this pins it).
    assert "builtins module 3\n" in out
    assert "loader SourceFileLoader __main__ " in out and "spec None\n" in out


def test_module_sees_the_main_module_argv_and_recursion_room_of_a_plain_run():
    Path("pkg").mkdir()
    Path("pkg/__init__.py").write_text("")
    Path("pkg/__main__.py").write_text(PROBE)
    Path("flat.py").write_text(PROBE)
    out = _compare_with_plain(["-m", "pkg", "x"])
    assert "spec ('pkg.__main__', " in out
    _compare_with_plain(["-m", "flat", "y"])


def test_exception_traceback_is_byte_for_byte_the_plain_one():
    Path("bad.py").write_text("def f():\n    raise KeyError('k')\n\nf()\n")
    plain = run_python(["bad.py"])
    traced = run("-o", "tree.txt", "bad.py")
    assert plain.returncode == traced.returncode == 1
    assert traced.stderr == plain.stderr


CTRL_C = textwrap.dedent("""\
    import os, signal

    def wait():
        print("waiting", flush=True)
        os.kill(os.getpid(), signal.SIGINT)
        signal.pause()

    wait()
    """)


def test_ctrl_c_gives_the_programs_traceback_then_the_tree_and_exits_by_sigint():
    Path("intr.py").write_text(CTRL_C)
    plain = run_python(["intr.py"])
    traced = run("--no-header", "intr.py")
    assert plain.returncode == traced.returncode == -2  # killed by SIGINT, like Python
    assert traced.stdout == plain.stdout == "waiting\n"
    assert plain.stderr.startswith("Traceback (most recent call last):\n")
    assert traced.stderr.startswith(plain.stderr)
    tree = traced.stderr[len(plain.stderr):]
    lines = norm(tree).splitlines()
    assert lines[0] == "└── __main__.<module>() !! KeyboardInterrupt  [T]"
    assert lines[-1] == "    └── __main__.wait() !! KeyboardInterrupt  [T]"
    assert "runpy" not in traced.stderr and "tracepatch" not in traced.stderr


FORK = textwrap.dedent("""\
    import os

    def work(who):
        return who

    pid = os.fork()
    if pid == 0:
        work("child")
    else:
        os.waitpid(pid, 0)
        work("parent")
    """)


def test_a_forked_child_that_runs_to_the_end_prints_no_second_tree():
    Path("forks.py").write_text(FORK)
    r = run("--no-header", "forks.py")
    assert r.returncode == 0
    assert norm(r.stderr).count("__main__.<module>()") == 1
    assert "work(who='parent')" in r.stderr and "work(who='child')" not in r.stderr
