"""Call counts are exact: per function, the trace counts what a
sys.setprofile counter in the same process counts, on real stdlib work
(generators and coroutines counted once per instance, not per resume)."""

import argparse
import dis
import email
import email.policy
import inspect
import json
import re
import sys
from collections import Counter

import pytest

from tracepatch import trace

_GEN_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _begin():
    pass


def _end():
    pass


_first_resume: dict = {}


def _starts(frame) -> bool:
    """Whether a 'call' event of a generator/coroutine frame is its first
    start rather than a resume: on 3.10 nothing has run yet (f_lasti -1);
    later, the frame stands at the RESUME that begins the code (argument 0;
    1-3 follow a yield or await)."""
    if sys.version_info < (3, 11):
        return frame.f_lasti < 0
    code = frame.f_code
    offset = _first_resume.get(code)
    if offset is None:
        offset = _first_resume[code] = next(
            i.offset for i in dis.get_instructions(code) if i.opname == "RESUME" and i.arg == 0)
    return frame.f_lasti == offset


class ProfileCounter:
    """Counts 'call' events between _begin() and _end(), a generator or
    coroutine once, at its first start."""

    def __init__(self):
        self.counts = Counter()
        self.on = False

    def __call__(self, frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if code is _begin.__code__:
            self.on = True
            return
        if code is _end.__code__:
            self.on = False
            return
        if not self.on:
            return
        if code.co_flags & _GEN_FLAGS and not _starts(frame):
            return  # a resume
        self.counts[(code.co_filename, code.co_firstlineno, code.co_name)] += 1


def _trace_counts(t):
    counts = Counter()
    for root in t.roots:
        for n in root.walk():
            if n.name in ("_begin", "_end") and n.module == __name__:
                continue
            counts[(n.file, n.lineno, n.name)] += 1
    return counts


def _compare(workload):
    counter = ProfileCounter()
    previous = sys.getprofile()
    # The counter first, then the trace: on 3.10/3.11 the trace's hook keeps
    # the counter as the profile function it passes every event to.
    sys.setprofile(counter)
    try:
        with trace(cache=False, max_calls=2_000_000, max_depth=100_000) as t:
            _begin()
            workload()
            _end()
    finally:
        sys.setprofile(previous)
    assert not t.was_limited
    expected, got = counter.counts, _trace_counts(t)
    assert sum(expected.values()) > 10
    diff = {k: (expected[k], got[k]) for k in expected.keys() | got.keys()
            if expected[k] != got[k]}
    assert diff == {}
    assert t.call_count == sum(got.values()) + 2  # _begin and _end


def json_work():
    data = {"users": [{"id": i, "name": f"u{i}", "tags": ["a", "b"], "score": i / 3,
                       "nested": {"x": [1, 2, {"y": None}]}} for i in range(30)]}
    text = json.dumps(data, indent=2, sort_keys=True)
    assert json.loads(text) == data
    json.JSONDecoder().decode(json.dumps([1.5, "é", True]))


def re_work():
    re.purge()
    for pattern in (r"(?P<year>\d{4})-(?P<mon>\d\d)", r"[a-z]+(?:\s+[a-z]+)*$",
                    r"(?i)hello|world|\bfoo\b", r"(a|b)*c{2,5}?"):
        rx = re.compile(pattern)
        rx.search("2024-05 hello foo aacc")


MESSAGE = """\
From: Alice <alice@example.com>
To: Bob <bob@example.com>
Subject: =?utf-8?q?Caf=C3=A9?= menu
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="XYZ"

--XYZ
Content-Type: text/plain; charset="utf-8"

Plain body
--XYZ
Content-Type: text/html; charset="utf-8"

<p>HTML body</p>
--XYZ--
"""


def email_work():
    msg = email.message_from_string(MESSAGE, policy=email.policy.default)
    assert msg["subject"] == "Café menu"
    parts = [p.get_content() for p in msg.iter_parts()]
    assert parts[0].strip() == "Plain body"


def argparse_work():
    parser = argparse.ArgumentParser(prog="tool", description="d")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="cmd")
    run = sub.add_parser("run")
    run.add_argument("target")
    run.add_argument("--flag", action="store_true")
    args = parser.parse_args(["--count", "3", "-vv", "run", "x", "--flag"])
    assert (args.count, args.verbose, args.cmd, args.target, args.flag) == (3, 2, "run", "x", True)
    parser.format_help()


@pytest.mark.parametrize("workload", [json_work, re_work, email_work, argparse_work],
                         ids=lambda w: w.__name__)
def test_per_function_counts_equal_a_profile_counter(workload):
    workload()  # once outside: imports and caches warm, as the counter sees them
    _compare(workload)
