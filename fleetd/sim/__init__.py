"""Emulated miners speaking the vendors' wire protocols byte-true (for sim, demo, bench, tests)."""
