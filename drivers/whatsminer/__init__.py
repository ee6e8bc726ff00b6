"""MicroBT Whatsminer: btminer API v2 and v3."""

from fleetd.drivers.whatsminer.driver import WhatsminerDriver

__all__ = ["WhatsminerDriver"]
