"""Curtailment decisions: pure functions of fleet state, prices, rules, controls and the clock.

Nothing in this package does I/O or imports the daemon, drivers, storage or exporters; the executor
(`fleetd.executor`) acts on its decisions through the drivers.
"""
