"""The layers, kept by an AST scan of every module's imports (lazy ones included):

* only ``backends/`` and the migrations speak SQL: nothing else imports SQLAlchemy;
* the pipeline (media in, files out) knows nothing of the service around it: it
  imports nothing from ``service``, ``api`` or ``backends``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "reelscribe"


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import in the file; ``from . import x`` resolved."""
    package = ".".join(("reelscribe", *path.relative_to(PACKAGE).parent.parts))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name


def _violations(modules: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in modules:
        for line, name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(PACKAGE)}:{line} imports {name}")
    return found


def _modules(*, under: str = "", outside: tuple[str, ...] = ()) -> list[Path]:
    root = PACKAGE / under if under else PACKAGE
    paths = sorted(root.rglob("*.py"))
    return [p for p in paths if not any(p.is_relative_to(PACKAGE / o) for o in outside)]


def test_the_scan_sees_imports() -> None:
    # A scan that finds nothing would pass everything: the backends do import SQLAlchemy.
    assert _violations(_modules(under="backends/db"), ("sqlalchemy",))


def test_only_the_backends_and_migrations_import_sqlalchemy() -> None:
    modules = _modules(outside=("backends", "migrations"))
    assert len(modules) > 50
    assert _violations(modules, ("sqlalchemy",)) == []


@pytest.mark.parametrize("layer", ["reelscribe.service", "reelscribe.api", "reelscribe.backends"])
def test_the_pipeline_imports_no_outer_layer(layer: str) -> None:
    modules = _modules(under="pipeline")
    assert modules
    assert _violations(modules, (layer,)) == []
