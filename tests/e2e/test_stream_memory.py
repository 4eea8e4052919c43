"""A streaming trace keeps only stream_memory of what tphd stored: tphd
answers each committed batch with STORED, the extension frees the blocks
before it, and the trace's views read them back from tphd (the events
query), so t.tree() is what it would be had nothing been freed, and equals
tphd's own tree. When tphd is gone before the views are built, they show
what is still in the process, say why, and count the rest as dropped."""

import json
import time

import pytest

from streamlib import (
    MAIN_PYTHON,
    MAIN_PYTHONPATH,
    daemon_env,
    find_py312,
    needs_binaries,
    needs_extension,
    run_script,
    tree,
)

pytestmark = [needs_binaries, needs_extension]

# A trace of 250,000 calls (about 500,000 records, 8 MB of log without args)
# that streams from the start and may keep 1 MiB; its log's memory is read
# every 5,000 calls while it records.
BODY = '''
def leaf(i):
    return i

def step(n):
    for i in range(n):
        leaf(i)

peak = 0
with trace(label="bounded", stream_after=0.01, stream_memory=1, max_calls=300000,
           show_args=False, show_return=False) as t:
    for k in range(50):
        step(4999)
        time.sleep(0.02)  # a C function: the sender gets its turn
        peak = max(peak, t._session.memory_bytes)
    {inside}
t._session.wait_upload(30.0)
dump(dict(facts(t), peak=peak, end_bytes=t._session.memory_bytes,
          events=t._session.event_count, tree=t.tree(), json_calls=len(
              [1 for line in t.to_csv().splitlines()[1:]])))
'''

CALLS = 50 * 5000

PY312, PY312_PATH = find_py312()
INTERPRETERS = [pytest.param((MAIN_PYTHON, MAIN_PYTHONPATH), id="main"),
                pytest.param((PY312, PY312_PATH), id="py312", marks=pytest.mark.skipif(
                    PY312 is None, reason=str(PY312_PATH)))]


@pytest.mark.parametrize("interp", INTERPRETERS)
def test_stored_blocks_are_freed_and_read_back(tmp_path, interp):
    with daemon_env(tmp_path) as (d, env):
        r = run_script(tmp_path, BODY.replace("{inside}", "pass"), env, timeout=120,
                       python=interp[0], pythonpath=interp[1])
        assert r.returncode == 0, r.stderr
        out = r.out
        assert (out["calls"], out["dropped"], out["errors"], out["state"]) == (
            CALLS, 0, [], "acked")
        assert out["events"] == 1 + 2 * CALLS  # the THREAD naming MainThread, CALLs, RETURNs
        # 16 B per record: the whole log would be 8 MB; the process kept
        # 1 MiB plus what tphd had not stored yet.
        assert out["events"] * 16 > 7_500_000
        assert out["peak"] < 4 * 2**20, out["peak"]
        assert out["end_bytes"] < 4 * 2**20
        # Read back: every call is in the views, and the tree is tphd's.
        assert out["json_calls"] == CALLS
        assert tree(env, out["trace_id"]) == out["tree"] + "\n"


def test_views_without_tphd_show_what_is_left(tmp_path):
    # tphd stops while the trace records, after it stored (and the process
    # freed) part of it: the freed part cannot come back.
    inside = """open(os.path.join(os.path.dirname(OUT), 'stored'), 'w').close()
    while not os.access(os.path.join(os.path.dirname(OUT), 'gone'), os.F_OK):
        time.sleep(0.01)"""
    with daemon_env(tmp_path) as (d, env):
        proc, out_path = run_script(tmp_path, BODY.replace("{inside}", inside), env, wait=False)
        work = out_path.parent
        deadline = time.monotonic() + 60
        while not (work / "stored").exists() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        d.stop()
        (work / "gone").touch()
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
    out = json.loads(out_path.read_text())
    assert out["state"] == "failed"
    back = [e for e in out["errors"] if "could not be read back from tphd at" in e]
    assert len(back) == 1, out["errors"]
    freed = int(back[0].split()[2])
    assert 0 < freed < out["events"]
    # What is left is in the views; the freed events count as dropped.
    assert out["dropped"] >= freed
    assert 0 < out["json_calls"] < CALLS
