"""Braiins OS (BOS/BOS+): telemetry over its CGMiner-compatible API, control over its public REST API."""

from fleetd.drivers.braiins.driver import BraiinsDriver

__all__ = ["BraiinsDriver"]
