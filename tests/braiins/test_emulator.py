"""The Braiins OS emulator: the GetMinerStats reply in the capture's shape, BOSer on the CGMiner API."""

from __future__ import annotations

import httpx
import pytest
from fleetd.drivers.braiins.parse import parse_tuner

from tests.braiins.conftest import WEB_PORT, Start
from tests.conftest import load_fixture
from tests.sim.helpers import api
from tests.sim.test_capture_fidelity import shape_diff

MODEL = "Antminer S21 Pro"


async def _rest(host: str, path: str) -> object:
    base = f"http://{host}:{WEB_PORT}"
    async with httpx.AsyncClient(timeout=5.0) as client:
        token = (
            await client.post(f"{base}/api/v1/auth/login", json={"username": "root", "password": ""})
        ).json()
        resp = await client.get(base + path, headers={"Authorization": token["token"]})
        assert resp.status_code == 200, resp.text
        return resp.json()


async def test_miner_stats_is_the_capture_with_live_values(start: Start) -> None:
    _, endpoint = await start(MODEL)
    captured = load_fixture("braiins_s21pro_grpc-GetMinerStats.json")
    reply = await _rest(endpoint.host, "/api/v1/miner/stats")
    assert shape_diff(reply, captured) == []
    assert list(reply) == list(captured)  # message fields in the capture's order
    assert reply["miner_stats"]["real_hashrate"]["last_5s"]["gigahash_per_second"] == pytest.approx(245000.0)
    assert reply["power_stats"]["approximated_consumption"]["watt"] == 3480
    # As captured: the 24 h window under-reads on a miner up for less than a day.
    day = reply["miner_stats"]["real_hashrate"]["last_24h"]["gigahash_per_second"]
    assert day <= reply["miner_stats"]["real_hashrate"]["since_restart"]["gigahash_per_second"]


async def test_cgminer_api_is_boser(start: Start) -> None:
    _, endpoint = await start(MODEL)
    version = await api(endpoint.host, "version")
    assert "BOSer" in version["VERSION"][0] and "BMMiner" not in version["VERSION"][0]
    for command in ("summary", "devs", "pools"):
        reply = await api(endpoint.host, command)
        assert reply["STATUS"][0]["STATUS"] == "S", command
        assert reply["STATUS"][0]["Description"].startswith("BOSer "), command
    devs = await api(endpoint.host, "devs")
    assert len(devs["DEVS"]) == 3 and all("MHS 5s" in d for d in devs["DEVS"])


# The field set and key order of the `tunerstatus` reply in Braiins' BOSminer API documentation (an S9
# on BOSminer+ 0.2.0; unlicensed, so only its field names are written here: tests/fixtures/PROVENANCE.md).
TUNER_FIELDS = [
    "ApproximateChainPowerConsumption",
    "ApproximateMinerPowerConsumption",
    "DynamicPowerScaling",
    "PowerLimit",
    "TunerChainStatus",
]
TUNER_CHAIN_FIELDS = [
    "ApproximatePowerConsumptionWatt",
    "HashchainIndex",
    "Iteration",
    "LoadedProfileCreatedOn",
    "PowerLimitWatt",
    "StageElapsed",
    "Status",
    "TunerRunning",
    "TuningElapsed",
]


async def test_tunerstatus_has_the_documented_fields(start: Start) -> None:
    _, endpoint = await start(MODEL)
    reply = await api(endpoint.host, "tunerstatus")
    status, tuner = reply["STATUS"][0], reply["TUNERSTATUS"][0]
    assert (status["STATUS"], status["Code"], status["Msg"]) == ("S", 203, "Tuner Status")
    assert list(tuner) == TUNER_FIELDS
    assert [list(c) for c in tuner["TunerChainStatus"]] == [TUNER_CHAIN_FIELDS] * 3
    ints = [tuner[k] for k in TUNER_FIELDS if k.startswith(("Approximate", "Power"))]
    ints += [
        c[k]
        for c in tuner["TunerChainStatus"]
        for k in TUNER_CHAIN_FIELDS
        if k not in ("Status", "TunerRunning")
    ]
    assert all(type(v) is int for v in ints)
    assert all(type(c["TunerRunning"]) is bool for c in tuner["TunerChainStatus"])
    limit, watts = float(tuner["PowerLimit"]), float(tuner["ApproximateMinerPowerConsumption"])
    assert parse_tuner(reply) == (watts, limit) and watts > 0 and limit > 0


async def test_details_and_configuration_have_the_capture_shape(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    details = await _rest(endpoint.host, "/api/v1/miner/details")
    captured = load_fixture("braiins_s21pro_rest-miner-details.json")
    assert shape_diff(details, captured) == [] and list(details) == list(captured)
    assert details["miner_identity"]["miner_model"] == "Antminer S21 Pro" and details["status"] == 2
    assert (
        details["bos_version"] == captured["bos_version"] and details["serial_number"] == miner.state.serial
    )
    config = await _rest(endpoint.host, "/api/v1/configuration/miner")
    assert list(config) == list(load_fixture("braiins_s21pro_rest-configuration-miner.json"))
    assert config["tuner"]["power_target"] == {"watt": 3480} and config["pool_groups"]
    miner.state.sleep()
    assert (await _rest(endpoint.host, "/api/v1/miner/details"))["status"] == 3  # MinerStatus paused
