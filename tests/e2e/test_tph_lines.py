"""tph tree --lines FILE prints a trace file's lines= data as the extension's
t.tree(lines=True) does; with an ID it asks tphd (test_tphd_lines.py)."""

import json

import pytest

from tphlib import base_env, needs_tph, tph

tracepatch = pytest.importorskip("tracepatch")

pytestmark = needs_tph


def helper(x):
    return x * 2


def work(n):
    total = 0
    for i in range(n):
        total += helper(i)
    return total


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path)


@pytest.fixture
def traced(tmp_path):
    with tracepatch.trace(lines=[work], cache=False, daemon="off") as t:
        work(3)
        helper(1)
    path = tmp_path / "lines.json"
    t.to_json(str(path))
    return t, path


def test_tree_lines_of_a_file_reads_as_the_extension_prints_it(env, traced):
    t, path = traced
    r = tph("tree", "--lines", str(path), env=env)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == t.tree(lines=True, color=False) + "\n"
    w = work.__code__.co_firstlineno
    assert r.stdout.split("\n\n")[-1] == (
        f"lines of {__name__}.work(n=3) [call 0]\n"
        f"  {w + 1} │   1× │ total = 0   # total=0\n"
        f"  {w + 2} │   4× │ for i in range(n):   # i=0, 1, 2, 2  range=<class 'range'>, "
        "<class 'range'>, <class 'range'>, <class 'range'>  n=3, 3, 3, 3\n"
        f"  {w + 3} │   3× │ total += helper(i)   # total=0, 2, 6  helper=<function helper>, "
        "<function helper>, <function helper>  i=0, 1, 2\n"
        f"  {w + 4} │   1× │ return total   # total=6\n")


def test_tree_lines_from_standard_input(env, traced):
    t, path = traced
    r = tph("tree", "--lines", "-", env=env, input=path.read_text())
    assert (r.returncode, r.stdout) == (0, t.tree(lines=True, color=False) + "\n")


def test_tree_without_lines_flag_or_data_is_the_plain_tree(env, traced, tmp_path):
    t, path = traced
    plain = tph("tree", str(path), env=env)
    assert plain.stdout == t.tree(color=False) + "\n"
    data = json.loads(path.read_text())
    del data["lines"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(data))
    assert tph("tree", "--lines", str(bare), env=env).stdout == plain.stdout


def test_tree_lines_of_an_id_asks_tphd(env, tmp_path):
    r = tph("tree", "--lines", "0123abcd", env=env)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"tph: no tphd at {tmp_path}/run/tracepatch/tphd.sock (start one with "
                        "`tphd &` or `systemctl --user start tphd`)\n")
