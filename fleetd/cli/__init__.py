"""The `fleetd` command line: one module per subcommand, each exposing `register(subparsers)`.

A subcommand module's `register` adds its parser and sets `func` to a callable taking the parsed
args and returning an exit code. Errors a user can cause (bad input, unreachable miner, wrong
password) are reported as one line on stderr with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from fleetd import __version__

# Subcommand modules under fleetd.cli, in the order `fleetd --help` lists them.
COMMANDS: tuple[str, ...] = (
    "demo",
    "run",
    "sim",
    "scan",
    "probe",
    "power",  # sleep, wake
    "dump_device",
    "check_config",
    "profit",
    "whatif",
    "backtest",
    "bench",
    "drivers",  # the supported-miners table (--markdown)
    "curtail",  # status, pin, unpin, event, enforce (through the API)
    "events",
)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2 unless given."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (the usage itself is one `--help` away); subparsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fleetd", description="Fleet operations daemon for Bitcoin mining farms.")
    parser.add_argument("--version", action="version", version=f"fleetd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"fleetd.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fleetd.cli.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from fleetd.transport.errors import DeviceError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second failure at exit
        return 0
    except CLIError as exc:
        print(f"fleetd {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except DeviceError as exc:
        print(f"fleetd {args.command}: {exc}{_advice(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line, unless FLEETD_DEBUG asks for the traceback
        if os.environ.get("FLEETD_DEBUG"):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        print(f"fleetd {args.command}: unexpected {what} (FLEETD_DEBUG=1 shows a traceback)", file=sys.stderr)
        return 1


def _advice(exc: Exception) -> str:
    """What the operator can do about a device error whose message cannot know it (network, garbage)."""
    from fleetd.transport.errors import DeviceTimeoutError, MalformedReplyError, UnreachableError

    if isinstance(exc, DeviceTimeoutError):
        return "; check that the miner is up and its API enabled, or allow it longer with --timeout"
    if isinstance(exc, UnreachableError):
        return "; check the address and port (--api-port) and that the miner is powered and on the network"
    if isinstance(exc, MalformedReplyError):
        return "; the reply is not one fleetd can read: check that this is a supported miner (--driver)"
    return ""


if __name__ == "__main__":
    sys.exit(main())
