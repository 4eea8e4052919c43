"""The integrations against a real tphd: a traced request's response names
the stored trace (`tph open ID`, never the tokened report URL), and a failing
test's report under the pytest plugin carries its report link."""

import json
import re
import subprocess
import textwrap

import pytest

from streamlib import MAIN_PYTHON, MAIN_PYTHONPATH, daemon_env, needs_binaries, \
    needs_extension, run_script
from tphlib import tph

pytestmark = [needs_binaries, needs_extension]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

WSGI_APP = f"TRACEPARENT = {TRACEPARENT!r}\n" + '''
from werkzeug.test import Client
from tracepatch.integrations.wsgi import TracepatchMiddleware

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(handle_request(7)).encode()]

traces = []
client = Client(TracepatchMiddleware(app, on_trace=traces.append))
r = client.get("/orders/7", headers={"traceparent": TRACEPARENT})
t = traces[0]
dump({"headers": dict(r.headers), "body": r.get_data(as_text=True), "id": t.trace_id,
      "url": t.url, "state": t.upload_state})
'''


@pytest.fixture
def env(tmp_path):
    with daemon_env(tmp_path, ["--http", "127.0.0.1:0"]) as (_, client_env):
        yield client_env


def test_wsgi_response_names_the_stored_trace_and_never_its_url(tmp_path, env):
    pytest.importorskip("werkzeug")
    r = run_script(tmp_path, WSGI_APP, env)
    assert (r.returncode, r.stderr) == (0, "")
    out = r.out
    assert out["state"] == "acked" and out["url"]
    headers = out["headers"]
    assert headers["X-Tracepatch-ID"] == out["id"]
    assert headers["X-Tracepatch-Open"] == f"tph open {out['id']}"
    token = re.search(r"\?token=([0-9a-f]{32})$", out["url"])
    assert token is not None, out["url"]
    for value in headers.values():
        assert "http://" not in value
        assert token.group(1) not in value
    shown = tph("tree", out["id"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Trace: GET /orders/7" in shown.stdout
    # The request's traceparent joined the trace: tphd finds it by that OTel trace id.
    found = tph("--json", "logs", "--otel-trace", "4bf92f35", env=env)
    assert found.returncode == 0, found.stderr
    assert [t["id"] for t in json.loads(found.stdout)["traces"]] == [out["id"]]


def test_pytest_failure_report_carries_the_report_url(tmp_path, env):
    work = tmp_path / "suite"
    work.mkdir()
    (work / "test_fails.py").write_text(textwrap.dedent('''
        def helper(x):
            return x * 2

        def test_bad(tracepatch):
            helper(21)
            raise ValueError("nope")
    '''))
    run_env = dict(env, PYTHONPATH=MAIN_PYTHONPATH)
    r = subprocess.run([MAIN_PYTHON, "-m", "pytest", "-p", "tracepatch.pytest_plugin",
                        "-p", "no:cacheprovider", "-q", "test_fails.py"],
                       cwd=work, env=run_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    section = r.stdout[r.stdout.index("- tracepatch -"):]
    assert "test_fails.helper(x=21) -> 42" in section
    m = re.search(r"^report: (http://127\.0\.0\.1:\d+/\S+)$", section, re.M)
    assert m is not None, section


FRAMES_APP = '''
import flask, tracepatch
from tracepatch.integrations.flask import init_tracepatch

app = flask.Flask("tp_frames_e2e")

@app.route("/items/<int:n>")
def item(n):
    return str(handle_request(n))

init_tracepatch(app, sample_rate=0.0)  # every request a frame, none traced
client = app.test_client()
bodies = [client.get(p).get_data(as_text=True) for p in ("/items/1", "/items/2", "/nope")]
dump({"bodies": bodies, "flushed": tracepatch.frames_flush(10.0)})
'''


def test_flask_requests_reach_tphd_as_frames_named_by_route(tmp_path, env):
    pytest.importorskip("flask")
    r = run_script(tmp_path, FRAMES_APP, env)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.out["flushed"] is True and r.out["bodies"][:2] != r.out["bodies"][2:]
    shown = tph("--json", "frames", env=env)
    assert shown.returncode == 0, shown.stderr
    counts = {f["name"]: f["count"] for f in json.loads(shown.stdout)["frames"]}
    assert counts == {"GET /items/<int:n>": 2, "GET /nope": 1}


def test_a_traced_requests_frame_with_its_trace_id_is_stored(tmp_path, env):
    # The frame of a request tphd has the trace of carries that trace's id
    # (frames_add's 4th element); tphd must take the batch, not refuse it.
    pytest.importorskip("flask")
    body = FRAMES_APP.replace("init_tracepatch(app, sample_rate=0.0)",
                              "traces = []\ninit_tracepatch(app, on_trace=traces.append, "
                              "keep=\"slow\", keep_slower_than=1e-6)").replace(
        '"flushed":', '"states": [t.upload_state for t in traces], "flushed":')
    r = run_script(tmp_path, body, env)
    assert (r.returncode, r.stderr) == (0, "")
    # Handed to tphd (the last may still await its ack): each frame has an id.
    assert r.out["flushed"] is True
    assert len(r.out["states"]) == 3 and set(r.out["states"]) <= {"pending", "acked"}
    shown = tph("--json", "frames", env=env)
    counts = {f["name"]: f["count"] for f in json.loads(shown.stdout)["frames"]}
    assert counts == {"GET /items/<int:n>": 2, "GET /nope": 1}
