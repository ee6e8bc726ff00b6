"""Alert-fatigue control: a finding starts only after it has held for a while, and clears only after it
has been absent for a while, so a flapping miner yields one finding, not an event per poll.

Also counts self-restarts (uptime resets) per miner over a sliding window, for diagnosis.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from fleetd.health.findings import Severity

MIN_DURATION_S = 120.0  # held this long before it starts (critical: immediately on its second sighting)
CLEAR_AFTER_S = 600.0  # absent this long before it clears
RESTART_WINDOW_S = 86_400.0


class Tracked(Protocol):
    """What the tracker follows: findings, and the trend job's warnings."""

    @property
    def key(self) -> str: ...

    @property
    def severity(self) -> Severity: ...


T = TypeVar("T", bound=Tracked)


class Transition(StrEnum):
    STARTED = "started"
    CLEARED = "cleared"


@dataclass(slots=True)
class _Track(Generic[T]):
    finding: T
    first_seen: float
    last_seen: float
    active: bool = False
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    miner_id: str
    finding: T
    transition: Transition
    at: float


@dataclass(frozen=True, slots=True)
class Active(Generic[T]):
    finding: T
    since: float


@dataclass(slots=True)
class Tracker(Generic[T]):
    """Start/clear state of every finding of every miner; call `update` once per miner per poll."""

    min_duration_s: float = MIN_DURATION_S
    clear_after_s: float = CLEAR_AFTER_S
    _tracks: dict[str, dict[str, _Track[T]]] = field(default_factory=dict)

    def update(self, miner_id: str, findings: Sequence[T], now: float) -> list[Change[T]]:
        tracks = self._tracks.get(miner_id)
        if tracks is None:
            if not findings:
                return []
            tracks = self._tracks[miner_id] = {}
        changes: list[Change[T]] = []
        for f in findings:
            t = tracks.get(f.key)
            if t is None:
                t = tracks[f.key] = _Track(f, now, now)
            else:
                t.last_seen, t.finding = now, f
            if not t.active and self._due(t, now):
                t.active, t.started_at = True, now
                changes.append(Change(miner_id, f, Transition.STARTED, now))
        for key, t in list(tracks.items()):
            if now - t.last_seen >= self.clear_after_s:
                del tracks[key]
                if t.active:
                    changes.append(Change(miner_id, t.finding, Transition.CLEARED, now))
        if not tracks:
            del self._tracks[miner_id]
        return changes

    def _due(self, t: _Track[T], now: float) -> bool:
        held = now - t.first_seen
        if t.finding.severity is Severity.CRITICAL:
            return held > 0  # two sightings: a single bad poll never pages anyone
        return held >= self.min_duration_s

    def forget(self, miner_id: str, now: float) -> list[Change[T]]:
        """The miner left the fleet: its active findings clear."""
        tracks = self._tracks.pop(miner_id, {})
        return [Change(miner_id, t.finding, Transition.CLEARED, now) for t in tracks.values() if t.active]

    def active(self, miner_id: str) -> list[Active[T]]:
        tracks = self._tracks.get(miner_id, {})
        return [Active(t.finding, t.started_at or t.first_seen) for t in tracks.values() if t.active]

    def all_active(self) -> dict[str, list[Active[T]]]:
        return {m: a for m in self._tracks if (a := self.active(m))}

    def miners(self) -> set[str]:
        """Miners with anything tracked (active, or seen and not yet started or expired)."""
        return set(self._tracks)


@dataclass(slots=True)
class RestartCounter:
    """Self-restarts per miner: uptime going backwards between polls, kept over a sliding window."""

    window_s: float = RESTART_WINDOW_S
    _uptime: dict[str, int] = field(default_factory=dict)
    _resets: dict[str, deque[float]] = field(default_factory=dict)

    def update(self, miner_id: str, uptime_s: int | None, now: float, *, commanded: bool = False) -> int:
        """Restarts within the window; `commanded`: a reboot fleetd asked for does not count."""
        prev = self._uptime.get(miner_id)
        resets = self._resets.get(miner_id)
        if isinstance(uptime_s, int) and not isinstance(uptime_s, bool) and uptime_s >= 0:
            self._uptime[miner_id] = uptime_s
            if prev is not None and uptime_s < prev and not commanded:
                if resets is None:
                    resets = self._resets[miner_id] = deque()
                resets.append(now)
        if resets is None:
            return 0
        while resets and now - resets[0] > self.window_s:
            resets.popleft()
        return len(resets)

    def forget(self, miner_id: str) -> None:
        self._uptime.pop(miner_id, None)
        self._resets.pop(miner_id, None)
