"""Data flows one way (BRIEF 2): the readers never import the writers.

Parses every module of the reader packages (imports inside functions included) and
resolves relative imports, so ``from .. import sync`` is caught as well as
``import appliance.sync``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import appliance

PACKAGE = Path(appliance.__file__).parent
WRITERS = {"sync", "source", "tunnel", "link", "agent"}
READERS = [p for p in ("web", "indicator", "notify") if (PACKAGE / p).exists()
           or (PACKAGE / f"{p}.py").exists()]


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Return the absolute names of every module ``path`` imports."""
    here = _module(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    return imports_of(path.read_text(encoding="utf-8"), package)


def imports_of(source: str, package: str) -> set[str]:
    """Return the absolute names imported by ``source``, a module of ``package``."""
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
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}  # "from .. import sync"
    return out


def _is_writer(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "appliance" and len(parts) > 1 and parts[1] in WRITERS


def _files(reader: str) -> list[Path]:
    target = PACKAGE / reader
    return sorted(target.rglob("*.py")) if target.is_dir() else [PACKAGE / f"{reader}.py"]


@pytest.mark.parametrize("reader", READERS)
def test_layering_readers_never_import_writers(reader):
    found = [f"{path.relative_to(PACKAGE.parent)} imports {name}"
             for path in _files(reader) for name in sorted(imported(path)) if _is_writer(name)]
    assert found == []


def test_layering_catches_every_form_of_import():
    source = ("import appliance.tunnel\nfrom .. import sync\nfrom ..source import Shape\n"
              "def f():\n    from ...appliance import link\n    from appliance import agent\n")
    names = imports_of(source, "appliance.web")
    assert {"appliance.tunnel", "appliance.sync", "appliance.source", "appliance.agent"} <= names
    assert [n for n in names if _is_writer(n)]
    assert not [n for n in imports_of("from ..health import build\nfrom . import views\n",
                                      "appliance.web") if _is_writer(n)]
