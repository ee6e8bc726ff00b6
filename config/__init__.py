"""Shipped defaults: the example configuration and the model catalog (installed as `fleetd.defaults`)."""
