"""Layering: each layer imports only the layers below it (checked on the source, imports anywhere)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_UPPER = (
    "fleetd.daemon",
    "fleetd.api",
    "fleetd.cli",
    "fleetd.exporters",
    "fleetd.executor",
    "fleetd.curtail",
)


def _imports(folder: Path, root: Path = ROOT) -> list[tuple[str, str]]:
    """(file, imported module) for every import statement under `folder`, at any depth in the code."""
    out: list[tuple[str, str]] = []
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((str(path.relative_to(root)), node.module))
            elif isinstance(node, ast.Import):
                out.extend((str(path.relative_to(root)), a.name) for a in node.names)
    return out


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("drivers", (*_UPPER, "fleetd.storage", "fleetd.economics", "fleetd.config", "fleetd.health")),
        ("fleetd/economics", (*_UPPER, "fleetd.storage", "fleetd.drivers", "fleetd.transport")),
        ("fleetd/storage", _UPPER),
    ],
)
def test_layer_imports_nothing_above_it(folder: str, forbidden: tuple[str, ...]) -> None:
    bad = [(f, m) for f, m in _imports(ROOT / folder) if m.startswith(forbidden)]
    assert not bad, bad


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("def f():\n    from fleetd.daemon.events import Event\n")
    assert _imports(tmp_path, tmp_path) == [("x.py", "fleetd.daemon.events")]


def test_pydantic_is_a_declared_dependency() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "pydantic" for d in deps)


@pytest.mark.parametrize("module", ["numbers.py", "view_errors.py"])
def test_modules_every_layer_shares_import_nothing_of_fleetd(module: str) -> None:
    """Drivers, storage, economics and the views all import these: they must sit below every layer."""
    bad = [m for f, m in _imports(ROOT / "fleetd") if f == f"fleetd/{module}" and m.startswith("fleetd")]
    assert not bad, bad
