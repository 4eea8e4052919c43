"""Generators and coroutines suspending and resuming, at the edges of the
recorder's bookkeeping: chains deeper than the suspensions it keeps at hand,
resumes out of suspension order, a second session arriving meanwhile, a log
block filling up, an exception carried across suspensions. Each runs in
structure-only mode and with arguments, which the hooks serve differently."""

import sys
import threading

from test_ext_common import (EXC_TYPE, FLAGS, PARENT, PY312, QUALNAME, SUSPENDS, THREAD, T,
                             check_times, record, run_as_script, shape, skip)

CAUGHT, GEN = T.NODE_CAUGHT, T.NODE_GEN
MODES = ({"show_args": False, "show_return": False}, {})
FIELDS = (PARENT, QUALNAME, FLAGS, SUSPENDS)


def values(n):
    for i in range(n):
        yield i


def level(depth):
    if depth:
        yield from level(depth - 1)
    else:
        yield from values(3)


def drive_chain():
    return list(level(11))


def test_a_chain_deeper_than_twelve_resumes_every_level():
    # Twelve generators suspended at once at every step, resumed outermost
    # first.
    for kw in MODES:
        s, out = record(drive_chain, **kw)
        assert out == [0, 1, 2]
        assert shape(s, FIELDS) == [(-1, "drive_chain", 0, 0)] + [
            (i, "level", GEN, 3) for i in range(12)] + [(12, "values", GEN, 3)]
        check_times(s)


def interleave():
    a, b, c = values(3), values(3), values(3)
    out = []
    for _ in range(3):
        out += [next(a), next(b), next(c)]
    return out + list(a) + list(b) + list(c)


def test_generators_resumed_in_the_order_they_suspended():
    for kw in MODES:
        s, out = record(interleave, **kw)
        assert out == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        assert shape(s, FIELDS) == [(-1, "interleave", 0, 0)] + [(0, "values", GEN, 3)] * 3
        check_times(s)


def with_a_second_session(kw):
    g = values(4)
    next(g)
    next(g)  # its second suspension: the first one of a trace takes the general path
    inner = T.Session(**kw)  # not the helper: a Python call s would record
    inner.start()  # two sessions in scope while g resumes and suspends again
    next(g)
    inner.stop()
    return inner, list(g)


def test_a_session_started_while_a_generator_is_suspended():
    for kw in MODES:
        s, (inner, rest) = record(with_a_second_session, kw, **kw)
        assert rest == [3]
        assert shape(s, FIELDS) == [(-1, "with_a_second_session", 0, 0), (0, "values", GEN, 4)]
        # It started before the second session: that one never saw it.
        assert inner.nodes() == [] and inner.call_count == 0
        check_times(s)


def drain(n):
    total = 0
    for v in values(n):
        total += v
    return total


def test_a_generator_suspending_across_log_blocks():
    # 5000 suspensions write 10000 records: the log's blocks of 4096 fill
    # while the generator is suspended and while it runs.
    for kw in MODES:
        s, out = record(drain, 5000, **kw)
        assert out == sum(range(5000))
        assert shape(s, FIELDS) == [(-1, "drain", 0, 0), (0, "values", GEN, 5000)]
        kinds = [e[0] for e in s._raw_events()]
        assert (kinds.count(5), kinds.count(6)) == (5000, 5000)  # YIELD, RESUME
        check_times(s)


def across_threads():
    g = values(6)
    next(g)
    next(g)

    def other():
        for _ in range(3):
            next(g)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    return list(g)


def test_a_generator_resumed_in_another_thread():
    # It suspends on one thread's records and resumes on the other's.
    for kw in MODES:
        s, out = record(across_threads, threads=True, **kw)
        assert out == [5]
        nodes = s.nodes()
        gens = [(n[PARENT], n[FLAGS], n[SUSPENDS], n[THREAD]) for n in nodes
                if n[QUALNAME] == "values"]
        assert gens == [(0, GEN, 6, 0)]
        other = "across_threads.<locals>.other" if sys.version_info >= (3, 11) else "other"
        assert [n[THREAD] for n in nodes if n[QUALNAME] == other] == [1]  # 3.10: no co_qualname
        check_times(s)


def catch_then_yield():
    try:
        raise KeyError("k")
    except KeyError:
        pass
    yield 1
    yield 2


def drive_catching():
    return list(catch_then_yield())


def test_an_exception_caught_before_suspending_is_reported_at_the_end():
    if not PY312:
        skip("3.10/3.11 (profile hook): a generator's caught exception is not carried across "
             "its yields")
    for kw in MODES:
        s, out = record(drive_catching, **kw)
        assert out == [1, 2]
        assert shape(s, FIELDS + (EXC_TYPE,)) == [
            (-1, "drive_catching", 0, 0, None), (0, "catch_then_yield", GEN | CAUGHT, 2, "KeyError")]
        check_times(s)


if __name__ == "__main__":
    run_as_script(globals())
