"""Objects with object's own __repr__: the C rendering is byte for byte repr()."""

import sys

from test_ext_common import T, record, run_as_script, ARGS

safe_repr = T.safe_repr


class Plain:
    pass


class Outer:
    class Inner:
        class Deepest:
            pass


def local_class():
    class Local:
        pass

    return Local


class Slotted:
    __slots__ = ("a",)


# A class body run where globals have no __name__ (its __module__ falls back).
_ns = {"__builtins__": __builtins__}
exec("class NoModule:\n    pass\n", _ns)
NoModule = _ns["NoModule"]


class BuiltinModule:
    pass


BuiltinModule.__module__ = "builtins"


class IntModule:
    pass


IntModule.__module__ = 3


class StrSubclassModule:
    pass


class S(str):
    pass


StrSubclassModule.__module__ = S("sub.mod")


class Café:
    pass


class Meta(type):
    pass


class WithMeta(metaclass=Meta):
    pass


class ReprFromObject:
    __repr__ = object.__repr__


LongName = type("L" * 300, (), {})


def samples():
    return [object(), Plain(), Outer.Inner(), Outer.Inner.Deepest(), local_class()(), Slotted(),
            NoModule(), BuiltinModule(), IntModule(), StrSubclassModule(), Café(), WithMeta(),
            ReprFromObject(), LongName(), Plain, [Plain(), (Outer.Inner(), {1: Plain()})]]


def test_default_object_repr_matches_repr():
    for o in samples():
        assert safe_repr(o, 10000) == repr(o)


def test_default_object_repr_follows_renamed_classes():
    class Renamed:
        pass

    o = Renamed()
    assert safe_repr(o, 1000) == repr(o)
    Renamed.__qualname__ = "Other.Name"
    assert safe_repr(o, 1000) == repr(o) and "Other.Name object at 0x" in repr(o)
    Renamed.__module__ = "elsewhere"
    assert safe_repr(o, 1000) == repr(o) and repr(o).startswith("<elsewhere.Other.Name object")
    Renamed.__name__ = "N"
    Renamed.__module__ = "builtins"
    assert safe_repr(o, 1000) == repr(o) and repr(o).startswith("<N object at 0x")


def test_default_object_repr_is_cut_like_any_text():
    o = Plain()
    full = repr(o)
    for limit in (4, 5, 10, 20, len(full) - 1, len(full), len(full) + 1):
        want = full if len(full) <= limit else full[:limit - 3] + "..."
        assert safe_repr(o, limit) == want


def test_many_classes_share_no_name():
    classes = [type("C%d" % i, (), {"__module__": "m%d" % (i % 7)}) for i in range(500)]
    objs = [c() for c in classes]
    for _ in range(2):
        for o in objs:
            assert safe_repr(o, 1000) == repr(o)


def takes(a, b):
    return b


def test_arguments_and_returns_use_the_default_repr():
    p, q = Plain(), Outer.Inner()
    s, _ = record(takes, p, q, max_repr=1000)
    assert s.nodes()[0][ARGS] == "a=%r, b=%r" % (p, q)


if __name__ == "__main__":
    run_as_script(globals())
