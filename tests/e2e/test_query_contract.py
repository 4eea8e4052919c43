"""docs/QUERY.md is the query contract: what a real tphd answers has exactly
the keys the document lists (the trace summary, get's extra keys, status),
every op it lists is one tphd runs, and an op it does not list is refused."""
import re
from pathlib import Path

from tphd_wire import ACK, simple_trace

DOC = (Path(__file__).resolve().parents[2] / "docs" / "QUERY.md").read_text(encoding="utf-8")
T = "c" * 32


def section(title):
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end >= 0 else len(DOC)]


def table_first_column(text):
    return [m.group(1) for m in re.finditer(r"^\| `([a-z_]+)` \|", text, re.M)]


def op_row(op):
    return re.search(rf"^\| `{op}` \|.*$", section("Ops"), re.M).group(0)


def stored(tphd):
    c = tphd.connect()
    simple_trace(c, T)
    assert c.recv() == (ACK, {"trace": T})
    return c


def test_the_summary_has_exactly_the_documented_keys(tphd):
    keys = table_first_column(section("The trace summary"))
    assert len(keys) == 18
    with stored(tphd) as c:
        (summary,) = c.qjson("list")["traces"]
        assert sorted(summary) == sorted(keys)


def test_get_summary_adds_exactly_the_documented_keys(tphd):
    extra = re.findall(r"plus `config`.*?; `trace`", op_row("get"))[0]
    documented = ["config"] + re.findall(r"\), `([a-z_]+)` \(", extra)
    assert documented == ["config", "stats", "source", "pstart", "events", "drop_reason"]
    with stored(tphd) as c:
        summary = c.qjson("list")["traces"][0]
        full = c.qjson("get", {"id": T})
        assert sorted(set(full) - set(summary)) == sorted(documented)


def test_status_has_exactly_the_documented_keys(tphd):
    documented = re.findall(r'"([a-z_]+)"', op_row("status").split("|")[3])
    with tphd.connect() as c:
        assert sorted(c.qjson("status")) == sorted(documented)


def test_every_documented_op_runs_and_another_is_refused_naming_them_all(tphd):
    ops = table_first_column(section("Ops"))
    assert len(ops) == 19
    with stored(tphd) as c:
        for op in ops:
            ok, code, message = c.query(op, {})
            assert ok or "unknown query" not in message, (op, message)
        ok, code, message = c.query("summary", {})
        assert not ok
        assert message.startswith('unknown query "summary" (') and message.endswith(")")
        assert sorted(message[message.index("(") + 1:-1].split(", ")) == sorted(ops)
