"""The spool: writes storage could not take (events, identity changes, rollups), kept on disk until it can.

An append-only JSON-lines file in the state directory, bounded to `max_items` lines; what does not fit is
counted, never written over. Each line is one item written by a single `write()` on an O_APPEND
descriptor, so a daemon killed at any point leaves whole lines (a torn last line is skipped on reading).
When the file cannot be written (read-only or full state directory) items are held in memory instead,
bounded by the same limit, and counted as lost if the daemon stops before storage is back.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from fleetd.daemon.events import Event, EventKind
from fleetd.model import Identity
from fleetd.records import RollupRow

log = logging.getLogger("fleetd.daemon")

SPOOL_FILE = "unstored.jsonl"

# ("event", Event) | ("identity", miner_id, host, Identity, driver, at) | ("rollup", RollupRow)
Item = tuple[Any, ...]


def encode(item: Item) -> bytes:
    """One spool line (with its newline) for an item."""
    kind = item[0]
    if kind == "event":
        ev: Event = item[1]
        data: dict[str, Any] = {
            "k": "event",
            "kind": str(ev.kind),
            "message": ev.message,
            "miner_id": ev.miner_id,
            "level": ev.level,
            "at": ev.at,
        }
    elif kind == "identity":
        _, mid, host, ident, driver, at = item
        data = {"k": "identity", "miner_id": mid, "host": host, "driver": driver, "at": at}
        data["identity"] = dataclasses.asdict(ident)
    elif kind == "rollup":
        data = {"k": "rollup"} | dataclasses.asdict(item[1])
    else:
        raise ValueError(f"unknown spool item kind {kind!r}")
    return orjson.dumps(data) + b"\n"


def decode(line: bytes) -> Item:
    """The item of one spool line; raises ValueError on a line that is not one."""
    data = orjson.loads(line)
    kind = data.pop("k")
    if kind == "event":
        try:
            ev_kind: Any = EventKind(data["kind"])
        except ValueError:  # a kind this version does not know: stored as written
            ev_kind = data["kind"]
        return ("event", Event(ev_kind, data["message"], data["miner_id"], data["level"], data["at"]))
    if kind == "identity":
        ident = Identity(**data["identity"])
        return ("identity", data["miner_id"], data["host"], ident, data["driver"], data["at"])
    if kind == "rollup":
        return ("rollup", RollupRow(**data))
    raise ValueError(f"unknown spool item kind {kind!r}")


class Spool:
    """Bounded append-only store of items waiting for storage: a file when it can be written, else memory.

    Replaying takes everything held (`take()`, which moves the file aside to `<file>.replaying`) and, once
    storage has committed it, forgets it (`done()`); items appended meanwhile go to a fresh file. A replay
    cut short (the daemon killed before `done()`) is read again by the next `take()`.
    """

    def __init__(self, path: Path | None, max_items: int) -> None:
        self.path = path
        self.replaying = path.with_name(path.name + ".replaying") if path is not None else None
        self.max_items = max_items
        self.dropped = 0  # items that did not fit (reported when storage is back)
        self._memory: deque[Item] = deque()
        self._on_disk = sum(_count_lines(p) for p in (self.path, self.replaying))
        self._taken = 0  # items given out by take() and not yet done()
        self._warned = False

    def __len__(self) -> int:
        return self._on_disk + len(self._memory)

    @property
    def on_disk(self) -> int:
        """Items in the files (they survive a restart)."""
        return self._on_disk

    def append(self, item: Item) -> None:
        if len(self) >= self.max_items:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("spool full (%d items): %d writes not kept", self.max_items, self.dropped)
            return
        if self.path is not None and not self._memory:  # after a failure, memory keeps the order
            line = encode(item)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    written = os.write(fd, line)
                finally:
                    os.close(fd)
                if written == len(line):
                    self._on_disk += 1
                    return
                raise OSError(f"short write ({written} of {len(line)} bytes)")
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.error("spool %s not writable (%s): holding unstored writes in memory", self.path, exc)
        self._memory.append(item)

    def take(self) -> list[Item]:
        """Everything held, oldest first, for replaying; `done()` once storage has committed it."""
        out: list[Item] = []
        if self.path is not None and self.replaying is not None:
            if self.path.exists():
                try:
                    if self.replaying.exists():  # an earlier replay cut short: the new file goes after it
                        with self.replaying.open("ab") as f:
                            f.write(self.path.read_bytes())
                        self.path.unlink()
                    else:
                        self.path.rename(self.replaying)
                except OSError as exc:
                    log.error("spool %s: cannot set it aside for replay: %s", self.path, exc)
                    return []
            out.extend(_read(self.replaying))
        out.extend(self._memory)
        self._memory.clear()
        self._on_disk = 0
        self._taken = len(out)
        return out

    def done(self) -> None:
        """What the last `take()` gave out is committed: forget it."""
        if self.replaying is not None:
            try:
                self.replaying.unlink(missing_ok=True)
            except OSError as exc:  # replayed again next time: better twice than never
                log.error("spool %s could not be removed: %s", self.replaying, exc)
        self._taken = 0

    def items(self) -> list[Item]:
        """Everything held, oldest first, without taking it."""
        out: list[Item] = []
        for p in (self.replaying, self.path):
            out.extend(_read(p))
        return out + list(self._memory)


def _count_lines(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return sum(1 for line in path.read_bytes().splitlines() if line.strip())
    except OSError:
        return 0


def _read(path: Path | None) -> list[Item]:
    if path is None:
        return []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.error("spool %s unreadable: %s", path, exc)
        return []
    out: list[Item] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            out.append(decode(line))
        except (ValueError, KeyError, TypeError):  # a line torn by a kill, or edited by hand
            log.warning("spool %s: skipping an unreadable line", path)
    return out
