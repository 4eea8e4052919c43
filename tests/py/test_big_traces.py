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


def accent(s):
    return s + "\u00e9"


def test_json_text_is_the_file_when_non_ascii_comes_after_megabytes_of_ascii(tmp_path):
    # to_json() fills its str piece by piece (1 MiB each) while the text is
    # ASCII; a later argument with other characters switches to decoding.
    with trace(cache=False, max_calls=20_000) as t:
        work(8000)  # about 14 MB of pretty JSON, all ASCII
        accent("caf")
        accent("na\u00efve \U0001f600")
    for compact in (False, True):
        text = t.to_json(compact=compact)
        path = tmp_path / f"t{compact}.json"
        t.to_json(path, compact=compact)
        assert path.read_bytes() == text.encode("utf-8")
        assert not text.isascii()
        calls = json.loads(text)["trace"]
        assert [c["args"] for c in calls[-2:]] == ["s='caf'", "s='na\u00efve \U0001f600'"]
        assert calls[-1]["return_value"] == "'na\u00efve \U0001f600\u00e9'"


def test_compact_json_is_the_same_document_on_one_line():
    t = recorded()
    pretty, compact = t.to_json(), t.to_json(compact=True)
    assert json.loads(compact) == json.loads(pretty)
    assert compact.count("\n") == 1 and compact.endswith("}\n")
    # No spacing, no indentation (the "source" key's text is the code's own).
    tree = compact.split(',"source":')[0]
    assert '": ' not in tree and "  " not in tree
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
    try:
        with open(out, encoding="utf-8") as fh:
            data = json.load(fh)
        assert data["call_count"] == 300_001
        assert len(data["trace"][0]["children"]) == 300_000
    finally:
        out.unlink()  # pytest keeps the last runs' directories: not this file


def test_nodes_are_built_only_when_reached(monkeypatch):
    from tracepatch import _node
    with trace(cache=False, max_calls=300_000) as t:
        work(200_000)
    made = []
    real = _node._make
    monkeypatch.setattr(_node, "_make", lambda *a: made.append(a[2]) or real(*a))
    first = t.roots[0].children[0]
    assert (first.name, first.depth, first.is_generator) == ("<genexpr>", 1, True)
    assert len(made) == 2
    leaf_node = first.children[0]
    assert (leaf_node.name, leaf_node.args, leaf_node.return_value) == ("leaf", "i=0", "1")
    assert len(made) == 3
    assert len(first.children) == 200_000 and len(made) == 3
    assert first.children[-1].args == "i=199999" and len(made) == 4
    assert first.children[-1] is first.children[199_999]
    assert t.roots[0].children[0] is first  # built once
    assert leaf_node.parent is first and first.parent is t.roots[0]


def test_roots_compare_like_lists():
    t = recorded(2)
    roots = t.roots
    assert len(roots) == 1 and roots == [roots[0]] and roots != []
    assert roots[:] == [roots[0]] and list(roots) == [roots[0]]
    assert [n.name for n in roots[0].walk()] == ["work", "<genexpr>", "leaf", "leaf"]


def gen_with_pauses(pause):
    import time
    for i in range(3):
        yield leaf(i)
        time.sleep(pause)  # inside the generator: its own active time


def consume(pause):
    import time
    out = []
    for v in gen_with_pauses(0):
        time.sleep(pause)  # the consumer's time: not the generator's
        out.append(v)
    return out


def test_nodes_have_active_time_span_self_time_and_spawned():
    with trace(cache=False) as t:
        consume(0.02)
    top = t.roots[0]
    gen = top.children[0]
    assert gen.name == "gen_with_pauses" and gen.is_generator and not gen.spawned
    assert gen.span >= 0.04  # first resume to end: the consumer's sleeps included
    assert gen.elapsed < 0.02 and gen.elapsed < gen.span  # active: its own steps only
    assert abs(gen.span - (gen.end - gen.start)) < 1e-6
    assert abs(gen.elapsed_ms - gen.elapsed * 1000) < 1e-9
    assert 0 <= gen.self_time <= gen.elapsed
    # Self time is the active time minus the children's active time.
    assert abs(top.self_time - (top.elapsed - sum(c.elapsed for c in top.children))) < 1e-6
    assert top.elapsed == top.span or abs(top.elapsed - top.span) < 1e-6
    assert top.self_time >= 0.06


def test_asyncio_task_node_is_spawned():
    import asyncio

    async def child():
        return leaf(1)

    async def main():
        return await asyncio.create_task(child())

    with trace(cache=False) as t:
        asyncio.run(main())
    nodes = [n for r in t.roots for n in r.walk()]
    spawned = [n.name for n in nodes if n.spawned]
    assert spawned == ["child"]
    (task,) = [n for n in nodes if n.spawned]
    assert task.parent.name == "main"


def seven(k):
    for i in range(k):
        yield i


def test_structure_only_log_holds_16_bytes_per_record_a_call_and_a_suspension_two_each():
    # What a recorded call costs, structure only: a call is CALL + RETURN, each
    # suspension of a generator is YIELD + RESUME, 16 B per record, stored in
    # 64 KiB blocks beside one 64 KiB text chunk (tests/bench/bench_memory.py
    # shows RSS while recording grows by exactly this).
    with trace(daemon="off", show_args=False, show_return=False, max_calls=10**6) as t:
        for _ in range(20_000):
            sum(seven(7))
    s = t._session
    suspends = sum(n.suspends for n in t.roots)
    assert (s.call_count, suspends) == (20_000, 20_000 * 7)
    # One record more: the thread's first THREAD record.
    assert s.event_count == 2 * s.call_count + 2 * suspends + 1
    blocks = -(-s.event_count // 4096)
    assert 16 * s.event_count < s.memory_bytes <= (blocks + 1) * 65536 + 64 * blocks
