"""The built wheel holds what an installed fleetd needs (and no bare top-level packages); the script runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fleetd

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "fleetd", "drivers", "config")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of the tree, so the build leaves nothing in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    out = tmp / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out)]
    proc = subprocess.run([*cmd, str(src)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = list(out.glob("fleetd-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_ships_drivers_catalog_and_captures(wheel: Path) -> None:
    names = _names(wheel)
    for rel in ("__init__.py", "base.py", "cgminer.py", "antminer/__init__.py", "antminer/parse.py"):
        assert f"fleetd/drivers/{rel}" in names
    assert {p.relative_to(ROOT / "drivers").as_posix() for p in (ROOT / "drivers").rglob("*.py")} == {
        n.removeprefix("fleetd/drivers/") for n in names if n.startswith("fleetd/drivers/")
    }
    assert "fleetd/defaults/models.toml" in names
    captures = {p.name for p in (ROOT / "fleetd" / "sim" / "captures").glob("*.json")}
    assert captures and {f"fleetd/sim/captures/{c}" for c in captures} <= names


def test_wheel_has_no_bare_top_level_packages(wheel: Path) -> None:
    tops = {n.split("/", 1)[0] for n in _names(wheel)}
    assert tops == {"fleetd", f"fleetd-{fleetd.__version__}.dist-info"}
    with zipfile.ZipFile(wheel) as zf:
        info = f"fleetd-{fleetd.__version__}.dist-info"
        assert zf.read(f"{info}/top_level.txt").decode().split() == ["fleetd"]
        assert "fleetd = fleetd.cli:main" in zf.read(f"{info}/entry_points.txt").decode()


def test_installed_wheel_imports_drivers_and_finds_its_data(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target"]
    proc = subprocess.run([*pip, str(target), str(wheel)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = (
        "import fleetd, fleetd.drivers.antminer, fleetd.sim.models;"
        "from importlib.resources import files;"
        "assert (files('fleetd.defaults') / 'models.toml').is_file();"
        "assert (files('fleetd.sim') / 'captures' / 'antminer_s19pro_stats.json').is_file();"
        "print(fleetd.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().startswith(str(target))


def test_console_script_runs() -> None:
    script = shutil.which("fleetd", path=str(Path(sys.executable).parent)) or shutil.which("fleetd")
    assert script, "the fleetd console script is not installed"
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"fleetd {fleetd.__version__}"
