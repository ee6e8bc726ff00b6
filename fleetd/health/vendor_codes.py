"""Vendor error codes (model.Fault) turned into findings with a cause and a suggested action.

Whatsminer codes come from drivers/whatsminer/error_codes.py (MicroBT's list); Antminer stock firmware
reports its status checks as "<type>:<code>" (rate, network, fans, temp) from the web summary.
"""

from __future__ import annotations

from fleetd.health.findings import Finding, Severity
from fleetd.model import Component, Fault

# component -> (severity, action) when nothing more specific is known
WEB_AUTH_FAULT = "web_auth_failed"  # the driver could not log in to the web interface (a wrong password)

_BY_COMPONENT: dict[Component, tuple[Severity, str]] = {
    Component.FAN: (Severity.CRITICAL, "Check the fan and its cable; replace the fan if it does not spin up"),
    Component.PSU: (Severity.CRITICAL, "Check the input voltage and the PSU; replace the PSU if it recurs"),
    Component.BOARD: (Severity.CRITICAL, "Reseat the hashboard's data and power cables; repair if it recurs"),
    Component.TEMPERATURE: (Severity.WARNING, "Check airflow, intake temperature and fans"),
    Component.POOL: (Severity.WARNING, "Check the pool URL, worker credentials and the site's uplink"),
    Component.CONTROL_BOARD: (Severity.WARNING, "Reboot; reflash or replace the control board if it recurs"),
    Component.NETWORK: (Severity.WARNING, "Check the miner's network cable, switch port and DHCP lease"),
    Component.OTHER: (Severity.WARNING, "Look the code up in the vendor's error list"),
}

# Whatsminer code -> (severity, action) where the component default is wrong or too vague
_WHATSMINER: dict[int, tuple[Severity, str]] = {
    200: (Severity.CRITICAL, "Fit the PSU model the firmware expects, or update the firmware"),
    208: (Severity.CRITICAL, "Input voltage too low: check the PDU/breaker feed at the rack"),
    218: (Severity.WARNING, "Use normal power mode or raise the input voltage above 230 V"),
    270: (Severity.WARNING, "Input voltage high: check the feed at the rack"),
    600: (Severity.WARNING, "Intake air too hot: check the room's cooling and hot-air recirculation"),
    610: (Severity.INFO, "Intake air too hot for high-power mode; the miner fell back to normal mode"),
    710: (Severity.WARNING, "Control board rebooted on its own: check its power and the firmware"),
    2000: (Severity.CRITICAL, "Configure a pool"),
    2010: (Severity.CRITICAL, "Enable at least one pool"),
    2030: (Severity.WARNING, "Check network latency to the pool and the miner's hashboards"),
    2310: (Severity.WARNING, "Check the hashboards and temperatures"),
}

# Antminer web status type -> (component, severity, action)
_ANTMINER: dict[str, tuple[Component, Severity, str]] = {
    "rate": (Component.BOARD, Severity.WARNING, "Hashrate below spec: check the hashboards' chip counts"),
    "network": (Component.NETWORK, Severity.WARNING, "Check the network cable, switch port and pool reach"),
    "fans": (Component.FAN, Severity.CRITICAL, "Check the fans and their cables"),
    "temp": (Component.TEMPERATURE, Severity.WARNING, "Check airflow, intake temperature and fans"),
}


# Avalon (Canaan MM firmware over cgminer) -> (component, severity, action). The firmware reports an error
# code per hashboard (ECHU; the driver's fault "board", message "board N: error code C") and one for the
# controller (ECMM); Canaan publishes no table of their bits, so the finding says where and what to try.
_AVALON: dict[str, tuple[Component, Severity, str]] = {
    "board": (
        Component.BOARD,
        Severity.WARNING,
        "Check the board's temperature and its power and data cables; power-cycle the miner, and send the"
        " board for repair if the code stays",
    ),
    "ECMM": (
        Component.CONTROL_BOARD,
        Severity.WARNING,
        "Reboot the miner; update the firmware, or replace the controller if the code recurs",
    ),
}


def finding_for(fault: Fault, vendor: str = "") -> Finding:
    """The finding for one fault the miner reports about itself."""
    if fault.code == WEB_AUTH_FAULT:
        return Finding(
            code=WEB_AUTH_FAULT,
            severity=Severity.WARNING,
            component=fault.component,
            cause=f"fleetd cannot log in to the miner: {fault.message}",
            action="Set the miner's web password in the configuration (or FLEETD_MINER_PASSWORD)",
            subject="web login",
        )
    component = fault.component
    severity, action = _BY_COMPONENT.get(component, _BY_COMPONENT[Component.OTHER])
    code = fault.code
    if vendor == "whatsminer" and code.isdigit() and int(code) in _WHATSMINER:
        severity, action = _WHATSMINER[int(code)]
    elif vendor == "antminer" and ":" in code:
        hit = _ANTMINER.get(code.split(":", 1)[0])
        if hit is not None:
            component, severity, action = hit
    subject = f"code {code}"
    if code == "board" and fault.message.startswith("board ") and ":" in fault.message:
        subject = fault.message.split(":", 1)[0]  # drivers' "board N: status": one finding per board
    if vendor == "avalon":
        hit = _AVALON.get(code.split(":", 1)[0])
        if hit is not None:
            component, severity, action = hit
    return Finding(
        code="psu_fault" if component is Component.PSU else "vendor_error",
        severity=severity,
        component=component,
        cause=f"The miner reports error {code}: {fault.message}",
        action=action,
        subject=subject,
        values=(("vendor_code", code),),
    )
