"""VNish (Antminer aftermarket firmware): its web API on port 80, unlocked with the web password."""

from fleetd.drivers.vnish.driver import VNishDriver

__all__ = ["VNishDriver"]
