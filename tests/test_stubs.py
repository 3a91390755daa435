"""The hand-written stubs (``python/tokforge/_core.pyi``) describe exactly what the native module
registers: the same public names, the same members per class (properties as properties), and
the same parameters (names, kinds, which have defaults) wherever the native object carries a
``__text_signature__``. A binding changed without its stub fails here."""

from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path

import pytest
from tokforge import _core

STUB = Path(_core.__file__).with_name("_core.pyi")
TREE = ast.parse(STUB.read_text(encoding="utf-8"))

Params = list[tuple[str, inspect._ParameterKind, bool]]


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _stub_names() -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for node in TREE.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


STUBS = _stub_names()
CLASSES = sorted(n for n, v in STUBS.items() if isinstance(v, ast.ClassDef))
FUNCTIONS = sorted(n for n, v in STUBS.items() if isinstance(v, ast.FunctionDef))


def _decorators(fn: ast.FunctionDef) -> set[str]:
    return {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}


def _stub_params(fn: ast.FunctionDef, *, drop_self: bool) -> Params:
    a = fn.args
    P = inspect.Parameter
    positional = [(x, P.POSITIONAL_ONLY) for x in a.posonlyargs]
    positional += [(x, P.POSITIONAL_OR_KEYWORD) for x in a.args]
    n_default = len(a.defaults)
    out: Params = [
        (x.arg, kind, i >= len(positional) - n_default) for i, (x, kind) in enumerate(positional)
    ]
    if drop_self:
        out = out[1:]
    if a.vararg:
        out.append((a.vararg.arg, P.VAR_POSITIONAL, False))
    out += [(x.arg, P.KEYWORD_ONLY, d is not None) for x, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        out.append((a.kwarg.arg, P.VAR_KEYWORD, False))
    return out


def _native_params(obj) -> Params | None:
    """Parameters from ``__text_signature__`` (``None`` if the object has none), without
    ``self`` / ``cls``; positional-only and positional-or-keyword count as the same kind when the
    native signature does not say (PyO3 marks only ``$self`` positional-only)."""
    if getattr(obj, "__text_signature__", None) is None:
        return None
    sig = inspect.signature(obj)
    return [
        (p.name, p.kind, p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
        if p.name not in ("self", "cls", "$self", "$cls")
    ]


def _same(native: Params, stub: Params) -> bool:
    P = inspect.Parameter
    norm = {P.POSITIONAL_ONLY: P.POSITIONAL_OR_KEYWORD}
    return [(n, norm.get(k, k), d) for n, k, d in native] == [
        (n, norm.get(k, k), d) for n, k, d in stub
    ]


def test_stub_and_native_module_have_the_same_public_names():
    native = _public(dir(_core)) | {"__version__"}
    stub = _public(STUBS) | ({"__version__"} & set(STUBS))
    assert sorted(native - stub) == [], "registered by _core but missing from _core.pyi"
    assert sorted(stub - native) == [], "in _core.pyi but not registered by _core"


@pytest.mark.parametrize("name", CLASSES)
def test_class_members_match_the_stub(name):
    cls = getattr(_core, name)
    node = STUBS[name]
    assert isinstance(cls, type)
    stub_members = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
    native = _public(vars(cls))
    if issubclass(cls, BaseException):
        native = set()  # exception classes add nothing public of their own
    assert sorted(native - set(stub_members)) == [], f"{name}: members missing from the stub"
    assert sorted(_public(stub_members) - native) == [], f"{name}: stub members not in _core"
    for m in sorted(native):
        raw = vars(cls)[m]
        is_property = isinstance(raw, (types.GetSetDescriptorType, property))
        decorators = _decorators(stub_members[m])
        assert is_property == ("property" in decorators), f"{name}.{m}: property or method"
        is_static = isinstance(raw, staticmethod)
        assert is_static == ("staticmethod" in decorators), f"{name}.{m}: staticmethod or not"


def _signature_cases():
    cases = []
    for name in FUNCTIONS:
        cases.append((name, getattr(_core, name, None), STUBS[name], False))
    for cname in CLASSES:
        cls = getattr(_core, cname, None)
        for f in STUBS[cname].body:
            if not isinstance(f, ast.FunctionDef) or "property" in _decorators(f):
                continue
            if f.name == "__init__":
                cases.append((f"{cname}()", cls, f, True))
            elif not f.name.startswith("_"):
                static = "staticmethod" in _decorators(f)
                cases.append((f"{cname}.{f.name}", getattr(cls, f.name, None), f, not static))
    return cases


CASES = _signature_cases()


@pytest.mark.parametrize(("name", "obj", "node", "drop_self"), CASES, ids=[c[0] for c in CASES])
def test_parameters_match_the_stub(name, obj, node, drop_self):
    assert obj is not None, f"{name} is in the stub but not in _core"
    native = _native_params(obj)
    stub = _stub_params(node, drop_self=drop_self)
    if native is None:
        # a class without a constructor signature must not promise one in the stub
        assert not name.endswith("()"), f"{name}: the stub has __init__, _core has no #[new]"
        return
    assert _same(native, stub), f"{name}: _core has {native}, the stub says {stub}"
