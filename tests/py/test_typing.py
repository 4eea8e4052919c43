"""Typing: the package ships py.typed and a stub for its C module, the stub
matches the built module, and the public API is fully annotated."""

import ast
import inspect
import typing
from pathlib import Path

import pytest

import tracepatch
from tracepatch import _tracepatch

PACKAGE = Path(tracepatch.__file__).resolve().parent


def stub_tree():
    return ast.parse((PACKAGE / "_tracepatch.pyi").read_text(encoding="utf-8"))


def stub_names(body):
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets)
    return names


def test_package_is_marked_typed_and_ships_the_stub():
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_tracepatch.pyi").is_file()


def test_stub_names_exactly_what_the_module_has():
    runtime = {n for n in dir(_tracepatch) if not n.startswith("__")}
    declared = stub_names(stub_tree().body) - {"Node"}  # Node: a type alias of the stub only
    assert declared == runtime


def test_stub_session_has_exactly_the_sessions_members():
    session = next(n for n in stub_tree().body
                   if isinstance(n, ast.ClassDef) and n.name == "Session")
    declared = {n.name for n in session.body if isinstance(n, ast.FunctionDef)} - {"__init__"}
    runtime = {n for n in dir(_tracepatch.Session) if not n.startswith("__")}
    assert declared == runtime


def test_stub_session_keywords_and_defaults_match_the_module():
    session = next(n for n in stub_tree().body
                   if isinstance(n, ast.ClassDef) and n.name == "Session")
    init = next(n for n in session.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    declared = {a.arg: ast.literal_eval(d) for a, d in
                zip(init.args.kwonlyargs, init.args.kw_defaults)}
    runtime = {name: p.default for name, p in
               inspect.signature(_tracepatch.Session).parameters.items()}
    assert declared == runtime


def public_callables():
    for name in tracepatch.__all__:
        obj = getattr(tracepatch, name)
        if inspect.isclass(obj):
            yield name, obj.__init__
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, property):
                    yield f"{name}.{attr}", member.fget
                elif isinstance(member, (staticmethod, classmethod)):
                    yield f"{name}.{attr}", member.__func__
                elif inspect.isfunction(member):
                    yield f"{name}.{attr}", member
        elif inspect.isfunction(obj):
            yield name, obj


@pytest.mark.parametrize("name,fn", list(public_callables()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_public_api_is_fully_annotated(name, fn):
    if not inspect.isfunction(fn):
        return  # inherited from a builtin (TracepatchWarning's __init__ is Warning's)
    sig = inspect.signature(fn)
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    assert missing == [], name
    assert sig.return_annotation is not inspect.Signature.empty, name
    typing.get_type_hints(fn)  # every annotation names something real
