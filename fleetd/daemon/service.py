"""Running as a service: logging for journald, the systemd notify protocol, signals, the serve loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from fleetd.config import ConfigError, load_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import Event, EventKind

log = logging.getLogger("fleetd.service")

# syslog priorities journald reads from a "<N>" line prefix
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


# --- logging ------------------------------------------------------------------------------------------------
def under_journald(stream: TextIO) -> bool:
    """$JOURNAL_STREAM names the journal's stream; it must be this one (not a redirect of it)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return True  # set but unverifiable: trust it
    return (st.st_dev, st.st_ino) == (dev, ino)


class OneLineFormatter(logging.Formatter):
    """One line per event: newlines escaped, exceptions folded onto the line; `<N>` prefixes for journald."""

    def __init__(self, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            tb = traceback.extract_tb(exc.__traceback__)
            where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
            msg += f" ({type(exc).__name__}: {exc}{where})"
        msg = msg.replace("\r", "").replace("\n", " | ")
        if self.journal:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {msg}"
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{when}Z {record.levelname:<7} {record.name}: {msg}"


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """fleetd's log lines on stderr; third-party chatter (apscheduler, alembic) only from WARNING up."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(under_journald(stream)))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_fleetd", False):
            root.removeHandler(h)
    handler._fleetd = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("fleetd").setLevel(_LEVELS.get(level, logging.INFO))
    for noisy in ("apscheduler", "alembic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


# --- systemd notify -----------------------------------------------------------------------------------------
class Notifier:
    """sd_notify over $NOTIFY_SOCKET (a datagram socket; '@' names an abstract socket). No-op without it."""

    def __init__(self, path: str | None = None) -> None:
        path = os.environ.get("NOTIFY_SOCKET") if path is None else path
        self.address: str | None = None
        self._sock: socket.socket | None = None
        if path:
            self.address = "\0" + path[1:] if path.startswith("@") else path
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: Any) -> bool:
        if self._sock is None or self.address is None:
            return False
        text = "\n".join(f"{k.upper()}={str(v).replace(chr(10), ' ')}" for k, v in fields.items())
        try:
            self._sock.sendto(text.encode(), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at %s: %s", self.address.replace("\0", "@"), exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> bool:
        return self.send(ready=1, status=status, mainpid=os.getpid())

    def status(self, status: str) -> bool:
        return self.send(status=status)

    def watchdog(self) -> bool:
        return self.send(watchdog=1)

    def reloading(self) -> bool:
        return self.send(reloading=1, monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(stopping=1, status=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """Half of $WATCHDOG_USEC in seconds (how often to ping), or None when no watchdog applies to us."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


# --- the serve loop -----------------------------------------------------------------------------------------
ServiceHook = Callable[[Daemon], Awaitable[Any]]


class Service:
    """Runs a Daemon until SIGTERM/SIGINT: READY, STATUS, WATCHDOG to systemd; SIGHUP reloads the config."""

    def __init__(
        self,
        daemon: Daemon,
        *,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        on_started: ServiceHook | None = None,
        on_stopping: ServiceHook | None = None,
        status_every_s: float = 5.0,
    ) -> None:
        self.daemon = daemon
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.on_started = on_started
        self.on_stopping = on_stopping
        self.status_every_s = status_every_s
        self.stop_requested = asyncio.Event()
        self.reloads = 0  # reloads applied (for tests and the status line)
        self._reloading: asyncio.Task[None] | None = None

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        installed = []
        for sig, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self._on_sighup),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
        try:
            await self.daemon.start()
            if self.on_started is not None:
                await self.on_started(self.daemon)
            self.notifier.ready(self.daemon.status_line())
            log.info("fleetd ready: %s", self.daemon.status_line())
            ticker = asyncio.create_task(self._tick(), name="fleetd-notify")
            try:
                await self.stop_requested.wait()
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            log.info("stopping: finishing polls in flight and writing pending data")
            self.notifier.stopping()
            if self._reloading is not None:
                with contextlib.suppress(Exception):
                    await self._reloading
        finally:
            if self.on_stopping is not None:
                with contextlib.suppress(Exception):
                    await self.on_stopping(self.daemon)
            await self.daemon.stop()
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.notifier.close()
            log.info("fleetd stopped")

    async def _tick(self) -> None:
        """STATUS when it changes; WATCHDOG=1 only while poll cycles progress (so a stuck daemon restarts)."""
        wd = watchdog_interval()
        every = min(self.status_every_s, wd) if wd else self.status_every_s
        last_status = ""
        last_ping = 0.0
        stalled_said = False
        while True:
            status = self.daemon.status_line()
            if status != last_status:
                self.notifier.status(status)
                last_status = status
            if wd:
                now = time.time()
                if self.daemon.progressing(now):
                    if now - last_ping >= wd * 0.9:
                        self.notifier.watchdog()
                        last_ping = now
                    stalled_said = False
                elif not stalled_said:
                    log.error("poll cycles are not progressing; withholding watchdog pings")
                    stalled_said = True
            await asyncio.sleep(every)

    def _on_sighup(self) -> None:
        if self._reloading is not None and not self._reloading.done():
            return
        self._reloading = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> bool:
        """Re-read and validate the config file; a bad one is logged and the running config stays."""
        if self.config_path is None:
            log.warning("SIGHUP: no configuration file to reload (started without one)")
            return False
        self.notifier.reloading()
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            lines = "; ".join(exc.errors)
            msg = f"configuration reload rejected, keeping the running one: {self.config_path}: {lines}"
            log.error(msg)
            self.daemon.emit(Event(EventKind.CONFIG_REJECTED, msg, level="error"))
            self.notifier.send(ready=1, status=self.daemon.status_line())
            return False
        try:
            await self.daemon.reload(config)
        except Exception as exc:  # e.g. a secret file removed between validation and use
            msg = f"configuration reload failed, keeping the running one: {type(exc).__name__}: {exc}"
            log.error(msg)
            self.daemon.emit(Event(EventKind.CONFIG_REJECTED, msg, level="error"))
            self.notifier.send(ready=1, status=self.daemon.status_line())
            return False
        self.reloads += 1
        self.notifier.send(ready=1, status=self.daemon.status_line())
        return True
