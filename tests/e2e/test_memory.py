"""trace(track_memory=True) end to end: the memory deltas survive a JSON file
read by `tph tree FILE`, an upload to a real tphd (MEMORY records in its
stored event chunks), and `tph import` of the file (tphd's rebuild writes
them back as events)."""

import json
import re
import subprocess
import sys

from tphlib import BUILD, Daemon, base_env, needs_tph, needs_tphd, tph

pytestmark = [needs_tph, needs_tphd]

SCRIPT = r'''
import json, sys
from tracepatch import trace
def keeps():
    return bytearray(1_000_000)
def frees():
    x = bytearray(1_000_000)
    del x
def handler():
    kept = keeps()
    frees()
    return len(kept)
with trace(label="mem", track_memory=True, daemon=sys.argv[2], cache=False) as t:
    handler()
t.to_json(sys.argv[1])
print(json.dumps({"id": t.trace_id, "tree": t.tree()}))
'''

KEEPS = re.compile(r"__main__\.keeps\(\) -> bytearray\(.*  \[[^]]*, \+976\.\d KB\]$", re.M)
FREES = re.compile(r"__main__\.frees\(\) -> None  \[[^],]*, [+-]0\.[0-4] KB\]$", re.M)


def record(tmp_path, env, daemon="off"):
    path = tmp_path / "mem.json"
    env = dict(env, PYTHONPATH=f"{BUILD / 'client_ext'}:/usr/lib/python3/dist-packages")
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(path), daemon], env=env,
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    return path, json.loads(r.stdout)


def ok(r):
    assert (r.returncode, r.stderr) == (0, "")
    return r.stdout


def deltas(doc):
    out, stack = {}, list(doc["trace"])
    while stack:
        d = stack.pop()
        out[d["name"]] = d.get("memory_delta_kb")
        stack.extend(d["children"])
    return out


def check_json(doc):
    d = deltas(doc)
    assert 976 <= d["keeps"] < 990, d
    assert abs(d["frees"]) < 0.5, d
    assert d["handler"] is not None


def test_tph_tree_of_a_file_shows_the_deltas_as_the_extension_does(tmp_path):
    env = base_env(tmp_path)
    path, out = record(tmp_path, env)
    text = ok(tph("tree", path, env=env))
    assert text == out["tree"].rstrip("\n") + "\n"
    assert KEEPS.search(text), text
    assert FREES.search(text), text
    check_json(json.loads(path.read_text()))


def test_tphd_stores_the_deltas_of_an_upload_and_of_an_imported_file(tmp_path):
    d = Daemon(tmp_path, ["--no-http"])
    try:
        env = base_env(tmp_path)
        env["TRACEPATCH_SOCKET"] = str(d.socket)
        path, out = record(tmp_path, env, daemon="required")
        uploaded = out["id"]
        imported = ok(tph("import", path, env=env)).strip()
        assert imported != uploaded
        for trace_id in (uploaded, imported):
            text = ok(tph("tree", trace_id, env=env))
            assert KEEPS.search(text), (trace_id, text)
            assert FREES.search(text), (trace_id, text)
            check_json(json.loads(ok(tph("--json", "tree", trace_id, env=env))))
    finally:
        d.stop()
