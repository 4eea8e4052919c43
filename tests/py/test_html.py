"""t.to_html(): the self-contained report, the same UI tphd serves."""

import json
import re

from report_pack import report_data
from tracepatch import trace


def greet(name):
    return "hello " + name


def test_to_html_inlines_the_ui_and_the_trace_and_fetches_nothing(tmp_path):
    hostile = "</script><script>alert(1)</script>"
    with trace(label="report", cache=False, daemon="off") as t:
        greet(hostile)
        greet("bob")

    html = t.to_html()
    assert html.startswith("<!doctype html>") or html.lower().startswith("<!doctype html>")
    # No external resource: every script and style is inline.
    assert not re.search(r'<script[^>]+src=', html)
    assert not re.search(r'<link[^>]+rel="?stylesheet', html)
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html.replace("https://www.w3.org", "")

    # The data block cannot be closed by trace text.
    data = re.search(r'<script type="application/json" id="tp-data">(.*?)</script>', html, re.S)
    assert data is not None
    assert "</script" not in data.group(1)
    doc = json.loads(data.group(1))
    assert doc["trace"]["label"] == "report"
    assert doc["trace"]["id"] == t.trace_id
    assert doc["trace"]["calls"] == 2
    doc, roots = report_data(html)
    assert [(n["name"], n["module"], n["count"]) for n in roots] == [("greet", "test_html", 2)]
    # The hostile argument is kept as data (the UI shows it with textContent).
    assert roots[0]["args"] == "name=" + repr(hostile)
    # The file holds the calls the group stands for (its /members).
    assert [(c["call"], c["parent"], c["args"], c["ret"]) for c in roots[0]["calls"]] == [
        (0, None, "name=" + repr(hostile), repr("hello " + hostile)), (1, None, "name='bob'", "'hello bob'")]
    assert roots[0]["_pack"]["max_members"] == 1000000

    out = tmp_path / "r.html"
    assert t.to_html(out) == out
    assert out.read_text() == html
