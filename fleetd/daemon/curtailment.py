"""The daemon's curtailment loop: decide after poll cycles, send ramp steps, verify, persist, publish.

Each pass builds MinerViews and a PriceView from the fleet state (fleetd.daemon.curtail_inputs), calls the
pure `decide`, then the pure step planner, and sends the chosen commands through the executor in the
background (one in flight per miner, verified by the drivers). Memory and control state are stored in
curtail_state, every decision and command in curtail_log and the event log; a restart resumes from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fleetd.curtail.config import CurtailmentConfig, parse_curtailment
from fleetd.curtail.model import Action, Actual, Controls, FleetMemory, MinerMemory, MinerView, Plan, Target
from fleetd.curtail.policy import decide
from fleetd.curtail.ramp import (
    Command,
    ControlState,
    StepPlan,
    excluded,
    observed,
    plan_step,
    satisfied,
    started,
)
from fleetd.curtail.status import CurtailStatus, MinerCurtailStatus
from fleetd.daemon.curtail_inputs import (
    HISTORY_S,
    Running,
    miner_views,
    money_of,
    price_view,
    running_figures,
    seen_actual,
)
from fleetd.daemon.curtail_rows import from_row, to_row
from fleetd.daemon.events import Event, EventKind
from fleetd.drivers.base import SupportsPowerLimit
from fleetd.executor.runner import CONCURRENCY, Outcome, command_kind, execute
from fleetd.numbers import MAX_POWER_W, number

if TYPE_CHECKING:
    from fleetd.daemon.core import Daemon

log = logging.getLogger("fleetd.curtail")

FLEET_FILE = "curtail-fleet.json"  # fleet-level policy memory (rules in force since when)
MIN_TICK_S = 0.25  # passes at most this often: command completions in a large ramp coalesce
FIRST_PRICE_WAIT_S = 30.0  # after a start, how long the first decision waits for a first price (or error)
CONTROLS_SYNC_S = 5.0  # controls the database did not take are written again this often
STOP_GRACE_S = 5.0  # commands still verifying at shutdown get this long, then are re-checked on start


class CurtailmentLoop:
    """Owns the curtailment memory of one daemon; started and stopped with it."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.memory: dict[str, MinerMemory] = {}
        self.states: dict[str, ControlState] = {}
        self.fleet = FleetMemory()
        self.plan: Plan | None = None
        self.views: dict[str, MinerView] = {}
        self.running: dict[str, Running] = {}
        self.caps: dict[str, frozenset[Any]] = {}
        self.limits: dict[str, tuple[int, int]] = {}  # each miner's power-limit range, from its driver
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.decided_at = 0.0
        self._seen_prices: dict[float, float] = {}
        self._config_src: dict[str, Any] | None = None
        self._config: CurtailmentConfig | None = None
        self._next_decide = 0.0
        self._next_step = 0.0
        self._started_at = 0.0
        self._waiting: dict[str, str] = {}
        self._dry_sent: dict[str, Target] = {}  # dry run: what would have been sent, logged once
        self._said_uncontrollable: dict[str, Target] = {}
        self._failsafe = ""
        self._why: dict[str, str] = {}  # the reason each miner's current target was decided for
        self._stored: dict[str, dict[str, Any]] = {}
        self._built: dict[str, tuple[Any, ...]] = {}  # what each published miner status was built from
        self._shed: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(CONCURRENCY)

    # --- lifecycle -----------------------------------------------------------------------------------------
    @property
    def config(self) -> CurtailmentConfig | None:
        src = self.d.config.curtailment
        if src is not self._config_src:  # parsed once per loaded configuration (validated at load)
            self._config_src = src
            self._config = parse_curtailment(src) if src is not None else None
        return self._config

    @property
    def fleet_file(self) -> Path:
        return self.d.state_dir / FLEET_FILE

    async def start(self) -> None:
        self._started_at = time.time()
        await self._load()
        self._task = asyncio.create_task(self._run(), name="fleetd-curtailment")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._commands:
            _, pending = await asyncio.wait(set(self._commands), timeout=STOP_GRACE_S)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for mid, st in list(self.states.items()):
            if st.in_flight:  # not verified either way: observed again after the restart
                self.states[mid] = replace(st, in_flight=False)
                self._dirty.add(mid)
        self._persist(force=True)

    def poke(self, *_: Any) -> None:
        """After each poll cycle (an on_cycle hook): fresh telemetry to decide and verify on."""
        self._wake.set()

    async def _load(self) -> None:
        st = self.d.storage
        fleet: dict[str, float] | None = None
        if st is not None:
            try:
                rows = await asyncio.to_thread(st.curtail_states)
                fleet = await asyncio.to_thread(st.curtail_fleet)  # the pair's, over this instance's file
            except Exception as exc:
                log.error("curtailment state not loaded (%s); starting from what the miners show", exc)
                rows = []
            for row in rows:
                got = from_row(row)
                if got is not None:
                    mid = str(row["miner_id"])
                    self.memory[mid], self.states[mid] = got
                    self._stored[mid] = to_row(mid, *got)
        self.fleet = FleetMemory(MappingProxyType(fleet if fleet is not None else self._fleet_from_file()))
        if self.memory:
            log.info("curtailment state of %d miners restored", len(self.memory))

    def _fleet_from_file(self) -> dict[str, float]:
        """The fleet memory saved in the state directory (a start without storage); {} when none."""
        try:
            data = json.loads(self.fleet_file.read_text())
            return {str(k): float(v) for k, v in data["active"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s unreadable (%s); fleet rules start afresh", self.fleet_file, exc)
            return {}

    async def _run(self) -> None:
        synced_at = 0.0
        while True:
            delay = max(0.05, min(self._next_decide, self._next_step or self._next_decide) - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            try:
                self.tick(time.time())
            except Exception:  # curtailment must never stop, nor stop polling
                log.exception("curtailment pass failed")
                self._next_decide = time.time() + 10.0
            store = self.d.curtail_controls
            if store is not None and store.needs_sync and time.monotonic() - synced_at >= CONTROLS_SYNC_S:
                synced_at = time.monotonic()  # controls set while the database was down: written now
                await asyncio.to_thread(store.catch_up)
            await asyncio.sleep(MIN_TICK_S)

    # --- one pass ------------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        cfg = self.config
        if cfg is None or self.d.state.last_cycle is None:  # decide on polled telemetry only
            self._next_decide = now + 5.0
            return
        self._observe(now)
        if now >= self._next_decide and self._first_price_pending(now):
            self._next_decide = now + 1.0  # not a stale feed: the first fetch has not answered yet
        if now >= self._next_decide:
            self._decide(cfg, now)
            self._next_decide = now + cfg.interval_s
        if self.plan is not None and now >= self._next_step:
            self._step(cfg, now)
        self._persist()
        self._publish(cfg, now)

    def _first_price_pending(self, now: float) -> bool:
        """Just started, and the electricity price neither fetched nor failed yet: decide a little later,
        rather than raise the stale-price fail-safe at every start."""
        eco = self.d.economics
        if eco is None or now - self._started_at > FIRST_PRICE_WAIT_S:
            return False
        tracker = getattr(eco.prices, "tracker", None)  # a market or feed (MarketPrices): fetched or failed?
        if tracker is not None:
            return tracker.value is None and tracker.failures == 0 and not tracker.error
        return eco.electricity_price(now).value is None and eco.prices is not None

    def enforce(self, cfg: CurtailmentConfig) -> bool:
        store = self.d.curtail_controls
        return store.enforce(cfg.enforce) if store is not None else cfg.enforce

    def _observe(self, now: float) -> None:
        """Follow telemetry: the verified state of each miner from its last poll."""
        for rec in self.d.state.miners.values():
            drv = self.d.poller.driver(rec.id)
            if drv is not None:
                self.caps[rec.id] = drv.capabilities
                span = drv.power_limit_range() if isinstance(drv, SupportsPowerLimit) else None
                if span is not None:
                    self.limits[rec.id] = span
                else:
                    self.limits.pop(rec.id, None)
            state = self.states.get(rec.id) or ControlState()
            run = running_figures(rec, state)
            if run is not None:
                self.running[rec.id] = run
            snap = rec.snapshot
            if snap is None or state.in_flight or snap.polled_at <= state.verified_at:
                continue  # a poll older than the last verification says nothing new
            new = observed(state, seen_actual(rec, state), now)
            if new != state:
                if new.actual != state.actual:
                    self._dirty.add(rec.id)
                self.states[rec.id] = new

    def _decide(self, cfg: CurtailmentConfig, now: float) -> None:
        eco = self.d.economics
        records = list(self.d.state.miners.values())
        views = miner_views(records, self.caps, self.running, self.d.catalog, money_of(eco, now), self.limits)
        prices = price_view(eco, self._seen_prices, now)
        if prices.now_usd_per_mwh is not None and not prices.stale and prices.history:
            last = prices.history[-1]
            self._seen_prices[last.start] = last.usd_per_mwh
            for t in [t for t in self._seen_prices if t < now - HISTORY_S]:
                del self._seen_prices[t]
        store = self.d.curtail_controls
        controls = store.controls(now) if store is not None else Controls()
        plan = decide(views, prices, cfg, controls, self.memory, self.fleet, now)
        self.views = {v.id: v for v in views}
        self._record_decisions(plan, now)
        self.memory = dict(plan.memory)
        if plan.fleet != self.fleet:
            self.fleet = plan.fleet
            self._save_fleet()
        self.plan = plan
        self.decided_at = now

    def _record_decisions(self, plan: Plan, now: float) -> None:
        if plan.failsafe != self._failsafe:
            msg = f"curtailment fail-safe: {plan.failsafe}" if plan.failsafe else "fail-safe ended"
            self.d.emit(Event(EventKind.CURTAIL_FAILSAFE, msg, level="warning" if plan.failsafe else "info"))
            self._failsafe = plan.failsafe
        logs = []
        for dec in plan.decisions:
            mid = dec.miner_id
            old = self.memory.get(mid)
            if plan.memory.get(mid) != old:
                self._dirty.add(mid)
            if dec.changed or (old is None and dec.target.action is not Action.RUN):
                msg = f"{dec.target}: {dec.reason.text}"
                self._why[mid] = dec.reason.text
                self.d.emit(Event(EventKind.CURTAIL_DECISION, msg, miner_id=mid))
                logs.append(_log(now, mid, "decision", dec.target, dec.reason.rule, 0, msg))
            wants_change = not satisfied(self.states.get(mid) or ControlState(), dec.target)
            if not dec.controllable and wants_change and not excluded(dec):
                if self._said_uncontrollable.get(mid) != dec.target:
                    self._said_uncontrollable[mid] = dec.target
                    msg = f"{dec.reason.rule} wants {dec.target}; the miner's driver cannot sleep or limit it"
                    self.d.emit(Event(EventKind.CURTAIL_NOT_CONTROLLABLE, msg, miner_id=mid, level="warning"))
            else:
                self._said_uncontrollable.pop(mid, None)
        self._log(logs)

    def _step(self, cfg: CurtailmentConfig, now: float) -> None:
        assert self.plan is not None
        enforce = self.enforce(cfg)
        states = self.states
        if not enforce:  # a dry run walks the ramp as if the commands logged had gone out
            states = dict(states)
            for mid, t in self._dry_sent.items():
                st = states.get(mid) or ControlState()
                if not satisfied(st, t):
                    states[mid] = replace(st, in_flight=True, target=t)
        else:
            self._dry_sent.clear()
        step = plan_step(self.plan.decisions, states, self.views, cfg, now)
        if enforce and step.commands and not self.d.may_command():
            # HA: this instance's lock is not confirmed right now; the active one (or this one, once
            # confirmed) sends them. A command must never go out from two instances.
            self._waiting = {c.miner_id: "standby" for c in step.commands}
            self._next_step = now + 1.0
            return
        dry = self._dry_sent
        self._waiting = {m: "dry run" if w == "in flight" and m in dry else w for m, w in step.waiting}
        if not step.commands:
            self._next_step = step.next_step_at or 0.0
            return
        self._next_step = now + cfg.ramp.step_s
        reasons = {d.miner_id: d for d in self.plan.decisions}
        logs = []
        for cmd in step.commands:
            dec = reasons[cmd.miner_id]
            why = self._why.get(cmd.miner_id, dec.reason.text)
            kind = command_kind(cmd.target)
            if not enforce:
                if self._dry_sent.get(cmd.miner_id) == cmd.target:
                    continue
                self._dry_sent[cmd.miner_id] = cmd.target
                msg = f"dry run: would {kind} ({why})"
                self.d.emit(Event(EventKind.CURTAIL_COMMAND, msg, miner_id=cmd.miner_id))
                logs.append(_log(now, cmd.miner_id, "dry_run", cmd.target, dec.reason.rule, cmd.attempt, msg))
                continue
            self.sent[kind] += 1
            if cmd.attempt > 1:
                self.retried[kind] += 1
            before = self.states.get(cmd.miner_id) or ControlState()
            self.states[cmd.miner_id] = started(before, cmd)
            self._dirty.add(cmd.miner_id)
            msg = f"{kind} sent (attempt {cmd.attempt}): {why}"
            self.d.emit(Event(EventKind.CURTAIL_COMMAND, msg, miner_id=cmd.miner_id))
            logs.append(_log(now, cmd.miner_id, "command", cmd.target, dec.reason.rule, cmd.attempt, msg))
            task = asyncio.get_running_loop().create_task(self._send(cmd, before, cfg))
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)
        self._log(logs)

    async def _send(self, cmd: Command, before: ControlState, cfg: CurtailmentConfig) -> None:
        # The gate bounds sends and verifying re-reads across commands, not a command's waits between
        # re-reads: a ramp step of miners that take seconds to wind down does not hold up the next ones.
        try:
            (out,) = await execute(
                StepPlan((cmd,)),
                {cmd.miner_id: before},
                self.d.poller.driver,
                cfg,
                enforce=True,
                gate=self._gate,
            )
        except asyncio.CancelledError:
            self.states[cmd.miner_id] = before
            raise
        self._done(out, cfg)
        self._wake.set()

    def _done(self, out: Outcome, cfg: CurtailmentConfig) -> None:
        cmd, mid, now = out.command, out.command.miner_id, time.time()
        self.states[mid] = out.state
        self._dirty.add(mid)
        if out.ok:
            msg = f"{out.kind} verified: {_shown(cmd.target)}"
            self.d.emit(Event(EventKind.CURTAIL_VERIFIED, msg, miner_id=mid))
            self._log([_log(now, mid, "verified", cmd.target, "", cmd.attempt, msg)])
            return
        self.failed[out.kind] += 1
        if out.state.actual is Actual.UNRESPONSIVE and out.state.failures == cfg.retry.attempts:
            kind, what, level = EventKind.CURTAIL_UNRESPONSIVE, "unresponsive", "error"
            msg = f"{out.kind} failed {out.state.failures} times, miner flagged unresponsive: {out.error}"
        else:
            kind, what, level = EventKind.CURTAIL_FAILED, "failed", "warning"
            wait = max(0.0, out.state.next_attempt_at - now)
            msg = f"{out.kind} not verified (attempt {cmd.attempt}): {out.error}; retry in {wait:.0f} s"
        self.d.emit(Event(kind, msg, miner_id=mid, level=level))
        self._log([_log(now, mid, what, cmd.target, "", cmd.attempt, msg)])

    # --- storage and views ---------------------------------------------------------------------------------
    def _log(self, rows: list[dict[str, Any]]) -> None:
        if rows and self.d.storage is not None:
            self.d.storage.add_curtail_log(rows)

    def _persist(self, *, force: bool = False) -> None:
        st = self.d.storage
        if st is None or not (self._dirty or force):
            return
        rows = []
        ids = set(self.memory) | set(self.states) if force else self._dirty
        for mid in ids:
            row = to_row(mid, self.memory.get(mid) or MinerMemory(), self.states.get(mid) or ControlState())
            if self._stored.get(mid) != row:
                self._stored[mid] = row
                rows.append(row)
        self._dirty.clear()
        if rows:
            st.set_curtail_state(rows)

    def _save_fleet(self) -> None:
        """In storage (shared by an HA pair), and in the state directory for a start without it."""
        if self.d.storage is not None:
            self.d.storage.set_curtail_fleet(dict(self.fleet.active))
        path = self.fleet_file
        tmp = path.with_suffix(".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"active": dict(self.fleet.active)}))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("fleet curtailment memory not saved to %s: %s", path, exc)

    def _publish(self, cfg: CurtailmentConfig, now: float) -> None:
        plan = self.plan
        if plan is None:
            return
        enforce = self.enforce(cfg)
        miners: dict[str, MinerCurtailStatus] = {}
        shed = 0.0
        prev = self.d.curtail_status.miners if self.d.curtail_status is not None else {}
        built = self._built
        fresh: dict[str, tuple[Any, ...]] = {}
        for dec in plan.decisions:
            mid = dec.miner_id
            st = self.states.get(mid) or ControlState()
            mem = self.memory.get(mid)
            waiting = self._waiting.get(mid, "")
            if not enforce and not satisfied(st, dec.target) and not waiting:
                waiting = "dry run"
            view = self.views.get(mid)
            key = (dec, st, mem, waiting, view)
            fresh[mid] = key
            old = built.get(mid)
            if old is not None and all(a is b for a, b in zip(old, key, strict=True)) and mid in prev:
                miners[mid] = prev[mid]  # nothing changed since the last pass: reuse it
                shed += self._shed.get(mid, 0.0)
                continue
            kw = self._shed[mid] = _shed_kw(view, st)
            shed += kw
            miners[mid] = MinerCurtailStatus(
                miner_id=mid,
                target=dec.target,
                reason=dec.reason,
                since=mem.since if mem is not None else now,
                actual=st.actual,
                verified_at=st.verified_at,
                controllable=dec.controllable,
                in_flight=st.in_flight,
                failures=st.failures,
                last_error=st.last_error,
                waiting=waiting,
            )
        self._built = fresh
        store = self.d.curtail_controls
        self.d.curtail_status = CurtailStatus(
            enforce=enforce,
            decided_at=self.decided_at,
            miners=MappingProxyType(miners),
            controls=store.controls(now) if store is not None else Controls(),
            active_rules=plan.active_rules,
            failsafe=plan.failsafe,
            load_kw=_load_kw(self.d),
            target_kw=plan.target_kw,
            shed_kw=round(shed, 3),
            sent=MappingProxyType(dict(self.sent)),
            failed=MappingProxyType(dict(self.failed)),
            retried=MappingProxyType(dict(self.retried)),
        )


def _shown(target: Target) -> str:
    return {Action.SLEEP: "asleep", Action.RUN: "hashing again"}.get(target.action, f"at {target}")


def _log(
    now: float, mid: str, kind: str, target: Target, rule: str, attempt: int, msg: str
) -> dict[str, Any]:
    return {
        "at": now,
        "miner_id": mid,
        "kind": kind,
        "target": str(target),
        "rule": rule,
        "attempt": attempt,
        "message": msg[:1000],
    }


def _shed_kw(view: MinerView | None, st: ControlState) -> float:
    """Load a verified sleep or limit takes off the miner's running power, kW."""
    if view is None or view.power_w is None:
        return 0.0
    if st.actual is Actual.SLEEPING:
        return max(0.0, view.power_w - view.sleep_power_w) / 1000.0
    if st.actual is Actual.LIMITED and st.target is not None and st.target.power_limit_w:
        return max(0.0, view.power_w - st.target.power_limit_w) / 1000.0
    return 0.0


def _load_kw(d: Daemon) -> float | None:
    """Fleet load now from the last poll: measured power, else the catalog's estimate."""
    total, known = 0.0, False
    for rec in d.state.miners.values():
        eco, snap = rec.economics, rec.snapshot
        raw = eco.power_w if eco is not None and eco.power_w is not None else snap.power_w if snap else None
        w = number(raw, 0.0, MAX_POWER_W)  # one miner's absurd figure must not make the fleet's absurd
        if w is not None:
            total += w
            known = True
    return round(total / 1000.0, 3) if known else None
