"""Tests of fleetd's config."""
