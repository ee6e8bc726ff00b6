"""Release-review fixes: no API keys in price-source errors, layering, public accessors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from aiohttp import web

from fleetd.economics.sources.base import SourceError, shown_url
from fleetd.economics.sources.urdb import UrdbRate
from tests.conftest import loopback_host

BLOCK = 29
ROOT = Path(__file__).resolve().parents[2]
KEY = "sekrit-api-key-123"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"https://user:pw@api.openei.org/utility_rates?api_key={KEY}",
            "https://api.openei.org/utility_rates",
        ),
        ("http://127.0.0.1:8080/feed?token=x#frag", "http://127.0.0.1:8080/feed"),
        ("http://[::1]:81/a", "http://[::1]:81/a"),
    ],
)
def test_shown_url_drops_credentials_and_query(url: str, shown: str) -> None:
    assert shown_url(url) == shown


async def _serve(handler: web.RequestHandler) -> tuple[web.AppRunner, str]:  # type: ignore[type-arg]
    app = web.Application()
    app.router.add_get("/utility_rates", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    host = loopback_host(BLOCK)
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://{host}:{port}"


@pytest.mark.parametrize("status", [500, 302])  # an HTTP error, and a redirect loop (aiohttp's own error)
async def test_source_errors_never_show_the_api_key(status: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        if status == 302:
            raise web.HTTPFound(str(request.rel_url))
        return web.Response(status=status, text="no")

    runner, base = await _serve(handler)
    src = UrdbRate("some-rate", KEY, base, timeout_s=5.0)
    try:
        with pytest.raises(SourceError) as err:
            await src.fetch_record()
    finally:
        await src.close()
        await runner.cleanup()
    assert KEY not in str(err.value) and "utility_rates" in str(err.value)


def test_transport_imports_no_upper_layer() -> None:
    for path in (ROOT / "fleetd" / "transport").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(
                    ("fleetd.drivers", "fleetd.daemon", "fleetd.economics", "fleetd.api", "fleetd.storage")
                ), f"{path.name} imports {node.module}"


def test_timeouts_is_one_class() -> None:
    from fleetd.drivers.base import Timeouts

    from fleetd.transport.timeouts import Timeouts as TransportTimeouts

    assert Timeouts is TransportTimeouts


def test_storage_queue_depth(tmp_path: Path) -> None:
    from fleetd.storage.store import Storage

    store = Storage(f"sqlite:///{tmp_path / 'q.db'}")
    assert store.queue_depth == 0  # public accessor the metrics exporter reads


def test_cli_bug_is_one_line_unless_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fleetd.cli.profit
    from fleetd.cli import main

    def boom(args: object) -> int:
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(fleetd.cli.profit, "run", boom)
    monkeypatch.delenv("FLEETD_DEBUG", raising=False)
    assert main(["profit", "--electricity-usd-per-kwh", "0.06"]) == 1
    err = capsys.readouterr().err
    assert err == "fleetd profit: unexpected RuntimeError: kaput (FLEETD_DEBUG=1 shows a traceback)\n"
    monkeypatch.setenv("FLEETD_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["profit", "--electricity-usd-per-kwh", "0.06"])


def test_raise_nofile_raises_within_the_hard_limit_and_never_lowers() -> None:
    import resource

    from fleetd.runtime import raise_nofile

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        hard = before[1]
        if hard == resource.RLIM_INFINITY or hard < 512:
            pytest.skip(f"needs a finite hard open-files limit of 512 or more (have {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert raise_nofile(100) == 256  # never lowered
        assert raise_nofile(300) == 300 == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert raise_nofile(hard + 1) == hard  # capped by the hard limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_daemon_storage_status(tmp_path: Path) -> None:
    from fleetd.config import parse_config
    from fleetd.daemon.core import Daemon
    from fleetd.daemon.events import Event, EventKind

    cfg = parse_config({})
    assert Daemon(cfg, state_dir=tmp_path, storage=False).storage_status() is None
    d = Daemon(cfg, state_dir=tmp_path)  # not started: storage not (yet) open
    d.emit(Event(EventKind.STARTED, "x"))
    assert d.storage_status() == (False, 0, 0, 1)  # the event waits in the spool
