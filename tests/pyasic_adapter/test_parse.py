"""The pure MinerData -> Snapshot/Identity mapping, on hand-built MinerData and its JSON form."""

from __future__ import annotations

import json
import math

import pytest
from fleetd.drivers.pyasic.parse import (
    as_mapping,
    has_telemetry,
    identity_from_data,
    redacted,
    snapshot_from_data,
    ths,
    vendor_of,
)

from fleetd.model import Component, Mode

pyasic = pytest.importorskip("pyasic")

from pyasic.config import MinerConfig  # noqa: E402
from pyasic.config.mining import MiningModeLPM, MiningModePowerTune, MiningModeSleep  # noqa: E402
from pyasic.data import Fan, HashBoard, MinerData  # noqa: E402
from pyasic.data.device import DeviceInfo  # noqa: E402
from pyasic.data.error_codes import WhatsminerError, X19Error  # noqa: E402
from pyasic.data.pools import PoolMetrics, PoolUrl  # noqa: E402
from pyasic.device.algorithm.hashrate import SHA256HashRate  # noqa: E402
from pyasic.device.algorithm.hashrate.unit import HashUnit  # noqa: E402
from pyasic.device.firmware import MinerFirmware  # noqa: E402
from pyasic.device.makes import MinerMake  # noqa: E402

GH = HashUnit.SHA256.GH
TH = HashUnit.SHA256.TH


def full() -> MinerData:
    """A complete reading: three boards in GH/s, a power-tuning config, two pools, one error."""
    return MinerData(
        ip="10.0.0.5",
        device_info=DeviceInfo(make=MinerMake.WHATSMINER, firmware=MinerFirmware.STOCK),
        serial_number="HTM3X",
        mac="c4:08:00:00:00:01",
        fw_ver="20230803.11.REL",
        api_ver="2.0.5",
        hostname="WhatsMiner",
        expected_hashrate=SHA256HashRate(rate=126.0, unit=TH),
        wattage=3276,
        voltage=12.5,
        fan_psu=9060,
        fans=[Fan(speed=6000), Fan(speed=5990)],
        hashboards=[
            HashBoard(
                slot=i,
                hashrate=SHA256HashRate(rate=42000.0, unit=GH),
                temp=58.0 + i,
                chip_temp=65.0 + i,
                chips=135,
                expected_chips=135,
                missing=False,
            )
            for i in range(3)
        ],
        config=MinerConfig(mining_mode=MiningModePowerTune(power=3600)),
        errors=[WhatsminerError(error_code=110)],
        is_mining=True,
        uptime=1234,
        pools=[
            PoolMetrics(
                url=PoolUrl.from_str("stratum+tcp://btc.example.pool:3333"),
                user="w.1",
                accepted=10,
                rejected=1,
                active=True,
                alive=True,
                index=0,
            ),
            PoolMetrics(url=None, user="", alive=False, index=1),
        ],
    )


def test_full_reading_maps_every_field() -> None:
    s = snapshot_from_data(full(), polled_at=5.0)
    assert s.hashrate_ths == pytest.approx(126.0)  # 3 x 42,000 GH/s
    assert s.expected_hashrate_ths == pytest.approx(126.0)
    assert (s.power_w, s.power_limit_w) == (3276, 3600)
    assert s.is_mining and s.mode is Mode.NORMAL and s.uptime_s == 1234 and s.polled_at == 5.0
    assert [b.hashrate_ths for b in s.hashboards] == pytest.approx([42.0] * 3)
    assert [(b.index, b.chips, b.expected_chips, b.ok) for b in s.hashboards] == [
        (i, 135, 135, True) for i in range(3)
    ]
    assert s.hashboards[2].chip_temp_c == 67.0 and s.hashboards[2].board_temp_c == 60.0
    assert s.temp_c == 67.0
    assert [(f.index, f.rpm) for f in s.fans] == [(0, 6000), (1, 5990)]
    assert s.psu == {"fan_rpm": 9060, "output_voltage_v": 12.5}
    p0, p1 = s.pools
    assert (p0.url, p0.user, p0.status, p0.active, p0.accepted, p0.rejected) == (
        "stratum+tcp://btc.example.pool:3333",
        "w.1",
        "alive",
        True,
        10,
        1,
    )
    assert (p1.url, p1.status, p1.active) == ("", "dead", False)
    (fault,) = s.errors
    assert fault.code == "110" and "fan" in fault.message.lower() and fault.component is Component.FAN


def test_identity() -> None:
    ident = identity_from_data(full(), host="10.0.0.5")
    assert ident.vendor == "whatsminer" and ident.model.startswith("Whatsminer")
    assert ident.firmware == "Stock 20230803.11.REL" and ident.api_version == "2.0.5"
    assert (ident.serial, ident.mac, ident.hostname) == ("HTM3X", "C4:08:00:00:00:01", "WhatsMiner")
    assert (ident.driver, ident.api, ident.host) == ("pyasic", "pyasic", "10.0.0.5")
    assert vendor_of(MinerMake.ANTMINER) == "antminer" and vendor_of("AvalonMiner") == "avalon"
    assert vendor_of(None) == "generic" and vendor_of("Goldshell") == "goldshell"


def test_json_form_maps_the_same() -> None:
    """dump-device saves the JSON form; parse_responses maps it without pyasic objects."""
    data = full()
    dumped = json.loads(data.model_dump_json())
    assert snapshot_from_data(dumped, polled_at=5.0) == snapshot_from_data(data, polled_at=5.0)
    assert identity_from_data(dumped) == identity_from_data(data)


def test_empty_reading_has_nothing_and_is_not_telemetry() -> None:
    """What pyasic returns for a miner that went away: an empty MinerData with expected boards."""
    data = MinerData(ip="10.0.0.6", hashboards=[HashBoard(slot=i) for i in range(3)])
    assert not has_telemetry(data)
    s = snapshot_from_data(data)
    assert s.hashrate_ths is None and s.power_w is None and s.power_limit_w is None
    assert s.mode is Mode.UNKNOWN and s.uptime_s is None and s.fans == () and s.errors == ()
    assert [b.ok for b in s.hashboards] == [False] * 3 and s.hashboards[0].status == "missing"
    assert has_telemetry(MinerData(ip="x", uptime=5)) and has_telemetry(
        MinerData(ip="x", fans=[Fan(speed=1)])
    )
    assert identity_from_data(MinerData(ip="10.0.0.6")).model == "unknown"


def test_odd_values() -> None:
    """NaN, zero watts, bare floats for hashrate, a board short of chips, a pool without index."""
    data = MinerData(
        ip="10.0.0.7",
        wattage=0,
        env_temp=float("nan"),
        hashboards=[
            HashBoard(
                slot=0,
                hashrate=SHA256HashRate(rate=40.0, unit=TH),
                chips=100,
                expected_chips=126,
                missing=False,
            ),
            HashBoard(slot=1, hashrate=None, chips=None, missing=False, temp=float("inf")),
        ],
        fans=[Fan(speed=None)],
        pools=[PoolMetrics(url=None, accepted=None, rejected=None, alive=None)],
        errors=[X19Error(error_message="Chain 1 temperature too high")],
    )
    s = snapshot_from_data(data)
    assert s.hashrate_ths == pytest.approx(40.0)
    assert s.power_w is None  # 0 W means "not reported"
    assert s.env_temp_c is None and s.hashboards[1].board_temp_c is None
    assert s.hashboards[0].ok is False and s.hashboards[1].hashrate_ths is None
    assert s.fans[0].rpm is None
    assert (s.pools[0].index, s.pools[0].status, s.pools[0].accepted) == (0, "", 0)
    assert s.errors[0].code == "0" and s.errors[0].component is Component.TEMPERATURE
    # Units: pyasic's objects in any unit, their JSON form, bare numbers (TH/s), junk.
    assert ths(SHA256HashRate(rate=2.5, unit=HashUnit.SHA256.PH)) == pytest.approx(2500.0)
    assert ths({"rate": 110e12, "unit": {"value": 1, "suffix": "H/s"}}) == pytest.approx(110.0)
    assert ths(95.5) == 95.5 and ths({"rate": 7.0}) == 7.0
    assert ths(None) is None and ths(True) is None and ths({"rate": "x"}) is None and ths(math.nan) is None


def test_modes() -> None:
    def mode(config: MinerConfig | None, is_mining: bool = True, rate: float = 100.0) -> tuple[Mode, bool]:
        hb = [HashBoard(slot=0, hashrate=SHA256HashRate(rate=rate, unit=TH), missing=False)]
        s = snapshot_from_data(MinerData(ip="x", config=config, is_mining=is_mining, hashboards=hb))
        return s.mode, s.is_mining

    assert mode(MinerConfig(mining_mode=MiningModeSleep()), rate=0.0) == (Mode.SLEEP, False)
    assert mode(MinerConfig(mining_mode=MiningModeLPM())) == (Mode.LOW, True)
    assert mode(MinerConfig(mining_mode=MiningModePowerTune(power=3000))) == (Mode.NORMAL, True)
    assert mode(None) == (Mode.UNKNOWN, True)
    assert mode(None, is_mining=False, rate=0.0) == (Mode.SLEEP, False)
    # btminer v2 keeps is_mining true while stopped: no hashrate means not mining.
    assert mode(MinerConfig(mining_mode=MiningModePowerTune(power=3000)), rate=0.0) == (Mode.NORMAL, False)
    assert (
        snapshot_from_data(
            MinerData(ip="x", config=MinerConfig(mining_mode=MiningModePowerTune(power=2800)))
        ).power_limit_w
        == 2800
    )


def test_redacted_blanks_pool_passwords() -> None:
    from pyasic.config.pools import Pool, PoolConfig, PoolGroup

    cfg = MinerConfig(
        pools=PoolConfig(
            groups=[PoolGroup(pools=[Pool(url="stratum+tcp://p:1", user="u", password="s3cret")])]
        )
    )
    out = redacted(as_mapping(MinerData(ip="x", config=cfg)))
    assert (
        "s3cret" not in json.dumps(out)
        and out["config"]["pools"]["groups"][0]["pools"][0]["password"] == "***"
    )


def test_as_mapping_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="MinerData"):
        as_mapping(42)
