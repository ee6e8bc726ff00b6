"""The operator's runtime curtailment controls: pins, demand-response events and the enforce switch.

Set through the API, the CLI (which talks to the API) and the inbound MQTT DR topic; read by the
curtailment loop as `controls(now)`; every change is an event. Stored in the database (table
curtail_controls, through the daemon's storage), so that both instances of an HA pair see the same
controls and the one taking over loads them. A change is first written to a JSON file in the state
directory (atomically, fsynced), then to the database: the file holds the last known controls (used at a
start while the database is down) and the ids changed since the database last took them, which are
written to it as soon as it answers again, so nothing the operator set is lost to a crash or an outage.
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
from typing import Any, Protocol

from fleetd.curtail.model import Controls, DemandEvent, Pin, PinAction
from fleetd.daemon.events import Event, EventKind

log = logging.getLogger("fleetd.curtail.controls")

CONTROLS_FILE = "curtail_controls.json"
_VERSION = 2  # version 1 (before the database held them): imported into the database at the first sync
ENFORCE_ID = "enforce"  # the database row of the enforce switch
MAX_PINS = 10_000  # a runaway script must not grow the file without bound
MAX_EVENTS = 1_000


class ControlsError(ValueError):
    """A control that cannot be set (bad value); the message is one line for the operator."""


class ControlsDb(Protocol):
    """Where the controls are shared (fleetd.storage.store.Storage); blocking calls that raise on failure."""

    def curtail_controls(self) -> list[dict[str, Any]]: ...

    def write_curtail_controls(self, rows: Iterable[dict[str, Any]], deleted: Iterable[str] = ()) -> None: ...


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
    """Pins, DR events and the enforce override, in the database once `attach`ed and in the file `path`;
    safe to call from any thread. Writes to the database block: call them off the event loop."""

    def __init__(
        self,
        path: str | Path,
        *,
        on_event: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.time,
        shared: bool = True,
    ) -> None:
        self.path = Path(path)
        self.shared = shared  # False: never attached (no storage), so nothing waits for the database
        self._emit = on_event or (lambda _e: None)
        self._clock = clock
        self._lock = threading.RLock()
        self._pins: dict[str, Pin] = {}
        self._events: dict[str, DemandEvent] = {}
        self._enforce: bool | None = None  # None: the configuration's `enforce`
        self._unsynced: dict[str, int] = {}  # ids changed since the database took them -> change number
        self._changes = 0
        self._db: ControlsDb | None = None
        self._db_error = ""  # the last failure to write to the database ("" when it took everything)
        self._loaded = False  # the database's controls loaded since the last attach
        self._sync_lock = threading.Lock()
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
                self._touch(p.id)
            for e in gone_events:
                del self._events[e.id]
                self._touch(e.id)
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
            self._touch(pin.id)
            self._save()
        self._push()
        until_s = f" until {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(until))}" if until else ""
        self._emit(
            Event(EventKind.CURTAIL_PIN_SET, f"pin {pin.id}: {self.describe_pin(pin)}{until_s} ({source})")
        )
        return pin

    def unpin(self, pin_id: str, *, source: str = "api") -> Pin | None:
        with self._lock:
            pin = self._pins.pop(pin_id, None)
            if pin is not None:
                self._touch(pin_id)
                self._save()
        if pin is not None:
            self._push()
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
            self._touch(ev.id)
            self._save()
        self._push()
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
                self._touch(event_id)
                self._save()
        if ev is not None:
            self._push()
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
            self._touch(ENFORCE_ID)
            self._save()
        self._push()
        what = {
            True: "enforce (commands are sent)",
            False: "dry run (nothing is sent)",
            None: "as configured",
        }
        self._emit(Event(EventKind.CURTAIL_ENFORCE_CHANGED, f"curtailment set to {what[enforce]} ({source})"))

    # --- the database -------------------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self._db is not None

    @property
    def unsynced(self) -> int:
        """Controls changed since the database last took them (written to it when it answers again)."""
        with self._lock:
            return len(self._unsynced)

    @property
    def needs_sync(self) -> bool:
        """Attached, and changes not yet written or the database's controls not yet loaded."""
        return self._db is not None and (bool(self._unsynced) or not self._loaded)

    def attach(self, db: ControlsDb) -> None:
        """Share the controls through `db` (blocking): what changed while it was away is written to it, then
        its controls (the other HA instance's included) replace those held here. A failure is logged (a
        failed read also raised); the file's controls stay in force and `catch_up` retries."""
        self._db = db
        self._db_error = ""
        self._loaded = False
        if self.sync():
            self._load_db(db)

    def _load_db(self, db: ControlsDb) -> None:
        rows = db.curtail_controls()
        now = self._clock()
        pins: dict[str, Pin] = {}
        events: dict[str, DemandEvent] = {}
        enforce: bool | None = None
        bad = []
        for row in rows:
            try:
                body = json.loads(row["body"])
                if row["kind"] == "pin":
                    pin = _pin_from(body)
                    if pin.until is None or pin.until > now:
                        pins[pin.id] = pin
                elif row["kind"] == "dr":
                    ev = _event_from(body)
                    if ev.end > now:
                        events[ev.id] = ev
                elif row["kind"] == "enforce" and isinstance(body.get("enforce"), bool):
                    enforce = body["enforce"]
                else:
                    raise ValueError(f"unknown kind {row['kind']!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                bad.append(f"{row.get('id')!r} ({type(exc).__name__}: {exc})")
        with self._lock:
            changed = (pins, events, enforce) != (self._pins, self._events, self._enforce)
            if self._unsynced:  # changed meanwhile (by this instance): those stay as set here
                for key in self._unsynced:
                    pins.pop(key, None)
                    events.pop(key, None)
                    if key in self._pins:
                        pins[key] = self._pins[key]
                    if key in self._events:
                        events[key] = self._events[key]
                if ENFORCE_ID in self._unsynced:
                    enforce = self._enforce
            self._pins, self._events, self._enforce = pins, events, enforce
            self._save()
        if bad:
            msg = f"curtailment controls in the database not used: {'; '.join(bad)}"[:1000]
            log.error(msg)
            self._emit(Event(EventKind.CURTAIL_CONTROLS_REJECTED, msg, level="error"))
        self._loaded = True
        self._db_error = ""
        if changed:
            log.warning(
                "curtailment controls loaded from the database: %d pins, %d DR events, enforce %s",
                len(pins), len(events), "as configured" if enforce is None else enforce,
            )  # fmt: skip

    def detach(self) -> None:
        """The database is closing: changes from now on wait in the file for the next `attach`."""
        self._db = None

    def catch_up(self) -> bool:
        """`sync`, then load the database's controls if `attach` could not (blocking); False on failure."""
        db = self._db
        if db is None or not self.sync():
            return False
        if not self._loaded:
            try:
                self._load_db(db)
            except Exception as exc:
                self._failed(exc, "read from")
                return False
        return True

    def _failed(self, exc: BaseException, what: str) -> None:
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        if not self._db_error:
            log.error(
                "curtailment controls not %s the database (%s); those of %s are in force and kept, "
                "retrying", what, reason, self.path,
            )  # fmt: skip
        self._db_error = reason

    def sync(self) -> bool:
        """Write what changed since the database last took it (blocking); False when it failed (logged once
        per outage; retried at the next call)."""
        db = self._db
        if db is None:
            return False
        with self._sync_lock:
            with self._lock:
                todo = dict(self._unsynced)
                found = {key: self._row(key) for key in todo}
            rows = [r for r in found.values() if r is not None]
            deleted = [key for key, r in found.items() if r is None]  # unpinned, stopped, expired, reset
            if not todo:
                return True
            try:
                db.write_curtail_controls(rows, deleted)
            except Exception as exc:
                self._failed(exc, "written to")
                return False
            if self._db_error:
                log.warning("curtailment controls written to the database again (%d changes)", len(todo))
            self._db_error = ""
            with self._lock:
                for key, n in todo.items():
                    if self._unsynced.get(key) == n:  # not changed again meanwhile
                        del self._unsynced[key]
                self._save()
            return True

    def _push(self) -> None:
        """After a change: to the database now, unless it is failing (then the background retries do)."""
        if self._db is not None and not self._db_error:
            self.sync()

    def _touch(self, key: str) -> None:
        """Caller holds the lock."""
        if not self.shared:
            return
        self._changes += 1
        self._unsynced[key] = self._changes

    def _row(self, key: str) -> dict[str, Any] | None:
        """The database row of a control held here; None when it is gone. Caller holds the lock."""
        if key in self._pins:
            return {"id": key, "kind": "pin", "body": json.dumps(_pin_dict(self._pins[key]))}
        if key in self._events:
            return {"id": key, "kind": "dr", "body": json.dumps(asdict(self._events[key]))}
        if key == ENFORCE_ID and self._enforce is not None:
            return {"id": key, "kind": "enforce", "body": json.dumps({"enforce": self._enforce})}
        return None

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
            if not isinstance(data, dict) or data.get("version") not in (1, _VERSION):
                raise ValueError(f"not a fleetd curtailment controls file (version {_VERSION})")
            enforce = data.get("enforce")
            if enforce is not None and not isinstance(enforce, bool):
                raise ValueError("enforce is not true, false or null")
            pins = [_pin_from(d) for d in data.get("pins", [])]
            events = [_event_from(d) for d in data.get("events", [])]
            unsynced = _names(data.get("unsynced", ()), "unsynced ids")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._reject(f"{self.path} is unreadable ({type(exc).__name__}: {exc})", keep=True)
            return
        self._enforce = enforce
        self._pins = {p.id: p for p in pins}
        self._events = {e.id: e for e in events}
        if data["version"] == 1:  # written before the database held the controls: all of it goes there
            unsynced = (*self._pins, *self._events, *((ENFORCE_ID,) if enforce is not None else ()))
        for key in unsynced:
            self._touch(key)

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
            "unsynced": sorted(self._unsynced),
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
