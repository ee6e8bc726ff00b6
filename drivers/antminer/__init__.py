"""Antminer stock firmware: driver and pure parsers."""

from fleetd.drivers.antminer.driver import AntminerDriver

__all__ = ["AntminerDriver"]
