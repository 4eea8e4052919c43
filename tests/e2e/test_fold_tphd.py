"""Folding hides nothing, end to end: a real program's trace, recorded by the
real extension and stored by a real tphd, folds repeated calls and repeated
sibling sequences in `tph tree`, and every call of a group can still be found:
the HTTP search names the group and which of its calls matched, the members
API lists each call, `tph tree --no-fold` shows them one by one, and
`tph tree --filter` keeps a call that sits inside a folded sequence."""

import http.client
import json
import re

import pytest

from streamlib import daemon_env, needs_binaries, needs_extension, run_script, tree

pytestmark = [needs_binaries, needs_extension]

PROGRAM = '''
def echo(s):
    return s

def parse(s):
    return len(s)

def price(n):
    return n * 2

def handle():
    for s in ["line1", "line2", "line3"]:
        echo(s)
    for s in ["a", "bb", "ccc"]:
        price(parse(s))

with trace(label="fold-search") as t:
    handle()
dump(facts(t, url=t.url))
'''


class Api:
    def __init__(self, url):
        m = re.match(r"http://127\.0\.0\.1:(\d+)/t/[0-9a-f]+\?token=([0-9a-f]+)$", url)
        assert m, url
        self.port, self.token = int(m.group(1)), m.group(2)

    def json(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", path, headers={"Cookie": f"tp_token_{self.port}={self.token}"})
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == 200, (path, r.status, body[:300])
        return json.loads(body)


@pytest.fixture
def stored(tmp_path):
    with daemon_env(tmp_path, ["--http", "127.0.0.1:0"]) as (daemon, env):
        r = run_script(tmp_path, PROGRAM, env)
        assert (r.returncode, r.stderr) == (0, "")
        assert r.out["state"] == "acked"
        yield r.out["trace_id"], env, Api(r.out["url"])


def test_folded_calls_are_found_in_tph_and_the_api(stored):
    tid, env, api = stored
    lines = [re.sub(r"  \[[^]]*\d(ns|µs|ms|s)[^]]*\]$", "", line)
             for line in tree(env, tid).split("\n\n", 1)[1].splitlines()]
    assert lines == [
        "└── __main__.handle() -> None",
        "    ├── __main__.echo(...)  [×3]",
        "    └── [__main__.parse, __main__.price]  [×3]",
        "        ├── __main__.parse(...)  [×3]",
        "        └── __main__.price(...)  [×3]",
    ]
    unfolded = tree(env, tid, "--no-fold")
    assert "__main__.echo(s='line2') -> 'line2'" in unfolded
    assert unfolded.count("__main__.price(") == 3

    # The search names the group and which of its calls matched.
    found = api.json(f"/api/traces/{tid}/search?q=line2")
    assert found["total"] == 1
    (m,) = found["matches"]
    assert (m["calls"], m["calls_total"]) == ([1], 1)
    roots = api.json(f"/api/traces/{tid}/tree?depth=-1")["nodes"]
    group = next(k for k in roots[0]["kids"] if k["id"] == m["id"])
    assert (group["name"], group["count"], "folded" in group["flags"]) == ("echo", 3, True)
    members = api.json(f"/api/traces/{tid}/members?node={group['id']}")
    assert [(c["args"], c["ret"]) for c in members["calls"]] == [
        (f"s='line{i}'", f"'line{i}'") for i in (1, 2, 3)]
    # A call inside a folded sequence: price(n=3) is the third repetition.
    third = api.json(f"/api/traces/{tid}/search?q=n%3D3")
    assert [(api_m["calls"], api_m["calls_total"]) for api_m in third["matches"]] == [([2], 1)]

    # tph tree --filter keeps the calls of a folded sequence that match.
    kept = tree(env, tid, "--filter", "*.price")
    assert "__main__.price(...)  [×3]" in kept and "__main__.parse(" not in kept
