"""fleetd: fleet operations daemon for Bitcoin mining farms."""

__version__ = "0.1.0"
