"""Floats are rendered exactly as repr(float) gives them (C fast path or not)."""

import math
import random
import struct

from test_ext_common import T, run_as_script

safe_repr = T.safe_repr

EDGES = [
    0.0, -0.0, 1e-4, -1e-4, 9.999999999999999e-05, 1.0000000000000001e-04, 1e15, -1e15,
    999999999999999.9, 999999999999999.0, 1e15 - 1, 1e16, 9999999999999998.0, 2.0**53,
    2.0**53 - 1, 2.0**53 + 2, 0.1, 0.2, 0.1 + 0.2, 1 / 3, 2 / 3, 123.456, -7.25, 3e-4, 5e-324,
    1.7976931348623157e308, math.pi, math.e, 0.5, 1.5, 100.0, 1e-5, 0.000123, 0.00012345678901234,
    123456789012345.6, 12345678901234.56, 0.1234567890123456, float("inf"), float("-inf"),
    float("nan"),
]


def test_edge_floats_match_repr():
    for v in EDGES:
        assert safe_repr(v, 100) == repr(v)


def test_random_floats_match_repr():
    r = random.Random(20261202)
    for _ in range(150_000):
        k = r.randrange(10)
        if k == 0:
            v = r.random()
        elif k == 1:
            v = round(r.uniform(-1e6, 1e6), r.randrange(0, 12))
        elif k == 2:
            v = r.randrange(-10**15, 10**15) / 10 ** r.randrange(0, 20)
        elif k == 3:
            v = struct.unpack("d", struct.pack("Q", r.getrandbits(64)))[0]
        elif k == 4:
            v = r.randrange(1, 10 ** r.randrange(1, 17)) * 10.0 ** r.randrange(-20, 18)
        elif k == 5:
            v = float(r.randrange(-2**54, 2**54))
        elif k == 6:
            v = r.uniform(1e-5, 1e-3)
        elif k == 7:
            v = r.randrange(1, 1000) * 0.5 ** r.randrange(0, 40)
        elif k == 8:  # anywhere in repr()'s fixed-notation range, log-uniform
            v = 10 ** r.uniform(-4.1, 16.1)
        else:  # the neighbours of a power of two (a narrower rounding interval below)
            v = math.nextafter(2.0 ** r.randrange(-15, 55), r.choice((0.0, math.inf)))
        assert safe_repr(v, 100) == repr(v)


def test_every_short_decimal_matches_repr():
    # every 1- to 3-digit mantissa at every scale around the fixed-notation range
    for exp in range(-8, 18):
        for m in range(1, 1000):
            v = float("%de%d" % (m, exp))
            assert safe_repr(v, 100) == repr(v)
            assert safe_repr(-v, 100) == repr(-v)
            n = math.nextafter(v, math.inf)
            assert safe_repr(n, 100) == repr(n)


def test_floats_are_cut_like_any_text():
    assert safe_repr(0.1 + 0.2, 10) == "0.30000..."
    assert safe_repr(123.25, 6) == "123.25"
    assert safe_repr(1234.25, 6) == "123..."


if __name__ == "__main__":
    run_as_script(globals())
