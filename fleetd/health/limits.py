"""Health limits of a model: the catalog's [models.<key>.limits], else conservative defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fleetd.economics.catalog import Catalog, CatalogModel


@dataclass(frozen=True, slots=True)
class Limits:
    chip_temp_max_c: float = 95.0
    board_temp_max_c: float = 90.0
    inlet_temp_max_c: float = 40.0
    fan_max_rpm: float | None = None  # unknown: no "fan at its limit" finding
    boards: int | None = None
    chips_per_board: int | None = None


DEFAULT = Limits()
# Whatsminer chips run near 90 C in normal operation; the firmware protects well above that.
_VENDOR_DEFAULT = {"whatsminer": Limits(chip_temp_max_c=105.0, board_temp_max_c=90.0)}
_INTS = ("boards", "chips_per_board")


def from_model(model: CatalogModel | None, vendor: str = "") -> Limits:
    base = _VENDOR_DEFAULT.get(vendor, DEFAULT)
    if model is None or not model.limits:
        return base
    values = {k: int(v) if k in _INTS else v for k, v in model.limits}
    return replace(base, **values)


class LimitsLookup:
    """Limits by the model string firmware reports, cached per string (a fleet has few models)."""

    def __init__(self, catalog: Catalog | None) -> None:
        self.catalog = catalog
        self._cache: dict[tuple[str, str], Limits] = {}

    def __call__(self, model: str, vendor: str = "") -> Limits:
        hit = self._cache.get((model, vendor))
        if hit is None:
            found = self.catalog.find(model) if self.catalog is not None and model else None
            hit = self._cache[(model, vendor)] = from_model(found, vendor)
        return hit
