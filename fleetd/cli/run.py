"""`fleetd run`: the daemon — poll the fleet, keep state, store it, serve the API, talk to systemd."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fleetd.cli import CLIError
from fleetd.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config, split_listen

log = logging.getLogger("fleetd.run")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the daemon: poll miners, store their state, serve the HTTP API",
        description=(
            "Run the fleetd daemon in the foreground (under systemd: Type=notify). Without --config it "
            f"reads {DEFAULT_CONFIG_PATH} if present, else starts with defaults and no miners. "
            "SIGHUP reloads the configuration; SIGTERM stops gracefully."
        ),
    )
    p.add_argument("--config", type=Path, metavar="FILE", help=f"configuration file ({DEFAULT_CONFIG_PATH})")
    p.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the SQLite database lives (default: state_dir, $STATE_DIRECTORY, or ./.state)",
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="API address, overriding [api] listen")
    p.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="overrides [logging]")
    p.set_defaults(func=main)


def _load(path: Path | None) -> tuple[Config, Path | None]:
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return Config(), None
        path = DEFAULT_CONFIG_PATH
    if not path.exists():
        raise CLIError(f"{path}: no such configuration file")
    try:
        return load_config(path), path
    except ConfigError as exc:
        raise CLIError(str(exc)) from None


def main(args: argparse.Namespace) -> int:
    from fleetd.daemon.core import Daemon
    from fleetd.daemon.service import Service, setup_logging

    config, path = _load(args.config)
    if args.listen:
        try:
            split_listen(args.listen)
        except ValueError as exc:
            raise CLIError(f"--listen: {exc}") from None
        config = config.model_copy(update={"api": config.api.model_copy(update={"listen": args.listen})})
    setup_logging(args.log_level or config.logging.level)
    if path is None:
        log.info("no configuration file (looked for %s); defaults, no miners", DEFAULT_CONFIG_PATH)
    daemon = Daemon(config, state_dir=args.state_dir)
    try:
        daemon.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create state directory {daemon.state_dir}: {exc.strerror or exc}") from None
    api: list[object] = []

    async def start_api(d: Daemon) -> None:
        if args.no_api:
            return
        from fleetd.api import ApiServer

        server = ApiServer.for_daemon(d)
        await server.start()
        api.append(server)
        log.info("HTTP API on %s (try %s/api/fleet)", server.url, server.url)

    async def stop_api(_d: Daemon) -> None:
        for server in api:
            await server.stop()  # type: ignore[attr-defined]

    service = Service(daemon, config_path=path, on_started=start_api, on_stopping=stop_api)
    from fleetd import runtime

    runtime.tune_gc()
    loop_name, loop_runner = runtime.runner()
    log.debug("event loop: %s", loop_name)
    try:
        with loop_runner as r:
            r.run(service.run())
    except OSError as exc:
        raise CLIError(str(exc)) from None
    return 0
