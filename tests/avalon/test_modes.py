"""Pure: which Avalon work mode a power limit picks, and the driver's figures against the catalog's."""

from __future__ import annotations

import pytest
from fleetd.drivers.avalon.modes import MODE_WATTS, mode_watts, pick_mode

from fleetd.economics.catalog import Catalog
from fleetd.model import Mode


@pytest.mark.parametrize(
    ("model", "watts", "mode"),
    [
        ("AvalonMiner 15-194", 5000, Mode.HIGH),
        ("AvalonMiner 15-194", 4104, Mode.HIGH),
        ("AvalonMiner 15-194", 4103, Mode.NORMAL),
        ("AvalonMiner 15-194", 3420, Mode.NORMAL),
        ("AvalonMiner 15-194", 3000, Mode.LOW),
        ("AvalonMiner 15-194", 2462, Mode.LOW),
        ("AvalonMiner 15-194", 2461, None),
        ("Avalon A1466", 3500, Mode.NORMAL),
        ("Avalon Q", 5000, Mode.NORMAL),  # the Q's Super draw is not known: never picked
        ("Avalon Q", 1673, Mode.LOW),
        ("Avalon Q", 800, Mode.LOW),
        ("Avalon Q", 799, None),
        ("Avalon Q", 0, None),
    ],
)
def test_the_mode_with_the_most_power_within_the_limit(model: str, watts: int, mode: Mode | None) -> None:
    chosen = pick_mode(mode_watts(model), watts)
    assert (chosen.mode if chosen else None) is mode
    if chosen is not None:
        assert chosen.watts <= watts and chosen.value == {Mode.LOW: 0, Mode.NORMAL: 1, Mode.HIGH: 2}[mode]


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("AvalonMiner 15-194", "a1566"),
        ("Avalon A1566", "a1566"),
        ("A1566", "a1566"),
        ("AvalonMiner 1466", "a1466"),
        ("Avalon Q", "q"),
        ("AvalonQ", "q"),
    ],
)
def test_model_spellings(model: str, key: str) -> None:
    assert mode_watts(model) == tuple(sorted(MODE_WATTS[key], key=lambda m: m.watts))


@pytest.mark.parametrize("model", ["Avalon Nano 3", "AvalonMiner 12-90", "", "Antminer S19"])
def test_unknown_models_have_no_modes(model: str) -> None:
    assert mode_watts(model) == ()
    assert pick_mode((), 10_000) is None


@pytest.mark.parametrize(
    ("key", "catalog_key"), [("a1466", "avalon_a1466"), ("a1566", "avalon_a1566"), ("q", "avalon_q")]
)
def test_figures_are_the_catalogs(key: str, catalog_key: str) -> None:
    found = Catalog.load().find(catalog_key)
    assert found is not None
    table = dict(found.modes)
    ours = {m.mode.value: m.watts for m in MODE_WATTS[key]}
    theirs = {mode: n.power_w for mode, n in table.items() if mode in ("low", "normal", "high")}
    assert ours == theirs
    for mode in ours:
        source = table[mode].source
        assert source and (mode == "normal" or source.startswith(("estimate:", "captured:")))
