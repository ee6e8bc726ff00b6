"""`fleetd check-config FILE`: validate a configuration file without starting anything."""

from __future__ import annotations

import argparse
from pathlib import Path

from fleetd.cli import CLIError
from fleetd.config import DEFAULT_CONFIG_PATH, ConfigError, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check-config",
        help="validate a configuration file",
        description=(
            "Validate FILE: TOML syntax, every key and value, references between sections, and that every "
            "secret it references can be read. Problems are listed one per line with the key path."
        ),
    )
    p.add_argument("file", type=Path, nargs="?", default=DEFAULT_CONFIG_PATH, metavar="FILE")
    p.add_argument(
        "--no-secrets",
        action="store_true",
        help="check how secrets are referenced without reading them (unset variables are not errors), "
        "e.g. on a machine other than the one that runs fleetd",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when the file is valid")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file, secrets=not args.no_secrets)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    if not args.quiet:
        addresses = sum(len(d.target_set()) for d in cfg.discovery)
        storage = cfg.storage.url.split("://", 1)[0] if cfg.storage.url else "sqlite (state directory)"
        print(
            f"{args.file}: OK: {len(cfg.miners)} miners, {len(cfg.discovery)} discovery ranges "
            f"({addresses} addresses), {len(cfg.sites)} sites; poll every {cfg.polling.interval_s:g} s; "
            f"storage {storage}; API on {cfg.api.listen}"
            + ("; secrets not read (--no-secrets)" if args.no_secrets else "")
        )
    return 0
