"""tracepatch.tracefunc: tracefunc's documented examples, verbatim (the seed
002), and its rules: AST-level statements, per-hit samples, call stacks."""

import importlib.util
import io
import os
import sys
from contextlib import redirect_stdout
from pprint import pprint

import pytest

from tracepatch import tracefunc

SEED = os.path.join(os.path.dirname(__file__), "tracefunc_seed")


def load(name):
    """A module of the seed's examples, named as the seed's notebook cells were
    (so the stacks read as the seed prints them)."""
    spec = importlib.util.spec_from_file_location(f"seed_{name}", os.path.join(SEED,
                                                                               f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def show_res(x):
    for snippet, (hits, vars_map) in x.items():
        print('-', repr(snippet), hits)
        pprint(vars_map)


def output(fn):
    buf = io.StringIO()
    with redirect_stdout(buf):
        fn()
    return buf.getvalue()


def test_seed_simple_function():
    demo = load("2643322203").demo

    def example():
        stack, result = tracefunc(demo, 3, target_func=demo)[0]
        print(stack)
        show_res(result)

    assert output(example) == """\
demo (2643322203.py:1)
- 'total = 0' 1
{'total': [('int', '0')]}
- 'for i in range(n):' 4
{'i': [('int', '0'), ('int', '1'), ('int', '2'), ('int', '2')],
 'n': [('int', '3'), ('int', '3'), ('int', '3'), ('int', '3')],
 'range': [('type', "<class 'range'>"),
           ('type', "<class 'range'>"),
           ('type', "<class 'range'>"),
           ('type', "<class 'range'>")]}
- 'total += i' 3
{'i': [('int', '0'), ('int', '1'), ('int', '2')],
 'total': [('int', '0'), ('int', '1'), ('int', '3')]}
- 'return total' 1
{'total': [('int', '3')]}
"""


def one_liner(): x = 1; y = 2; return x + y  # noqa: E702,E704


def test_seed_statements_on_one_line_are_separate():
    def example():
        _, res = tracefunc(one_liner)[0]
        show_res(res)

    assert output(example) == """\
- 'x = 1' 1
{'x': [('int', '1')]}
- 'y = 2' 1
{'y': [('int', '2')]}
- 'return x + y' 1
{'x': [('int', '1')], 'y': [('int', '2')]}
"""


def test_seed_targeted_tracing_and_call_stacks():
    mod = load("1041865549")

    def example():
        for stack, res in tracefunc(mod.wrapper, 2, target_func=mod.target):
            print(stack)
            show_res(res)

    assert output(example) == """\
wrapper (1041865549.py:8)
target (1041865549.py:1)
- 'return x + 1' 1
{'x': [('int', '0')]}
wrapper (1041865549.py:8)
target (1041865549.py:1)
- 'return x + 1' 1
{'x': [('int', '1')]}
wrapper (1041865549.py:9)
another (1041865549.py:4)
target (1041865549.py:1)
- 'return x + 1' 1
{'x': [('int', '10')]}
"""


def outer(x):
    def inner(y):
        return x + y
    return inner(5)


def test_seed_nested_function():
    def example():
        _, res = tracefunc(outer, 10)[0]
        show_res(res)

    assert output(example) == """\
- 'def inner(y):' 1
{'inner': [('function', '<function outer.<locals>.inner>')]}
- 'return x + y' 1
{'x': [('int', '10')], 'y': [('int', '5')]}
- 'return inner(5)' 1
{'inner': [('function', '<function outer.<locals>.inner>')]}
"""


# --- beyond the seed's examples ---------------------------------------------


def squares(xs):
    ys = [x * x for x in xs]
    g = sum(v for v in ys)
    return g


def test_comprehensions_are_entries_with_one_hit_per_iteration():
    (_, res), = tracefunc(squares, [1, 2, 3])
    assert res == {
        "ys = [x * x for x in xs]": (1, {"ys": [("list", "[1, 4, 9]")]}),
        "[x * x for x in xs]": (3, {"x": [("int", "1"), ("int", "2"), ("int", "3")],
                                    "xs": [("list", "[1, 2, 3]")] * 3}),
        "g = sum(v for v in ys)": (1, {"g": [("int", "14")],
                                       "sum": [("builtin_function_or_method",
                                                "<built-in function sum>")]}),
        "(v for v in ys)": (3, {"v": [("int", "1"), ("int", "4"), ("int", "9")],
                                "ys": [("list", "[1, 4, 9]")] * 3}),
        "return g": (1, {"g": [("int", "14")]}),
    }


class Base:
    def f(self, a):
        return a


class Kid(Base):
    def __init__(self):
        self.__p = 1

    def f(self, a):
        b = super().f(a) + self.__p
        return b


def test_method_keeps_super_and_private_names():
    k = Kid()
    (_, res), = tracefunc(k.f, 4)
    assert res["b = super().f(a) + self.__p"][1]["b"] == [("int", "5")]
    assert k.f(4) == 5 and Kid.f.__code__.co_firstlineno == Kid.f.__code__.co_firstlineno


def make_closure():
    z = 5

    def clo(q):
        w = q + z
        return w
    return clo


clo = make_closure()


def use_closure():
    return clo(1) + clo(2)


def test_closure_target_sees_its_free_variables_and_each_call_is_an_entry():
    code = clo.__code__
    got = tracefunc(use_closure, target_func=clo)
    ln = use_closure.__code__.co_firstlineno + 1
    stack = f"use_closure (test_tracefunc.py:{ln})\nclo (test_tracefunc.py:{code.co_firstlineno})"
    assert got == [
        (stack, {"w = q + z": (1, {"w": [("int", "6")], "q": [("int", "1")],
                                   "z": [("int", "5")]}),
                 "return w": (1, {"w": [("int", "6")]})}),
        (stack, {"w = q + z": (1, {"w": [("int", "7")], "q": [("int", "2")],
                                   "z": [("int", "5")]}),
                 "return w": (1, {"w": [("int", "7")]})}),
    ]
    assert clo.__code__ is code


def boom(n):
    v = n
    raise ValueError(v)


def test_exception_samples_the_raising_statement_propagates_and_restores():
    code = boom.__code__
    before = sys.gettrace()
    with pytest.raises(ValueError):
        tracefunc(boom, 3)
    assert boom.__code__ is code and sys.gettrace() is before
    if sys.version_info >= (3, 12):
        assert all(sys.monitoring.get_tool(t) != "tracepatch.tracefunc" for t in range(6))


def boom_caught():
    try:
        boom(2)
    except ValueError:
        return "x"


def test_caught_exception_still_gives_the_call():
    (_, res), = tracefunc(boom_caught, target_func=boom)
    assert res == {"v = n": (1, {"v": [("int", "2")], "n": [("int", "2")]}),
                   "raise ValueError(v)": (1, {"ValueError": [("type", "<class 'ValueError'>")],
                                               "v": [("int", "2")]})}


def gen(n):
    for i in range(n):
        yield i


def test_generator_target_across_its_yields():
    (_, res), = tracefunc(lambda: list(gen(2)), target_func=gen)
    assert res == {"for i in range(n):": (3, {
        "i": [("int", "0"), ("int", "1"), ("int", "1")],
        "range": [("type", "<class 'range'>")] * 3, "n": [("int", "2")] * 3}),
        "yield i": (2, {"i": [("int", "0"), ("int", "1")]})}


def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


def test_recursion_gives_one_entry_per_call_with_the_stack():
    got = tracefunc(fact, 3, target_func=fact)
    ln = fact.__code__.co_firstlineno
    assert [stack for stack, _ in got] == [
        f"fact (test_tracefunc.py:{ln})",
        f"fact (test_tracefunc.py:{ln + 1})\nfact (test_tracefunc.py:{ln})",
        f"fact (test_tracefunc.py:{ln + 1})\nfact (test_tracefunc.py:{ln + 1})\n"
        f"fact (test_tracefunc.py:{ln})"]
    assert [r["return 1 if n <= 1 else n * fact(n - 1)"][1]["n"] for _, r in got] == [
        [("int", "3")], [("int", "2")], [("int", "1")]]


def test_long_reprs_are_cut():
    def big():
        s = "x" * 500
        return s
    (_, res), = tracefunc(big)
    kind, text = res['s = "x" * 500'][1]["s"][0]
    assert (kind, len(text), text[-3:]) == ("str", 120, "...")


def test_untraceable_target_is_a_type_error():
    with pytest.raises(TypeError, match="Python function"):
        tracefunc(len, [1])
