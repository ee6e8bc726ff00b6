"""The on-disk memory of modes to restore on wake: an append-only JSON Lines journal per state directory.

Each change is one appended line (`{"miner": "HOST:WEB_PORT", "mode": "3"}`, mode null: forgotten), so a
fleet-wide sleep costs the same per miner at 10 or 10,000 miners, and a crash loses at most a torn last
line (skipped on reading). The journal is read once per process and rewritten, compacted, when stale
lines outnumber live ones. Every operation is best effort: an unwritable directory leaves memory only.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

MODES_FILE = "antminer-modes-before-sleep.jsonl"
COMPACT_SLACK = 1000  # stale lines tolerated beyond the live entries before the journal is rewritten


class ModesJournal:
    """Modes to restore on wake, by "HOST:WEB_PORT", kept in one directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / MODES_FILE
        self._modes: dict[str, str] | None = None
        self._lines = 0
        self._torn = False  # the file ends inside a line: rewrite before appending

    def get(self, key: str) -> str | None:
        return self._load().get(key)

    def set(self, key: str, mode: str | None) -> None:
        """Remember `mode` for `key` (None: forget it), on disk at once."""
        modes = self._load()
        if modes.get(key) == mode:
            return
        if mode is None:
            modes.pop(key, None)
        else:
            modes[key] = mode
        with contextlib.suppress(OSError):
            if self._torn or self._lines >= 2 * len(modes) + COMPACT_SLACK:
                self._rewrite(modes)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as f:
                    f.write(json.dumps({"miner": key, "mode": mode}) + "\n")
                self._lines += 1

    def _load(self) -> dict[str, str]:
        if self._modes is None:
            self._modes, self._lines, self._torn = read_journal(self.path)
        return self._modes

    def _rewrite(self, modes: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text("".join(json.dumps({"miner": k, "mode": v}) + "\n" for k, v in sorted(modes.items())))
        tmp.replace(self.path)
        self._lines, self._torn = len(modes), False


def read_journal(path: Path) -> tuple[dict[str, str], int, bool]:
    """(modes by key, lines read, whether the last line is torn) of a journal; an unreadable file is
    empty, bad lines are skipped."""
    modes: dict[str, str] = {}
    lines = 0
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return modes, 0, False
    for line in text.splitlines():
        lines += 1
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if not isinstance(entry, dict) or not isinstance(entry.get("miner"), str):
            continue
        mode = entry.get("mode")
        if isinstance(mode, str):
            modes[entry["miner"]] = mode
        elif mode is None:
            modes.pop(entry["miner"], None)
    return modes, lines, bool(text) and not text.endswith("\n")


_JOURNALS: dict[Path, ModesJournal] = {}


def journal(directory: Path) -> ModesJournal:
    """The process's journal of `directory` (read once, shared by every driver that uses it)."""
    found = _JOURNALS.get(directory)
    if found is None:
        found = _JOURNALS[directory] = ModesJournal(directory)
    return found
