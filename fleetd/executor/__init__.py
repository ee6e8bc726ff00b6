"""Acting on curtailment decisions: sends a step's commands through the drivers and verifies them."""

from fleetd.executor.runner import Outcome, command_kind, execute

__all__ = ["Outcome", "command_kind", "execute"]
