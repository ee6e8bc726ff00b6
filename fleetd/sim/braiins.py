"""Braiins OS emulator: an Antminer S21 Pro on BOS 26.04, BOSer's CGMiner API (4028) and the REST API (80).

CGMiner API: `version` names the miner `BOSer` (how detection tells BOS from stock cgminer),
`summary` and `devs` carry MHS figures, one DEVS entry per hashboard; `tunerstatus` carries the
tuner's `PowerLimit` and `ApproximateMinerPowerConsumption` with the field set, key order and STATUS
code of the reply Braiins documents (an S9 on BOSminer+ 0.2.0; unlicensed, so not copied: see
tests/fixtures/PROVENANCE.md); its status strings when tuned or paused are inferred; `fans` has the
documented `FANS[]` shape (FAN, ID, RPM, Speed); `pools` is the Antminer emulator's.

REST API (the paths and JSON of Braiins' published Public REST API): `POST /api/v1/auth/login`
gives a token (`timeout_s` 3600) that every other call must carry in its `Authorization` header.
`GET /api/v1/miner/stats` is the captured GetMinerStats message
(captures/braiins_s21pro_grpc-GetMinerStats.json) with live values, quirk included: `last_24h`
averages over a whole day even on a miner up for less. `GET /api/v1/miner/details`
and `GET /api/v1/configuration/miner` are the captured replies of the same S21 Pro on BOS 26.04
(captures/braiins_s21pro_rest-*.json) with this miner's values (details' `status`: 2 mining, 3
paused). `PUT /api/v1/actions/pause|resume` (answering whether the miner already was paused/mining)
and `PUT /api/v1/performance/power-target` `{"watt": N}` follow the published schemas (no capture here).

Faults as the other emulators: wrong_password refuses the login (401); ignore_power_commands
acknowledges pause/resume/power target and changes nothing.
Options: token_ttl_s.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from typing import Any, ClassVar

from fleetd.sim.antminer import AntminerS19Pro, ApiProtocol
from fleetd.sim.antminer_replies import capture
from fleetd.sim.base import EmulatedMiner, MinerState, listen
from fleetd.sim.jsonweb import JsonWebProtocol, json_body

__all__ = ["BOS_VERSION", "QUIRKS", "BraiinsMiner", "BraiinsS21Pro"]

QUIRKS: frozenset[str] = frozenset()
BOS_VERSION = "2026-04-14-0-912d084c-26.04-plus"  # bos_version.current as the 26.04 capture has it
BOSER = "bosminer-plus-tuner 26.04-plus"
TOKEN_TTL_S = 3600.0
STATS_CAPTURE = "braiins_s21pro_grpc-GetMinerStats"
DETAILS_CAPTURE = "braiins_s21pro_rest-miner-details"
CONFIG_CAPTURE = "braiins_s21pro_rest-configuration-miner"
_WINDOWS = ("last_5s", "last_15s", "last_30s", "last_1m", "last_5m", "last_15m", "last_30m", "last_1h")


class BraiinsMiner(AntminerS19Pro):
    """One Antminer on Braiins OS (CGMiner API and REST API; the web UI itself is not emulated)."""

    vendor = "Antminer"
    default_ports: ClassVar[dict[str, int]] = {"api": 4028, "web": 80}
    model_name: ClassVar[str] = "Antminer S21 Pro"
    sticker_ghs: ClassVar[float] = 234000.0

    def __init__(
        self, state: MinerState, host: str, ports: dict[str, int], *, token_ttl_s: float = TOKEN_TTL_S
    ) -> None:
        super().__init__(state, host, ports)
        self.token_ttl_s = token_ttl_s
        self.tokens: dict[str, float] = {}  # token -> when last used
        self.password = ""  # BOS ships with no password for root
        self.default_target_w = float(state.spec.power_w)
        self.state.hostname = "braiins-os"
        self.uid = hashlib.md5(f"bos:{host}".encode()).hexdigest()[:16]

    async def start(self) -> None:
        try:
            self.servers.append(await listen(lambda: ApiProtocol(self), self.host, self.ports["api"]))
            self.servers.append(await listen(lambda: BraiinsWeb(self), self.host, self.ports["web"]))
        except BaseException:
            await EmulatedMiner.stop(self)
            raise

    # --- CGMiner API (BOSer) -------------------------------------------------------------------

    def _bos_status(self, code: int, msg: str, now: float) -> list[dict[str, Any]]:
        return [{"STATUS": "S", "When": int(now), "Code": code, "Msg": msg, "Description": f"BOSer {BOSER}"}]

    def rpc(self, command: str, param: str, now: float) -> dict | None:
        handler = self._BOS_RPC.get(command)
        if handler is not None:
            return handler(self, param, now)
        reply = super().rpc(command, param, now)
        if reply is not None:
            for status in reply.get("STATUS", ()):
                status["Description"] = f"BOSer {BOSER}"
        return reply

    def _rpc_version(self, _param: str, now: float) -> dict:
        item = {"BOSer": BOSER, "API": "3.7"}
        return {"STATUS": self._bos_status(22, "BOSer versions", now), "VERSION": [item], "id": 1}

    def _rpc_summary(self, _param: str, now: float) -> dict:
        live = self._live(now)
        item = {
            "Elapsed": live.elapsed,
            "MHS av": round(live.avg_ghs * 1000, 2),
            "MHS 5s": round(live.rate_ghs * 1000, 2),
            "MHS 1m": round(live.rate_ghs * 1000, 2),
            "MHS 5m": round(live.avg_ghs * 1000, 2),
            "MHS 15m": round(live.avg_ghs * 1000, 2),
            "Found Blocks": 0,
            "Getworks": live.elapsed // 12,
            "Accepted": live.accepted,
            "Rejected": live.rejected,
            "Hardware Errors": live.elapsed // 100,
            "Utility": round(live.accepted / max(1, live.elapsed) * 60, 2),
            "Discarded": 0,
            "Stale": 0,
            "Get Failures": 0,
            "Local Work": live.elapsed * 90,
            "Remote Failures": 0,
            "Network Blocks": live.elapsed // 600,
            "Total MH": float(round(live.avg_ghs * 1000 * live.elapsed)),
            "Work Utility": round(live.avg_ghs * 13.97, 2),
            "Difficulty Accepted": float(live.accepted * 524288),
            "Difficulty Rejected": float(live.rejected * 524288),
            "Difficulty Stale": 0.0,
            "Best Share": 499065300,
            "Device Hardware%": 0.0,
            "Device Rejected%": 0.0,
            "Pool Rejected%": 0.0,
            "Pool Stale%": 0.0,
            "Last getwork": live.now,
        }
        return {"STATUS": self._bos_status(11, "Summary", now), "SUMMARY": [item], "id": 1}

    def _rpc_devs(self, _param: str, now: float) -> dict:
        live = self._live(now)
        items = []
        for i, ghs in enumerate(live.board_ghs):
            up = live.chips[i] > 0
            items.append(
                {
                    "ASC": i,
                    "Name": "BC5",
                    "ID": i,
                    "Enabled": "Y",
                    "Status": "Alive" if up else "Dead",
                    "Temperature": round(live.chip_temps[i] - 12.0, 1) if up else 0.0,
                    "Chip Temp": live.chip_temps[i],
                    "Board Temp": round(live.chip_temps[i] - 12.0, 1) if up else 0.0,
                    "MHS av": round(ghs * 1000, 2),
                    "MHS 5s": round(ghs * 1000, 2),
                    "MHS 1m": round(ghs * 1000, 2),
                    "MHS 5m": round(ghs * 1000, 2),
                    "MHS 15m": round(ghs * 1000, 2),
                    "Nominal MHS": round(live.ideal_board_ghs * 1000, 2),
                    "Accepted": live.accepted // max(1, len(live.board_ghs)),
                    "Rejected": 0,
                    "Hardware Errors": 0,
                    "Device Elapsed": live.elapsed,
                }
            )
        msg = f"{len(items)} ASC(s)"
        return {"STATUS": self._bos_status(9, msg, now), "DEVS": items, "id": 1}

    def _rpc_tunerstatus(self, _param: str, now: float) -> dict:
        # Fields, types, key order (BOSminer sorts keys) and STATUS code as the reply Braiins documents
        # for BOSminer+ (tests/fixtures/PROVENANCE.md: seen, not copied); the values are ours.
        watts = round(self.state.power_w(now))
        limit = int(self._power_target_w())
        boards = len(self.state.board_fractions())
        started = int(now) - self._live(now).elapsed
        chains = [
            {
                "ApproximatePowerConsumptionWatt": watts // max(1, boards),
                "HashchainIndex": i,
                "Iteration": 0,
                "LoadedProfileCreatedOn": started,
                "PowerLimitWatt": limit // max(1, boards),
                "StageElapsed": 0,
                "Status": "Tuning complete" if not self.state.sleeping else "Paused",
                "TunerRunning": False,
                "TuningElapsed": 0,
            }
            for i in range(boards)
        ]
        item = {
            "ApproximateChainPowerConsumption": max(0, watts - 40),
            "ApproximateMinerPowerConsumption": watts,
            "DynamicPowerScaling": "Disabled",
            "PowerLimit": limit,
            "TunerChainStatus": chains,
        }
        return {"STATUS": self._bos_status(203, "Tuner Status", now), "TUNERSTATUS": [item], "id": 1}

    def _rpc_fans(self, _param: str, now: float) -> dict:
        # The shape Braiins documents for BOSminer's `fans` (sorted keys, Speed in %); speed is ours.
        live = self._live(now)
        speed = 100 if not self.state.sleeping else 30
        items = [{"FAN": i, "ID": i, "RPM": rpm, "Speed": speed} for i, rpm in enumerate(live.fans)]
        return {"STATUS": self._bos_status(202, f"{len(items)} Fan(s)", now), "FANS": items, "id": 1}

    _BOS_RPC: ClassVar[dict[str, Any]] = {
        "version": _rpc_version,
        "summary": _rpc_summary,
        "devs": _rpc_devs,
        "tunerstatus": _rpc_tunerstatus,
        "fans": _rpc_fans,
    }

    # --- REST API ------------------------------------------------------------------------------

    def _authorized(self, headers: dict[str, str], now: float) -> bool:
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        used = self.tokens.get(token)
        if used is None or now - used > self.token_ttl_s:
            self.tokens.pop(token, None)
            return False
        self.tokens[token] = now  # each request refreshes the token's validity
        return True

    def rest(
        self, method: str, path: str, headers: dict[str, str], body: bytes, now: float
    ) -> tuple[int, Any]:
        path = path.rstrip("/") or "/"
        if path == "/api/v1/auth/login":
            if method != "POST":
                return 405, None
            return self._login(json_body(body), now)
        route = self._ROUTES.get((method, path))
        if route is None:
            known = any(p == path for _, p in self._ROUTES)
            return (405, None) if known else (404, {"message": f"Not found: {path}"})
        if not self._authorized(headers, now):
            return 401, {"message": "Unauthenticated: missing or expired token"}
        return route(self, json_body(body), now)

    def _login(self, req: Any, now: float) -> tuple[int, Any]:
        if not isinstance(req, dict) or "username" not in req or "password" not in req:
            return 400, {"message": "username and password are required"}
        wrong = req["username"] != "root" or req["password"] != self.password
        if wrong or self.state.faults.wrong_password:
            return 401, {"message": "Invalid username or password"}
        token = secrets.token_urlsafe(12)
        self.tokens[token] = now
        return 200, {"token": token, "timeout_s": int(self.token_ttl_s)}

    def _stats(self, _req: Any, now: float) -> tuple[int, Any]:
        live = self._live(now)
        stats = copy.deepcopy(capture(STATS_CAPTURE))
        miner = stats["miner_stats"]
        real = miner["real_hashrate"]
        for window in _WINDOWS:
            real[window] = {"gigahash_per_second": live.rate_ghs if window in _WINDOWS[:4] else live.avg_ghs}
        real["since_restart"] = {"gigahash_per_second": live.avg_ghs}
        # As captured: the 24 h window divides by a whole day even on a miner up for less.
        real["last_24h"] = {"gigahash_per_second": live.avg_ghs * min(1.0, live.elapsed / 86400.0)}
        miner["nominal_hashrate"] = {"gigahash_per_second": live.ideal_ghs * self._target_fraction()}
        pool = stats["pool_stats"]
        pool["accepted_shares"] = live.accepted
        pool["rejected_shares"] = live.rejected
        pool["generated_work"] = live.elapsed * 90
        pool["last_share_time"] = {"nanos": int((now % 1) * 1e9), "seconds": live.now}
        watts = round(self.state.power_w(now))
        power = stats["power_stats"]
        power["approximated_consumption"] = {"watt": watts}
        ths = live.rate_ghs / 1000.0
        power["efficiency"] = {"joule_per_terahash": watts / ths if ths > 0 else 0.0}
        return 200, stats

    def _target_fraction(self) -> float:
        return min(1.0, self._power_target_w() / self.default_target_w)

    def _power_target_w(self) -> float:
        limit = self.state.power_limit_w
        return float(limit) if limit is not None else self.default_target_w

    def _details(self, _req: Any, now: float) -> tuple[int, Any]:
        # The captured reply (BOS 26.04 on an S21 Pro) with this miner's values; `status` is the
        # MinerStatus enum (2 normal, 3 paused); the capture has no `detailed_status`.
        live = self._live(now)
        details = copy.deepcopy(capture(DETAILS_CAPTURE))
        details["miner_identity"].update(name=self.model_name, miner_model=self.model_name)
        details["psu_info"]["serial_number"] = f"PSU{self.state.serial[-14:]}"
        details.update(
            bosminer_uptime_s=live.elapsed,
            hostname=self.state.hostname,
            mac_address=self.state.mac.lower(),
            serial_number=self.state.serial,
            status=3 if self.state.sleeping else 2,
            sticker_hashrate={"gigahash_per_second": self.sticker_ghs},
            system_uptime=live.elapsed,
            system_uptime_s=live.elapsed,
            uid=self.uid,
        )
        return 200, details

    def _configuration(self, _req: Any, _now: float) -> tuple[int, Any]:
        # The captured reply's keys (its pool_groups is empty; a group's fields follow Braiins' schema).
        config = copy.deepcopy(capture(CONFIG_CAPTURE))
        pools = [
            {"uid": str(i), "url": p["url"], "user": p["user"], "enabled": True}
            for i, p in enumerate(self.conf["pools"])
            if p.get("url")
        ]
        config["pool_groups"] = [{"uid": "default", "name": "Default", "pools": pools}]
        config["tuner"]["power_target"] = {"watt": int(self._power_target_w())}
        return 200, config

    def _constraints(self, _req: Any, _now: float) -> tuple[int, Any]:
        # GetConstraintsResponse (Braiins OS public REST API 1.7): the tuner part only; the power target's
        # bounds are the model's (ModelSpec min/max power), its default the stock target.
        spec = self.state.spec
        power = {"default": {"watt": int(self.default_target_w)}}
        if spec.min_power_w:
            power.update(min={"watt": int(spec.min_power_w)}, max={"watt": int(spec.max_power_w)})
        return 200, {
            "tuner_constraints": {"default_mode": 1, "enabled": {"default": True}, "power_target": power}
        }

    def _pause(self, _req: Any, _now: float) -> tuple[int, Any]:
        already = self.state.sleeping
        self.state.sleep()
        return 200, already

    def _resume(self, _req: Any, _now: float) -> tuple[int, Any]:
        already = not self.state.sleeping
        self.state.wake()
        return 200, already

    def _set_power_target(self, req: Any, _now: float) -> tuple[int, Any]:
        watt = req.get("watt") if isinstance(req, dict) else None
        if not isinstance(watt, int) or isinstance(watt, bool):
            return 400, {"message": 'body must be {"watt": <integer>}'}
        spec = self.state.spec
        if spec.min_power_w and not spec.min_power_w <= watt <= spec.max_power_w:
            return 400, {
                "message": f"power target {watt} W out of range {spec.min_power_w:g}-{spec.max_power_w:g} W"
            }
        self.state.set_power_limit(float(watt))  # ignored under ignore_power_commands
        return 200, {"watt": watt}

    _ROUTES: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/api/v1/miner/stats"): _stats,
        ("GET", "/api/v1/miner/details"): _details,
        ("GET", "/api/v1/configuration/miner"): _configuration,
        ("GET", "/api/v1/configuration/constraints"): _constraints,
        ("PUT", "/api/v1/actions/pause"): _pause,
        ("PUT", "/api/v1/actions/resume"): _resume,
        ("PUT", "/api/v1/performance/power-target"): _set_power_target,
    }


class BraiinsWeb(JsonWebProtocol):
    __slots__ = ()
    server = "bos-rest"


class BraiinsS21Pro(BraiinsMiner):
    """S21 Pro on Braiins OS 26.04 (the GetMinerStats message as captured from one)."""
