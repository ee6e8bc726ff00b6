"""`fleetd curtail ...` and `fleetd events` against the real API served on a background loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetd.api import ApiServer
from fleetd.api.curtail_routes import Token
from fleetd.cli import main
from fleetd.daemon.events import Event, EventKind
from tests.conftest import loopback_host

from .helpers import API_BLOCK, TOKEN, FakeDaemon, fake_daemon

BLOCK = API_BLOCK


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeDaemon, str, Path]]:
    d = fake_daemon(tmp_path)
    d.events.append(Event(EventKind.MINER_DOWN, "stopped answering", miner_id="10.9.0.4"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="api", daemon=True)
    thread.start()
    server = ApiServer(
        lambda: d.state, listen=f"{loopback_host(BLOCK)}:0", daemon=d, token=Token(TOKEN.encode())
    )
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    try:
        yield d, server.url, token_file
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_status_table_json_and_one_miner(served, capsys) -> None:
    _, url, _ = served
    rc, out, _ = _run(capsys, "curtail", "status", "--api", url)
    assert rc == 0
    assert "DRY RUN" in out and "economic, strike" in out and "12.5 kW (target 15.0 kW, shed 6.8 kW)" in out
    assert "sleep 4 sent/3 failed/2 retried" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("10.9.0.")]
    assert len(lines) == 6 and "ramp" in lines[1] and "error: not complied" in lines[3]
    rc, out, _ = _run(capsys, "curtail", "status", "--api", url, "--site", "south", "--json")
    assert rc == 0 and [m["id"] for m in json.loads(out)["miners"]] == ["10.9.0.4", "10.9.0.5", "10.9.0.6"]
    rc, out, _ = _run(capsys, "curtail", "status", "10.9.0.6", "--api", url)
    assert rc == 0 and "not controllable" in out
    rc, _, err = _run(capsys, "curtail", "status", "10.9.9.9", "--api", url)
    assert (
        rc == 1 and err.startswith("fleetd curtail: no curtailment status for miner") and "[HTTP 404]" in err
    )


def test_pin_unpin_event_and_enforce_with_a_token_file(served, capsys) -> None:
    d, url, token = served
    api = ("--api", url, "--token-file", str(token))
    rc, out, _ = _run(
        capsys, "curtail", "pin", "maintenance", "--miner", "10.9.0.2", "--for", "2h", "--note", "psu", *api
    )
    assert rc == 0 and out.startswith("pinned: p-")
    (pin,) = d.curtail_controls.pins()
    assert pin.miners == ("10.9.0.2",) and pin.note == "psu" and pin.until is not None
    rc, out, _ = _run(
        capsys, "curtail", "event", "start", "--kw", "750", "--until", "2099-01-01T00:00:00Z", *api
    )
    assert rc == 0 and "750 kW" in out
    (ev,) = d.curtail_controls.scheduled_events()
    assert ev.end == 4070908800.0
    rc, out, _ = _run(capsys, "curtail", "event", "list", "--api", url)
    assert ev.id in out and "active" in out
    rc, out, _ = _run(capsys, "curtail", "enforce", "on", *api)
    assert rc == 0 and out.startswith("enforce: commands are sent (runtime switch")
    assert d.curtail_controls.enforce(False) is True
    rc, out, _ = _run(capsys, "curtail", "enforce", "--api", url)
    assert "enforce" in out
    rc, out, _ = _run(capsys, "curtail", "enforce", "config", *api)
    assert "as configured" in out and d.curtail_controls.enforce_override is None
    assert _run(capsys, "curtail", "event", "stop", ev.id, *api)[0] == 0
    assert _run(capsys, "curtail", "unpin", pin.id, *api)[0] == 0
    assert d.curtail_controls.pins() == () and d.curtail_controls.scheduled_events() == ()


def test_token_from_the_environment_and_refusals(served, capsys, monkeypatch) -> None:
    d, url, _ = served
    rc, _, err = _run(capsys, "curtail", "enforce", "on", "--api", url)
    assert rc == 1 and "valid bearer token is required" in err and "--token-file" in err
    monkeypatch.setenv("FLEETD_API_TOKEN", "wrong")
    assert _run(capsys, "curtail", "pin", "sleep", "--all", "--api", url)[0] == 1
    assert d.curtail_controls.pins() == () and d.curtail_controls.enforce_override is None
    monkeypatch.setenv("FLEETD_API_TOKEN", TOKEN)
    assert _run(capsys, "curtail", "pin", "sleep", "--all", "--api", url)[0] == 0
    assert d.curtail_controls.pins()[0].miners == ()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["curtail", "pin", "sleep"], "say which miners"),
        (["curtail", "pin", "sleep", "--all", "--site", "x"], "cannot be combined"),
        (["curtail", "event", "start", "--kw", "nan", "--for", "1h"], "--kw must be"),
    ],
)
def test_bad_input_is_one_line_exit_2(served, capsys, argv, message) -> None:
    _, url, token = served
    rc, _, err = _run(capsys, *argv, "--api", url, "--token-file", str(token))
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["curtail", "event", "start", "--kw", "5", "--for", "soon"], "not a duration"),
        (["curtail", "event", "start", "--kw", "5", "--until", "2099-01-01T00:00"], "UTC offset"),
        (["curtail", "pin", "nap", "--all"], "invalid choice"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_events_list_and_filters(served, capsys) -> None:
    _, url, token = served
    _run(capsys, "curtail", "enforce", "on", "--api", url, "--token-file", str(token))
    rc, out, _ = _run(capsys, "events", "--api", url)
    assert rc == 0 and "miner_down" in out and "curtail_enforce_changed" in out
    rc, out, _ = _run(capsys, "events", "--api", url, "--miner", "10.9.0.4", "--json")
    assert [e["kind"] for e in json.loads(out)["events"]] == ["miner_down"]
    rc, _, err = _run(capsys, "events", "--api", url, "--limit", "0")
    assert rc == 1 and "limit must be between 1 and 1000" in err
    rc, _, err = _run(capsys, "events", "--api", url, "--kind", "nope")
    assert rc == 1 and "kind must be among" in err


def test_unreachable_api_is_one_line(capsys) -> None:
    rc, _, err = _run(capsys, "events", "--api", f"http://{loopback_host(BLOCK)}:9")
    assert rc == 1 and "cannot reach the fleetd API" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _run(capsys, "curtail", "status", "--api", "ftp://x")
    assert rc == 2 and "http:// or https://" in err
