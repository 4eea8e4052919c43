"""tracepatch 1.0.0's file workflow beside a running tphd: an explicit
cache=True (or auto_save = true in the config file) writes the file; the
default stays daemon-only. `tph logs` then shows both."""

import os

import pytest

from streamlib import daemon_env, logs, needs_binaries, needs_extension, run_script
from tphlib import tph

pytestmark = [needs_binaries, needs_extension]


@pytest.fixture
def env(tmp_path):
    with daemon_env(tmp_path) as (_, e):
        yield e


BODY = '''
with trace(label="signup"%s) as t:
    handle_request(1)
t.url  # waits for the daemon's ACK
dump(facts(t, logs=trace.logs()))
'''


def test_explicit_cache_true_writes_the_file_and_stores_in_tphd(tmp_path, env):
    r = run_script(tmp_path, BODY % ", cache=True", env)
    assert (r.returncode, r.stderr) == (0, "")
    f = r.out
    assert f["state"] == "acked"
    assert f["cache"] and os.path.exists(f["cache"])
    assert [e["trace_id"] for e in f["logs"]] == [f["trace_id"]]
    assert [s["id"] for s in logs(env)] == [f["trace_id"]]
    # `tph logs` lists both: tphd's trace and the file.
    out = tph("logs", env=env, cwd=tmp_path / "work")
    assert out.returncode == 0, out.stderr
    assert f["trace_id"][:8] in out.stdout
    assert "trace files in ./.tracepatch/traces/ (1):" in out.stdout


def test_default_with_a_daemon_writes_no_file(tmp_path, env):
    r = run_script(tmp_path, BODY % "", env)
    assert (r.returncode, r.stderr) == (0, "")
    assert (r.out["state"], r.out["cache"], r.out["logs"]) == ("acked", None, [])


def test_auto_save_in_the_config_file_writes_the_file(tmp_path, env):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "tracepatch.toml").write_text("auto_save = true\n")
    r = run_script(tmp_path, BODY % "", env)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.out["state"] == "acked" and r.out["cache"] and os.path.exists(r.out["cache"])
