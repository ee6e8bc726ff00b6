"""What health checks report: a Finding per problem, with its cause and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fleetd.model import Component


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem on one miner; `key` (code + subject) is what the tracker follows over time."""

    code: str  # stable machine name, e.g. "board_dead", "fan_failed"
    severity: Severity
    component: Component
    cause: str  # plain language: what is wrong and the likely reason
    action: str  # what the operator should do
    subject: str = ""  # which part, e.g. "board 1", "fan 0"; empty for the whole miner
    values: tuple[tuple[str, float | str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.code}:{self.subject}" if self.subject else self.code

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "component": str(self.component),
            "subject": self.subject,
            "cause": self.cause,
            "action": self.action,
            "values": dict(self.values),
        }
