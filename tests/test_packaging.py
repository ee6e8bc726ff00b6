"""The package list in pyproject.toml must match the source tree (drivers/ maps to fleetd.drivers)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree_packages() -> set[str]:
    found = set()
    for top, name in (("fleetd", "fleetd"), ("drivers", "fleetd.drivers"), ("config", "fleetd.defaults")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    return found


def test_pyproject_lists_every_package() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(cfg["packages"]) == _tree_packages()
    assert cfg["package-dir"]["fleetd.drivers"] == "drivers"
    assert cfg["package-dir"]["fleetd.defaults"] == "config"


def test_catalog_ships_with_the_package() -> None:
    from importlib.resources import files

    assert (files("fleetd.defaults") / "models.toml").is_file()


def test_drivers_import_under_fleetd() -> None:
    import fleetd.drivers
    from fleetd.drivers.base import Driver

    assert Path(fleetd.drivers.__file__).parent.name == "drivers"
    assert Driver.__module__ == "fleetd.drivers.base"
