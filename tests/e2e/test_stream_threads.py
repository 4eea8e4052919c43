"""Issue #9 through tphd: a program with two worker threads under
trace(threads=True), each repeating (parse, price), is stored by tphd, and
`tph tree ID` shows a line per worker thread naming it and the repeated
sequence folded into one line, as t.tree() does in the process."""

import json
import re

import pytest

from streamlib import daemon_env, needs_binaries, needs_extension, run_script, tree
from tphlib import tph

pytestmark = [needs_binaries, needs_extension]

_DUR = re.compile(r"\d+(?:\.\d+)?(?:ns|µs|ms|s)\b")

WORKERS = '''
import threading

def parse(x):
    return x

def price(x):
    return x * 2

def worker(n):
    for i in range(4):
        parse(i)
        price(i)
    return n

threads = [threading.Thread(target=worker, args=(k,)) for k in (1, 2)]
with trace(label="workers", threads=True, ignore_modules=["threading", "_weakrefset"]) as t:
    for th in threads:
        th.start()
        th.join()
    parse(9)
url = t.url  # waits for the ACK
dump(facts(t, tree=t.tree(), names=[th.name for th in threads]))
'''


@pytest.fixture
def env(tmp_path):
    with daemon_env(tmp_path) as (_, e):
        yield e


def test_tph_tree_shows_thread_lines_and_folded_sequences(tmp_path, env):
    r = run_script(tmp_path, WORKERS, env)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert f["state"] == "acked" and f["calls"] == 19
    full = tree(env, f["trace_id"])
    assert full == f["tree"] + "\n"
    shown = full.split("\n\n", 1)[1]  # below the stats header
    n1, n2 = f["names"]
    seq = "[__main__.parse, __main__.price]  [×4]  [T total, avg T]"
    pos = "[×4]  [T total, avg T, min T, max T]"
    assert _DUR.sub("T", shown).splitlines() == [
        f"├── thread {n1}  [9 calls, T]",
        "│   └── __main__.worker(n=1) -> 1  [T]",
        f"│       └── {seq}",
        f"│           ├── __main__.parse(...)  {pos}",
        f"│           └── __main__.price(...)  {pos}",
        f"├── thread {n2}  [9 calls, T]",
        "│   └── __main__.worker(n=2) -> 2  [T]",
        f"│       └── {seq}",
        f"│           ├── __main__.parse(...)  {pos}",
        f"│           └── __main__.price(...)  {pos}",
        "└── __main__.parse(x=9) -> 9  [T]",
    ]
    # The folded JSON says the same: names, and the sequence on its first group.
    j = tph("tree", "--json", f["trace_id"], env=env)
    assert (j.returncode, j.stderr) == (0, "")
    doc = json.loads(j.stdout)
    assert {d["thread"]: d["name"] for d in doc["threads"]}.items() >= {1: n1, 2: n2}.items()
    w1 = doc["trace"][0]
    assert (w1["name"], w1["thread"]) == ("worker", 1)
    assert [(c["name"], c["count"], c.get("sequence")) for c in w1["children"]] == \
        [("parse", 4, 2), ("price", 4, None)]
