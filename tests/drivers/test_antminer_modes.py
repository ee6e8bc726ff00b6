"""The journal of modes to restore on wake: one line per change, compacted, robust to torn lines."""

from __future__ import annotations

from pathlib import Path

from fleetd.drivers.antminer import modes


def test_changes_append_and_a_new_process_reads_them(tmp_path: Path) -> None:
    j = modes.ModesJournal(tmp_path / "sub")  # created on first write
    j.set("10.0.0.1:80", "3")
    j.set("10.0.0.2:80", "0")
    j.set("10.0.0.1:80", None)
    j.set("10.0.0.9:80", None)  # nothing to forget: nothing written
    path = tmp_path / "sub" / modes.MODES_FILE
    assert len(path.read_text().splitlines()) == 3
    assert modes.ModesJournal(tmp_path / "sub").get("10.0.0.2:80") == "0"
    assert modes.read_journal(path) == ({"10.0.0.2:80": "0"}, 3, False)


def test_stale_lines_are_compacted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(modes, "COMPACT_SLACK", 10)
    j = modes.ModesJournal(tmp_path)
    for i in range(100):
        j.set(f"10.0.0.{i}:80", "3")
        j.set(f"10.0.0.{i}:80", None)
    j.set("10.0.1.1:80", "3")
    lines = (tmp_path / modes.MODES_FILE).read_text().splitlines()
    assert len(lines) <= 2 * 1 + 10
    assert modes.read_journal(tmp_path / modes.MODES_FILE)[0] == {"10.0.1.1:80": "3"}


def test_torn_and_bad_lines_are_skipped_then_repaired(tmp_path: Path) -> None:
    path = tmp_path / modes.MODES_FILE
    path.write_text('{"miner": "a:80", "mode": "3"}\n[1]\nnot json\n{"miner": "b:80", "mo')
    assert modes.read_journal(path) == ({"a:80": "3"}, 4, True)
    j = modes.ModesJournal(tmp_path)
    j.set("c:80", "0")  # rewritten, so that the torn line does not swallow this one
    assert modes.read_journal(path) == ({"a:80": "3", "c:80": "0"}, 2, False)


def test_unwritable_directory_keeps_memory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    j = modes.ModesJournal(tmp_path / "file" / "sub")
    j.set("a:80", "3")
    assert j.get("a:80") == "3"
