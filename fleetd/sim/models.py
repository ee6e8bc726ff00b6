"""The emulated models: name (exactly as `fleetd scan` reports it) -> nominal figures and emulator class.

Adding a model is one entry in MODELS; the emulator is named "module:Class" and imported on first use,
so this module stays cheap to import and free of cycles.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from fleetd.sim.base import EmulatedMiner, ModelSpec


@dataclass(frozen=True, slots=True)
class SimModel:
    """One emulated model: its nominal figures and the class that speaks its firmware."""

    spec: ModelSpec
    emulator: str  # "module:Class"

    def emulator_class(self) -> type[EmulatedMiner]:
        module, _, name = self.emulator.partition(":")
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and issubclass(cls, EmulatedMiner)):
            raise TypeError(f"{self.emulator} is not an EmulatedMiner")
        return cls

    def quirks(self) -> frozenset[str]:
        """The protocol quirks its emulator can emit: the QUIRKS its module declares."""
        module = importlib.import_module(self.emulator.partition(":")[0])
        return frozenset(getattr(module, "QUIRKS", frozenset()))


def _entry(spec: ModelSpec, emulator: str) -> tuple[str, SimModel]:
    return spec.name, SimModel(spec, emulator)


MODELS: dict[str, SimModel] = dict(
    [
        # Bitmain spec sheet: 110 TH/s, 3250 W (29.5 J/TH); 3 boards x 114 BM1398 chips, 4 fans.
        _entry(
            ModelSpec("Antminer S19 Pro", "Bitmain", 110.0, 3250.0, idle_w=20.0, chips_per_board=114),
            "fleetd.sim.antminer:AntminerS19Pro",
        ),
        # Bitmain spec sheet: 200 TH/s, 3500 W (17.5 J/TH); 3 boards x 108 BM1368 chips (as captured).
        _entry(
            ModelSpec("Antminer S21", "Bitmain", 200.0, 3500.0, 20.0, chips_per_board=108, fan_rpm=7000),
            "fleetd.sim.antminer:AntminerS21",
        ),
        # MicroBT: M50S 126 TH/s at 26 J/TH; 3 boards, 2 fans; btminer API v2 (firmware 2023-08).
        _entry(
            ModelSpec("Whatsminer M50S_VH50", "MicroBT", 126.0, 3276.0, 25.0, 3, 135, 2, 6000, 1000, 3600),
            "fleetd.sim.whatsminer:WhatsminerM50S",
        ),
        # MicroBT: M60S ~180 TH/s at 18.5 J/TH; power-limit 3600 W as captured; API v3 (firmware 2025-12).
        _entry(
            ModelSpec("Whatsminer M60S_VK40", "MicroBT", 180.0, 3330.0, 25.0, 3, 225, 2, 6300, 1000, 3600),
            "fleetd.sim.whatsminer:WhatsminerM60S",
        ),
        # S19k Pro on LuxOS: the captured "default" profile, 121.8 TH/s at 2794 W; profiles 784-4195 W.
        _entry(
            ModelSpec("Antminer S19k Pro", "Bitmain", 121.8, 2794.0, 20.0, 3, 77, 4, 5800, 784.0, 4195.0),
            "fleetd.sim.luxos:LuxOSS19kPro",
        ),
        # Canaan A1566 (15-194): 194 TH/s at about 3700 W (captured WALLPOWER 3731); 3 boards x 160 chips.
        _entry(
            ModelSpec("AvalonMiner 15-194", "Canaan", 194.0, 3700.0, 30.0, 3, 160, 2, 4280),
            "fleetd.sim.avalon:AvalonA1566",
        ),
        # Canaan Avalon Q: 90 TH/s at 1674 W (Canaan spec sheet); 1 board x 160 chips, 4 fans.
        _entry(
            ModelSpec("Avalon Q", "Canaan", 90.0, 1674.0, 20.0, 1, 160, 4, 3000),
            "fleetd.sim.avalon:AvalonQ",
        ),
        # S21 Pro on Braiins OS 26.04: about 245 TH/s at 3480 W as captured (GetMinerStats: 244.6 TH/s
        # since restart, approximated consumption 3480 W); 3 boards x 65 BM1370 chips; power target
        # 1500-4000 W.
        _entry(
            ModelSpec("Antminer S21 Pro", "Bitmain", 245.0, 3480.0, 20.0, 3, 65, 4, 4800, 1500.0, 4000.0),
            "fleetd.sim.braiins:BraiinsS21Pro",
        ),
        # S19 on VNish 1.2.6: Bitmain spec sheet 95 TH/s at 3250 W; 3 boards x 76 BM1398 chips (VNish's
        # model topology), 4 fans; presets 1100-4690 W.
        _entry(
            ModelSpec("Antminer S19", "Bitmain", 95.0, 3250.0, 20.0, 3, 76, 4, 5800, 1100.0, 4690.0),
            "fleetd.sim.vnish:VNishS19",
        ),
    ]
)


# Other names a model goes by: the family name operators use (firmware reports the board variant).
ALIASES: dict[str, str] = {
    "LuxOS S19k Pro": "Antminer S19k Pro",
    "Braiins S21 Pro": "Antminer S21 Pro",
    "VNish S19": "Antminer S19",
    "Avalon A1566": "AvalonMiner 15-194",
    "Whatsminer M50S": "Whatsminer M50S_VH50",
    "Whatsminer M60S": "Whatsminer M60S_VK40",
}


def lookup(name: str) -> SimModel:
    """The model called `name` or an alias of it (case-insensitive); KeyError listing the names otherwise."""
    if name in MODELS:
        return MODELS[name]
    folded = {k.casefold(): v for k, v in MODELS.items()}
    folded.update({k.casefold(): MODELS[v] for k, v in ALIASES.items()})
    try:
        return folded[" ".join(name.split()).casefold()]
    except KeyError:
        known = ", ".join(sorted([*MODELS, *ALIASES]))
        raise KeyError(f"unknown model {name!r} (known: {known})") from None
