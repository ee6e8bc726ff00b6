"""VNish emulator: an Antminer S19 on VNish 1.2.6, its web API on port 80.

Paths, bodies, field names, types and enums follow VNish's own OpenAPI document for 1.2.6
(tests/fixtures/vnish_1.2.6_openapi.json; tests/vnish/test_openapi.py validates every reply against it).
No licensable capture of a VNish reply exists (tests/fixtures/PROVENANCE.md), so the values and the few
behaviours the document leaves open are inferred and marked so below.

`POST /api/v1/unlock {"pw": ...}` returns `{"token": ...}` (a wrong password: 403 with the document's
AuthCheck body), which the protected calls carry as `Authorization: Bearer <token>`. `GET /api/v1/info`,
`/api/v1/perf-summary` and `/api/v1/summary` are open (the document allows the summary without a
token); `/api/v1/autotune/presets`, `POST /api/v1/mining/pause|resume` (empty 200 on success) and
`POST /api/v1/settings` `{"miner": {"overclock": {"preset": NAME}}}` (answered with SaveConfigResult)
need the token. The preset list is the S19's as published ("disabled", then "1100" ... "4690", each
"<W> watt ~ <TH> TH"). `hr_*` hashrates are GH/s (`hr_measure`), the deprecated `instant_hashrate` and
`average_hashrate` TH/s (as every published reply shows them). `power_usage`, deprecated, repeats the
watts as firmware 1.2.0 reported them (the document calls it "same as power_efficiency"; no reply shows
that). Inferred: a paused miner reports `miner_state` "stopped" (the enum has no "paused"), and
`miner_state_time` counts only while mining ("implemented for mining state only"). Unknown paths
answer 404 `{"err": ...}` (the document's ErrDescr).

Faults as the other emulators: wrong_password refuses the unlock; ignore_power_commands acknowledges
pause/resume/preset changes and changes nothing. The CGMiner API that VNish also serves on 4028 is not
emulated: fleetd reads VNish over the web API only.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from fleetd.sim.antminer import AntminerS19Pro
from fleetd.sim.base import EmulatedMiner, MinerState, listen
from fleetd.sim.jsonweb import JsonWebProtocol, json_body

__all__ = ["PRESETS", "QUIRKS", "VNishMiner", "VNishS19"]

QUIRKS: frozenset[str] = frozenset()
FW_VERSION = "1.2.6"
DEFAULT_PASSWORD = "admin"
# (name, watts, TH/s) as the S19's preset list is published.
PRESETS: tuple[tuple[str, int, int], ...] = (
    ("1100", 1100, 53),
    ("1300", 1300, 58),
    ("1500", 1500, 63),
    ("1700", 1700, 68),
    ("1900", 1900, 73),
    ("2100", 2100, 78),
    ("2350", 2350, 85),
    ("2620", 2620, 91),
    ("2950", 2950, 99),
    ("3200", 3200, 102),
    ("3350", 3350, 105),
    ("3750", 3750, 110),
    ("4000", 4000, 115),
    ("4260", 4260, 120),
    ("4690", 4690, 124),
)


class VNishMiner(AntminerS19Pro):
    """One Antminer on VNish (web API only)."""

    vendor = "Antminer"
    default_ports: ClassVar[dict[str, int]] = {"web": 80}
    model_name: ClassVar[str] = "Antminer S19"
    model_id: ClassVar[str] = "s19"

    def __init__(self, state: MinerState, host: str, ports: dict[str, int]) -> None:
        super().__init__(state, host, ports)
        self.tokens: set[str] = set()
        self.preset = "disabled"
        self.paused = False
        self.state.hostname = "antminer"
        self.state.password = DEFAULT_PASSWORD

    async def start(self) -> None:
        try:
            self.servers.append(await listen(lambda: VNishWeb(self), self.host, self.ports["web"]))
        except BaseException:
            await EmulatedMiner.stop(self)
            raise

    def rest(
        self, method: str, path: str, headers: dict[str, str], body: bytes, now: float
    ) -> tuple[int, Any]:
        path = path.rstrip("/") or "/"
        route = self._ROUTES.get((method, path))
        if route is None:
            known = any(p == path for _, p in self._ROUTES)
            return (405, None) if known else (404, {"err": "Not found"})
        handler, protected = route
        if protected:
            token = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if token not in self.tokens:
                return 401, {"err": "Unauthorized"}
        return handler(self, json_body(body), now)

    def _unlock(self, req: Any, _now: float) -> tuple[int, Any]:
        pw = req.get("pw") if isinstance(req, dict) else None
        if pw != self.state.password or self.state.faults.wrong_password:
            return 403, {"unlock_timeout": None}
        token = secrets.token_urlsafe(24)[:32]
        self.tokens.add(token)
        return 200, {"token": token}

    def _info(self, _req: Any, now: float) -> tuple[int, Any]:
        live = self._live(now)
        return 200, {
            "miner": self.model_name,
            "model": self.model_id,
            "fw_name": "Vnish",
            "fw_version": FW_VERSION,
            "build_uuid": "5b50805f-a372-4f07-bbc2-5020aa03321a",
            "build_name": "vnishnet",
            "platform": "xil",
            "install_type": "nand",
            "build_time": "2025-05-29 19:22:26+00:00",
            "algorithm": "sha256d",
            "hr_measure": "GH/s",
            "system": {
                "os": "GNU/Linux",
                "miner_name": self.model_id,
                "file_system_version": "",
                "mem_total": 233712,
                "mem_free": 173956,
                "mem_free_percent": 74,
                "mem_buf": 31928,
                "mem_buf_percent": 13,
                "network_status": {
                    "mac": self.state.mac,
                    "dhcp": True,
                    "ip": self.host,
                    "netmask": "255.0.0.0",
                    "gateway": "127.0.0.1",
                    "dns": ["127.0.0.1"],
                    "hostname": self.state.hostname,
                },
                "uptime": f"{live.elapsed // 3600}:{live.elapsed // 60 % 60:02d}",
            },
            "serial": self.state.serial,
        }

    def _miner_status(self, elapsed: int) -> dict[str, Any]:
        if self.state.sleeping:
            return {"miner_state": "stopped", "miner_state_time": 0}
        return {"miner_state": "mining", "miner_state_time": elapsed}

    def _summary(self, _req: Any, now: float) -> tuple[int, Any]:
        live = self._live(now)
        watts = round(self.state.power_w(now))
        ghs = live.rate_ghs
        chip_max = max(live.chip_temps or [0.0])
        chains = []
        for i, board_ghs in enumerate(live.board_ghs):
            up = live.chips[i] > 0
            chains.append(
                {
                    "id": i + 1,
                    "frequency": 675.0 if up else 0.0,
                    "voltage": 13800 if up else 0,
                    "power_consumption": round(watts / max(1, len(live.board_ghs))),
                    "hashrate_ideal": round(live.ideal_board_ghs, 2),
                    "hashrate_rt": round(board_ghs, 2),
                    "hashrate_percentage": round(100.0 * board_ghs / live.ideal_board_ghs, 1)
                    if live.ideal_board_ghs
                    else 0.0,
                    "hr_error": 0.0,
                    "hw_errors": 0,
                    "pcb_temp": {
                        "min": round(live.chip_temps[i] - 16.0),
                        "max": round(live.chip_temps[i] - 12.0),
                    }
                    if up
                    else {"min": 0, "max": 0},
                    "chip_temp": {"min": round(live.chip_temps[i] - 4.0), "max": round(live.chip_temps[i])}
                    if up
                    else {"min": 0, "max": 0},
                    "chip_statuses": {"red": 0, "orange": 0, "grey": 0 if up else live.chips[i]},
                    "status": {
                        "state": "mining" if up and ghs > 0 else ("failure" if not up else "stopped"),
                        "description": "",
                    },
                }
            )
        pools = [
            {
                "id": 0,
                "url": "DevFee",
                "pool_type": "DevFee",
                "user": "DevFee",
                "status": "working",
                "asic_boost": False,
                "diff": "",
                "accepted": live.accepted // 50,
                "rejected": 0,
                "stale": 0,
                "ls_diff": 0.0,
                "ls_time": "0",
                "diffa": 0.0,
                "ping": 0,
            }
        ]
        for i, p in enumerate(self.conf["pools"]):
            if not p.get("url"):
                continue
            pools.append(
                {
                    "id": i + 1,
                    "url": p["url"],
                    "pool_type": "UserPool",
                    "user": p["user"],
                    "status": ("working" if i == 0 else "offline") if not self.state.sleeping else "offline",
                    "asic_boost": True,
                    "diff": "262K",
                    "accepted": live.accepted if i == 0 else 0,
                    "rejected": live.rejected if i == 0 else 0,
                    "stale": 0,
                    "ls_diff": 262144.0,
                    "ls_time": "0:00:05",
                    "diffa": 262144.0 * (live.accepted if i == 0 else 0),
                    "ping": 31,
                }
            )
        fans = [
            {"id": i, "rpm": rpm, "status": "ok" if rpm else "lost", "max_rpm": 6000}
            for i, rpm in enumerate(live.fans)
        ]
        return 200, {
            "miner": {
                "miner_status": self._miner_status(live.elapsed),
                "miner_type": f"{self.model_name} (Vnish {FW_VERSION})",
                "hr_stock": round(live.ideal_ghs, 2),
                "average_hashrate": round(live.avg_ghs / 1000.0, 2),
                "instant_hashrate": round(ghs / 1000.0, 2),
                "hr_realtime": round(ghs, 2),
                "hr_nominal": round(live.ideal_ghs, 2),
                "hr_average": round(live.avg_ghs, 2),
                "pcb_temp": {"min": round(chip_max - 16.0), "max": round(chip_max - 12.0)},
                "chip_temp": {"min": round(chip_max - 4.0), "max": round(chip_max)},
                "power_consumption": watts,
                "power_usage": watts,
                "power_efficiency": round(watts / (ghs / 1000.0), 2) if ghs > 0 else 0.0,
                "hw_errors_percent": 0.0,
                "hr_error": 0.0,
                "hw_errors": 0,
                "devfee_percent": 2.8,
                "devfee": round(ghs * 0.028, 2),
                "pools": pools,
                "cooling": {
                    "fan_num": len(fans),
                    "fans": fans,
                    "settings": {"mode": {"name": "auto"}},
                    "fan_duty": 60 if not self.state.sleeping else 10,
                },
                "chains": chains,
                "found_blocks": 0,
                "best_share": 0,
            }
        }

    def _preset_entry(self, name: str) -> dict[str, Any]:
        if name == "disabled":
            return {
                "name": "disabled",
                "pretty": "Disabled",
                "status": "untuned",
                "modded_psu_required": False,
                "globals": {"volt": 1380, "freq": 675},
            }
        watts, th = next((w, t) for n, w, t in PRESETS if n == name)
        return {
            "name": name,
            "pretty": f"{watts} watt ~ {th} TH",
            "status": "tuned",
            "modded_psu_required": False,
        }

    def _perf_summary(self, _req: Any, _now: float) -> tuple[int, Any]:
        return 200, {
            "current_preset": self._preset_entry(self.preset),
            "preset_switcher": {
                "enabled": False,
                "top_preset": None,
                "decrease_temp": 75,
                "rise_temp": 55,
                "check_time": 300,
                "autochange_top_preset": False,
                "ignore_fan_speed": False,
                "min_preset": None,
                "power_delta": 0,
            },
        }

    def _presets(self, _req: Any, _now: float) -> tuple[int, Any]:
        items = [
            {"name": "disabled", "pretty": "Disabled", "status": "untuned", "modded_psu_required": False}
        ]
        items += [
            {"name": n, "pretty": f"{w} watt ~ {t} TH", "status": "untuned", "modded_psu_required": False}
            for n, w, t in PRESETS
        ]
        for item in items:
            if item["name"] == self.preset:
                item["status"] = "tuned"
        return 200, items

    def _pause(self, _req: Any, _now: float) -> tuple[int, Any]:
        self.state.sleep()
        return 200, None

    def _resume(self, _req: Any, _now: float) -> tuple[int, Any]:
        self.state.wake()
        return 200, None

    def _settings(self, req: Any, _now: float) -> tuple[int, Any]:
        overclock = ((req or {}).get("miner") or {}).get("overclock") if isinstance(req, dict) else None
        name = overclock.get("preset") if isinstance(overclock, dict) else None
        if name is None:
            return 200, {"restart_required": False, "reboot_required": False}
        if name != "disabled" and all(n != name for n, _, _ in PRESETS):
            return 400, {"err": f"Unknown preset {name}"}
        if not self.state.faults.ignore_power_commands:
            self.preset = str(name)
            watts = next((w for n, w, _ in PRESETS if n == name), None)
            self.state.set_power_limit(None if watts is None else float(watts))
        return 200, {"restart_required": False, "reboot_required": False}

    _ROUTES: ClassVar[dict[tuple[str, str], tuple[Any, bool]]] = {
        ("POST", "/api/v1/unlock"): (_unlock, False),
        ("GET", "/api/v1/info"): (_info, False),
        ("GET", "/api/v1/perf-summary"): (_perf_summary, False),
        ("GET", "/api/v1/summary"): (_summary, False),
        ("GET", "/api/v1/autotune/presets"): (_presets, True),
        ("POST", "/api/v1/mining/pause"): (_pause, True),
        ("POST", "/api/v1/mining/resume"): (_resume, True),
        ("POST", "/api/v1/settings"): (_settings, True),
    }


class VNishWeb(JsonWebProtocol):
    __slots__ = ()
    server = "nginx"


class VNishS19(VNishMiner):
    """S19 on VNish 1.2.6 (the preset list as published for it)."""
