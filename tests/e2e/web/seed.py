#!/usr/bin/env python3
"""Send the browser and HTTP tests' traces to a real tphd over the wire.

    seed.py SOCKET [NAME ...]      (default: checkout-a checkout-b xss deep)
    seed.py SOCKET big --calls N   (a trace of N calls, 1M by default)

Prints {"name": "trace id", ...} as JSON once tphd has acknowledged every
trace (stored and committed). Uses tests/e2e/tphd_wire.py, the Python
implementation of the wire protocol.
"""
import argparse
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tphd_wire as w  # noqa: E402

XSS_ARG = "<script>alert(1)</script>"
XSS_ATTR = "'\"><img src=x onerror=alert(2)>"


def trace_id(name):
    return hashlib.sha256(("tracepatch-e2e-" + name).encode()).hexdigest()[:32]


def checkout(conn, tid, label, slow, extra, t0):
    conn.funcs({
        0: ("shop.views", "checkout", "/srv/shop/views.py", 12),
        1: ("shop.cart", "Cart.total", "/srv/shop/cart.py", 40),
        2: ("shop.db", "query", "/srv/shop/db.py", 88),
        3: ("shop.pay", "charge", "/srv/shop/pay.py", 7),
        4: ("shop.mail", "send_receipt", "/srv/shop/mail.py", 30),
    })
    conn.begin(tid, label=label, t0=t0, config={"max_calls": 10000})
    ev = w.Events()
    t = 1000
    ev.call(0, t, "request=<Request POST /checkout>, user_id=42")
    t += 10_000
    ev.call(1, t, "cart=<Cart 3 items>")
    for i in range(3):
        t += 2000
        ev.call(2, t, f"sql='SELECT price FROM items WHERE id=?', params=({i},)")
        t += 300_000 if slow else 100_000
        ev.ret(t, "[(9.99,)]")
    t += 5000
    ev.ret(t, "29.97")
    t += 1000
    ev.call(3, t, "amount=29.97, card='**** 4242'")
    t += 2_000_000 if slow else 500_000
    ev.ret(t, "{'ok': True}")
    if extra:
        t += 1000
        ev.call(4, t, "to='ada@example.org'")
        t += 50_000
        ev.ret(t, "None")
    t += 1000
    ev.ret(t, "<Response 200>")
    conn.events(tid, 0, ev)
    conn.end(tid, t + 1000, ev.calls)


def xss(conn, tid, t0):
    conn.funcs({
        0: ("evil", "handler", "/tmp/evil.py", 1),
        1: ("evil", "echo", "/tmp/evil.py", 5),
        2: ("<img src=x onerror=alert(3)>", "<b>bold</b>", "</script><script>alert(4)</script>.py", 9),
    })
    conn.begin(tid, label="<script>alert('label')</script>", t0=t0)
    ev = w.Events()
    ev.call(0, 1000, f"x={XSS_ARG!r}")
    ev.call(1, 2000, f"s={XSS_ATTR!r}").ret(3000, repr(XSS_ATTR))
    ev.call(2, 4000, "a='</script><!--<script>alert(5)</script>'")
    ev.unwind(5000, "<svg onload=alert(6)>", "<iframe src=javascript:alert(7)>")
    ev.ret(9000, repr(XSS_ARG))
    conn.events(tid, 0, ev)
    conn.end(tid, 10_000, ev.calls)


LINES = [{
    "call": 0, "module": "evil", "qualname": "handler", "file": "/tmp/evil.py",
    "args": "x='<script>alert(8)</script>'",
    "lines": [
        {"line": 2, "source": "    tag = '</script><img src=x onerror=alert(9)>'", "hits": 1,
         "values": {"tag": ["'</script><img src=x onerror=alert(9)>'"]}},
        {"line": 3, "source": "    return tag", "hits": 2, "values": {}},
    ]}]


def lines(conn, tid, t0):
    """evil.handler with lines= data (PROTOCOL.md 4.6a) whose text is hostile."""
    conn.funcs({0: ("evil", "handler", "/tmp/evil.py", 1)})
    conn.begin(tid, label="lines", t0=t0)
    ev = w.Events()
    ev.call(0, 1000, "x='<script>alert(8)</script>'").ret(9000, "None")
    conn.events(tid, 0, ev)
    conn.send(w.LINES, {"trace": tid, "json": json.dumps(LINES).encode()})
    conn.end(tid, 10_000, ev.calls)


def deep(conn, tid, t0):
    """main -> 1200 alternating a/b siblings (no folding), then a chain of 14
    nested calls ending in needle(secret='found-me-deep'). Each sibling is a
    function of its own (an a or a b defined at its own line, as closures
    made in a loop are), so neither runs nor repeated sequences fold and
    main stays 1201 children wide."""
    funcs = {
        0: ("deep", "main", "/srv/deep.py", 1),
        3: ("deep.chain", "level", "/srv/chain.py", 5),
        4: ("deep.chain", "needle", "/srv/chain.py", 50),
    }
    for i in range(1200):
        funcs[5 + i] = ("deep", "ab"[i % 2], "/srv/deep.py", 10 + i)
    conn.funcs(funcs)
    conn.begin(tid, label="deep-and-wide", t0=t0)
    ev = w.Events()
    t = 1000
    ev.call(0, t, "")
    for i in range(1200):
        t += 100
        ev.call(5 + i, t, f"i={i}")
        t += 400
        ev.ret(t, str(i))
    for d in range(14):
        t += 100
        ev.call(3, t, f"d={d}")
    t += 100
    ev.call(4, t, "secret='found-me-deep'")
    t += 1000
    ev.ret(t, "'needle'")
    for d in range(14):
        t += 100
        ev.ret(t, "None")
    t += 100
    ev.ret(t, "0")
    conn.events(tid, 0, ev)
    conn.end(tid, t + 100, ev.calls)


def big(conn, tid, t0, calls):
    """batch.main -> process(i) x N/61, each with 60 helper calls (parse,
    validate or store): folding keeps the helpers apart. The helpers of all
    items, in order, follow a square-free sequence (Thue-Morse's
    differences: no block of calls repeats right after itself), so neither
    a run of one helper nor a repeated sequence of them folds."""
    conn.funcs({
        0: ("batch", "main", "/srv/batch.py", 1),
        1: ("batch", "process_item", "/srv/batch.py", 20),
        2: ("batch.util", "parse", "/srv/util.py", 5),
        3: ("batch.util", "validate", "/srv/util.py", 30),
        4: ("batch.util", "store", "/srv/util.py", 60),
    })
    conn.begin(tid, label="big-batch-job", t0=t0, config={"max_calls": calls})
    ev = w.Events()
    seq, t, n = 0, 1000, 1
    ev.call(0, t, "argv=['batch', '--all']")
    i = 0
    while n < calls:
        t += 100
        ev.call(1, t, f"item={i}")
        n += 1
        for j in range(60):
            if n >= calls:
                break
            t += 50
            h = i * 60 + j
            f = 2 + (bin(h + 1).count("1") & 1) - (bin(h).count("1") & 1) + 1
            ev.call(f, t, f"item={i}")
            n += 1
            t += 200 + ((i * 7 + j) % 13) * 30
            ev.ret(t, "True" if f == 3 else "None")
        t += 100
        ev.ret(t, "None")
        i += 1
        if len(ev) > 60_000:
            conn.events(tid, seq, ev)
            seq += 1
            ev = w.Events()
    t += 100
    ev.ret(t, "0")
    conn.events(tid, seq, ev)
    conn.end(tid, t + 10, n)


def memory(conn, tid, t0):
    """A track_memory trace: main keeps 1000057 bytes from keeps(), frees()
    gives back what it took, drops() frees 3 GiB (a delta beyond 32 bits),
    plain() was not measured; main's own delta is their sum."""
    conn.funcs({0: ("app", "main", "/srv/app.py", 1), 1: ("app", "keeps", "/srv/app.py", 5),
                2: ("app", "frees", "/srv/app.py", 9), 3: ("app", "drops", "/srv/app.py", 13),
                4: ("app", "plain", "/srv/app.py", 17)})
    conn.begin(tid, label="memory", t0=t0, config={"track_memory": True})
    ev = w.Events()
    ev.call(0, 1000, "")
    ev.call(1, 2000, "").ret(3000, "bytearray(...)").mem(3000, 1000057)
    ev.call(2, 4000, "").ret(5000, "None").mem(5000, 0)
    ev.call(3, 6000, "").ret(7000, "None").mem(7000, -3 * 2**30)
    ev.call(4, 8000, "").ret(9000, "None")
    ev.ret(10000, "0").mem(10000, 1000057 - 3 * 2**30)
    conn.events(tid, 0, ev)
    conn.end(tid, 11000, ev.calls)


def ui(conn, tid, t0):
    """The report's harder cases in one trace: a generator suspended twice
    (active 3 us of a 1 ms span), an asyncio task spawned by its creator, a
    call with a 400-character argument and a short return value, a
    multi-line exception, 30 functions (more than one screen of a table,
    two of them tied on calls), and handle x2000 with 4000 tiny children
    beside one slow call, so a zoom into handle must merge what is too
    small to draw."""
    funcs = {
        0: ("app", "main", "/srv/app.py", 1),
        1: ("app.gen", "numbers", "/srv/gen.py", 3),
        2: ("app.task", "worker", "/srv/task.py", 8),
        3: ("app.io", "send", "/srv/io.py", 12),
        4: ("app.io", "fail", "/srv/io.py", 20),
        5: ("app.web", "handle", "/srv/web.py", 30),
        6: ("app.web", "parse", "/srv/web.py", 40),
        7: ("app.web", "store", "/srv/web.py", 50),
        8: ("app.slow", "crunch", "/srv/slow.py", 60),
    }
    for k in range(30):
        funcs[9 + k] = ("app.many", f"f{k:02d}", "/srv/many.py", 100 + k)
    conn.funcs(funcs)
    conn.begin(tid, label="ui-cases", t0=t0)
    ev = w.Events()
    t = 1000
    ev.call(0, t, "")  # seq 0
    t += 1000
    ev.call(1, t, "n=2", gen=True)  # seq 1: active 1+1+1 us, span 1 ms
    t += 1000
    ev._rec(w.EV_YIELD, 0, 1, t)
    t += 500_000
    ev._rec(w.EV_RESUME, 0, 1, t)
    t += 1000
    ev._rec(w.EV_YIELD, 0, 1, t)
    t += 497_000
    ev._rec(w.EV_RESUME, 0, 1, t)
    t += 1000
    ev.ret(t, "None")
    t += 1000
    ev._rec(8, 0, 0, t)  # SPAWN: created by main (seq 0)
    ev.call(2, t, "job=1", gen=True)  # seq 2: suspended once
    t += 1000
    ev._rec(w.EV_YIELD, 0, 2, t)
    t += 2000
    ev._rec(w.EV_RESUME, 0, 2, t)
    t += 2000
    ev.ret(t, "'done'")
    t += 1000
    ev.call(3, t, "payload='" + "x" * 400 + "tail-needle'")  # seq 3
    t += 2000
    ev.ret(t, "'sent-ok'")
    t += 1000
    ev.call(4, t, "")  # seq 4
    t += 2000
    ev.unwind(t, "ValueError", "line one\nline two\nline three")
    seq = 5
    for k in range(30):
        for _ in range(2 if k in (3, 7) else 1):
            t += 1000
            ev.call(9 + k, t, f"k={k}")
            t += 1000 + k * 100
            ev.ret(t, "None")
            seq += 1
    for i in range(2000):
        t += 100
        ev.call(5, t, f"r={i}")
        t += 100
        ev.call(6, t, "").ret(t + 100, "None")
        t += 200
        ev.call(7, t, "").ret(t + 100, "None")
        t += 200
        ev.ret(t, "None")
    t += 1000
    ev.call(8, t, "")
    t += 100_000_000
    ev.ret(t, "42")
    t += 1000
    ev.ret(t, "0")
    conn.events(tid, 0, ev)
    conn.end(tid, t + 1000, ev.calls)


def threads(conn, tid, t0):
    """main on thread 0 runs setup() and report(); a thread named
    "Thread-1 (worker)" runs worker(), which repeats (parse, price) five
    times, then (parse, price) twice itself: the report draws the thread's
    calls under a row naming it and each run of repetitions as one
    "[parse, price] xN" row."""
    conn.funcs({
        0: ("app", "setup", "/srv/app.py", 1),
        1: ("app", "worker", "/srv/app.py", 10),
        2: ("app", "parse", "/srv/app.py", 20),
        3: ("app", "price", "/srv/app.py", 30),
        4: ("app", "report", "/srv/app.py", 40),
    })
    conn.begin(tid, label="threads", t0=t0)
    ev = w.Events()
    ev.call(0, 1000, "").ret(2000, "None")
    ev.thread(1, 3000, "Thread-1 (worker)")
    ev.call(1, 3000, "n=1")
    t = 3000
    for i in range(5):
        ev.call(2, t + 100, f"line={i}").ret(t + 200, str(i))
        ev.call(3, t + 300, f"x={i}").ret(t + 500, str(2 * i))
        t += 500
    ev.ret(t + 100, "1")
    for k in range(2):  # and twice more at the thread's top level
        ev.call(2, t + 110 + 40 * k, "line=9").ret(t + 120 + 40 * k, "9")
        ev.call(3, t + 130 + 40 * k, "x=9").ret(t + 140 + 40 * k, "18")
    ev.thread(0, t + 200, "MainThread")
    ev.call(4, t + 300, "").ret(t + 400, "None")
    conn.events(tid, 0, ev)
    conn.end(tid, t + 500, ev.calls)


def wait_acks(conn, ids, timeout=300):
    pending = set(ids)
    deadline = time.time() + timeout
    while pending:
        if time.time() > deadline:
            raise SystemExit("seed.py: no ACK for " + ", ".join(sorted(pending)))
        msg = conn.recv()
        if msg is None:
            raise SystemExit("seed.py: tphd closed the connection")
        mtype, body = msg
        if mtype == w.ERROR:
            raise SystemExit("seed.py: tphd said " + json.dumps(body, default=str))
        if mtype == w.ACK:
            pending.discard(body.get("trace"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("names", nargs="*")
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--suffix", default="", help="makes the trace ids unique across runs")
    a = ap.parse_args()
    names = a.names or ["checkout-a", "checkout-b", "xss", "deep"]
    ids = {}
    now = time.time_ns()
    with w.Conn(a.socket) as conn:
        for k, name in enumerate(names):
            tid = trace_id(name + a.suffix)
            ids[name] = tid
            t0 = now - (len(names) - k) * 60_000_000_000  # one minute apart, in order
            if name == "checkout-a":
                checkout(conn, tid, "checkout", False, False, t0)
            elif name == "checkout-slow":
                checkout(conn, tid, "checkout", True, False, t0)
            elif name == "checkout-b":
                checkout(conn, tid, "checkout", True, True, t0)
            elif name == "xss":
                xss(conn, tid, t0)
            elif name == "deep":
                deep(conn, tid, t0)
            elif name == "lines":
                lines(conn, tid, t0)
            elif name == "ui":
                ui(conn, tid, t0)
            elif name == "memory":
                memory(conn, tid, t0)
            elif name == "threads":
                threads(conn, tid, t0)
            elif name == "big":
                big(conn, tid, t0, a.calls)
            else:
                checkout(conn, tid, name, False, False, t0)
        wait_acks(conn, ids.values())
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
