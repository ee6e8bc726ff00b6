"""The model catalog (config/models.toml): nominal hashrate and power per model and mode, with sources."""

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


class CatalogError(ValueError):
    """The catalog file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Nominal:
    hashrate_ths: float
    power_w: float
    source: str

    @property
    def efficiency_j_per_th(self) -> float:
        return self.power_w / self.hashrate_ths


@dataclass(frozen=True, slots=True)
class CatalogModel:
    key: str
    name: str
    modes: tuple[tuple[str, Nominal], ...]
    aliases: tuple[str, ...] = ()

    def nominal(self, mode: str = "normal") -> Nominal | None:
        table = dict(self.modes)
        return table.get(mode) or table.get("normal")


def normalize(model: str) -> str:
    """Comparable form of a model string: no vendor word, lower case, no spaces/dashes/underscores."""
    text = model.strip()
    while True:
        stripped = _VENDOR_WORDS.sub("", text)
        if stripped == text:
            break
        text = stripped
    return _NOISE.sub("", text).lower()


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

    def nominal(self, model: str, mode: str = "normal") -> Nominal | None:
        m = self.find(model)
        return m.nominal(mode) if m else None

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
                if not isinstance(spec, dict):
                    continue
                try:
                    ths, watts = float(spec["hashrate_ths"]), float(spec["power_w"])
                    source = str(spec["source"])
                except (KeyError, TypeError, ValueError) as exc:
                    msg = f"catalog {key}.{mode}: needs hashrate_ths, power_w, source ({exc})"
                    raise CatalogError(msg) from None
                nominal = Nominal(ths, watts, source)
                if nominal.hashrate_ths <= 0 or nominal.power_w <= 0 or not nominal.source.strip():
                    raise CatalogError(f"catalog {key}.{mode}: values must be > 0 and source non-empty")
                modes.append((mode, nominal))
            if not modes:
                raise CatalogError(f"catalog entry {key!r} has no modes")
            models.append(
                CatalogModel(key, str(entry.get("name", key)), tuple(modes), tuple(entry.get("aliases", ())))
            )
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
