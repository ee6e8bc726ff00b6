"""LuxOS emulator: an Antminer S19k Pro on LuxOS, CGMiner API on TCP 4028 with the LuxOS extensions.

The read replies shared with stock firmware (summary, stats, devs) are the Antminer emulator's;
LuxOS's own commands follow the LuxOS API: `logon` opens the miner's single session (refused while
another one is live), privileged commands take "<session id>,<argument>", `logoff` ends the session,
which also lapses after `session_ttl_s` without use. `profiles` is the captured S19k Pro list
(captures/luxos_s19kpro_profiles.json); `profileset` switches the running profile, `curtail`
sleeps and wakes. STATUS blocks carry the LUXminer description as the capture does. `version`,
`config`, `power`, `fans` and `pools` are the captures of the same S19k Pro (captures/luxos_s19kpro_*.json:
fields, types, STATUS codes) with live values; `CurtailMode` stays the captured "None" (what LuxOS
reports while curtailed is not captured). `tempctrl` and `atm` are modelled on LuxOS's documented
fields, `groups` on the fields pyasic reads (no capture of these).

The wrong_password fault (the API has no password) refuses `logon` as access denied.

Options: session_ttl_s. Quirks: none beyond the Antminer emulator's (QUIRKS).
"""

from __future__ import annotations

import copy
import secrets
from typing import Any, ClassVar

from fleetd.sim.antminer import QUIRKS as ANTMINER_QUIRKS
from fleetd.sim.antminer import AntminerS19Pro, ApiProtocol
from fleetd.sim.antminer_replies import capture
from fleetd.sim.base import EmulatedMiner, MinerState, listen

__all__ = ["QUIRKS", "SESSION_TTL_S", "LuxOSMiner", "LuxOSS19kPro"]

QUIRKS = ANTMINER_QUIRKS
SESSION_TTL_S = 300.0
LUX_VERSION = "2025.4.8.220305-57b389c7"
DESCRIPTION = f"LUXminer {LUX_VERSION}"
# The Antminer emulator's live pool figures that LuxOS's pools reply carries with the same type.
_LIVE_POOL_KEYS = frozenset(
    {"POOL", "URL", "User", "Priority", "Stratum URL", "Accepted", "Rejected", "Getworks", "Discarded"}
)


class LuxOSMiner(AntminerS19Pro):
    """One Antminer on LuxOS (API only: LuxOS's web UI is not emulated)."""

    vendor = "Antminer"
    default_ports: ClassVar[dict[str, int]] = {"api": 4028}
    model_type: ClassVar[str] = "Antminer S19k Pro"

    def __init__(
        self, state: MinerState, host: str, ports: dict[str, int], *, session_ttl_s: float = SESSION_TTL_S
    ) -> None:
        super().__init__(state, host, ports)
        self.session_ttl_s = session_ttl_s
        self.session_id: str | None = None
        self.session_used = 0.0
        self.profiles = copy.deepcopy(capture("luxos_s19kpro_profiles")["PROFILES"])
        self.config_template = capture("luxos_s19kpro_config")["CONFIG"][0]
        self.profile = "default"
        self.state.hostname = "luxos"

    async def start(self) -> None:
        try:
            self.servers.append(await listen(lambda: ApiProtocol(self), self.host, self.ports["api"]))
        except BaseException:
            await EmulatedMiner.stop(self)
            raise

    def rpc(self, command: str, param: str, now: float) -> dict | None:
        handler = self._LUX_RPC.get(command)
        reply = handler(self, param, now) if handler else super().rpc(command, param, now)
        if reply is not None:
            for status in reply.get("STATUS", ()):
                status["Description"] = DESCRIPTION
        return reply

    def _lux_status(self, code: int, msg: str, now: float, flag: str = "S") -> list[dict[str, Any]]:
        return [{"Code": code, "Description": DESCRIPTION, "Msg": msg, "STATUS": flag, "When": int(now)}]

    def _refuse(self, code: int, msg: str, now: float) -> dict:
        return {"STATUS": self._lux_status(code, msg, now, "E"), "id": 1}

    # --- session -------------------------------------------------------------------------------

    def _live_session(self, now: float) -> str | None:
        if self.session_id is not None and now - self.session_used > self.session_ttl_s:
            self.session_id = None  # lapsed
        return self.session_id

    def _privileged(self, param: str, now: float) -> tuple[str | None, dict | None]:
        """(the argument after the session id, None) or (None, the refusal)."""
        sid, _, arg = param.partition(",")
        live = self._live_session(now)
        if live is None or sid.strip() != live:
            return None, self._refuse(316, "Invalid session id", now)
        self.session_used = now
        return arg.strip(), None

    def _rpc_logon(self, _param: str, now: float) -> dict:
        if self.state.faults.wrong_password:  # LuxOS's API has no password: modelled as write access denied
            return self._refuse(45, "Access denied to 'logon' command", now)
        if self._live_session(now) is not None:
            return self._refuse(310, "Another session is already active", now)
        self.session_id = secrets.token_hex(4)
        self.session_used = now
        return {
            "SESSION": [{"SessionID": self.session_id}],
            "STATUS": self._lux_status(302, "Logon", now),
            "id": 1,
        }

    def _rpc_logoff(self, param: str, now: float) -> dict:
        _, refusal = self._privileged(param, now)
        if refusal is not None:
            return refusal
        self.session_id = None
        return {"STATUS": self._lux_status(303, "Logoff", now), "id": 1}

    def _rpc_session(self, _param: str, now: float) -> dict:
        sid = self._live_session(now) or ""
        return {"SESSION": [{"SessionID": sid}], "STATUS": self._lux_status(304, "Session", now), "id": 1}

    # --- power ---------------------------------------------------------------------------------

    def _rpc_curtail(self, param: str, now: float) -> dict:
        arg, refusal = self._privileged(param, now)
        if refusal is not None:
            return refusal
        if arg == "sleep":
            self.state.sleep()
        elif arg == "wakeup":
            self.state.wake()
        else:
            return self._refuse(14, f"Invalid curtail mode '{arg}'", now)
        return {"STATUS": self._lux_status(345, f"Curtail {arg}", now), "id": 1}

    def _profile_entry(self, name: str) -> dict | None:
        return next((p for p in self.profiles if p["Profile Name"] == name), None)

    def _rpc_profileset(self, param: str, now: float) -> dict:
        arg, refusal = self._privileged(param, now)
        if refusal is not None:
            return refusal
        entry = self._profile_entry(arg or "")
        if entry is None:
            return self._refuse(14, f"Profile '{arg}' not found", now)
        if not self.state.faults.ignore_power_commands:
            self.profile = entry["Profile Name"]
            default = self._profile_entry("default")
            self.state.set_power_limit(None if entry is default else float(entry["Watts"]))
        return {"STATUS": self._lux_status(340, f"Profile set to {arg}", now), "id": 1}

    def _rpc_profiles(self, _param: str, now: float) -> dict:
        return {"PROFILES": self.profiles, "STATUS": self._lux_status(323, "List profiles", now), "id": 1}

    def _rpc_power(self, _param: str, now: float) -> dict:
        watts = round(self.state.power_w(now))
        return {
            "POWER": [{"PSU": False, "Watts": watts}],
            "STATUS": self._lux_status(311, "Power usage", now),
            "id": 1,
        }

    def _rpc_version(self, _param: str, now: float) -> dict:
        item = {**capture("luxos_s19kpro_version")["VERSION"][0], "Type": self.model_type}
        return {"STATUS": self._lux_status(22, "LUXminer versions", now), "VERSION": [item], "id": 1}

    def _rpc_lux_config(self, _param: str, now: float) -> dict:
        live = {
            "ASC Count": len(self.state.board_fractions()),
            "BcastAddr": "127.255.255.255",
            "Gateway": "127.0.0.1",
            "Hostname": self.state.hostname,
            "IPAddr": self.host,
            "MACAddr": self.state.mac.lower(),
            "Model": self.model_type,
            "NameplateTHS": round(self.state.spec.hashrate_ths, 1),
            "Netmask": "255.0.0.0",
            "Pool Count": len(self.conf["pools"]),
            "Profile": self.profile,
            "SerialNumber": self.state.serial,
        }
        item = {k: live.get(k, v) for k, v in self.config_template.items()}
        return {"CONFIG": [item], "STATUS": self._lux_status(33, "LUXminer config", now), "id": 1}

    def _rpc_fans(self, _param: str, now: float) -> dict:
        live = self._live(now)
        speed = 20 if self.state.sleeping else 70
        # The captured labels run FAN4, FAN2, FAN1, FAN3 in ID order (the physical positions): kept.
        labels = [f["FAN"] for f in capture("luxos_s19kpro_fans")["FANS"]]
        fans = [
            {"FAN": labels[i] if i < len(labels) else f"FAN{i + 1}", "ID": i, "RPM": rpm, "Speed": speed}
            for i, rpm in enumerate(live.fans)
        ]
        return {
            "FANCTRL": [{"MinFans": len(fans) - 1, "PowerOffSpeed": 20}],
            "FANS": fans,
            "STATUS": self._lux_status(202, f"{len(fans)} Fan(s)", now),
            "id": 1,
        }

    def _rpc_pools(self, _param: str, now: float) -> dict:
        # The LuxOS capture's field set (GROUP, Quota, AsicBoost, ...) over the Antminer emulator's
        # live pool figures; every pool is in group 0, the one `groups` lists.
        template = capture("luxos_s19kpro_pools")["POOLS"]
        items = []
        for i, live in enumerate(self._pool_items(self._live(now))):
            base = template[min(i, 1)]  # the capture's first pool is alive, its second dead
            alive = live.get("Status") == "Alive"
            item = {k: live[k] if k in _LIVE_POOL_KEYS and k in live else v for k, v in base.items()}
            item.update(GROUP=0, Quota=1.0, Status="Alive" if alive else "Dead")
            item["Stratum Active"] = alive and i == 0
            items.append(item)
        return {"POOLS": items, "STATUS": self._lux_status(7, f"{len(items)} Pool(s)", now), "id": 1}

    def _rpc_groups(self, _param: str, now: float) -> dict:
        # Not captured: the fields pyasic 0.79 reads (GROUP, Name, Quota), one default group.
        item = {"GROUP": 0, "Name": "Default", "Quota": 1.0}
        return {"GROUPS": [item], "STATUS": self._lux_status(7, "1 Group(s)", now), "id": 1}

    def _rpc_tempctrl(self, _param: str, now: float) -> dict:
        item = {"Dangerous": 110.0, "Hot": 95.0, "Mode": "auto", "Target": 75.0}
        return {"STATUS": self._lux_status(330, "Temperature control", now), "TEMPCTRL": [item], "id": 1}

    def _rpc_atm(self, _param: str, now: float) -> dict:
        item = {
            "Enabled": True,
            "MaxProfile": "default",
            "MinProfile": self.profiles[0]["Profile Name"],
            "PostRampMinutes": 15,
            "StartupMinutes": 15,
            "TempWindow": 10.0,
        }
        return {"ATM": [item], "STATUS": self._lux_status(339, "ATM configuration", now), "id": 1}

    _LUX_RPC: ClassVar[dict[str, Any]] = {
        "logon": _rpc_logon,
        "logoff": _rpc_logoff,
        "session": _rpc_session,
        "curtail": _rpc_curtail,
        "profileset": _rpc_profileset,
        "profiles": _rpc_profiles,
        "power": _rpc_power,
        "version": _rpc_version,
        "config": _rpc_lux_config,
        "fans": _rpc_fans,
        "pools": _rpc_pools,
        "groups": _rpc_groups,
        "tempctrl": _rpc_tempctrl,
        "atm": _rpc_atm,
    }


class LuxOSS19kPro(LuxOSMiner):
    """S19k Pro on LuxOS 2025.4.8 (the profile list as captured from one)."""
