"""Network sources of hashprice and electricity prices; each value carries its time and source."""

from fleetd.economics.sources.base import RateLimited, SourceError

__all__ = ["RateLimited", "SourceError"]
