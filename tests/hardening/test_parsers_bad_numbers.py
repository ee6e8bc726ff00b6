"""Every driver's parser fed a healthy reply with one figure made impossible: a clean error or sane figures.

The replies come from emulated miners over the wire; then each number (and each numeric string) in
them is replaced in turn by NaN, infinities, 1e300, -1e308, 10**30, a negative or a word, and each
section by the wrong type. The parser must raise the transport's MalformedReplyError (never a bare
TypeError, OverflowError or the like, which the poller reports as a driver bug) or return a reading
whose figures are all plausible and which serializes to JSON.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fleetd.drivers import driver_class
from fleetd.drivers.plausible import IMPLAUSIBLE, checked

from fleetd.model import Reading
from fleetd.transport.errors import DeviceError

from .conftest import MODELS, driver_of, impossible_numbers

BAD_NUMBERS: tuple[Any, ...] = (math.nan, math.inf, -math.inf, 1e300, -1e308, 10**30, -(10**30), -7, "inf")
WRONG_TYPES: tuple[Any, ...] = (None, [], {}, "junk", [[1]], {"x": {}})


def _numeric(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    if isinstance(v, str) and v.strip():
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out


def _parse(name: str, responses: dict[str, Any]) -> Reading | None:
    try:
        return driver_class(driver_of(name)).parse_responses(responses, host="192.0.2.1", polled_at=1.0)
    except DeviceError:
        return None


def _check(name: str, what: str, responses: dict[str, Any]) -> list[str]:
    try:
        reading = _parse(name, responses)
    except Exception as exc:
        return [f"{what}: {type(exc).__name__}: {exc}"[:300]]
    if reading is None:
        return []
    problems = []
    if checked(reading.snapshot) is not reading.snapshot:
        problems.append(f"{what}: implausible figures passed")
    try:
        doc = orjson.loads(orjson.dumps(reading.to_dict()))
    except TypeError as exc:
        return [f"{what}: reading does not serialize: {exc}"]
    if bad := impossible_numbers(doc["snapshot"]):
        problems.append(f"{what}: {bad[:3]}")
    return problems


@pytest.mark.parametrize("name", list(MODELS))
def test_each_number_made_impossible(name: str, raw_replies: dict[str, dict[str, Any]]) -> None:
    replies = raw_replies[name]
    problems: list[str] = []
    faults = 0
    for path, value in _paths(replies):
        if not path or not _numeric(value):
            continue
        for bad in BAD_NUMBERS:
            mutated = _set(replies, path, bad)
            problems += _check(name, f"{'/'.join(map(str, path))}={bad!r}", mutated)
            if (r := _parse(name, mutated)) is not None:
                faults += any(f.code == IMPLAUSIBLE for f in r.snapshot.errors)
    assert not problems, "\n".join(problems[:20])
    assert faults, "no impossible figure reached the plausibility check: the test feeds nothing"


@pytest.mark.parametrize("name", list(MODELS))
def test_each_section_of_the_wrong_type(name: str, raw_replies: dict[str, dict[str, Any]]) -> None:
    replies = raw_replies[name]
    problems: list[str] = []
    for path, value in _paths(replies):
        if not path or not isinstance(value, (dict, list)) or len(path) > 4:
            continue
        for wrong in WRONG_TYPES:
            problems += _check(name, f"{'/'.join(map(str, path))}={wrong!r}", _set(replies, path, wrong))
    for key in replies:  # a reply missing altogether
        problems += _check(name, f"without {key}", {k: v for k, v in replies.items() if k != key})
    assert not problems, "\n".join(problems[:20])
