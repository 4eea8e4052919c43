"""tphd, tph and the extension against a hostile local world (issue 10,
"Security", and the places where the spec and the code disagreed): a real
tphd on a real socket, and the hostile party (another uid, a fake daemon, a
client sending escape sequences) written here."""
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tphd_wire  # noqa: E402
from test_http_api import TPH, TPHD, WebDaemon, has_http  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD) or not os.path.exists(TPH),
                                reason="tphd and tph not built")
needs_http = pytest.mark.skipif(not has_http(), reason="tphd built without HTTP")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")

FORMATS = ["json", "csv", "html", "chrome", "folded"]


@pytest.fixture(autouse=True)
def _no_daemon_left_behind():
    # Only the daemons this test started: the module's web daemon lives on.
    before = list(tphd_wire._running)
    yield
    for d in [d for d in tphd_wire._running if d not in before]:
        tphd_wire._running.remove(d)
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def run_tph(sock, *args, env=None, timeout=60, **kw):
    e = dict(env or os.environ)
    e.pop("TRACEPATCH_SOCKET", None)
    return subprocess.run([TPH, "--socket", sock, *map(str, args)], capture_output=True,
                          env=e, timeout=timeout, **kw)


# ---- 1: nothing tphd writes to a file carries the HTTP token -----------------


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    d = WebDaemon(tmp_path_factory.mktemp("sec-web")).start()
    d.wait_http()
    d.ids = d.seed("checkout-a")
    yield d
    assert d.stop() == 0, d.read_log()


@needs_http
@pytest.mark.parametrize("fmt", FORMATS)
def test_http_export_carries_no_token(web, fmt):
    tid = web.ids["checkout-a"]
    r = web.request(f"/api/traces/{tid}/export?format={fmt}")
    assert r.status == 200, r.body[:300]
    assert len(web.token) == 32
    assert web.token.encode() not in r.body
    assert b"token=" not in r.body


@needs_http
@pytest.mark.parametrize("fmt", FORMATS)
def test_tph_export_to_a_file_carries_no_token_and_is_private(web, fmt, tmp_path):
    tid = web.ids["checkout-a"]
    out = tmp_path / f"report.{fmt}"
    old = os.umask(0o022)
    try:
        p = run_tph(web.sock, "export", tid, "--format", fmt, "-o", out)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    data = out.read_bytes()
    assert len(data) > 100
    assert web.token.encode() not in data
    assert b"token=" not in data
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@needs_http
def test_html_report_still_names_its_trace(web):
    # The summary stays in the report; only its credential-bearing url goes.
    tid = web.ids["checkout-a"]
    p = run_tph(web.sock, "export", tid, "--format", "html")
    assert p.returncode == 0, p.stderr
    assert tid.encode() in p.stdout
    assert b'"url"' not in p.stdout


# ---- spec: `tph export -o -` is standard output ------------------------------


@needs_http
def test_export_dash_o_dash_writes_stdout_not_a_file(web, tmp_path):
    tid = web.ids["checkout-a"]
    plain = run_tph(web.sock, "export", tid, "--format", "csv")
    dash = run_tph(web.sock, "export", tid, "--format", "csv", "-o", "-", cwd=tmp_path)
    assert dash.returncode == 0, dash.stderr
    assert dash.stdout == plain.stdout
    assert len(dash.stdout) > 50
    assert not (tmp_path / "-").exists()
