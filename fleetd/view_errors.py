"""Per-miner failure isolation for the views (and the per-miner passes behind them: health diagnosis,
economics): a miner whose record cannot be read is skipped, counted per view (fleetd_view_errors_total) and
logged once, and every other miner is handled as usual."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("fleetd.views")

VIEWS = ("api", "metrics", "mqtt", "health", "economics")
_LOGGED_MAX = 10_000  # (view, miner) pairs remembered so that each is logged once


class ViewErrors:
    """Counts of records skipped per view (VIEWS), shared by the process's views."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._logged: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # the metrics renderer runs in a worker thread

    def record(self, view: str, miner_id: str, exc: BaseException) -> None:
        """One record of `miner_id` skipped in `view` because rendering it raised `exc`."""
        with self._lock:
            self.counts[view] = self.counts.get(view, 0) + 1
            key = (view, miner_id)
            first = key not in self._logged and len(self._logged) < _LOGGED_MAX
            if first:
                self._logged.add(key)
        if first:
            log.error(
                "%s: skipping miner %s, whose figures cannot be rendered (%s: %s); the others are unaffected",
                view,
                miner_id,
                type(exc).__name__,
                exc,
            )

    def snapshot(self) -> dict[str, int]:
        """Counts per view, every view included (a counter exists from the start, for alert rules)."""
        with self._lock:
            return dict.fromkeys(VIEWS, 0) | self.counts


VIEW_ERRORS = ViewErrors()
