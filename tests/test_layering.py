"""The house rules in code: wings named after the product's parts, every arrow one way.

Parses every module of ``appliance`` (imports inside functions and under
``TYPE_CHECKING`` included) and resolves relative imports, so ``from .. import sync`` is
caught as well as ``import appliance.sync``. The layers, lowest first::

    errors, clock, secrets, service     the ground everything stands on
    config                              the settings table, loading, secret checks
    schema                              the contract, drift, data checks (pure logic)
    health                              the state store, the status, notifications
    sync                                tunnel, source, replica, the passes, the agent
    web, indicator                      readers: they never import sync
    cli, doctor, demo                   the top: they wire everything together

A layer imports only layers below it. ``flash`` and ``image`` are the laptop's side: they
stand on ``errors`` alone (``image`` may read ``config`` to validate a config it bakes).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import appliance

PACKAGE = Path(appliance.__file__).parent
WINGS = ("sync", "schema", "health", "web", "indicator", "flash", "image")
GROUND = {"errors", "clock", "secrets", "service"}
_CORE = GROUND | {"config"}
# What each part may import (besides itself). Read it bottom-up: the house's floors.
ALLOWED = {
    **dict.fromkeys(GROUND, GROUND),
    "config": GROUND,
    "schema": _CORE,
    "health": _CORE | {"schema"},
    "sync": _CORE | {"schema", "health"},
    "indicator": _CORE | {"schema", "health"},
    "web": _CORE | {"schema", "health", "indicator"},  # the page shows the OLED's picture
    "cli": _CORE | {"schema", "health", "sync", "web", "indicator", "flash", "image", "doctor", "demo"},
    "doctor": _CORE | {"schema", "health", "sync", "indicator"},
    "demo": _CORE | {"schema", "health", "sync", "web", "indicator"},
    "flash": {"errors", "image"},  # the laptop's side: Python 3.9, none of the Pi's libraries
    "image": {"errors", "config", "flash"},
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(source: str, package: str) -> set[str]:
    """Return the absolute names imported by ``source``, a module of ``package``.

    ``from P import n`` names ``P.n`` when that is a module, else ``P``.
    """
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return out


def imported(path: Path) -> set[str]:
    """Return the modules of ``appliance`` that ``path`` imports."""
    here = _module(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names = imports_of(path.read_text(encoding="utf-8"), package)
    return {n for n in names if n.split(".")[0] == "appliance"}


def part(module: str) -> str:
    """Return the top-level part of ``appliance`` a module belongs to ("sync", "config" ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


EDGES = {m: {n for n in imported(p) if n != m} for m, p in MODULES.items()}


def test_layering_at_most_twelve_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


@pytest.mark.parametrize("wing", WINGS)
def test_layering_every_wing_says_what_it_owns(wing):
    init = PACKAGE / wing / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    assert len(doc.split()) >= 12, f"{wing}/__init__.py needs a docstring: what it owns"
    assert "never" in doc, f"{wing}/__init__.py should say what it must never import"


def test_layering_every_module_has_a_part():
    unknown = sorted({part(m) for m in MODULES if part(m)} - set(ALLOWED))
    assert unknown == []


def _allowed(src: str, dst: str) -> bool:
    return src == dst or dst == "" or dst in ALLOWED[src]


def test_layering_every_arrow_runs_one_way():
    wrong = sorted(
        f"{m} imports {n}" for m, names in EDGES.items() for n in names if not _allowed(part(m), part(n))
    )
    assert wrong == []


def test_layering_readers_never_import_the_sync():
    readers = ("web", "indicator")
    wrong = sorted(
        f"{m} imports {n}"
        for m, names in EDGES.items()
        for n in names
        if part(m) in readers and part(n) == "sync"
    )
    assert wrong == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _without_parents(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    # A module importing its own package (``from . import x``) is Python's normal order:
    # the package is initialised first. Wing ``__init__`` files hold only a docstring.
    return {m: {n for n in names if not m.startswith(n + ".")} for m, names in edges.items()}


def test_layering_no_import_circles():
    assert _cycles(_without_parents(EDGES)) == []


def test_layering_cycle_finder_finds_a_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_layering_catches_every_form_of_import():
    source = (
        "import appliance.sync.tunnel\nfrom .. import sync\nfrom ..sync.source import Source\n"
        "def f():\n    from ...appliance.sync import link\n    from appliance import health\n"
    )
    names = imports_of(source, "appliance.web")
    assert {
        "appliance.sync.tunnel",
        "appliance.sync",
        "appliance.sync.source",
        "appliance.sync.link",
        "appliance.health",
    } <= names
    assert not _allowed("web", part("appliance.sync.source"))
    assert _allowed("sync", "schema") and not _allowed("schema", "sync")
    assert not _allowed("flash", "config") and not _allowed("web", "sync")


@pytest.mark.parametrize("wing", [w for w in WINGS if w not in ("flash", "image", "web", "indicator")])
def test_layering_wing_init_holds_only_a_docstring(wing):
    tree = ast.parse((PACKAGE / wing / "__init__.py").read_text(encoding="utf-8"))
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert body == [], f"{wing}/__init__.py: keep it to the docstring (imports there make circles)"
