"""Plain-words messages for configuration validation errors: key path, what is wrong, what is allowed."""

from __future__ import annotations

import difflib
import re
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

_INTERNAL_LOC = ("function-", "json-or-python", "lax-or-strict", "nullable")

_TYPES = {  # pydantic error type -> what the value should have been, in plain words
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "path_type": "a file path (string)",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _strip(tp: Any) -> Any:
    """The type under Annotated/Optional; a union of several types comes back as a tuple of them."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, UnionType):
            args = tuple(a for a in get_args(tp) if a is not type(None))
            if len(args) != 1:
                return args
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _walk(root: type[BaseModel] | None, loc: tuple[int | str, ...]) -> tuple[str, Any]:
    """The key path of an error location (union tags dropped) and the type found there, if known."""
    out = ""
    tp: Any = root
    for part in loc:
        if isinstance(part, str) and (part.startswith(_INTERNAL_LOC) or part in ("str", "dict", "list")):
            continue
        tp = _strip(tp) if tp is not None else None
        if isinstance(tp, tuple):  # a discriminated union: pydantic puts the tag in the location
            member = next((m for m in tp if _is_model(m) and _tag(m) == part), None)
            if member is not None:
                tp = member
                continue
            tp = None
        if isinstance(part, int):
            out += f"[{part}]"
            args = get_args(tp) if tp is not None else ()
            tp = args[0] if get_origin(tp) is list and args else None
            continue
        out += f".{part}" if out else str(part)
        if _is_model(tp) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            tp = None
    return out, _strip(tp) if tp is not None else None


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("kind")
    return field.default if field is not None else None


def _fields(model: Any) -> list[str]:
    return list(model.model_fields) if _is_model(model) else []


def _close_matches(key: str, allowed: list[str]) -> list[str]:
    """The allowed keys `key` is probably a misspelling of: the best match and any nearly as good."""
    scored = sorted(((difflib.SequenceMatcher(None, key, a).ratio(), a) for a in allowed), reverse=True)
    best = scored[0][0] if scored else 0.0
    return [a for r, a in scored[:3] if r >= 0.6 and r >= best - 0.1]


def _got(value: Any) -> str:
    kinds = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    kind = next((k for t, k in kinds.items() if type(value) is t), type(value).__name__)
    shown = repr(value) if isinstance(value, (str, int, float, bool)) else ""
    return f"{kind} {shown}".strip() if len(shown) <= 40 else kind


def _quoted_list(text: str) -> str:
    """pydantic's "'a', 'b' or 'c'" -> "a, b, c"."""
    return ", ".join(p.strip().strip("'") for p in re.split(r",| or ", text) if p.strip())


def _message(err: dict[str, Any], parent: Any = None, key: Any = None, here: Any = None) -> str:
    """One plain-words reason for a pydantic error; `parent` is the model holding the key, if known."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        fields = _fields(parent)  # a union member's tag first: it is a key like the others
        allowed = ["kind", *(f for f in fields if f != "kind")] if "kind" in fields else fields
        if not allowed:
            return "unknown key"
        close = _close_matches(str(key), allowed)
        guess = ", ".join(close[:-1]) + f" or {close[-1]}" if len(close) > 1 else "".join(close)
        hint = f"did you mean {guess}? " if guess else ""
        return f"unknown key; {hint}expected one of {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        members = here if isinstance(here, tuple) else ()
        tags = ", ".join(str(_tag(m)) for m in members if _is_model(m) and _tag(m) is not None)
        return f"missing; one of {tags}" if tags else "missing"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r}; one of {_quoted_list(str(ctx.get('expected_tags', '')))}"
    if kind == "literal_error":
        return (
            f"not allowed: got {_got(err.get('input'))}; one of {_quoted_list(str(ctx.get('expected', '')))}"
        )
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        shown = f"{bound:g}" if isinstance(bound, (int, float)) else str(bound)
        return f"out of range: got {err.get('input')!r}; must be {_BOUNDS[kind]} {shown}"
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length" if kind == "too_short" else "max_length")
        return f"expected at least {n} item(s)" if kind == "too_short" else f"expected at most {n} item(s)"
    if kind in _TYPES:
        return f"wrong type: expected {_TYPES[kind]}, got {_got(err.get('input'))}"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def format_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    """One line per problem, `key.path: reason`; `model` (the validated class) sharpens the reasons."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, here = _walk(model, loc)
        _, parent = _walk(model, loc[:-1]) if loc else ("", model)
        discriminator = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
        if err["type"] in ("union_tag_not_found", "union_tag_invalid") and discriminator:
            path = f"{path}.{discriminator}" if path else discriminator
        msg = _message(err, parent if loc else model, loc[-1] if loc else None, here)
        lines.append(f"{path}: {msg}" if path else msg)
        if err["type"] == "union_tag_not_found" and discriminator and isinstance(here, tuple):
            lines += _unknown_untagged(path.rsplit(".", 1)[0] if "." in path else "", err.get("input"), here)
    return lines


def _unknown_untagged(path: str, data: Any, members: tuple[Any, ...]) -> list[str]:
    """Keys of a table without its `kind` that no kind has: a misspelled tag shows in the same run."""
    if not isinstance(data, dict):
        return []
    known: list[str] = ["kind"]
    for m in members:
        known += [f for f in _fields(m) if f not in known]
    tags = {str(_tag(m)) for m in members if _is_model(m)}
    out = []
    for key, value in data.items():
        if key in known:
            continue
        if isinstance(value, str) and value in tags:
            hint = "did you mean kind? "
        else:
            close = _close_matches(str(key), known)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
        where = f"{path}.{key}" if path else str(key)
        out.append(f"{where}: unknown key; {hint}expected kind and the keys of that kind")
    return out
