"""Canaan Avalon (cgminer API on 4028): A13xx-A15xx and the Avalon Q / Nano home miners."""

from fleetd.drivers.avalon.driver import AvalonDriver

__all__ = ["AvalonDriver"]
