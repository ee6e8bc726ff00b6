"""Output formatting and fixture-folder writing, without any miner."""

from __future__ import annotations

import io
import json

import pytest

from fleetd.cli import CLIError
from fleetd.cli.dump_device import build_manifest, file_name, folder_name, write_folder
from fleetd.cli.probe import format_reading
from fleetd.cli.scan import Progress, format_table, miner_dict
from fleetd.discovery import Found, ScanStats
from fleetd.model import Fan, Hashboard, Identity, Mode, Pool, Reading, Snapshot

IDENT = Identity(
    vendor="antminer",
    model="Antminer S19 Pro",
    firmware="Tue Dec 6 16:12:30 CST 2022",
    api="cgminer",
    mac="02:42:7F:0E:00:01",
    host="127.14.0.10",
    driver="antminer",
)


def test_table_columns_and_ports() -> None:
    found = [
        Found(IDENT, 4028, 80, 109.5),
        Found(Identity(vendor="generic", model="cgminer", host="127.14.0.9", api="cgminer"), 14028, 80, None),
    ]
    lines = format_table(found).splitlines()
    assert lines[0].split() == ["host", "vendor", "model", "firmware", "api", "hashrate", "mac"]
    assert lines[1].startswith("127.14.0.10 ") and "109.50 TH/s" in lines[1]
    assert lines[1].endswith("02:42:7F:0E:00:01")
    assert lines[2].startswith("127.14.0.9:14028 ")
    # columns line up
    assert lines[1].index("antminer") == lines[0].index("vendor")


def test_json_line_has_identity_fields_and_hashrate() -> None:
    d = miner_dict(Found(IDENT, 4028, 80, 109.5))
    assert d["host"] == "127.14.0.10" and d["model"] == "Antminer S19 Pro" and d["hashrate_ths"] == 109.5
    assert d["api_port"] == 4028 and d["web_port"] == 80
    json.dumps(d)


def test_progress_bar_redraws_on_one_line() -> None:
    out = io.StringIO()
    bar = Progress(10, stream=out, width=10)
    bar.update(ScanStats(addresses=10, done=10, found=3))
    bar.close()
    text = out.getvalue()
    assert "[##########] 10/10 addresses, 3 miners" in text
    assert "\n" not in text


def test_readable_reading() -> None:
    snap = Snapshot(
        hashrate_ths=109.5,
        hashrate_avg_ths=110.0,
        expected_hashrate_ths=110.0,
        power_w=3250.0,
        is_mining=True,
        mode=Mode.NORMAL,
        hashboards=(Hashboard(0, 36.5, chips=114, expected_chips=114, chip_temp_c=70.0, board_temp_c=58.0),),
        fans=(Fan(0, 5800), Fan(1, None)),
        pools=(Pool(0, "stratum+tcp://pool.example:3333", "acct.w1", "alive", True, 10, 1),),
        uptime_s=90061,
    )
    text = format_reading(Reading(IDENT, snap))
    assert text.splitlines()[0].startswith("127.14.0.10  Antminer S19 Pro")
    assert "109.50 TH/s now" in text and "3250 W" in text and "114/114 chips" in text
    assert "5800 - rpm" in text and "1d 01:01:01" in text and "(active)" in text


def test_folder_name_and_manifest() -> None:
    assert folder_name(IDENT) == "antminer-s19-pro-tue-dec-6-16-12-30-cst-2022"
    assert folder_name(Identity(vendor="", model="")) == "unknown-unknown-firmware"
    m = build_manifest(IDENT, "antminer", ["rpc_stats", "web_get_miner_conf.cgi"])
    assert m["model"] == "Antminer S19 Pro" and m["driver"] == "antminer" and m["recorded_at"].endswith("Z")
    assert m["files"] == ["rpc_stats.json", "web_get_miner_conf.cgi.json"]
    assert "127.14" not in json.dumps(m)


@pytest.mark.parametrize("key", ["../etc/passwd", "web_cgi-bin/x", "", ".hidden"])
def test_reply_keys_that_are_not_file_names_are_refused(key: str) -> None:
    with pytest.raises(CLIError):
        file_name(key)


def test_write_folder_never_overwrites(tmp_path) -> None:
    first = write_folder(tmp_path, "dev", {"model": "m"}, {"rpc_version": {"a": 1}})
    second = write_folder(tmp_path, "dev", {"model": "m"}, {"rpc_version": {"a": 2}})
    assert first.name == "dev" and second.name == "dev-2"
    assert json.loads((first / "rpc_version.json").read_text()) == {"a": 1}
    assert sorted(p.name for p in second.iterdir()) == ["manifest.json", "rpc_version.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_write_folder_reports_unwritable_parent(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CLIError, match="cannot write to"):
        write_folder(blocker / "sub", "dev", {}, {"rpc_version": {}})


def test_live_rows_print_each_miner_at_once_in_fixed_columns() -> None:
    from fleetd.cli.scan import COLUMNS, LiveRows

    out = io.StringIO()
    bar = Progress(10, stream=io.StringIO())
    live = LiveRows(False, 4028, bar, stream=out)
    live.add(Found(IDENT, 4028, 80, 109.5))
    assert out.getvalue().splitlines()[0].split() == list(COLUMNS)
    live.add(Found(IDENT, 14028, 80, None))
    header, first, second = out.getvalue().splitlines()
    assert first.index("antminer") == header.index("vendor")  # fixed widths: no later row can re-align
    assert first.startswith("127.14.0.10 ") and second.startswith("127.14.0.10:14028 ")
    assert bar.stream.getvalue().endswith("\r\x1b[2K")  # the bar is cleared before a row is written

    out = io.StringIO()
    LiveRows(True, 4028, None, stream=out).add(Found(IDENT, 4028, 80, 109.5))
    assert json.loads(out.getvalue())["hashrate_ths"] == 109.5
