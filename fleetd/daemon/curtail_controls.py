"""The operator's runtime curtailment controls: pins, demand-response events and the enforce switch.

Set through the API, the CLI (which talks to the API) and the inbound MQTT DR topic; read by the
curtailment loop as `controls(now)`. Kept in a JSON file in the state directory (written atomically) so
that a restart keeps them; every change is an event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fleetd.curtail.model import Controls, DemandEvent, Pin, PinAction
from fleetd.daemon.events import Event, EventKind

log = logging.getLogger("fleetd.curtail.controls")

CONTROLS_FILE = "curtail_controls.json"
_VERSION = 1
MAX_PINS = 10_000  # a runaway script must not grow the file without bound
MAX_EVENTS = 1_000


class ControlsError(ValueError):
    """A control that cannot be set (bad value); the message is one line for the operator."""


def _names(values: Iterable[Any], what: str) -> tuple[str, ...]:
    out = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise ControlsError(f"{what} must be non-empty strings, got {v!r}")
        out.append(v.strip())
    return tuple(out)


def _time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlsError(f"{what} must be a unix time, got {value!r}")
    if not 0 < value < 1e11:
        raise ControlsError(f"{what} out of range: {value!r}")
    return float(value)


def _pin_dict(p: Pin) -> dict[str, Any]:
    d = asdict(p)
    d["action"] = p.action.value
    return d


def _pin_from(d: dict[str, Any]) -> Pin:
    return Pin(
        action=PinAction(d["action"]),
        miners=tuple(d.get("miners", ())),
        sites=tuple(d.get("sites", ())),
        models=tuple(d.get("models", ())),
        until=None if d.get("until") is None else float(d["until"]),
        note=str(d.get("note", "")),
        source=str(d.get("source", "api")),
        id=str(d["id"]),
    )


def _event_from(d: dict[str, Any]) -> DemandEvent:
    return DemandEvent(
        target_kw=float(d["target_kw"]),
        start=float(d["start"]),
        end=float(d["end"]),
        source=str(d.get("source", "api")),
        sites=tuple(d.get("sites", ())),
        id=str(d["id"]),
    )


class ControlsStore:
    """Pins, DR events and the enforce override, persisted in `path`; safe to call from any thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        on_event: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._emit = on_event or (lambda _e: None)
        self._clock = clock
        self._lock = threading.RLock()
        self._pins: dict[str, Pin] = {}
        self._events: dict[str, DemandEvent] = {}
        self._enforce: bool | None = None  # None: the configuration's `enforce`
        self._load()

    # --- reading -------------------------------------------------------------------------------------------
    @property
    def enforce_override(self) -> bool | None:
        return self._enforce

    def enforce(self, configured: bool) -> bool:
        """Whether commands are sent: the runtime switch when set, else the configuration's."""
        return configured if self._enforce is None else self._enforce

    def pins(self, now: float | None = None) -> tuple[Pin, ...]:
        return self.controls(now).pins

    def events(self, now: float | None = None) -> tuple[DemandEvent, ...]:
        return self.controls(now).events

    def controls(self, now: float | None = None) -> Controls:
        """What is in force at `now`: expired pins and ended events are dropped (and the drop recorded)."""
        now = self._clock() if now is None else now
        with self._lock:
            gone_pins = [p for p in self._pins.values() if p.until is not None and p.until <= now]
            gone_events = [e for e in self._events.values() if e.end <= now]
            for p in gone_pins:
                del self._pins[p.id]
            for e in gone_events:
                del self._events[e.id]
            if gone_pins or gone_events:
                self._save()
            pins = tuple(self._pins.values())
            events = tuple(e for e in self._events.values() if e.start <= now)
        for p in gone_pins:
            self._emit(Event(EventKind.CURTAIL_PIN_REMOVED, f"pin {p.id} ({self.describe_pin(p)}) expired"))
        for e in gone_events:
            self._emit(Event(EventKind.CURTAIL_DR_STOPPED, f"DR event {e.id} ({e.target_kw:g} kW) ended"))
        return Controls(pins=pins, events=events)

    def scheduled_events(self) -> tuple[DemandEvent, ...]:
        """Every DR event not yet ended, including those that start later."""
        with self._lock:
            return tuple(self._events.values())

    @staticmethod
    def describe_pin(p: Pin) -> str:
        scope = []
        if p.miners:
            scope.append("miners " + ", ".join(p.miners))
        if p.sites:
            scope.append("sites " + ", ".join(p.sites))
        if p.models:
            scope.append("models " + ", ".join(p.models))
        return f"{p.action.value} {'; '.join(scope) or 'every miner'}"

    # --- changing ------------------------------------------------------------------------------------------
    def pin(
        self,
        action: str | PinAction,
        *,
        miners: Iterable[str] = (),
        sites: Iterable[str] = (),
        models: Iterable[str] = (),
        until: float | None = None,
        note: str = "",
        source: str = "api",
    ) -> Pin:
        """Pin a scope to an action (optionally until a unix time); ControlsError on a bad value."""
        try:
            act = PinAction(action)
        except ValueError:
            choices = ", ".join(a.value for a in PinAction)
            raise ControlsError(f"action must be one of {choices}, got {action!r}") from None
        now = self._clock()
        if until is not None:
            until = _time(until, "until")
            if until <= now:
                raise ControlsError("until is in the past")
        if not isinstance(note, str) or len(note) > 500:
            raise ControlsError("note must be a string of at most 500 characters")
        pin = Pin(
            action=act,
            miners=_names(miners, "miners"),
            sites=_names(sites, "sites"),
            models=_names(models, "models"),
            until=until,
            note=note,
            source=source,
            id="p-" + secrets.token_hex(4),
        )
        with self._lock:
            if len(self._pins) >= MAX_PINS:
                raise ControlsError(f"too many pins ({MAX_PINS}); remove some first")
            self._pins[pin.id] = pin
            self._save()
        until_s = f" until {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(until))}" if until else ""
        self._emit(
            Event(EventKind.CURTAIL_PIN_SET, f"pin {pin.id}: {self.describe_pin(pin)}{until_s} ({source})")
        )
        return pin

    def unpin(self, pin_id: str, *, source: str = "api") -> Pin | None:
        with self._lock:
            pin = self._pins.pop(pin_id, None)
            if pin is not None:
                self._save()
        if pin is not None:
            msg = f"pin {pin.id} ({self.describe_pin(pin)}) removed ({source})"
            self._emit(Event(EventKind.CURTAIL_PIN_REMOVED, msg))
        return pin

    def start_event(
        self,
        target_kw: float,
        end: float,
        *,
        start: float | None = None,
        sites: Iterable[str] = (),
        source: str = "api",
        event_id: str | None = None,
    ) -> DemandEvent:
        """A DR event keeping the load at or below `target_kw` until `end`; an existing `event_id` is
        replaced (the MQTT topic's single event). ControlsError on a bad value."""
        if (
            isinstance(target_kw, bool)
            or not isinstance(target_kw, int | float)
            or not math.isfinite(target_kw)
        ):
            raise ControlsError(f"target_kw must be a number, got {target_kw!r}")
        if target_kw < 0 or target_kw > 1e7:
            raise ControlsError(f"target_kw out of range (0 to 10,000,000 kW): {target_kw!r}")
        now = self._clock()
        end = _time(end, "end")
        begin = now if start is None else _time(start, "start")
        if end <= now:
            raise ControlsError("end is in the past")
        if end <= begin:
            raise ControlsError("end must be after start")
        ev = DemandEvent(
            target_kw=float(target_kw),
            start=begin,
            end=end,
            source=source,
            sites=_names(sites, "sites"),
            id=event_id or "e-" + secrets.token_hex(4),
        )
        with self._lock:
            if ev.id not in self._events and len(self._events) >= MAX_EVENTS:
                raise ControlsError(f"too many DR events ({MAX_EVENTS}); stop some first")
            self._events[ev.id] = ev
            self._save()
        end_s = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(end))
        where = f" at {', '.join(ev.sites)}" if ev.sites else ""
        self._emit(
            Event(
                EventKind.CURTAIL_DR_STARTED,
                f"DR event {ev.id}: {target_kw:g} kW{where} until {end_s} ({source})",
            )
        )
        return ev

    def stop_event(self, event_id: str, *, source: str = "api") -> DemandEvent | None:
        with self._lock:
            ev = self._events.pop(event_id, None)
            if ev is not None:
                self._save()
        if ev is not None:
            self._emit(
                Event(
                    EventKind.CURTAIL_DR_STOPPED, f"DR event {ev.id} ({ev.target_kw:g} kW) stopped ({source})"
                )
            )
        return ev

    def set_enforce(self, enforce: bool | None, *, source: str = "api") -> None:
        """True: send commands; False: dry run; None: back to the configuration's `enforce`."""
        if enforce is not None and not isinstance(enforce, bool):
            raise ControlsError(f"enforce must be true, false or null, got {enforce!r}")
        with self._lock:
            if enforce == self._enforce:
                return
            self._enforce = enforce
            self._save()
        what = {
            True: "enforce (commands are sent)",
            False: "dry run (nothing is sent)",
            None: "as configured",
        }
        self._emit(Event(EventKind.CURTAIL_ENFORCE_CHANGED, f"curtailment set to {what[enforce]} ({source})"))

    # --- the file ------------------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._reject(f"cannot read {self.path}: {exc.strerror or exc}", keep=False)
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                raise ValueError("not a fleetd curtailment controls file (version 1)")
            enforce = data.get("enforce")
            if enforce is not None and not isinstance(enforce, bool):
                raise ValueError("enforce is not true, false or null")
            pins = [_pin_from(d) for d in data.get("pins", [])]
            events = [_event_from(d) for d in data.get("events", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._reject(f"{self.path} is unreadable ({type(exc).__name__}: {exc})", keep=True)
            return
        self._enforce = enforce
        self._pins = {p.id: p for p in pins}
        self._events = {e.id: e for e in events}

    def _reject(self, why: str, *, keep: bool) -> None:
        """Start without the saved controls, keeping the bad file aside for the operator."""
        msg = f"curtailment controls not restored: {why}"
        if keep:
            aside = self.path.with_name(f"{self.path.name}.bad-{int(self._clock())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
                msg += f"; kept as {aside.name}"
        log.error(msg)
        self._emit(Event(EventKind.CURTAIL_CONTROLS_REJECTED, msg, level="error"))

    def _save(self) -> None:
        """Write the file atomically (temp, fsync, rename, fsync the directory); caller holds the lock."""
        data = {
            "version": _VERSION,
            "enforce": self._enforce,
            "pins": [_pin_dict(p) for p in self._pins.values()],
            "events": [asdict(e) for e in self._events.values()],
        }
        body = json.dumps(data, indent=1).encode()
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
