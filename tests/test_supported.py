"""README's supported-miners table is generated from the drivers' declarations and must match them."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleetd.drivers import driver_classes

from fleetd.cli import main
from fleetd.cli.drivers import BEGIN, END, markdown, replace_table, rows
from fleetd.model import Capability

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_table_is_the_generated_one() -> None:
    text = README.read_text()
    assert BEGIN in text and END in text, "README lost the SUPPORTED_BEGIN/SUPPORTED_END markers"
    current = text[text.index(BEGIN) + len(BEGIN) + 1 : text.index(END)]
    assert current == markdown(), (
        "README's supported-miners table disagrees with the drivers' declarations; "
        "run `fleetd drivers --update-readme README.md`"
    )


def test_every_driver_declares_what_the_table_shows() -> None:
    for cls in driver_classes():
        for attr in ("hardware", "firmware", "models", "reads", "controls"):
            assert getattr(cls, attr), f"{cls.__name__} declares no {attr}"


def test_capability_columns_follow_the_mixins() -> None:
    by_name = {r["driver"]: r for r in rows()}
    for cls in driver_classes():
        declared = {c.value for c in cls.declared_capabilities()}
        assert set(by_name[cls.name]["capabilities"]) == declared
    assert set(by_name["braiins"]["capabilities"]) == {Capability.SLEEP.value, Capability.POWER_LIMIT.value}
    assert by_name["cgminer"]["capabilities"] == []
    line = next(li for li in markdown().splitlines() if li.startswith("| `vnish` "))
    assert "| yes | yes | - |" in line


def test_update_readme_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text(f"# x\n\nbefore\n{BEGIN}\nstale | table\n{END}\nafter\n")
    assert main(["drivers", "--update-readme", str(path)]) == 0
    assert path.read_text() == f"# x\n\nbefore\n{BEGIN}\n{markdown()}{END}\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        replace_table("no markers here", markdown())


def test_markdown_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drivers", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown()
