"""trace(keep="slow") against a real tphd: of a scripted workload, tphd
stores exactly the requests that were slow or raised."""

import json
import subprocess
import sys

from tphlib import BUILD, Daemon, base_env, needs_tph, needs_tphd, tph

pytestmark = [needs_tph, needs_tphd]

SCRIPT = r'''
import sys, time
from tracepatch import trace
work = [("fast-1", 0.0, 0), ("slow-1", 0.25, 0), ("fast-2", 0.0, 0), ("fails", 0.0, 1),
        ("slow-2", 0.3, 0), ("fast-3", 0.01, 0)]
def handle(seconds, raises):
    time.sleep(seconds)
    if raises:
        raise KeyError("boom")
for label, seconds, raises in work:
    try:
        with trace(label=label, keep="slow", keep_slower_than=0.2, daemon="required") as t:
            handle(seconds, raises)
    except KeyError:
        pass
    assert t.kept == label.startswith(("slow", "fails")), label
'''


def test_tphd_stores_exactly_the_slow_and_failing_requests(tmp_path):
    d = Daemon(tmp_path, ["--no-http"])
    try:
        env = base_env(tmp_path)
        env["TRACEPATCH_SOCKET"] = str(d.socket)
        env["PYTHONPATH"] = f"{BUILD / 'client_ext'}:/usr/lib/python3/dist-packages"
        r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
        assert (r.returncode, r.stderr) == (0, "")
        r = tph("--socket", d.socket, "--json", "logs", env=base_env(tmp_path))
        assert (r.returncode, r.stderr) == (0, "")
        traces = json.loads(r.stdout)["traces"]
        assert sorted(t["label"] for t in traces) == ["fails", "slow-1", "slow-2"]
        assert not (tmp_path / ".tracepatch").exists()  # nothing discarded was saved instead
    finally:
        d.stop()
