"""Replies larger than tphd's write backlog (64 MiB) reach a client that
reads them, slowly or not: they leave a chunk at a time (flow control)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import tphd_wire as w
from tphlib import TPH, Daemon, base_env

HERE = Path(__file__).resolve().parent


def seed_big(sock, calls):
    r = subprocess.run([sys.executable, str(HERE / "web" / "seed.py"), str(sock), "big",
                        "--calls", str(calls)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["big"]


def test_export_of_a_reply_past_the_write_backlog_arrives_whole(tmp_path):
    d = Daemon(tmp_path, ["--no-http"])
    try:
        tid = seed_big(d.socket, 300_000)
        out = tmp_path / "big.json"
        r = subprocess.run([str(TPH), "--socket", str(d.socket), "export", tid, "--format",
                            "json", "-o", str(out)], capture_output=True, text=True,
                           timeout=600, env=base_env(tmp_path))
        assert (r.returncode, r.stderr) == (0, "")
        assert out.stat().st_size > 64 << 20  # more than the backlog that used to close it
        doc = json.loads(out.read_text())
        assert (doc["trace_id"], doc["call_count"]) == (tid, 300_000)
        assert "does not read its replies" not in d.read_log()
    finally:
        d.stop()


def test_a_slow_reader_gets_the_whole_reply(tmp_path):
    d = Daemon(tmp_path, ["--no-http"])
    try:
        tid = seed_big(d.socket, 300_000)
        with w.Conn(str(d.socket), timeout=120) as c:
            c.send(w.QUERY, {"id": 7, "op": "export",
                             "args": json.dumps({"id": tid, "format": "json"})})
            body, frames = bytearray(), 0
            while True:
                msg = c.recv()
                assert msg is not None, "tphd closed the connection"
                mtype, m = msg
                assert (mtype, m.get("id"), m.get("ok")) == (w.REPLY, 7, True), m
                body += m.get("body", b"")
                frames += 1
                time.sleep(0.05)  # a slow reader: tphd must wait for it, not queue it all
                if not m.get("more"):
                    break
        assert frames >= 9 and len(body) > 64 << 20
        assert json.loads(body)["call_count"] == 300_000
        assert "does not read its replies" not in d.read_log()
    finally:
        d.stop()
