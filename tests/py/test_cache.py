"""Saving finished traces under .tracepatch/traces/ (tracepatch 1.0.0's layout)."""

import json
import re
import time
from pathlib import Path

import pytest

from tracepatch import TracepatchWarning, trace


def work(n):
    return n + 1


def stamp():
    return time.strftime("%Y%m%d_%H%M%S")


def test_saved_file_name_and_content():
    before = stamp()
    with trace(label="my req/1: ünïcode") as t:
        work(1)
    after = stamp()
    path = t.cache_path
    assert path.parent == Path.cwd() / ".tracepatch" / "traces"
    m = re.fullmatch(r"my-req-1-n-code_(\d{8}_\d{6})_([0-9a-f]{8})\.json", path.name)
    assert m, path.name
    assert before <= m.group(1) <= after
    assert m.group(2) == t.trace_id[:8]
    data = json.loads(path.read_text())
    assert data["trace_id"] == t.trace_id
    assert data["label"] == "my req/1: ünïcode"
    assert data["call_count"] == 1
    assert data["trace"][0]["name"] == "work"
    assert (Path(".tracepatch") / "traces" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (Path(".tracepatch") / "README.md").is_file()
    assert [p.name for p in path.parent.iterdir() if p.suffix != ".json"] == [".gitignore"]


def test_unlabelled_trace_is_named_trace():
    with trace() as t:
        work(1)
    assert re.fullmatch(r"trace_\d{8}_\d{6}_[0-9a-f]{8}\.json", t.cache_path.name)


def test_empty_trace_is_not_saved():
    with trace() as t:
        pass
    assert t.cache_path is None
    assert not Path(".tracepatch").exists()


@pytest.mark.parametrize("how", ["keyword", "config", "auto_save", "env"])
def test_cache_can_be_turned_off(monkeypatch, how):
    kwargs = {}
    if how == "keyword":
        kwargs["cache"] = False
    elif how == "config":
        Path("tracepatch.toml").write_text("cache = false\n")
    elif how == "auto_save":
        Path("tracepatch.toml").write_text("auto_save = false\n")
    else:
        monkeypatch.setenv("TRACEPATCH_NO_CACHE", "1")
    with trace(**kwargs) as t:
        work(1)
    assert t.cache_path is None
    assert not Path(".tracepatch").exists()


def test_keyword_cache_true_beats_config_false():
    Path("tracepatch.toml").write_text("cache = false\n")
    with trace(cache=True) as t:
        work(1)
    assert t.cache_path is not None and t.cache_path.is_file()


def test_cache_dir(tmp_path):
    with trace(cache_dir=tmp_path / "elsewhere") as t:
        work(1)
    assert t.cache_path.parent == tmp_path / "elsewhere" / ".tracepatch" / "traces"
    with trace(cache_dir=str(tmp_path / "direct" / ".tracepatch")) as t:
        work(1)
    assert t.cache_path.parent == tmp_path / "direct" / ".tracepatch" / "traces"
    Path("tracepatch.toml").write_text(f'cache_dir = "{tmp_path / "fromconfig"}"\n')
    with trace() as t:
        work(1)
    assert t.cache_path.parent == tmp_path / "fromconfig" / ".tracepatch" / "traces"


def test_unwritable_cache_dir_warns_and_never_raises(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.warns(TracepatchWarning) as caught:
        with trace(label="x", cache_dir=blocker) as t:
            assert work(1) == 2
    assert t.cache_path is None
    message = str(caught[0].message)
    assert message == (f"tracepatch: could not save trace {t.trace_id[:8]} (x) to "
                       f"{blocker}/.tracepatch/traces: Not a directory: "
                       f"{blocker}/.tracepatch/traces")
    assert caught[0].filename == __file__
    assert t.call_count == 1  # the trace itself is fine
    assert "work" in t.tree()


def test_logs_and_load():
    with trace(label="first") as t1:
        work(1)
    with trace(label="second") as t2:
        work(2), work(3)
    logs = trace.logs()
    assert sorted((e["label"], e["call_count"]) for e in logs) == [("first", 1), ("second", 2)]
    assert {e["trace_id"] for e in logs} == {t1.trace_id, t2.trace_id}
    assert trace.load(t2.cache_path)["call_count"] == 2
