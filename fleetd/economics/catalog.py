"""The model catalog (config/models.toml): nominal hashrate and power per model and mode, with sources.

An optional [models.<key>.limits] table holds health limits (chip/board/inlet temperature, fan RPM,
boards and chips per board) that fleetd.health compares readings against.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

# config/models.toml in the source tree; installed as package data of fleetd.defaults.
DEFAULT_CATALOG = Path(str(files("fleetd.defaults") / "models.toml"))
_VENDOR_WORDS = re.compile(r"^(antminer|bitmain|whatsminer|microbt|avalonminer|avalon|canaan)\s*", re.I)
_NOISE = re.compile(r"[\s_\-]+")
SLEEP = "sleep"  # idle draw while asleep; hashrate 0, and never replaced by the normal figures
LIMITS = "limits"  # not a mode: health limits of the model
LIMIT_KEYS = (
    "chip_temp_max_c",
    "board_temp_max_c",
    "inlet_temp_max_c",
    "fan_max_rpm",
    "boards",
    "chips_per_board",
)


class CatalogError(ValueError):
    """The catalog file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Nominal:
    hashrate_ths: float
    power_w: float
    source: str

    @property
    def efficiency_j_per_th(self) -> float | None:
        return self.power_w / self.hashrate_ths if self.hashrate_ths > 0 else None


@dataclass(frozen=True, slots=True)
class CatalogModel:
    key: str
    name: str
    modes: tuple[tuple[str, Nominal], ...]
    aliases: tuple[str, ...] = ()
    limits: tuple[tuple[str, float], ...] = ()  # (key in LIMIT_KEYS, value)

    @property
    def mode_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.modes)

    def nominal(self, mode: str = "normal", *, fallback: bool = True) -> Nominal | None:
        """Figures for `mode`; a missing low/high mode falls back to normal (sleep never does)."""
        table = dict(self.modes)
        if mode in table or mode == SLEEP or not fallback:
            return table.get(mode)
        return table.get("normal")


def normalize(model: str) -> str:
    """Comparable form of a model string: no vendor word, lower case, no spaces/dashes/underscores."""
    text = model.strip()
    while True:
        stripped = _VENDOR_WORDS.sub("", text)
        if stripped == text:
            break
        text = stripped
    return _NOISE.sub("", text).lower()


def _limits(key: str, table: Any) -> tuple[tuple[str, float], ...]:
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise CatalogError(f"catalog {key}.limits is not a table")
    out = []
    for name, value in table.items():
        if name not in LIMIT_KEYS:
            known = ", ".join(LIMIT_KEYS)
            raise CatalogError(f"catalog {key}.limits: unknown limit {name!r} (known: {known})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 100_000:
            raise CatalogError(f"catalog {key}.limits.{name}: must be a number in (0, 100000)")
        out.append((name, float(value)))
    return tuple(out)


class Catalog:
    """Model lookup by the strings firmware reports; results are cached per string."""

    def __init__(self, models: list[CatalogModel]) -> None:
        self.models = models
        self._index: dict[str, CatalogModel] = {}
        for m in models:
            for name in (m.name, m.key, *m.aliases):
                self._index.setdefault(normalize(name), m)
        self._cache: dict[str, CatalogModel | None] = {}

    def find(self, model: str) -> CatalogModel | None:
        if model in self._cache:
            return self._cache[model]
        hit = self._index.get(normalize(model))
        if hit is None and "_" in model:  # Whatsminer board variant: M50S_VH50 -> M50S
            hit = self._index.get(normalize(model.split("_", 1)[0]))
        self._cache[model] = hit
        return hit

    def nominal(self, model: str, mode: str = "normal", *, fallback: bool = True) -> Nominal | None:
        m = self.find(model)
        return m.nominal(mode, fallback=fallback) if m else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        models = []
        table = data.get("models")
        if not isinstance(table, dict):
            raise CatalogError("catalog has no [models] table")
        for key, entry in table.items():
            if not isinstance(entry, dict):
                raise CatalogError(f"catalog entry {key!r} is not a table")
            modes = []
            for mode, spec in entry.items():
                if not isinstance(spec, dict) or mode == LIMITS:
                    continue
                try:
                    ths, watts = float(spec["hashrate_ths"]), float(spec["power_w"])
                    source = str(spec["source"])
                except (KeyError, TypeError, ValueError) as exc:
                    msg = f"catalog {key}.{mode}: needs hashrate_ths, power_w, source ({exc})"
                    raise CatalogError(msg) from None
                if not source.strip():
                    raise CatalogError(f"catalog {key}.{mode}: source is empty")
                if not 0 < watts < 100_000:
                    raise CatalogError(f"catalog {key}.{mode}: power_w must be in (0, 100000)")
                if mode == SLEEP and ths != 0:
                    raise CatalogError(f"catalog {key}.sleep: hashrate_ths must be 0 (asleep hashes nothing)")
                if mode != SLEEP and not 0 < ths < 10_000:
                    raise CatalogError(f"catalog {key}.{mode}: hashrate_ths must be in (0, 10000)")
                modes.append((mode, Nominal(ths, watts, source)))
            if not modes:
                raise CatalogError(f"catalog entry {key!r} has no modes")
            name, aliases = str(entry.get("name", key)), tuple(entry.get("aliases", ()))
            models.append(CatalogModel(key, name, tuple(modes), aliases, _limits(key, entry.get(LIMITS))))
        return cls(models)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalog:
        p = Path(path) if path else DEFAULT_CATALOG
        try:
            return cls.from_dict(tomllib.loads(p.read_text()))
        except OSError as exc:
            raise CatalogError(f"cannot read catalog {p}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"catalog {p} is not valid TOML: {exc}") from None
