"""Miner health: diagnosis of one snapshot, alert-fatigue tracking, and trends over stored history."""
