"""The VNish emulator's replies against VNish's own OpenAPI document (1.2.6): schemas, enums, field order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fleetd.drivers.vnish import VNishDriver

from fleetd.model import Mode
from fleetd.sim.base import Faults
from tests.vnish.conftest import WEB_PORT, Start

OPENAPI = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "vnish_1.2.6_openapi.json").read_text()
)
SCHEMAS = OPENAPI["components"]["schemas"]
MODEL = "Antminer S19"


def check(reply: Any, schema: dict[str, Any]) -> None:
    """Validate `reply` against `schema`, whose $refs point into the document's components."""
    jsonschema.Draft202012Validator({**schema, "components": OPENAPI["components"]}).validate(reply)


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def response_schema(path: str, method: str = "get") -> dict[str, Any]:
    return OPENAPI["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]


async def replies(base: str, *, pause: bool = False) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        unlocked = await client.post(f"{base}/api/v1/unlock", json={"pw": "admin"})
        check(unlocked.json(), response_schema("/unlock", "post"))
        auth = {"Authorization": f"Bearer {unlocked.json()['token']}"}
        if pause:
            assert (await client.post(f"{base}/api/v1/mining/pause", headers=auth)).status_code == 200
        out = {
            path: (await client.get(f"{base}/api/v1{path}", headers=auth)).json()
            for path in ("/info", "/summary", "/perf-summary", "/autotune/presets")
        }
        saved = await client.post(
            f"{base}/api/v1/settings", headers=auth, json={"miner": {"overclock": {"preset": "1900"}}}
        )
        out["/settings"] = saved.json()
        return out


@pytest.mark.parametrize("pause", [False, True], ids=["mining", "paused"])
async def test_replies_follow_the_document(start: Start, pause: bool) -> None:
    _, endpoint = await start(MODEL)
    got = await replies(f"http://{endpoint.host}:{WEB_PORT}", pause=pause)
    for path in ("/info", "/summary", "/perf-summary", "/autotune/presets"):
        check(got[path], response_schema(path))
    check(got["/settings"], response_schema("/settings", "post"))
    stats = got["/summary"]["miner"]
    # The firmware writes fields in its struct's order, which the document's `required` lists keep.
    assert list(stats) == SCHEMAS["AntmMinerStats"]["required"]
    assert [list(c) for c in stats["chains"]] == [SCHEMAS["AntmChain"]["required"]] * 3
    assert all(list(p) == SCHEMAS["PoolStats"]["required"] for p in stats["pools"])
    assert stats["miner_status"]["miner_state"] == ("stopped" if pause else "mining")


async def test_refusals_follow_the_document(start: Start) -> None:
    _, endpoint = await start(MODEL, faults=Faults(wrong_password=True))
    base = f"http://{endpoint.host}:{WEB_PORT}"
    async with httpx.AsyncClient(timeout=5.0) as client:
        refused = await client.post(f"{base}/api/v1/unlock", json={"pw": "admin"})
        missing = await client.get(f"{base}/api/v1/nope")
    unlock = OPENAPI["paths"]["/unlock"]["post"]["responses"]
    assert refused.status_code == 403 and "403" in unlock
    check(refused.json(), unlock["403"]["content"]["application/json"]["schema"])
    assert missing.status_code == 404
    check(missing.json(), ref("ErrDescr"))


async def test_the_driver_reads_what_the_document_describes(start: Start) -> None:
    """hr_* in GH/s, the deprecated instant/average hashrates in TH/s: both give the same figure."""
    _, endpoint = await start(MODEL)
    driver = VNishDriver(endpoint)
    try:
        raw = await driver.raw_responses()
        snap = (await driver.read()).snapshot
    finally:
        await driver.close()
    stats = raw["web_api-v1-summary"]["miner"]
    assert stats["instant_hashrate"] == pytest.approx(stats["hr_realtime"] / 1000.0, abs=0.01)
    assert snap.hashrate_ths == pytest.approx(stats["hr_realtime"] / 1000.0)
    assert snap.mode is Mode.NORMAL and snap.power_w == stats["power_consumption"]
