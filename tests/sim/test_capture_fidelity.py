"""Byte-fidelity spot checks: every Antminer capture's command, asked of the emulator, comes back in the
capture's shape: the same keys and value types in every block, STATUS block included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, load_fixture, web_port
from tests.sim.helpers import api, cgi

MODELS = {"s19pro": "Antminer S19 Pro", "s21": "Antminer S21"}
CAPTURES = sorted(p.name for p in FIXTURES.glob("antminer_*.json"))


def shape_diff(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Where `ours` differs from `theirs` in keys or value types (values themselves may differ)."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path}: {type(ours).__name__}, capture has an object"]
        out = []
        missing, extra = sorted(theirs.keys() - ours.keys()), sorted(ours.keys() - theirs.keys())
        if missing:
            out.append(f"{path}: missing keys {missing}")
        if extra:
            out.append(f"{path}: extra keys {extra}")
        for key in (k for k in theirs if k in ours):
            out += shape_diff(ours[key], theirs[key], f"{path}.{key}")
        return out
    if isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{path}: {type(ours).__name__}, capture has a list"]
        if not theirs or not ours:
            return [] if not theirs and not ours else [f"{path}: {len(ours)} items, capture {len(theirs)}"]
        # Same count: block by block; else every item against the capture's first (pools, chains).
        pairs = zip(ours, theirs, strict=True) if len(ours) == len(theirs) else ((o, theirs[0]) for o in ours)
        out = []
        for i, (o, t) in enumerate(pairs):
            out += shape_diff(o, t, f"{path}[{i}]")
        return out
    if type(ours) is not type(theirs):
        return [f"{path}: {type(ours).__name__} {ours!r}, capture {type(theirs).__name__} {theirs!r}"]
    return []


def _model_and_request(capture: str) -> tuple[str, str, bool]:
    """("Antminer S21", "stats", True) for antminer_s21_web-stats.cgi.json: model, command/page, is web."""
    stem = Path(capture).stem.removeprefix("antminer_")
    tag, _, what = stem.partition("_")
    if what.startswith("web-"):
        return MODELS[tag], what.removeprefix("web-").removesuffix(".cgi"), True
    return MODELS[tag], what, False


def test_every_antminer_capture_is_checked() -> None:
    assert len(CAPTURES) >= 10
    for capture in CAPTURES:
        _model_and_request(capture)  # a capture of a model or kind this test cannot ask is a failure


@pytest.mark.parametrize("capture", CAPTURES)
async def test_emulator_reply_has_the_capture_shape(start, capture: str) -> None:
    model, request, web = _model_and_request(capture)
    _, host = await start(model)
    reply = await (cgi(host, web_port(), request) if web else api(host, request))
    captured = load_fixture(capture)
    assert shape_diff(reply, captured) == []
    if not web:
        status, theirs = reply["STATUS"][0], captured["STATUS"][0]
        assert (status["STATUS"], status["Code"], status["Msg"]) == (
            theirs["STATUS"],
            theirs["Code"],
            theirs["Msg"],
        )


def test_shape_diff_sees_keys_types_and_blocks() -> None:
    capture = {"STATUS": [{"STATUS": "S", "Code": 11}], "SUMMARY": [{"GHS 5s": 1.5, "Elapsed": 3}]}
    assert shape_diff(capture, capture) == []
    other = {"STATUS": [{"STATUS": "S", "Code": "11"}], "SUMMARY": [{"GHS 5s": 1, "Extra": 0}]}
    assert sorted(shape_diff(other, capture)) == [
        "$.STATUS[0].Code: str '11', capture int 11",
        "$.SUMMARY[0].GHS 5s: int 1, capture float 1.5",
        "$.SUMMARY[0]: extra keys ['Extra']",
        "$.SUMMARY[0]: missing keys ['Elapsed']",
    ]
