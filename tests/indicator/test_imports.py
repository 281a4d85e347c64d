"""Data flows one way: the indicator reads health and never imports the writers."""

from __future__ import annotations

import ast
from pathlib import Path

import appliance.indicator

WRITERS = {"sync", "source", "tunnel", "agent", "replica", "link"}


def test_indicator_never_imports_the_writers():
    package = Path(appliance.indicator.__file__).parent
    found = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if set(name.split(".")) & WRITERS:
                    found.append(f"{path.name}: {name}")
    assert found == []
