"""The OpenAPI 3.1 document of the HTTP API; tests check it matches the routes."""

from __future__ import annotations

from typing import Any

from fleetd.api import openapi_curtail as oc
from fleetd.api.views import HEALTH_VALUES, POWER_SOURCES, QUERY_INT_MAX

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": "string"}
_SOURCE = {
    "type": "string",
    "enum": list(POWER_SOURCES),
    "description": "measured; catalog (nominal for model and mode); catalog-sleep (model's idle draw while "
    "asleep); configured (nominal_power_w); asleep (no idle figure: counted as 0); unknown",
}
_PER_DAY = "in `currency` per day"

_ECONOMICS_PROPS: dict[str, Any] = {
    "currency": _STR,
    "revenue_per_day": {**_NUM, "description": f"Revenue after pool and dev fees, {_PER_DAY}"},
    "power_cost_per_day": {**_NUM, "description": f"Electricity cost, {_PER_DAY}"},
    "profit_per_day": {**_NUM, "description": f"Revenue minus electricity cost, {_PER_DAY}"},
    "profitable": {"type": ["boolean", "null"]},
    "power_cost_share": {**_NUM, "description": "Electricity cost / revenue"},
    "efficiency_j_per_th": _NUM,
    "breakeven_per_mwh": {**_NUM, "description": "All-in electricity price at which profit is zero"},
    "breakeven_hashprice_per_ph_day": {**_NUM, "description": "Gross hashprice at which profit is zero"},
    "hashrate_ths": {**_NUM, "description": "Hashrate earned on (firmware average, 0 when asleep)"},
    "power_w": {**_NUM, "description": "Power the cost is computed on"},
    "power_source": _SOURCE,
    "hashprice_per_ph_day": {**_NUM, "description": "Gross hashprice used"},
    "electricity_per_mwh": {**_NUM, "description": "All-in electricity price used"},
    "stale_inputs": {"type": "boolean", "description": "A price used is older than its max age"},
}

_SUMMARY_PROPS: dict[str, Any] = {
    "miners": {"type": "integer", "description": "Up miners with economics"},
    "hashrate_ths": {"type": "number"},
    "power_w": {"type": "number"},
    "revenue_per_day": {"type": "number"},
    "power_cost_per_day": {"type": "number"},
    "profit_per_day": {"type": "number"},
    "unprofitable": {"type": "integer", "description": "Hashing miners with profit <= 0"},
    "incomplete": {"type": "integer", "description": "Miners whose profit could not be computed"},
    "efficiency_j_per_th": _NUM,
    "power_cost_share": _NUM,
}

_PRICE = {
    "type": "object",
    "properties": {
        "value": _NUM,
        "unit": {**_STR, "description": "e.g. USD/PH/day, USD/MWh"},
        "source": _STR,
        "timestamp": {
            **_NUM,
            "description": "Unix time the value is known to hold at (timestamp + age_s = now); for "
            "electricity, now while the price is in effect, else the end of its interval",
        },
        "age_s": _NUM,
        "stale": {"type": "boolean", "description": "Missing or older than its max age"},
        "error": {**_STR, "description": "Latest failure, kept while an older good value is served"},
    },
    "required": ["value", "unit", "source", "timestamp", "age_s", "stale", "error"],
}


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
    "power_est_w": {**_NUM, "description": "Power estimate of an up miner; null when down or unknown"},
    "power_source": _SOURCE,
    "economics": {
        "oneOf": [{"$ref": "#/components/schemas/Economics"}, {"type": "null"}],
        "description": "Null when economics is not configured or the miner is not up",
    },
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
        "description": "Measured power where reported, else the daemon's estimate (catalog, else configured)",
    },
    "power_by_source": {
        "type": "object",
        "description": "power_est_w split by source (keys: the power_source values)",
        "propertyNames": {"enum": list(POWER_SOURCES)},
        "additionalProperties": {
            "type": "object",
            "properties": {"miners": {"type": "integer"}, "power_w": {"type": "number"}},
            "required": ["miners", "power_w"],
        },
    },
    "efficiency_j_per_th": {**_NUM, "description": "power_est_w / hashrate_ths"},
    "profit_per_day": {
        **_NUM,
        "description": "Sum of the up miners' profit per day; null without economics (fleet fixed "
        "charges are in economics)",
    },
    "unprofitable": {"type": "integer", "description": "Up miners hashing at a loss"},
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


_SEVERITY = {"type": "string", "enum": ["info", "warning", "critical"]}
_FINDING_PROPS: dict[str, Any] = {
    "code": {"type": "string", "description": "Stable name, e.g. board_dead, fan_failed, overheating"},
    "severity": _SEVERITY,
    "component": _STR,
    "subject": {"type": "string", "description": "Which part (board 1, fan 0, code 110); empty: the miner"},
    "cause": _STR,
    "action": _STR,
    "values": {"type": "object", "additionalProperties": {"type": ["number", "string"]}},
}

_TREND_PROPS: dict[str, Any] = {
    "code": {
        "type": "string",
        "description": "chip_temp_rising, fan_rpm_rising, hw_errors_rising, efficiency_drifting,"
        " board_lagging or restarts_repeated",
    },
    "severity": _SEVERITY,
    "component": _STR,
    "subject": {"type": "string", "description": "Which part (board 2); empty: the miner"},
    "metric": {"type": "string", "description": "The fitted quantity, e.g. chip_over_ambient_c, fan_rpm"},
    "slope_per_day": {**_NUM, "description": "The trend in the metric's unit per day (restarts: a count)"},
    "window_start": {"type": "number"},
    "window_end": {"type": "number"},
    "window_h": _NUM,
    "value": {**_NUM, "description": "The metric now (fitted at the window's end)"},
    "fleet_median": {**_NUM, "description": "Median of the metric now over the same-model fleet"},
    "vs_median": {**_NUM, "description": "value - fleet_median"},
    "fleet_median_slope_per_day": _NUM,
    "limit": _NUM,
    "time_to_limit_h": {**_NUM, "description": "Extrapolated hours until the limit; null: not heading there"},
    "cause": _STR,
    "action": _STR,
}


def openapi_document(version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": _obj({"error": _STR}),
        "Finding": _obj(_FINDING_PROPS),
        "MinerHealth": _obj(
            {
                "miner": _STR,
                "status": {"type": "string", "enum": ["ok", "info", "warning", "critical"]},
                "active": {
                    "type": "array",
                    "description": "Findings that held long enough to be reported (minimum duration)",
                    "items": _obj({**_FINDING_PROPS, "since": {"type": "number"}}),
                },
                "current": {
                    "type": "array",
                    "description": "The latest poll's diagnosis",
                    "items": _ref("Finding"),
                },
                "warnings": {
                    "type": "array",
                    "description": "Trends from the hourly trend job, most urgent first",
                    "items": _ref("TrendWarning"),
                },
                "active_warnings": {
                    "type": "array",
                    "description": "Trends held over [health.trends] start_after_s (trend_started)",
                    "items": _obj({**_TREND_PROPS, "since": {"type": "number"}}),
                },
            }
        ),
        "TrendWarning": _obj(_TREND_PROPS),
        "FleetHealth": _obj(
            {
                "miners_with_findings": {"type": "integer"},
                "by_severity": _obj(
                    {
                        "info": {"type": "integer"},
                        "warning": {"type": "integer"},
                        "critical": {"type": "integer"},
                    }
                ),
                "by_kind": {
                    "type": "array",
                    "items": _obj(
                        {
                            "code": _STR,
                            "component": _STR,
                            "severity": _SEVERITY,
                            "findings": {"type": "integer"},
                        }
                    ),
                },
                "worst": {
                    "type": "array",
                    "items": _obj(
                        {
                            "miner": _STR,
                            "info": {"type": "integer"},
                            "warning": {"type": "integer"},
                            "critical": {"type": "integer"},
                        }
                    ),
                },
                "warnings": _obj(
                    {
                        "computed_at": {**_NUM, "description": "When the trend job last ran (null: not yet)"},
                        "miners": {"type": "integer", "description": "Miners with trend warnings"},
                        "by_code": {
                            "type": "array",
                            "items": _obj(
                                {"code": _STR, "severity": _SEVERITY, "warnings": {"type": "integer"}}
                            ),
                        },
                        "most_urgent": {
                            "type": "array",
                            "description": "Critical first, then the soonest time to limit (`worst` of them)",
                            "items": _obj({"miner": _STR, **_TREND_PROPS}),
                        },
                    }
                ),
            }
        ),
        "Health": _obj(
            {
                "status": {"type": "string", "enum": ["ok", "starting", "stalled", "standby"]},
                "now": {"type": "number"},
                "started_at": {"type": "number"},
                "last_cycle_ended_at": _NUM,
                "last_cycle_age_s": _NUM,
                "max_cycle_age_s": {"type": "number"},
                "loop_lag_ms": {**_NUM, "description": "How late the event loop ran a 1 s timer, last time"},
                "miners": {"type": "integer"},
                "up": {"type": "integer"},
                "down": {"type": "integer"},
                "ha": {
                    **_ref("HaStatus"),
                    "description": "Only with an [ha] section (an active/standby pair)",
                },
            },
            required=[
                "status",
                "now",
                "started_at",
                "last_cycle_ended_at",
                "last_cycle_age_s",
                "max_cycle_age_s",
                "loop_lag_ms",
                "miners",
                "up",
                "down",
            ],
        ),
        "HaStatus": _obj(
            {
                "role": {"type": "string", "enum": ["active", "standby"]},
                "since": {"type": "number"},
                "lock_key": {"type": "integer"},
                "lock_name": {"type": ["string", "null"]},
                "database_connected": {"type": "boolean"},
                "last_heartbeat_at": _NUM,
                "last_attempt_at": _NUM,
                "heartbeat_s": {"type": "number"},
                "takeover_s": {"type": "number"},
                "takeovers": {"type": "integer"},
                "last_error": {"type": ["string", "null"]},
                "active_instance": {
                    "type": ["string", "null"],
                    "description": "Standby: the active instance, as its lock session names itself",
                },
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
                "economics": {
                    "oneOf": [_ref("FleetEconomics"), {"type": "null"}],
                    "description": "Null when economics is not configured or before the first cycle",
                },
            }
        ),
        "Economics": _obj(_ECONOMICS_PROPS),
        "FleetEconomics": _obj(
            {
                "currency": _STR,
                **_SUMMARY_PROPS,
                "fixed_cost_per_day": {"type": "number", "description": "Tariff fixed charges (site)"},
                "profit_per_day": {"type": "number", "description": "Units' profit minus fixed charges"},
                "units_profit_per_day": {"type": "number", "description": "Sum of the units' profit"},
                "by_model": {"type": "array", "items": _obj({"model": _STR, **_SUMMARY_PROPS})},
            }
        ),
        "Prices": _obj(
            {
                "configured": {"type": "boolean", "description": "Whether [economics] is configured"},
                "currency": {"type": ["string", "null"]},
                "pool_fee": _NUM,
                "dev_fee": _NUM,
                "hashprice": {**_PRICE, "description": "Gross hashprice (before fees)"},
                "electricity": {**_PRICE, "description": "All-in electricity price (adders included)"},
            }
        ),
        "MinerSummary": _obj(_MINER_SUMMARY_PROPS),
        "MinerList": _obj(
            {
                "total": {"type": "integer", "description": "Miners matching the filters"},
                "offset": {"type": "integer"},
                "count": {"type": "integer", "description": "Miners in this page"},
                "skipped": {
                    "type": "integer",
                    "description": "Miners of this page left out because their records cannot be read "
                    "(logged, and counted in fleetd_view_errors_total)",
                },
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
            "description": "The fleet the daemon polls, and its curtailment controls (writes need the [api] "
            "token as a bearer token). Units are in the field names.",
        },
        "paths": {
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether poll cycles are progressing and when the last one ended",
                    "parameters": [
                        {
                            "name": "role",
                            "in": "query",
                            "required": False,
                            "description": "HA: answer 503 unless this instance holds this role (for load "
                            "balancers); without [ha] an instance counts as active.",
                            "schema": {"type": "string", "enum": ["active", "standby"]},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            _ref("Health"), "Polling progresses (or has just started), or a ready standby"
                        ),
                        "503": _json(
                            _ref("Health"), "No poll cycle ended for too long, or not in the role asked"
                        ),
                        "400": _ERROR,
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
                    "summary": "Miners, optionally filtered by site, model, state and profitability",
                    "parameters": [
                        _filter_param("site", "Site label."),
                        _filter_param("model", "Model as reported, e.g. 'Antminer S19 Pro'."),
                        _filter_param("state", "Health state.", list(HEALTH_VALUES)),
                        {
                            "name": "profitable",
                            "in": "query",
                            "required": False,
                            "description": "Only up miners whose profit is known and positive (true) or "
                            "not (false)",
                            "schema": {"type": "boolean"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 0, "maximum": QUERY_INT_MAX},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": QUERY_INT_MAX,
                                "default": 0,
                            },
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
            "/api/miners/{id}/health": {
                "get": {
                    "operationId": "getMinerHealth",
                    "summary": "One miner's health findings: active (reported) and from the latest poll",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {"200": _json(_ref("MinerHealth"), "The miner's health"), "404": _ERROR},
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "fleetHealth",
                    "summary": "Fleet health: active findings by kind and severity, and the worst miners",
                    "parameters": [
                        {
                            "name": "worst",
                            "in": "query",
                            "required": False,
                            "description": "How many of the worst miners to list (20)",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 10000},
                        }
                    ],
                    "responses": {"200": _json(_ref("FleetHealth"), "Fleet health"), "400": _ERROR},
                }
            },
            "/api/prices": {
                "get": {
                    "operationId": "prices",
                    "summary": "Hashprice and electricity price in use, with source, age and last error",
                    "responses": {"200": _json(_ref("Prices"), "Prices")},
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
            **oc.PATHS,
        },
        "components": {"schemas": schemas | oc.SCHEMAS, "securitySchemes": oc.SECURITY_SCHEMES},
    }
