"""Tests of fleetd's storage."""
