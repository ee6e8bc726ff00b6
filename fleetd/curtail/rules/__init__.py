"""The curtailment rule kinds, one module each; `fleetd.curtail.policy.decide` arbitrates between them."""
