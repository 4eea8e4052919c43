"""Issue #9 with a real program: under trace(threads=True) each worker
thread's calls hang under one line naming the thread, and repeated
sequences of sibling calls fold into one line."""

import json
import re
import threading

import tracepatch

IGNORE = ["threading", "_weakrefset"]
_DUR = re.compile(r"\d+(?:\.\d+)?(?:ns|µs|ms|s)\b")


def untimed(text):
    return _DUR.sub("T", text)


def parse(x):
    return x


def price(x):
    return x * 2


def worker(n):
    for i in range(3):
        parse(i)
        price(i)
    return n


def run_two_workers():
    threads = [threading.Thread(target=worker, args=(k,)) for k in (1, 2)]
    with tracepatch.trace(threads=True, ignore_modules=IGNORE, daemon="off") as t:
        for th in threads:
            th.start()
            th.join()
        parse(9)
    return t, [th.name for th in threads]


def test_worker_threads_get_a_root_line_each():
    t, (n1, n2) = run_two_workers()
    assert re.fullmatch(r"Thread-\d+ \(worker\)", n1), n1
    m = __name__
    body = [
        f"│   └── {m}.worker(n=1) -> 1  [T]",
        f"│       ├── [{m}.parse, {m}.price]  [×3]  [T total, avg T]",
        f"│       │   ├── {m}.parse(...)  [×3]  [T total, avg T, min T, max T]",
        f"│       │   └── {m}.price(...)  [×3]  [T total, avg T, min T, max T]",
    ]
    want = [f"├── thread {n1}  [7 calls, T]"] + body
    want += [f"├── thread {n2}  [7 calls, T]"] + [
        line.replace("n=1) -> 1", "n=2) -> 2") for line in body]
    want += [f"└── {m}.parse(x=9) -> 9  [T]"]
    # The workers' last lines close their branches: fix the connectors.
    want[2] = want[2].replace("├── [", "└── [")
    want[3] = want[3].replace("│       │   ", "│           ")
    want[4] = want[4].replace("│       │   ", "│           ")
    want[7] = want[7].replace("├── [", "└── [")
    want[8] = want[8].replace("│       │   ", "│           ")
    want[9] = want[9].replace("│       │   ", "│           ")
    assert untimed(t.tree(header=False)).splitlines() == want
    assert t.call_count == 15


def test_thread_names_travel_in_json():
    t, (n1, n2) = run_two_workers()
    doc = json.loads(t.to_json())
    names = {d["thread"]: d["name"] for d in doc["threads"]}
    assert names[1] == n1 and names[2] == n2
    assert [(r["name"], r["thread"]) for r in doc["trace"]] == [
        ("worker", 1), ("worker", 2), ("parse", 0)]


def test_one_thread_has_no_thread_line():
    with tracepatch.trace(threads=True, ignore_modules=IGNORE, daemon="off") as t:
        parse(1)
    assert untimed(t.tree(header=False)) == f"└── {__name__}.parse(x=1) -> 1  [T]"
    assert "threads" not in json.loads(t.to_json())
