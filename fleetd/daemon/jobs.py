"""Periodic jobs: the scheduler (rollup flushes, price refreshes) and discovery scans."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fleetd.config import Config
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.health_hooks import TREND_FIRST_S, TREND_INTERVAL_S
from fleetd.daemon.poller import Poller

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from fleetd.economics.service import EconomicsService

log = logging.getLogger("fleetd.daemon")

ROLLUP_FLUSH_S = 300.0  # hourly rollup rows are topped up this often (and at stop)


class PeriodicJobs:
    """Daemon part: what runs on a timer rather than every poll cycle."""

    config: Config
    poller: Poller
    scheduler: AsyncIOScheduler | None
    economics: EconomicsService | None

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        sched = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler = sched
        sched.add_job(self._write_rollups, "interval", seconds=ROLLUP_FLUSH_S, id="rollups")
        soon = datetime.now(UTC) + timedelta(seconds=TREND_FIRST_S)  # after a restart: from stored history
        sched.add_job(
            self._trend_job, "interval", seconds=TREND_INTERVAL_S, id="health-trends", next_run_time=soon
        )
        if self.economics is not None:
            self.economics.schedule(sched)  # hashprice and electricity price refreshes
        self._schedule_discovery()
        sched.start()

    def _schedule_discovery(self) -> None:
        from datetime import UTC, datetime

        sched = self.scheduler
        assert sched is not None
        for job in sched.get_jobs():
            if job.id.startswith("discovery-"):
                job.remove()
        for i, d in enumerate(self.config.discovery):
            sched.add_job(
                self._discover_job,
                "interval",
                args=[i],
                seconds=d.interval_s,
                id=f"discovery-{i}",
                next_run_time=datetime.now(UTC),
                misfire_grace_time=None,
            )

    async def discover_now(self) -> int:
        """Scan every discovery range once; returns how many new miners were added."""
        added = 0
        for i in range(len(self.config.discovery)):
            added += await self._discover(i)
        return added

    async def _discover_job(self, index: int) -> None:
        try:
            await self._discover(index)
        except asyncio.CancelledError:  # the scheduler shuts down mid-scan: nothing to report
            log.debug("discovery scan interrupted by shutdown")

    async def _discover(self, index: int) -> int:
        from fleetd.discovery import scan

        config = self.config
        if index >= len(config.discovery):
            return 0
        d = config.discovery[index]
        probe = self._endpoint(config, d, "0.0.0.0")
        p = config.polling
        try:
            found, stats = await scan(
                d.target_set(),
                api_port=probe.api_port,
                web_port=probe.web_port,
                timeout_s=p.connect_timeout_s + p.timeout_s,
                concurrency=min(256, p.concurrency),
                credentials=probe.credentials,
                read_hashrate=False,
            )
        except Exception:
            log.exception("discovery scan of %s failed", ", ".join(d.targets))
            return 0
        if self.config is not config:  # reloaded meanwhile: the next scan uses the new ranges
            return 0
        known = self.poller.targets()
        added = 0
        for f in found:
            t = self._discovered_target(config, d, f.identity.host, f.api_port)
            if t.id in known:
                continue
            rec = self.poller.add(t)
            rec.driver = f.identity.driver
            self._store_miner(rec, t)
            added += 1
            msg = f"discovered miner {t.id}: {f.identity.model}"
            log.info(msg)
            self.emit(Event(EventKind.MINER_ADDED, msg, t.id))
        log.info(
            "discovery of %s: %d addresses scanned, %d miners answered, %d new",
            ", ".join(d.targets),
            stats.done,
            stats.found,
            added,
        )
        return added
