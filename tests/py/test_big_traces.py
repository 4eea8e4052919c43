"""Big traces: trace files streamed to disk in bounded memory, compact JSON,
and nodes built only when touched."""

import io
import json
import textwrap
from pathlib import Path

from conftest import run_python
from tracepatch import trace

M = __name__


def leaf(i):
    return i + 1


def work(n):
    return sum(leaf(i) for i in range(n))


def recorded(n=50):
    with trace(cache=False, label="big") as t:
        work(n)
    return t


def test_json_written_to_a_file_is_the_text_byte_for_byte(tmp_path):
    t = recorded()
    for compact in (False, True):
        text = t.to_json(compact=compact)
        path = tmp_path / f"t{compact}.json"
        assert t.to_json(path, compact=compact) == path
        assert path.read_bytes() == text.encode("utf-8")
        buf = io.StringIO()
        assert t.to_json(buf, compact=compact) is buf
        assert buf.getvalue() == text


def test_compact_json_is_the_same_document_on_one_line():
    t = recorded()
    pretty, compact = t.to_json(), t.to_json(compact=True)
    assert json.loads(compact) == json.loads(pretty)
    assert compact.count("\n") == 1 and compact.endswith("}\n")
    assert ": " not in compact.replace('"args": ', "")  # no indentation or spacing
    assert t.to_json(pretty=False) == compact
    assert len(compact) < len(pretty) * 0.6


def test_compact_json_setting_applies_to_saved_traces():
    Path("tracepatch.toml").write_text("compact_json = true\n")
    with trace() as t:
        work(3)
    saved = t.cache_path.read_text()
    assert saved == t.to_json() == t.to_json(compact=True)
    assert saved.count("\n") == 1
    assert t.to_json(compact=False).count("\n") > 20


STREAM = textwrap.dedent("""\
    import resource, sys
    from tracepatch import trace

    def leaf(i):
        return i

    def work(n):
        for i in range(n):
            leaf(i)

    with trace(cache=False, max_calls=400_000, max_depth=5) as t:
        work(300_000)
    t.summary()  # the tree is built: what follows is the writing alone
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t.to_json(sys.argv[1])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(t.call_count, (after - before) // 1024)
    """)


def test_json_file_of_a_big_trace_is_written_in_bounded_memory(tmp_path):
    Path("stream.py").write_text(STREAM)
    out = tmp_path / "big.json"
    r = run_python(["stream.py", str(out)])
    assert r.returncode == 0, r.stderr
    calls, grown_mib = map(int, r.stdout.split())
    assert calls == 300_001
    size_mib = out.stat().st_size / 2**20
    assert size_mib > 100  # the text would be this big in memory...
    assert grown_mib < 16, (grown_mib, size_mib)  # ...the file is written in pieces
    with open(out, encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["call_count"] == 300_001
    assert len(data["trace"][0]["children"]) == 300_000
