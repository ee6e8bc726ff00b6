"""Whatsminer error codes: readable message and the component concerned.

Codes follow MicroBT's published error-code list. Below 100000 a code reads as
type (all but the last two digits), subtype (tens) and value (units): 110 is type 1 (fan),
subtype 1, value 0 (intake). Boards are numbered by the value digit ("SM0".."SM2").
"""

from __future__ import annotations

from fleetd.model import Component, Fault

# Exact messages for the codes operators meet most.
_EXACT: dict[int, str] = {
    110: "Intake fan speed error",
    111: "Exhaust fan speed error",
    120: "Intake fan speed error (fan speed low)",
    121: "Exhaust fan speed error (fan speed low)",
    130: "Intake fan speed error (fan speed too high)",
    131: "Exhaust fan speed error (fan speed too high)",
    140: "Fan speed is too high",
    200: "Power supply does not match the configuration file",
    201: "Power supply output voltage error",
    202: "Power supply output overvoltage protection",
    203: "Power supply output undervoltage protection",
    204: "Power supply output overcurrent protection",
    205: "Power supply fan error",
    206: "Power supply output short-circuit protection",
    207: "Power supply input overvoltage protection",
    208: "Power supply input undervoltage protection",
    209: "Power supply overtemperature protection",
    210: "Power supply input voltage abnormal",
    211: "Power supply output current abnormal",
    212: "Power supply fan speed too low",
    213: "Power input voltage and current do not match the power",
    214: "Power supply communication error",
    215: "Power supply firmware error",
    216: "Power remained unchanged for a long time",
    217: "Power set enable error",
    218: "Input voltage lower than 230 V in high power mode",
    233: "Power supply overheating",
    234: "Power supply overheating (input)",
    235: "Power supply overheating (output)",
    264: "Power supply transfer error",
    265: "Power supply unknown error",
    266: "Power supply unknown error",
    267: "Power supply watchdog protection",
    270: "Power supply input overvoltage warning",
    329: "Control board temperature sensor communication error",
    360: "Hashboard temperature too high",
    600: "Environment temperature is too high",
    610: "Environment temperature too high for high-performance mode; returned to normal mode",
    700: "Control board MAC address missing",
    701: "Control board does not support this chip",
    710: "Control board rebooted abnormally",
    712: "Control board temperature too high",
    800: "cgminer checksum error",
    801: "system-monitor checksum error",
    802: "remote-daemon checksum error",
    2000: "No pool configured",
    2010: "All pools are disabled",
    2020: "Pool 0 connection failed",
    2021: "Pool 1 connection failed",
    2022: "Pool 2 connection failed",
    2030: "High rejection rate on pool",
    2040: "Pool does not support AsicBoost",
    2310: "Hashrate is too low",
    2320: "Hashrate loss is too high",
    2340: "Hashrate loss is too high",
    2350: "Hashrate loss is too high",
    5070: "Water velocity abnormal",
    8410: "Software version error",
    100001: "Firmware signature is illegal",
}

# (type, subtype) -> message template for the per-board families; {n} is the board index.
_BOARD_FAMILIES: dict[tuple[int, int], tuple[str, Component]] = {
    (3, 0): ("SM{n} temperature sensor detection error", Component.TEMPERATURE),
    (3, 2): ("SM{n} temperature sensor read error", Component.TEMPERATURE),
    (3, 5): ("SM{n} temperature protection: board too hot", Component.TEMPERATURE),
    (4, 1): ("SM{n} EEPROM detection error", Component.BOARD),
    (4, 2): ("SM{n} EEPROM parse error", Component.BOARD),
    (4, 3): ("SM{n} chip bin type error", Component.BOARD),
    (4, 4): ("SM{n} EEPROM chip number error", Component.BOARD),
    (4, 5): ("SM{n} EEPROM transfer error", Component.BOARD),
    (5, 1): ("SM{n} miner type error", Component.BOARD),
    (5, 2): ("SM{n} bin type error", Component.BOARD),
    (5, 3): ("SM{n} not found", Component.BOARD),
    (5, 4): ("SM{n} error reading chip id", Component.BOARD),
    (5, 5): ("SM{n} has bad chips", Component.BOARD),
    (5, 6): ("SM{n} loss of balance", Component.BOARD),
    (5, 7): ("SM{n} circuit break", Component.BOARD),
    (5, 8): ("SM{n} restarted too many times", Component.BOARD),
    (5, 9): ("SM{n} hashrate too low", Component.BOARD),
}

# By type: component and a fallback message when the exact code is not in the tables.
_TYPES: dict[int, tuple[Component, str]] = {
    1: (Component.FAN, "Fan error"),
    2: (Component.PSU, "Power supply error"),
    3: (Component.TEMPERATURE, "Temperature error"),
    4: (Component.BOARD, "Hashboard EEPROM error"),
    5: (Component.BOARD, "Hashboard error"),
    6: (Component.TEMPERATURE, "Environment temperature error"),
    7: (Component.CONTROL_BOARD, "Control board error"),
    8: (Component.CONTROL_BOARD, "Checksum error"),
    9: (Component.PSU, "Power rate error"),
    20: (Component.POOL, "Pool error"),
    21: (Component.BOARD, "Hashboard hashrate error"),
    23: (Component.BOARD, "Hashrate error"),
    50: (Component.BOARD, "Water cooling error"),
    84: (Component.CONTROL_BOARD, "Software error"),
}


def fault_for(code: int | str) -> Fault:
    """The Fault for one Whatsminer error code (unknown codes keep their number and say so)."""
    try:
        n = int(code)
    except (TypeError, ValueError):
        return Fault(code=str(code), message=f"Unrecognised error code {code!r}")
    if n >= 100000:
        return Fault(code=str(n), message=_EXACT.get(n, f"Error {n}"), component=Component.CONTROL_BOARD)
    typ, sub, val = n // 100, (n // 10) % 10, n % 10
    fam = _BOARD_FAMILIES.get((typ, sub))
    component, fallback = _TYPES.get(typ, (Component.OTHER, f"Error {n}"))
    if n in _EXACT:
        return Fault(code=str(n), message=_EXACT[n], component=component)
    if fam is not None:
        return Fault(code=str(n), message=fam[0].format(n=val), component=fam[1])
    return Fault(code=str(n), message=f"{fallback} ({n})", component=component)
