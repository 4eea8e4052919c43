"""tph and the extension render a trace the same way: `tph tree FILE` of a
file written by t.to_json() is exactly t.tree(), for the default view and
with options. Needs the built extension on PYTHONPATH (as deploy/check.sh
runs the e2e tests)."""

import subprocess
import sys

import pytest

from tphlib import DEMO_APP, base_env, needs_tph, tph

pytestmark = needs_tph

SCRIPT = r'''
import json, sys
from tracepatch import trace

''' + DEMO_APP + r'''
with trace(label="ext-vs-tph") as t:
    handle_request(42)
t.to_json(sys.argv[1])
views = {
    "default": t.tree(),
    "ascii": t.tree(style="ascii", self_time=True),
}
json.dump(views, open(sys.argv[2], "w"))
'''


def extension_ready():
    probe = "import tracepatch._tracepatch as n; assert hasattr(n, 'Session')"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


@pytest.mark.skipif(not extension_ready(), reason="the tracepatch extension is not built here")
def test_tph_tree_of_to_json_is_t_tree(tmp_path):
    import json

    trace_file, views_file = tmp_path / "t.json", tmp_path / "views.json"
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    env = base_env(tmp_path)  # no TRACEPATCH_* settings; cwd has no tracepatch.toml
    r = subprocess.run([sys.executable, str(script), str(trace_file), str(views_file)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    views = json.loads(views_file.read_text())

    def tree(*flags):
        r = tph("tree", trace_file, *flags, env=env)
        assert (r.returncode, r.stderr) == (0, "")
        return r.stdout

    assert tree() == views["default"].rstrip("\n") + "\n"
    assert tree("--style", "ascii", "--self-time") == views["ascii"].rstrip("\n") + "\n"
    assert "__main__.validate(" in tree() and "[×3]" in tree()
