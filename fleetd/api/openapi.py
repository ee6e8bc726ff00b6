"""The OpenAPI 3.1 document of the HTTP API; tests check it matches the routes."""

from __future__ import annotations

from typing import Any

from fleetd.api.views import HEALTH_VALUES

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": "string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "Error")

_MINER_SUMMARY_PROPS: dict[str, Any] = {
    "id": {**_STR, "description": "Stable id: the configured or discovered host"},
    "host": _STR,
    "site": _STR,
    "rack": _STR,
    "position": _STR,
    "state": {"type": "string", "enum": list(HEALTH_VALUES)},
    "driver": _STR,
    "vendor": _STR,
    "model": _STR,
    "firmware": _STR,
    "nominal_power_w": _NUM,
    "hashrate_ths": _NUM,
    "expected_hashrate_ths": _NUM,
    "power_w": _NUM,
    "temp_c": _NUM,
    "is_mining": {"type": "boolean"},
    "mode": {"type": ["string", "null"]},
    "uptime_s": _INT,
    "faults": {"type": "integer", "description": "Errors the miner reports about itself"},
    "polled_at": {**_NUM, "description": "Unix time of the latest snapshot"},
    "last_ok_at": _NUM,
    "last_error": _STR,
    "failures": {"type": "integer", "description": "Consecutive failed polls"},
}

_TOTALS_PROPS: dict[str, Any] = {
    "miners": {"type": "integer"},
    "up": {"type": "integer"},
    "down": {"type": "integer"},
    "unknown": {"type": "integer", "description": "Not yet polled"},
    "mining": {"type": "integer"},
    "hashrate_ths": {"type": "number"},
    "expected_hashrate_ths": {"type": "number"},
    "power_w": {"type": "number", "description": "Measured input power of the miners that report it"},
    "power_unreported": {"type": "integer", "description": "Up miners that do not report their power"},
    "power_est_w": {
        "type": "number",
        "description": "power_w plus the nominal power of mining miners that do not report theirs",
    },
    "efficiency_j_per_th": {**_NUM, "description": "power_est_w / hashrate_ths"},
}


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), **extra}


def _filter_param(name: str, description: str, enum: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string"}
    if enum:
        item["enum"] = enum
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description + " Repeat it or separate values with commas; case-insensitive.",
        "schema": {"type": "array", "items": item},
        "style": "form",
        "explode": True,
    }


def openapi_document(version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": _obj({"error": _STR}),
        "Health": _obj(
            {
                "status": {"type": "string", "enum": ["ok", "starting", "stalled"]},
                "now": {"type": "number"},
                "started_at": {"type": "number"},
                "last_cycle_ended_at": _NUM,
                "last_cycle_age_s": _NUM,
                "max_cycle_age_s": {"type": "number"},
                "loop_lag_ms": {**_NUM, "description": "How late the event loop ran a 1 s timer, last time"},
                "miners": {"type": "integer"},
                "up": {"type": "integer"},
                "down": {"type": "integer"},
            }
        ),
        "Cycle": {
            **_obj(
                {
                    "started_at": {"type": "number"},
                    "ended_at": {"type": "number"},
                    "duration_s": {"type": "number"},
                    "polled": {"type": "integer"},
                    "ok": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "overran": {"type": "boolean", "description": "Took longer than the poll interval"},
                }
            ),
        },
        "Totals": _obj(_TOTALS_PROPS),
        "Fleet": _obj(
            {
                **_TOTALS_PROPS,
                "last_cycle": {"oneOf": [_ref("Cycle"), {"type": "null"}]},
                "by_model": {"type": "array", "items": _obj({"model": _STR, **_TOTALS_PROPS})},
                "by_site": {"type": "array", "items": _obj({"site": _STR, **_TOTALS_PROPS})},
            }
        ),
        "MinerSummary": _obj(_MINER_SUMMARY_PROPS),
        "MinerList": _obj(
            {
                "total": {"type": "integer", "description": "Miners matching the filters"},
                "offset": {"type": "integer"},
                "count": {"type": "integer", "description": "Miners in this page"},
                "miners": {"type": "array", "items": _ref("MinerSummary")},
            }
        ),
        "MinerDetail": _obj(
            {
                **_MINER_SUMMARY_PROPS,
                "identity": {
                    "type": ["object", "null"],
                    "description": "Normalized identity (fleetd.model.Identity)",
                },
                "snapshot": {
                    "type": ["object", "null"],
                    "description": "Latest normalized snapshot (fleetd.model.Snapshot)",
                },
                "next_poll_at": {"type": "number"},
            }
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fleetd",
            "version": version,
            "description": "Read-only view of the fleet the daemon polls. Units are in the field names.",
        },
        "paths": {
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether poll cycles are progressing and when the last one ended",
                    "responses": {
                        "200": _json(_ref("Health"), "Polling progresses (or has just started)"),
                        "503": _json(_ref("Health"), "No poll cycle ended for too long"),
                    },
                }
            },
            "/api/fleet": {
                "get": {
                    "operationId": "fleet",
                    "summary": "Fleet totals, per model and per site; only miners that are up add figures",
                    "responses": {"200": _json(_ref("Fleet"), "Totals")},
                }
            },
            "/api/miners": {
                "get": {
                    "operationId": "listMiners",
                    "summary": "Miners, optionally filtered by site, model and state",
                    "parameters": [
                        _filter_param("site", "Site label."),
                        _filter_param("model", "Model as reported, e.g. 'Antminer S19 Pro'."),
                        _filter_param("state", "Health state.", list(HEALTH_VALUES)),
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 0, "default": 0},
                        },
                    ],
                    "responses": {"200": _json(_ref("MinerList"), "Matching miners"), "400": _ERROR},
                }
            },
            "/api/miners/{id}": {
                "get": {
                    "operationId": "getMiner",
                    "summary": "One miner in full",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {"200": _json(_ref("MinerDetail"), "The miner"), "404": _ERROR},
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document")},
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (text format 0.0.4); names in grafana/README.md",
                    "responses": {
                        "200": {
                            "description": "Metrics of the fleet, its miners, prices and the daemon",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "404": _ERROR,
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }
