"""Tests of fleetd's daemon."""
