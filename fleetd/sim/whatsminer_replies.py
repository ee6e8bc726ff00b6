"""Whatsminer v2 read replies (CGMiner-style summary/devs/pools, btminer get_*) as the firmware sends them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from fleetd.sim.base import MinerState


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _flat(code: int, msg: Any, when: int, status: str = "S", description: str = "") -> dict[str, Any]:
    return {"STATUS": status, "When": when, "Code": code, "Msg": msg, "Description": description}


def _head(code: int, msg: str, when: int, description: str = "cgminer 4.9.2") -> list[dict[str, Any]]:
    return [{"STATUS": "S", "When": when, "Code": code, "Msg": msg, "Description": description}]


class V2Reads:
    """The v2 read commands of a Whatsminer (mixed into WhatsminerMiner)."""

    state: MinerState
    host: str
    model_code: ClassVar[str]
    firmware: ClassVar[str]
    api_ver: ClassVar[str]
    platform: ClassVar[str]
    psu_model: ClassVar[str]

    def _summary(self, now: float) -> str:
        lv, s = self._live(now), self.state
        rate_mhs = lv["rate"] * 1e6
        avg_mhs = lv["avg"] * 1e6
        codes = self.error_codes(now)
        summary: dict[str, Any] = {
            "Accepted": s.accepted + int(lv["elapsed"] * 0.08),
            "Best Share": 41127493,
            "CB Platform": "ALLWINNER_H616" if self.platform == "H616" else self.platform,
            "CB Version": "V10",
            "Chip Data": "K88Z010-2243 BINV01-195001D",
            "Chip Temp Avg": round(lv["chip"] - 5.0, 2) if lv["rate"] else lv["chip"],
            "Chip Temp Max": lv["chip"],
            "Chip Temp Min": round(lv["chip"] - 12.0, 2),
            "Device Hardware%": 0.011,
            "Device Rejected%": 0.0,
            "Difficulty Accepted": 158334976.0,
            "Difficulty Rejected": 0.0,
            "Difficulty Stale": 0.0,
            "Discarded": 613134,
            "Elapsed": lv["elapsed"],
            "Error Code Count": len(codes),
            "Factory Error Code Count": 0,
            "Factory GHS": int(s.spec.hashrate_ths * 1000),
            "Fan Speed In": lv["fans"][0] if lv["fans"] else 0,
            "Fan Speed Out": lv["fans"][1] if len(lv["fans"]) > 1 else 0,
            "Firmware Version": f"'{self.firmware}'",
            "Found Blocks": 0,
            "Get Failures": 0,
            "Getworks": 950,
            "HS RT": round(rate_mhs, 2),
            "Hardware Errors": 69,
            "Hash Deviation%": 0.1061,
            "Hash Stable": bool(lv["rate"]),
            "Hash Stable Cost Seconds": 1538,
            "Last getwork": 0,
            "Liquid Cooling": False,
            "Local Work": 79651875,
            "MAC": s.mac,
            "MHS 15m": round(avg_mhs, 2),
            "MHS 1m": round(rate_mhs, 2),
            "MHS 5m": round(avg_mhs, 2),
            "MHS 5s": round(rate_mhs, 2),
            "MHS av": round(avg_mhs, 2),
            "Network Blocks": 20,
            "Pool Rejected%": 0.0,
            "Pool Stale%": 0.0,
            "Power": round(lv["power"]),
            "Power Current": round(lv["power"] / 13.0),
            "Power Fanspeed": 9060 if not s.sleeping else 3000,
            "Power Limit": self._limit(),
            "Power Mode": s.mode.capitalize(),
            "Power_RT": round(lv["power"]),
            "Rejected": s.rejected,
            "Remote Failures": 0,
            "Security Mode": 0,
            "Stale": 0,
            "Target Freq": 625,
            "Target MHS": int(s.expected_hashrate_ths() * 0.95e6),
            "Temperature": lv["board"],
            "Total MH": round(avg_mhs * max(1, lv["elapsed"]), 1),
            "Uptime": lv["elapsed"] + 638,
            "Utility": 13.82,
            "Voltage": 1180,
            "Work Utility": 3697.27,
            "freq_avg": 648 if lv["rate"] else 0,
        }
        for i, code in enumerate(codes):
            summary[f"Error Code {i}"] = code
        inner = _dumps(summary)
        if "trailing_comma" in s.faults.quirks:
            inner = inner[:-1] + ",}"
        return f'{{"STATUS":{_dumps(_head(11, "Summary", lv["now"]))},"SUMMARY":[{inner}],"id":1}}'

    def _devs(self, now: float) -> str:
        lv, s = self._live(now), self.state
        rows = []
        for i, (ths, alive) in enumerate(zip(lv["boards"], lv["alive"], strict=True)):
            mhs = ths * 1e6
            rows.append(
                {
                    "ASC": i,
                    "Accepted": (s.accepted + int(lv["elapsed"] * 0.08)) // max(1, s.spec.boards),
                    "Chip Frequency": 650 if alive and ths else 0,
                    "Chip Temp Avg": round(lv["chip"] - 5.0, 2) if alive else 0.0,
                    "Chip Temp Max": lv["chip"] if alive else 0.0,
                    "Chip Temp Min": round(lv["chip"] - 12.0, 2) if alive else 0.0,
                    "Device Elapsed": lv["elapsed"],
                    "Device Hardware%": 0.0072,
                    "Device Rejected%": 0.0,
                    "Diff1 Work": 209185,
                    "Difficulty Accepted": 53673984.0,
                    "Difficulty Rejected": 0.0,
                    "Effective Chips": s.spec.chips_per_board if alive else 0,
                    "Enabled": "Y",
                    "Fan Speed In": lv["fans"][0] if lv["fans"] else 0,
                    "Fan Speed Out": lv["fans"][1] if len(lv["fans"]) > 1 else 0,
                    "Hardware Errors": 15,
                    "ID": i,
                    "Last Share Difficulty": 65536.0,
                    "Last Share Pool": 0,
                    "Last Share Time": lv["now"] - 8,
                    "Last Valid Work": lv["now"],
                    "MHS 15m": round(mhs, 2),
                    "MHS 1m": round(mhs, 2),
                    "MHS 5m": round(mhs, 2),
                    "MHS 5s": round(mhs, 2),
                    "MHS av": round(mhs, 2),
                    "Name": "SM",
                    "PCB SN": f"{s.serial[:12]}K{10000 + i:05d}"[:20],
                    "Rejected": 0,
                    "Slot": i,
                    "Status": "Alive" if alive else "Dead",
                    "Temperature": lv["board"] if alive else 0.0,
                    "Total MH": round(mhs * max(1, lv["elapsed"]), 1),
                    "Upfreq Complete": 1,
                    "Utility": 4.7,
                }
            )
        head = _head(9, f"{len(rows)} ASC(s)", lv["now"])
        return _dumps({"STATUS": head, "DEVS": rows, "id": 1})

    def _pools(self, now: float) -> str:
        lv, s = self._live(now), self.state
        worker = "fleetd_sim." + self.host.replace(".", "x")
        rows = []
        for i in range(3):
            first = i == 0
            rows.append(
                {
                    "Accepted": s.accepted + int(lv["elapsed"] * 0.08) if first else 0,
                    "Bad Work": 0,
                    "Best Share": 41127493 if first else 0,
                    "Current Block Height": 920127 if first else 0,
                    "Current Block Version": 536870912 if first else 0,
                    "Diff1 Shares": 625711 if first else 0,
                    "Difficulty Accepted": 158334976.0 if first else 0.0,
                    "Difficulty Rejected": 0.0,
                    "Difficulty Stale": 0.0,
                    "Discarded": 613134 if first else 0,
                    "Get Failures": 0,
                    "Getworks": 950 if first else 0,
                    "Has GBT": False,
                    "Has Stratum": True,
                    "Last Share Difficulty": 65536.0 if first else 0.0,
                    "Last Share Time": lv["now"] - 8 if first else 0,
                    "Long Poll": "N",
                    "POOL": i + 1,
                    "Pool Rejected%": 0.0,
                    "Pool Stale%": 0.0,
                    "Priority": i,
                    "Proxy": "",
                    "Proxy Type": "",
                    "Quota": 1,
                    "Rejected": s.rejected if first else 0,
                    "Remote Failures": 0,
                    "Stale": 0,
                    "Status": "Alive",
                    "Stratum Active": first and not s.sleeping,
                    "Stratum Difficulty": 65536.0 if first else 0.0,
                    "Stratum URL": f"btc{i + 1 if i else ''}.example.pool",
                    "URL": f"stratum+tcp://btc{i + 1 if i else ''}.example.pool:3333",
                    "User": worker,
                    "Work Difficulty": 0.0,
                    "Works": 80955374 if first else 0,
                }
            )
        return _dumps({"STATUS": _head(7, "3 Pool(s)", lv["now"]), "POOLS": rows, "id": 1})

    def _devdetails(self, now: float) -> str:
        rows = [
            {
                "DEVDETAILS": i,
                "Name": "SM",
                "ID": i,
                "Driver": "bitmicro",
                "Kernel": "",
                "Model": self.model_code,
            }
            for i in range(self.state.spec.boards)
        ]
        head = _head(69, "Device Details", int(now), "btminer")
        return _dumps({"STATUS": head, "DEVDETAILS": rows, "id": 1})

    def _version(self, now: float) -> str:
        head = _head(22, "CGMiner versions", int(now), "btminer")
        return _dumps({"STATUS": head, "VERSION": [{"CGMiner": "4.9.2", "API": "3.7"}], "id": 1})

    def _get_version(self, now: float) -> str:
        msg = {"api_ver": self.api_ver, "fw_ver": self.firmware, "platform": self.platform, "chip": "K88Z"}
        return _dumps(_flat(131, msg, int(now)))

    def _get_psu(self, now: float) -> str:
        s = self.state
        p = self._live(now)["power"]
        vin = 22850
        msg = {
            "name": self.psu_model[:3],
            "hw_version": "RT0159",
            "sw_version": "230224.220429",
            "model": self.psu_model,
            "iin": str(int(p / (vin / 100) * 100)),
            "vin": str(vin),
            "pin": str(round(p)),
            "fan_speed": str(9060 if not s.sleeping else 3000),
            "version": "1",
            "serial_no": "1436B2429603097",
            "vendor": "1",
            "temp0": str(round(35.0 + 10.0 * s.ramp_fraction(now), 1)),
        }
        text = _dumps(_flat(131, msg, int(now)))
        if "psu_missing_comma" in s.faults.quirks:
            text = text.replace(',"temp0"', '"temp0"')
        return text

    def _get_miner_info(self, now: float) -> str:
        s = self.state
        msg = {
            "ip": self.host,
            "proto": "dhcp",
            "netmask": "255.0.0.0",
            "gateway": "127.0.0.1",
            "dns": "127.0.0.53",
            "hostname": s.hostname,
            "mac": s.mac,
            "ledstat": "auto",
            "minersn": s.serial,
        }
        return _dumps(_flat(131, msg, int(now)))

    def _get_error_code(self, now: float) -> str:
        codes = self.error_codes(now)
        if "error_code_list" in self.state.faults.quirks and codes:
            pairs = ",".join(f'"{c}":"{t}"' for c, t in codes.items())
            return (
                f'{{"STATUS":"S","When":{int(now)},"Code":131,"Msg":{{"error_code":[{pairs}]}},'
                '"Description":""}'
            )
        msg = {"error_code": [{str(c): t} for c, t in codes.items()]}
        return _dumps(_flat(131, msg, int(now)))

    def _status(self, now: float) -> str:
        off = "true" if self.state.sleeping else "false"
        msg = {"btmineroff": off, "Firmware Version": f"'{self.firmware}'"}
        return _dumps(_flat(131, msg, int(now)))


_V2_READS: dict[str, Callable[[V2Reads, float], str]] = {
    "summary": V2Reads._summary,
    "devs": V2Reads._devs,
    "edevs": V2Reads._devs,
    "pools": V2Reads._pools,
    "devdetails": V2Reads._devdetails,
    "version": V2Reads._version,
    "get_version": V2Reads._get_version,
    "get_psu": V2Reads._get_psu,
    "get_miner_info": V2Reads._get_miner_info,
    "get_error_code": V2Reads._get_error_code,
    "status": V2Reads._status,
}
