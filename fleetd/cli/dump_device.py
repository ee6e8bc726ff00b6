"""`fleetd dump-device HOST`: record a redacted fixture folder of one miner's raw replies.

The folder holds `manifest.json` and one file per reply the driver reads ("rpc_<command>.json",
"web_<path>.json"), the same layout as tests/fixtures/devices/*, whose parser test runs every folder
found there. Identifying values are redacted (fleetd.redact) before anything touches the disk.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetd import __version__
from fleetd.cli import CLIError
from fleetd.cli.device_args import add_device_args, connect, endpoint, run
from fleetd.drivers import Driver, Endpoint, driver_class
from fleetd.model import Identity
from fleetd.redact import redact_responses

MANIFEST = "manifest.json"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dump-device",
        help="record a redacted fixture folder of one miner's raw replies",
        description=(
            "Read every reply the miner's driver uses and save them, with MACs, serials, IPs, host names "
            "and pool users/passwords redacted, as a fixture folder (manifest.json + one file per reply) "
            "under DIR, so that models fleetd lacks can be contributed."
        ),
    )
    add_device_args(p)
    p.add_argument("--out", default=".", metavar="DIR", help="parent directory of the new folder (.)")
    p.add_argument("--name", help="folder name (default: <vendor>-<model>-<firmware>)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    ep = endpoint(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} is not a directory")
    if args.name is not None and not _KEY.match(args.name):
        raise CLIError(f"--name {args.name!r}: use letters, digits, '.', '_', '+' and '-' only")
    driver_name, identity, responses = run(_record(args, ep), host=ep.host)
    if not responses:
        raise CLIError(f"{ep.host}: the {driver_name} driver returned no replies to record", 1)
    redacted = redact_responses(responses)
    cls = driver_class(driver_name)
    problem = _parse_problem(cls, redacted)
    manifest = build_manifest(identity, driver_name, sorted(redacted))
    folder = write_folder(out, args.name or folder_name(identity), manifest, redacted)
    print(folder)
    if problem:
        print(
            f"fleetd dump-device: warning: the {driver_name} parser cannot read this capture ({problem}); "
            "it is saved as recorded, please report it with the folder attached",
            file=sys.stderr,
        )
    return 0


async def _record(args: argparse.Namespace, ep: Endpoint) -> tuple[str, Identity, dict[str, Any]]:
    driver, detected = await connect(args, ep)
    try:
        identity = detected or await driver.identity()
        responses = await driver.raw_responses()
    finally:
        await driver.close()
    return driver.name, identity, dict(responses)


def _parse_problem(cls: type[Driver], responses: dict[str, Any]) -> str:
    """Why the driver's pure parser fails on the redacted capture, or '' when it reads it."""
    try:
        cls.parse_responses(responses, host="", polled_at=0.0)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")


def folder_name(identity: Identity) -> str:
    model = identity.model.lower()
    vendor = identity.vendor.lower()
    parts = [vendor] if vendor and not model.startswith(vendor) else []
    parts += [identity.model or "unknown", identity.firmware or "unknown-firmware"]
    return "-".join(p for p in (_slug(x) for x in parts) if p) or "device"


def build_manifest(identity: Identity, driver_name: str, keys: list[str]) -> dict[str, Any]:
    return {
        "vendor": identity.vendor,
        "model": identity.model,
        "firmware": identity.firmware,
        "driver": driver_name,
        "api": identity.api,
        "api_version": identity.api_version,
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fleetd_version": __version__,
        "source": f"fleetd dump-device {__version__} (redacted: MACs, serials, IPs, host names, pool users)",
        "files": [f"{k}.json" for k in keys],
    }


def file_name(key: str) -> str:
    """The file a reply key is saved as; keys name files, so they may not hold path separators."""
    if not _KEY.match(key) or ".." in key:
        raise CLIError(f"driver reply key {key!r} cannot be a file name", 1)
    return f"{key}.json"


def write_folder(parent: Path, name: str, manifest: dict[str, Any], responses: dict[str, Any]) -> Path:
    """Write the folder next to its final place, then rename: never a half-written or overwritten one."""
    names = {key: file_name(key) for key in responses}
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
        try:
            for key, value in responses.items():
                (staging / names[key]).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            staging.chmod(0o755)
            target = _free_name(parent, name)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as exc:
        raise CLIError(f"cannot write to {str(parent)!r}: {exc.strerror or exc}", 1) from None
    return target


def _free_name(parent: Path, name: str) -> Path:
    target = parent / name
    n = 2
    while target.exists():
        target = parent / f"{name}-{n}"
        n += 1
    return target
