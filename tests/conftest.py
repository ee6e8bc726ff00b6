"""Shared test helpers: fixture files, unique loopback addresses, required services."""

from __future__ import annotations

import itertools
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# CI sets this so that a missing service fails the run instead of skipping tests.
REQUIRE_SERVICES = os.environ.get("FLEETD_REQUIRE_SERVICES", "") not in ("", "0")

# FLEETD_TEST_HOST_BASE shifts the addresses so that several test runs on one machine do not collide.
_next_host = itertools.count(int(os.environ.get("FLEETD_TEST_HOST_BASE", "1") or 1))


@pytest.fixture(autouse=True)
def _private_state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that keep state between runs (fleetd sleep/wake) write under a temporary XDG_STATE_HOME."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def loopback_host(block: int) -> str:
    """A fresh 127.<block>.x.y address; each test area uses its own block number."""
    n = next(_next_host)
    while n & 0xFF == 0:  # .0 is skipped (not taken as .1, which the next call hands out)
        n = next(_next_host)
    return f"127.{block}.{(n >> 8) & 0xFF}.{n & 0xFF}"


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under CI) when a TCP service is not listening."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        msg = f"{name} not reachable at {host}:{port} ({exc})"
        if REQUIRE_SERVICES:
            pytest.fail(f"{msg}; FLEETD_REQUIRE_SERVICES is set, so this is a failure", pytrace=False)
        pytest.skip(msg)


def require_binary(name: str) -> str:
    """The path of an installed program; skip (or fail under CI) when it is missing."""
    import shutil

    path = shutil.which(name)
    if path:
        return path
    msg = f"{name} is not installed"
    if REQUIRE_SERVICES:
        pytest.fail(f"{msg}; FLEETD_REQUIRE_SERVICES is set, so this is a failure", pytrace=False)
    pytest.skip(msg)


def web_port() -> int:
    """Port 80 when this process may bind it (root or CAP_NET_BIND_SERVICE), else 8080."""
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.254.254.254", 80))
        return 80
    except OSError:
        return 8080
