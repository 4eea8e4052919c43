"""ignore_modules / include_modules: whole dotted prefixes, and calls from
filtered code attaching to the nearest recorded ancestor."""

import types

from test_ext_common import (MODULE, PARENT, QUALNAME, record, run_as_script, session)


def make_module(name, source):
    mod = types.ModuleType(name)
    exec(source, mod.__dict__)
    return mod


# a.b.c call chain: app -> lib.helpers -> app.callback, plus look-alike names
app = make_module("fapp", "def top(lib, cb):\n    return lib.helper(cb)\n"
                          "def callback(x):\n    return x + 1\n")
lib = make_module("flib.helpers", "def helper(cb):\n    return inner(cb)\n"
                                  "def inner(cb):\n    return cb(1)\n")
lib_sub = make_module("flib.helpers.sub", "def f():\n    return 1\n")
lib_alike = make_module("flibx", "def f():\n    return 2\n")
lib_parent = make_module("flib", "def f(a, b, c):\n    return a.f() + b.f()\n")


def run_chain():
    return app.top(lib, app.callback)


def rows(s):
    return [(n[PARENT], n[MODULE], n[QUALNAME]) for n in s.nodes()]


def test_everything_without_filters():
    s, out = record(run_chain)
    assert out == 2
    assert rows(s) == [
        (-1, __name__, "run_chain"), (0, "fapp", "top"), (1, "flib.helpers", "helper"),
        (2, "flib.helpers", "inner"), (3, "fapp", "callback")]


def test_ignored_code_children_attach_to_nearest_recorded_ancestor():
    s, _ = record(run_chain, ignore_modules=["flib.helpers"])
    assert rows(s) == [(-1, __name__, "run_chain"), (0, "fapp", "top"), (1, "fapp", "callback")]


def test_prefix_matches_whole_components():
    def calls():
        return lib_parent.f(lib_sub, lib_alike, None)

    s, _ = record(calls, ignore_modules=["flib"])
    # "flib" covers flib and flib.helpers.sub, not flibx
    assert [(n[MODULE], n[QUALNAME]) for n in s.nodes()] == [
        (__name__, "test_prefix_matches_whole_components.<locals>.calls".split(".")[-1]
         if s.nodes()[0][QUALNAME] == "calls" else s.nodes()[0][QUALNAME]),
        ("flibx", "f")]
    s, _ = record(calls, ignore_modules=["flib.helpers"])
    assert [n[MODULE] for n in s.nodes()] == [__name__, "flib", "flibx"]
    s, _ = record(calls, ignore_modules=["fli"])
    assert [n[MODULE] for n in s.nodes()] == [__name__, "flib", "flib.helpers.sub", "flibx"]


def test_include_modules():
    s, _ = record(run_chain, include_modules=["fapp"])
    assert rows(s) == [(-1, "fapp", "top"), (0, "fapp", "callback")]
    s, _ = record(run_chain, include_modules=["flib"])
    assert rows(s) == [(-1, "flib.helpers", "helper"), (0, "flib.helpers", "inner")]


def test_include_and_ignore_together():
    s, _ = record(run_chain, include_modules=["flib", "fapp"], ignore_modules=["flib.helpers"])
    assert rows(s) == [(-1, "fapp", "top"), (0, "fapp", "callback")]


def test_filtered_code_is_recorded_again_by_a_later_session():
    # On 3.12+ the first session makes ignored code DISABLE its events; a
    # later session that wants it must see it anyway.
    for _ in range(50):
        s1, _ = record(run_chain, ignore_modules=["flib", "fapp"])
    assert rows(s1) == [(-1, __name__, "run_chain")]
    s2, _ = record(run_chain)
    assert len(rows(s2)) == 5


def test_two_sessions_with_different_filters_at_once():
    a = session(ignore_modules=["flib"])
    b = session(include_modules=["flib"])
    a.start()
    b.start()
    for _ in range(3):
        run_chain()
    b.stop()
    a.stop()
    assert rows(a) == [row for k in range(3) for row in (
        (-1, __name__, "run_chain"), (3 * k, "fapp", "top"), (3 * k + 1, "fapp", "callback"))]
    assert [r[2] for r in rows(b)] == ["helper", "inner"] * 3


if __name__ == "__main__":
    run_as_script(globals())
