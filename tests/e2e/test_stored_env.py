"""A trace stored in tphd carries tracepatch 1.0.0's four environment keys
(hostname, python_version, platform, working_directory) in its exported
file, the same values the program's own t.to_json() writes: the extension
sends platform and cwd in HELLO, tphd keeps them with the trace (schema 6)."""

import json

from streamlib import daemon_env, needs_binaries, needs_extension, run_script
from tphlib import tph

pytestmark = [needs_binaries, needs_extension]

BODY = '''
def f(x):
    return x + 1

with trace(label="env") as t:
    f(1)
t._session.wait_upload(10.0)
dump(dict(facts(t), file=json.loads(t.to_json())))
'''

KEYS = ("hostname", "python_version", "platform", "working_directory")


def test_exported_trace_has_the_environment_of_the_program(tmp_path):
    with daemon_env(tmp_path) as (d, env):
        r = run_script(tmp_path, BODY, env)
        assert r.returncode == 0, r.stderr
        out = r.out
        assert out["state"] == "acked"
        e = tph("export", out["trace_id"], "--format", "json", "-o", "-", env=env)
        assert (e.returncode, e.stderr) == (0, ""), e
    stored = json.loads(e.stdout)
    local = out["file"]
    assert {k: stored.get(k) for k in KEYS} == {k: local[k] for k in KEYS}
    assert local["working_directory"] == str(tmp_path / "work")
    assert local["platform"] == "linux"


def test_an_imported_file_keeps_its_environment(tmp_path):
    with daemon_env(tmp_path) as (d, env):
        r = run_script(tmp_path, BODY, env)
        assert r.returncode == 0, r.stderr
        doc = r.out["file"]
        doc.update(hostname="box-7", python_version="3.10.13", platform="darwin",
                   working_directory="/srv/app")
        path = tmp_path / "t.json"
        path.write_text(json.dumps(doc))
        i = tph("import", str(path), env=env)
        assert i.returncode == 0, i.stderr
        e = tph("export", i.stdout.strip(), "--format", "json", "-o", "-", env=env)
        assert (e.returncode, e.stderr) == (0, ""), e
    stored = json.loads(e.stdout)
    assert {k: stored.get(k) for k in KEYS} == {
        "hostname": "box-7", "python_version": "3.10.13", "platform": "darwin",
        "working_directory": "/srv/app"}
