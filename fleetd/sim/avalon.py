"""Canaan Avalon emulator: the cgminer API (TCP 4028) of an A1566 and of an Avalon Q home miner.

Replies follow the captures (captures/avalon_*.json, see tests/fixtures/PROVENANCE.md): `version`,
`devs`, and `estats`/`stats` whose bracket-encoded "MM ID0" string is the captured one, key for key in
the captured order, with the live keys (GHSspd, MGHS, TMax, Fan*, WALLPOWER/PS, SoftOFF, WORKMODE,
MPO, ...) filled from the miner's state; the Q keeps its "'STATS':{...}" wrapping and its HBinfo.
`ascset|0,softoff,1:<ts>` and `softon` act at `ts` on the miner's clock (which `clock_offset_s`
shifts, as on Avalons whose clock was never set) and answer like the captured softoff (STATUS "I",
code 118); softon closes the socket without a reply unless `softon_reply` (then as captured).
`ascset|0,workmode,set,N` switches Eco/Standard/Super (also while soft-off, for the next softon), hashrate
and power following each model's mode figures (`mode_factors`: the catalog's, config/models.toml; MPO
shows the mode's power), and `ascset|0,worklevel,set,N` the work level, both answered as the captured
workmode reply ("ASC 0 set OK", code 119); the work level shows as
WORKLEVEL where the layout carries it (the Q's) and changes nothing else (its effect is not known
here). `version` and `devs` follow each model's own capture (the Q's version has LVERSION, CGVERSION,
BVERSION and a colon-separated MAC instead of the A1566's VERSION, LOADER and bare MAC).

The wrong_password fault (the API has no password) refuses `ascset` as access denied.

Options: clock_offset_s, softon_reply. Quirks: none.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import time
from typing import Any, ClassVar

from fleetd.sim.antminer_api import ApiProtocol
from fleetd.sim.antminer_replies import capture
from fleetd.sim.base import EmulatedMiner, MinerState, listen, reply_override, wire
from fleetd.sim.server import PADDING

__all__ = ["QUIRKS", "AvalonA1566", "AvalonMiner", "AvalonQ"]

QUIRKS: frozenset[str] = frozenset()
_MODES = {0: "low", 1: "normal", 2: "high"}
_MODE_VALUES = {v: k for k, v in _MODES.items()}


def split_mm(text: str) -> tuple[str, list[tuple[str, str]], str]:
    """(prefix, [(key, value)] in order, suffix) of a bracket-encoded string; values keep their spacing."""
    prefix, suffix = "", ""
    if text.startswith("'") and ":{" in text:
        cut = text.index(":{") + 2
        prefix, text, suffix = text[:cut], text[cut:].removesuffix("}"), "}"
    pairs = []
    rest = text
    while "[" in rest:
        key, _, tail = rest.partition("[")
        value, _, rest = tail.partition("]")
        pairs.append((key.strip(), value))
    return prefix, pairs, suffix


def join_mm(prefix: str, pairs: list[tuple[str, str]], suffix: str) -> str:
    return prefix + " ".join(f"{k}[{v}]" for k, v in pairs) + suffix


class AvalonMiner(EmulatedMiner):
    """One Avalon on Canaan's cgminer; subclasses pin the model and its capture layout."""

    vendor = "Canaan"
    default_ports: ClassVar[dict[str, int]] = {"api": 4028}
    stats_capture: ClassVar[str]
    version_capture: ClassVar[str]
    devs_capture: ClassVar[str]
    mm_key: ClassVar[str]
    prod: ClassVar[str]
    model_code: ClassVar[str]
    firmware: ClassVar[str]
    soft_off_value: ClassVar[str] = "1"
    # (hashrate, power) factors of Standard for Eco and Super, as in config/models.toml.
    mode_factors: ClassVar[dict[str, tuple[float, float]]] = {"low": (0.8, 0.72), "high": (1.1, 1.2)}

    def __init__(
        self,
        state: MinerState,
        host: str,
        ports: dict[str, int],
        *,
        clock_offset_s: float = 0.0,
        softon_reply: bool = False,
    ) -> None:
        super().__init__(state, host, ports)
        if state.mode_factors is None:
            state.mode_factors = dict(self.mode_factors)
        self.clock_offset_s = clock_offset_s
        self.softon_reply = softon_reply
        digest = hashlib.md5(host.encode()).hexdigest()
        self.dna = "0201" + digest[:12]
        self.mac = digest[12:24]
        self.soft_off_at: float | None = None
        self.soft_on_at: float | None = None
        self.work_level = 0
        self._timers: list[asyncio.TimerHandle] = []
        stats = capture(self.stats_capture)
        self.template = copy.deepcopy(stats["STATS"])
        self.prefix, self.pairs, self.suffix = split_mm(self.template[0][self.mm_key])

    def clock(self, now: float | None = None) -> int:
        return int((time.time() if now is None else now) + self.clock_offset_s)

    async def start(self) -> None:
        try:
            self.servers.append(await listen(lambda: ApiProtocol(self), self.host, self.ports["api"]))
        except BaseException:
            await EmulatedMiner.stop(self)
            raise

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await super().stop()

    # --- wire ----------------------------------------------------------------------------------

    def api_reply(self, request: bytes) -> tuple[bytes, bool]:
        text = request.strip(PADDING).decode("utf-8", "replace")
        now = time.time()
        if text.startswith("{"):
            try:
                req = json.loads(text)
                command, param = str(req["command"]), str(req.get("parameter") or "")
            except (ValueError, KeyError, TypeError):
                return self._encode(self._error(23, "Invalid JSON", now)), False
        else:
            command, _, param = text.partition("|")
        if command == "ascset" and param.split(",")[1:2] == ["softon"] and not self.softon_reply:
            self.rpc(command, param, now)
            return b"", False  # as captured from the Q: the socket closes without a reply
        if "+" in command:
            parts = []
            for c in command.split("+"):
                reply = self.rpc(c, param, now) or self._error(14, "Invalid command", now)
                parts.append(f"{json.dumps(c)}:[{self._render(c, reply)}]")
            return self._encode("{" + ",".join(parts) + ',"id":1}'), False
        reply = self.rpc(command, param, now) or self._error(14, "Invalid command", now)
        return self._encode(self._render(command, reply)), False

    def _render(self, command: str, reply: dict) -> str:
        override = reply_override(self.state.faults, command)
        return json.dumps(reply, separators=(",", ":")) if override is None else override

    def _encode(self, body: dict | str) -> bytes:
        if not isinstance(body, str):
            body = json.dumps(body, separators=(",", ":"))
        if self.state.faults.malformed:
            body = body[: max(1, len(body) // 2)]
        return wire(body) + b"\x00"

    def _status(self, code: int, msg: str, now: float, flag: str = "S") -> list[dict[str, Any]]:
        return [
            {
                "STATUS": flag,
                "When": self.clock(now),
                "Code": code,
                "Msg": msg,
                "Description": "cgminer 4.11.1",
            }
        ]

    def _error(self, code: int, msg: str, now: float) -> dict:
        return {"STATUS": self._status(code, msg, now, "E"), "id": 1}

    def rpc(self, command: str, param: str, now: float) -> dict | None:
        handler = self._RPC.get(command.strip())
        return handler(self, param, now) if handler else None

    # --- reads ---------------------------------------------------------------------------------

    def _rpc_version(self, _param: str, now: float) -> dict:
        item = dict(capture(self.version_capture)["VERSION"][0])
        mac = (
            ":".join(self.mac[i : i + 2] for i in range(0, 12, 2)).upper() if ":" in item["MAC"] else self.mac
        )
        live = {"PROD": self.prod, "MODEL": self.model_code, "DNA": self.dna, "MAC": mac}
        live.update(dict.fromkeys(("VERSION", "LVERSION", "CGVERSION", "BVERSION"), self.firmware))
        item.update({k: v for k, v in live.items() if k in item})  # each layout keeps its own keys
        return {"STATUS": self._status(22, "CGMiner versions", now), "VERSION": [item], "id": 1}

    def _rpc_devs(self, _param: str, now: float) -> dict:
        item = dict(capture(self.devs_capture)["DEVS"][0])
        st = self.state
        mhs = st.hashrate_ths(now) * 1e6
        avg = st.steady_hashrate_ths(now) * 1e6
        elapsed = st.uptime_s(now)
        live = {
            "MHS av": round(avg, 2),
            "MHS 5s": round(mhs, 2),
            "MHS 30s": round(mhs, 2),
            "MHS 1m": round(mhs, 2),
            "MHS 5m": round(avg, 2),
            "MHS 15m": round(avg, 2),
            "Accepted": st.accepted + elapsed // 7,
            "Total MH": float(round(avg * elapsed)),
            "Last Valid Work": self.clock(now),
            "Device Elapsed": elapsed,
        }
        item.update({k: v for k, v in live.items() if k in item})
        return {"STATUS": self._status(9, "1 ASC(s)", now), "DEVS": [item], "id": 1}

    def _mm_string(self, now: float) -> str:
        st = self.state
        off = st.sleeping
        rate = st.hashrate_ths(now) * 1000.0
        avg = st.steady_hashrate_ths(now) * 1000.0
        shares = st.board_fractions()
        total = sum(shares) or 1.0
        chip = st.chip_temp_c(now) if not off else 0.0
        fans = st.fan_rpms() if not off else [0] * st.spec.fans
        watts = round(st.power_w(now))
        mpo = round(st.mode_power_w())
        boards = len(shares)
        live = {
            "Elapsed": str(st.uptime_s(now)),
            "SYSTEMSTATU": f"Work: {'In Idle' if off else 'In Work'}, Hash Board: {boards}"
            + (" " if boards > 1 else ""),
            "GHSspd": f"{rate:.2f}",
            "GHSmm": f"{st.expected_hashrate_ths() * 1000.0:.2f}",
            "GHSavg": f"{avg:.2f}",
            "MGHS": " ".join(f"{avg * s / total:.2f}" for s in shares),
            "TMax": str(round(chip)),
            "TAvg": str(round(chip - 8) if chip else 0),
            "MTmax": " ".join(str(round(chip)) if s else "0" for s in shares),
            "MTavg": " ".join(str(round(chip - 8)) if s and chip else "0" for s in shares),
            "FanR": f"{0 if off else 49}%",
            "WALLPOWER": str(watts),
            "SoftOFF": self.soft_off_value if off else "0",
            "WORKMODE": str(_MODE_VALUES.get(st.mode, 1)),
            "WORKLEVEL": str(self.work_level),  # only where the layout carries it (the Q's)
            "MPO": str(mpo),
            "ECHU": " ".join("0" if s else "512" for s in shares),
            "TA": str(st.spec.chips_per_board * boards),
            "ITemp": "26",
            "HBITemp": str(round(chip - 40) if chip else 27),
            "HBOTemp": str(round(chip - 30) if chip else 27),
        }
        for i, rpm in enumerate(fans, start=1):
            live[f"Fan{i}"] = str(rpm)
        if self.soft_off_at is not None:
            live["SoftOffTime"] = str(int(self.soft_off_at))
        if self.soft_on_at is not None:
            live["SoftOnTime"] = str(int(self.soft_on_at))
        pairs = []
        for key, value in self.pairs:
            if key == "PS":
                ps = value.split()
                ps[-1] = str(watts)
                value = " ".join(ps)
            pairs.append((key, live.get(key, value)))
        return join_mm(self.prefix, pairs, self.suffix)

    def _stats_items(self, now: float, pools: bool) -> list[dict]:
        elapsed = self.state.uptime_s(now)
        items = []
        for entry in self.template if pools else self.template[:1]:
            item = dict(entry)
            item["Elapsed"] = elapsed
            if self.mm_key in item:
                item[self.mm_key] = self._mm_string(now)
            items.append(item)
        return items

    def _rpc_estats(self, _param: str, now: float) -> dict:
        return {
            "STATUS": self._status(70, "CGMiner stats", now),
            "STATS": self._stats_items(now, False),
            "id": 1,
        }

    def _rpc_stats(self, _param: str, now: float) -> dict:
        return {
            "STATUS": self._status(70, "CGMiner stats", now),
            "STATS": self._stats_items(now, True),
            "id": 1,
        }

    def _rpc_pools(self, _param: str, now: float) -> dict:
        item = dict(capture("antminer_s21_pools")["POOLS"][0])
        item.update(
            {
                "URL": "stratum+tcp://stratum.example.com:3333",
                "User": f"fleetd_sim.{self.host.replace('.', 'x')}",
            }
        )
        item.pop("Pool Stale%%", None)
        return {"STATUS": self._status(7, "1 Pool(s)", now), "POOLS": [item], "id": 1}

    # --- ascset --------------------------------------------------------------------------------

    def _at(self, ts: str, action: Any, now: float) -> float:
        """Run `action` when the miner's clock reaches `ts`; returns that time on the miner's clock."""
        try:
            at = float(ts)
        except ValueError:
            at = self.clock(now)
        delay = max(0.0, at - (now + self.clock_offset_s))
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(asyncio.get_running_loop().call_later(delay, action))
        return at

    def _rpc_ascset(self, param: str, now: float) -> dict:
        parts = [p.strip() for p in param.split(",")]
        what = parts[1] if len(parts) > 1 else ""
        if self.state.faults.wrong_password:  # no API password on Avalons: modelled as write access denied
            return {"STATUS": self._status(45, "Access denied to 'ascset' command", now, "E"), "id": 1}
        if what in ("softoff", "softon") and len(parts) > 2:
            _, _, ts = parts[2].partition(":")
            action = self.state.sleep if what == "softoff" else self.state.wake
            at = self._at(ts, action, now)
            if what == "softoff":
                self.soft_off_at = at
            else:
                self.soft_on_at = at
            return {
                "STATUS": self._status(118, f"ASC 0 set info: success {what}:{int(at)}", now, "I"),
                "id": 1,
            }
        if what in ("workmode", "worklevel") and len(parts) > 3 and parts[2] == "set":
            if not self.state.faults.ignore_power_commands:
                if what == "workmode" and parts[3] in ("0", "1", "2"):
                    self.state.mode = _MODES[int(parts[3])]
                    if self.state.sleeping:  # the firmware keeps it: soft-on runs the mode set while off
                        self.state.mode_before_sleep = self.state.mode
                elif what == "worklevel" and parts[3].isdigit():
                    self.work_level = int(parts[3])
            # As captured (avalon_q_ascset-workmode.json): a plain success, not the "set info" form.
            return {"STATUS": self._status(119, "ASC 0 set OK", now), "id": 1}
        return {"STATUS": self._status(119, f"ASC 0 set failed: {what}", now, "E"), "id": 1}

    _RPC: ClassVar[dict[str, Any]] = {
        "version": _rpc_version,
        "devs": _rpc_devs,
        "estats": _rpc_estats,
        "stats": _rpc_stats,
        "pools": _rpc_pools,
        "ascset": _rpc_ascset,
    }


class AvalonA1566(AvalonMiner):
    """AvalonMiner A1566 (15-194) on firmware 24102401: "MM ID0" in `estats`, three boards."""

    stats_capture = "avalon_a1566_estats"
    version_capture = "avalon_a1566_version"
    devs_capture = "avalon_a1566_devs"
    mm_key = "MM ID0"
    prod = "AvalonMiner 15-194"
    model_code = "15-194"
    firmware = "24102401_25462b2_9ddf522"


class AvalonQ(AvalonMiner):
    """Avalon Q home miner on firmware 25052801: "MM ID0:Summary" plus HBinfo, one board."""

    stats_capture = "avalon_q_stats"
    version_capture = "avalon_q_version"
    devs_capture = "avalon_q_devs"
    mm_key = "MM ID0:Summary"
    prod = "Avalon Q"
    model_code = "Q"
    firmware = "25052801_14a19a2"  # LVERSION/CGVERSION/BVERSION as captured
    soft_off_value = "4"  # as captured
    # Eco as captured (MPO 800 W, GHSmm 55.0 TH/s at WORKMODE 0); Super's figures are not known.
    mode_factors: ClassVar[dict[str, tuple[float, float]]] = {
        "low": (55.0 / 90.0, 800.0 / 1674.0),
        "high": (1.1, 1.2),
    }
