"""The OpenAPI schemas and paths of the curtailment routes and /api/events (merged by openapi.py)."""

from __future__ import annotations

from typing import Any

from fleetd.api.curtail_views import ACTIONS, ACTUALS, EVENT_KINDS, EVENTS_LIMIT_MAX, PIN_ACTIONS

_NUM = {"type": ["number", "null"]}
_STR = {"type": "string"}
_STRS = {"type": "array", "items": {"type": "string"}}
_TIME = {
    "oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}],
    "description": "Unix time, or ISO 8601 with a UTC offset",
}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), **extra}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "Error")
_WRITE_ERRORS = {
    "400": _json(_ref("Error"), "Bad request body; nothing changed"),
    "401": _json(_ref("Error"), "Missing or wrong bearer token; nothing changed"),
    "403": _json(_ref("Error"), "Write endpoints are off: no [api] token configured"),
    "409": _json(_ref("Error"), "Curtailment is not configured"),
}
# HA: only the active instance runs curtailment; a standby refuses reads and writes alike
_STANDBY = {"503": _json(_ref("Error"), "This instance is the HA standby; the message names the active one")}
_SECURITY = [{"bearer": []}]

_PIN = _obj(
    {
        "id": _STR,
        "action": {"type": "string", "enum": list(PIN_ACTIONS)},
        "miners": _STRS,
        "sites": _STRS,
        "models": {**_STRS, "description": "fnmatch patterns on the model"},
        "until": {**_NUM, "description": "Unix time the pin expires; null: until removed"},
        "note": _STR,
        "source": _STR,
    }
)
_DR = _obj(
    {
        "id": _STR,
        "target_kw": {"type": "number"},
        "start": {"type": "number"},
        "end": {"type": "number"},
        "active": {"type": "boolean", "description": "In force now (started, not ended)"},
        "sites": {**_STRS, "description": "Empty: the whole fleet"},
        "source": {"type": "string", "description": "api, mqtt, ..."},
    }
)
_MINER = _obj(
    {
        "id": _STR,
        "site": _STR,
        "model": _STR,
        "target": {"type": "string", "description": "run, sleep or 'limit N W'"},
        "action": {"type": "string", "enum": list(ACTIONS)},
        "power_limit_w": {"type": ["integer", "null"]},
        "actual": {"type": "string", "enum": list(ACTUALS), "description": "Last verified state"},
        "reason": _obj(
            {
                "kind": _STR,
                "rule": _STR,
                "text": _STR,
                "values": {"type": "object", "description": "The rule's inputs and thresholds"},
            }
        ),
        "since": {"type": "number", "description": "When the target was decided"},
        "verified_at": {**_NUM, "description": "When the actual state was last verified; null: never"},
        "controllable": {"type": "boolean", "description": "False: the driver cannot sleep or limit it"},
        "in_flight": {"type": "boolean"},
        "waiting": {
            "type": "string",
            "description": "Why a pending command has not gone out (dwell, ramp, ...)",
        },
        "failures": {"type": "integer"},
        "error": _STR,
    }
)
_ENFORCE = _obj(
    {
        "configured": {"type": "boolean", "description": "Whether [curtailment] is configured"},
        "enforce": {"type": "boolean", "description": "Commands are sent (false: dry run)"},
        "enforce_override": {
            "type": ["boolean", "null"],
            "description": "Runtime switch; null: as configured",
        },
        "enforce_configured": {"type": "boolean"},
    }
)
_FLEET_PROPS: dict[str, Any] = {
    **_ENFORCE["properties"],
    "decided_at": {**_NUM, "description": "Last decision pass; null before the first"},
    "failsafe": {"type": "string", "description": "Why the fail-safe applies; empty when it does not"},
    "active_rules": _STRS,
    "load_kw": {**_NUM, "description": "Measured/estimated fleet load"},
    "target_kw": {**_NUM, "description": "Power-cap / DR target in force"},
    "headroom_kw": {**_NUM, "description": "target_kw - load_kw"},
    "shed_kw": {"type": "number", "description": "Load shed by verified sleeps and limits"},
    "commands": _obj({"sent": _COUNTS, "failed": _COUNTS, "retried": _COUNTS}),
    "by_target": _COUNTS,
    "by_actual": _COUNTS,
    "not_controllable": {"type": "integer"},
    "pins": {"type": "array", "items": _ref("Pin")},
    "dr_events": {"type": "array", "items": _ref("DemandEvent")},
    "total": {"type": "integer", "description": "Miners matching the filters"},
    "offset": {"type": "integer"},
    "count": {"type": "integer"},
    "miners": {"type": "array", "items": _ref("MinerCurtailment")},
}

SCHEMAS: dict[str, Any] = {
    "Pin": _PIN,
    "DemandEvent": _DR,
    "MinerCurtailment": _MINER,
    "Enforce": _ENFORCE,
    "Curtailment": _obj(_FLEET_PROPS),
    "PinList": _obj({"pins": {"type": "array", "items": _ref("Pin")}}),
    "DemandEventList": _obj({"dr_events": {"type": "array", "items": _ref("DemandEvent")}}),
    "Event": _obj(
        {
            "at": {"type": "number"},
            "kind": {"type": "string", "enum": list(EVENT_KINDS)},
            "level": {"type": "string", "enum": ["info", "warning", "error"]},
            "miner_id": {"type": ["string", "null"]},
            "message": _STR,
        }
    ),
    "EventList": _obj({"count": {"type": "integer"}, "events": {"type": "array", "items": _ref("Event")}}),
    "PinRequest": {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(PIN_ACTIONS)},
            "miners": _STRS,
            "sites": _STRS,
            "models": _STRS,
            "all": {"type": "boolean", "description": "Pin every miner (instead of miners/sites/models)"},
            "until": _TIME,
            "note": _STR,
        },
        "required": ["action"],
        "additionalProperties": False,
    },
    "DemandEventRequest": {
        "type": "object",
        "properties": {
            "target_kw": {"type": "number", "minimum": 0},
            "end": _TIME,
            "duration_s": {"type": "number", "exclusiveMinimum": 0},
            "start": _TIME,
            "sites": _STRS,
        },
        "required": ["target_kw"],
        "description": "Give exactly one of end and duration_s",
        "additionalProperties": False,
    },
    "EnforceRequest": _obj({"enforce": {"type": ["boolean", "null"]}}, additionalProperties=False),
}


def _q(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _list_q(name: str, description: str, enum: tuple[str, ...] = ()) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string"}
    if enum:
        item["enum"] = list(enum)
    return {
        **_q(
            name, description + " Repeat it or separate values with commas.", {"type": "array", "items": item}
        ),
        "style": "form",
        "explode": True,
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _write(
    op: str, summary: str, ok: dict[str, Any], body: str | None = None, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op,
        "summary": summary,
        "security": _SECURITY,
        "responses": {**ok, **_WRITE_ERRORS, **_STANDBY},
        **extra,
    }
    if body:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return out


PATHS: dict[str, Any] = {
    "/api/curtailment": {
        "get": {
            "operationId": "curtailment",
            "summary": "Curtailment: enforce/dry run, fail-safe, rules in force, target vs load, counters, "
            "and per miner target, actual, reason, since",
            "parameters": [
                _list_q("site", "Site label."),
                _list_q("model", "Model."),
                _list_q("state", "Actual (verified) state.", ACTUALS),
                _list_q("target", "Desired action.", ACTIONS),
                _q("limit", "", {"type": "integer", "minimum": 0, "maximum": 10**9}),
                _q("offset", "", {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0}),
            ],
            "responses": {"200": _json(_ref("Curtailment"), "Fleet and miners"), "400": _ERROR, **_STANDBY},
        }
    },
    "/api/curtailment/{id}": {
        "get": {
            "operationId": "curtailmentMiner",
            "summary": "One miner's curtailment status",
            "parameters": [_path("id")],
            "responses": {"200": _json(_ref("MinerCurtailment"), "The miner"), "404": _ERROR, **_STANDBY},
        }
    },
    "/api/curtailment/pins": {
        "get": {
            "operationId": "listPins",
            "summary": "Operator pins in force",
            "responses": {"200": _json(_ref("PinList"), "Pins"), **_STANDBY},
        },
        "post": _write(
            "addPin",
            "Pin miners, sites or models to run/sleep/exclude/maintenance",
            {"201": _json(_ref("Pin"), "The pin")},
            "PinRequest",
        ),
    },
    "/api/curtailment/pins/{pin_id}": {
        "delete": _write(
            "removePin",
            "Remove a pin",
            {"200": _json(_ref("Pin"), "The removed pin"), "404": _ERROR},
            parameters=[_path("pin_id")],
        )
    },
    "/api/curtailment/dr": {
        "get": {
            "operationId": "listDemandEvents",
            "summary": "Demand-response events not yet ended",
            "responses": {"200": _json(_ref("DemandEventList"), "Events"), **_STANDBY},
        },
        "post": _write(
            "startDemandEvent",
            "Start a demand-response event: keep load at or below target_kw until end",
            {"201": _json(_ref("DemandEvent"), "The event")},
            "DemandEventRequest",
        ),
    },
    "/api/curtailment/dr/{event_id}": {
        "delete": _write(
            "stopDemandEvent",
            "Stop a demand-response event",
            {"200": _json(_ref("DemandEvent"), "The stopped event"), "404": _ERROR},
            parameters=[_path("event_id")],
        )
    },
    "/api/curtailment/enforce": {
        "get": {
            "operationId": "getEnforce",
            "summary": "Whether commands are sent (enforce) or only logged (dry run)",
            "responses": {"200": _json(_ref("Enforce"), "The switch"), **_STANDBY},
        },
        "post": _write(
            "setEnforce",
            "Switch enforce / dry run at runtime",
            {"200": _json(_ref("Enforce"), "The switch")},
            "EnforceRequest",
        ),
        "delete": _write(
            "resetEnforce", "Back to the configured enforce", {"200": _json(_ref("Enforce"), "The switch")}
        ),
    },
    "/api/events": {
        "get": {
            "operationId": "events",
            "summary": "The daemon's recent events (decisions, commands, controls, miners), oldest first",
            "parameters": [
                _list_q("kind", "Event kind.", EVENT_KINDS),
                _list_q("miner", "Miner id."),
                _q("since", "Only events after this unix or ISO 8601 time", {"type": "string"}),
                _q(
                    "limit",
                    "The newest this many",
                    {"type": "integer", "minimum": 1, "maximum": EVENTS_LIMIT_MAX, "default": 100},
                ),
            ],
            "responses": {"200": _json(_ref("EventList"), "Events"), "400": _ERROR},
        }
    },
}

SECURITY_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer", "description": "[api] token"}}
