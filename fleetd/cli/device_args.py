"""What the one-miner commands (probe, sleep, wake, dump-device) share: options, connecting, error mapping."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from fleetd.cli import CLIError
from fleetd.cli.argtypes import port, seconds
from fleetd.discovery import TargetError, parse_host
from fleetd.drivers import Credentials, Driver, Endpoint, Timeouts, detect, detection_classes, driver_class
from fleetd.model import Identity
from fleetd.transport.errors import (
    AuthError,
    CommandRejectedError,
    DeviceError,
    DeviceTimeoutError,
    MalformedReplyError,
    UnreachableError,
)

T = TypeVar("T")

PASSWORD_ENV = "FLEETD_MINER_PASSWORD"
USER_ENV = "FLEETD_MINER_USER"
DEBUG_ENV = "FLEETD_DEBUG"  # set to see the traceback of an unexpected error

# A timeout or verification time: more than 0, at most an hour.
timeout_s = seconds(at_most=3600, zero=False)

# Which failure explains "nobody recognised this host" best, most telling first.
_ERROR_RANK: tuple[type[DeviceError], ...] = (
    AuthError,
    CommandRejectedError,
    MalformedReplyError,
    DeviceTimeoutError,
    UnreachableError,
    DeviceError,
)


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """The ports and credentials every command that talks to miners takes."""
    parser.add_argument("--user", help=f"web/API user (default: the vendor's; env {USER_ENV})")
    parser.add_argument(
        "--password",
        help=f"web/API password (default: the vendor's); prefer env {PASSWORD_ENV}, which `ps` cannot show",
    )
    parser.add_argument("--api-port", type=port, default=4028, metavar="PORT", help="TCP API port (4028)")
    parser.add_argument("--web-port", type=port, default=80, metavar="PORT", help="web interface port (80)")
    parser.add_argument(
        "--v3-port", type=port, default=4433, metavar="PORT", help="Whatsminer API v3 port (4433)"
    )


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """HOST plus the connection options every one-miner command takes."""
    parser.add_argument("host", metavar="HOST", help="miner address or name; HOST:PORT sets the API port")
    parser.add_argument("--driver", metavar="NAME", help="skip detection and use this driver (e.g. antminer)")
    add_connection_args(parser)
    parser.add_argument(
        "--timeout", type=timeout_s, default=None, metavar="S", help="connect and read timeout per request"
    )


def credentials(args: argparse.Namespace) -> Credentials:
    user = getattr(args, "user", None) or os.environ.get(USER_ENV) or None
    password = getattr(args, "password", None) or os.environ.get(PASSWORD_ENV) or None
    return Credentials.any_vendor(user, password)  # whatever vendor the miner turns out to be


def endpoint(args: argparse.Namespace, *, verify_s: float | None = None) -> Endpoint:
    try:
        target = parse_host(args.host)
    except TargetError as exc:
        raise CLIError(str(exc)) from None
    base = Timeouts()
    t = args.timeout
    timeouts = Timeouts(
        connect_s=t if t is not None else base.connect_s,
        read_s=t if t is not None else base.read_s,
        verify_s=verify_s if verify_s is not None else base.verify_s,
        verify_interval_s=base.verify_interval_s,
    )
    return Endpoint(
        target.host,
        api_port=target.api_port or args.api_port,
        web_port=args.web_port,
        v3_port=args.v3_port,
        credentials=credentials(args),
        timeouts=timeouts,
    )


async def connect(args: argparse.Namespace, ep: Endpoint) -> tuple[Driver, Identity | None]:
    """The driver for the miner at `ep`: the one named by --driver, or the one `detect` finds."""
    if args.driver:
        try:
            cls = driver_class(args.driver)
        except KeyError as exc:
            raise CLIError(str(exc.args[0])) from None
        return _with_state(cls(ep)), None
    detected = await detect(ep)
    if detected is None:
        raise await _why_undetected(ep)
    cls, identity = detected
    return _with_state(cls(ep)), identity


def _with_state(driver: Driver) -> Driver:
    """Give a driver that keeps state across commands (e.g. the mode to restore on wake) its folder."""
    driver.state_dir = state_dir()
    return driver


async def _why_undetected(ep: Endpoint) -> Exception:
    """Ask each driver again to learn why none claimed the host, and return the most telling error."""
    classes = detection_classes()
    results = await asyncio.gather(*(c.probe(ep) for c in classes), return_exceptions=True)
    errors = [r for r in results if isinstance(r, DeviceError)]
    for kind in _ERROR_RANK:
        for err in errors:
            if isinstance(err, kind):
                return err
    names = ", ".join(c.name for c in classes) or "none installed"
    return CLIError(
        f"{ep.host}: no supported miner answered on API port {ep.api_port} / web port {ep.web_port} "
        f"(drivers tried: {names}; use --driver NAME to force one)",
        1,
    )


def run(coro: Coroutine[Any, Any, T], *, host: str = "") -> T:
    """Run a command's coroutine; an unexpected exception becomes one line unless FLEETD_DEBUG is set."""
    try:
        return asyncio.run(coro)
    except (CLIError, DeviceError, KeyboardInterrupt):
        raise
    except TimeoutError:
        raise CLIError(f"{host or '?'}: timed out", 1) from None
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise CLIError(
            f"{host or '?'}: unexpected {type(exc).__name__}{': ' + detail if detail else ''} "
            f"(a driver bug or an unknown reply; set {DEBUG_ENV}=1 for a traceback)",
            1,
        ) from None


def describe(identity: Identity | None, host: str) -> str:
    """`host (Model)` for progress and result lines."""
    if identity is None or not identity.model:
        return host
    return f"{host} ({identity.model})"


def state_dir() -> Path:
    """Where one-miner commands keep what a later command needs ($XDG_STATE_HOME/fleetd)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fleetd"


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
