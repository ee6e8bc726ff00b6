"""LuxOS (Luxor's Antminer firmware): CGMiner API on 4028 plus the session-guarded LuxOS extensions."""

from fleetd.drivers.luxos.driver import LuxOSDriver, SessionBusyError

__all__ = ["LuxOSDriver", "SessionBusyError"]
