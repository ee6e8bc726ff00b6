"""The [metrics] and [mqtt] configuration sections."""

from __future__ import annotations

import re

import pytest

from fleetd.config import ConfigError, parse_config


def test_defaults_metrics_on_mqtt_off() -> None:
    cfg = parse_config({})
    assert cfg.metrics.enabled and cfg.metrics.per_miner and cfg.metrics.components
    assert cfg.mqtt is None


def test_mqtt_password_is_a_secret_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETD_TEST_MQTT_PW", "s3cret")
    cfg = parse_config({"mqtt": {"username": "u", "password": {"env": "FLEETD_TEST_MQTT_PW"}}})
    assert cfg.mqtt is not None and cfg.mqtt.password is not None
    assert cfg.mqtt.password.resolve().get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg)
    with pytest.raises(ConfigError, match=r"mqtt\.password: inline secrets are refused"):
        parse_config({"mqtt": {"password": "inline"}})
    assert parse_config({"allow_inline_secrets": True, "mqtt": {"password": "inline"}}).mqtt is not None
    with pytest.raises(
        ConfigError, match=r"mqtt\.password: environment variable FLEETD_TEST_NOPE is not set"
    ):
        parse_config({"mqtt": {"password": {"env": "FLEETD_TEST_NOPE"}}})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mqtt": {"topic_prefix": "a/+/b"}}, "mqtt.topic_prefix: expected a topic without wildcards"),
        ({"mqtt": {"topic_prefix": "/fleetd"}}, "mqtt.topic_prefix"),
        ({"mqtt": {"qos": 3}}, "mqtt.qos"),
        ({"mqtt": {"port": 0}}, "mqtt.port"),
        ({"mqtt": {"host": "not a host"}}, "mqtt.host: not an IP address or hostname"),
        ({"metrics": {"cache_s": -1}}, "metrics.cache_s"),
        ({"metrics": {"bogus": 1}}, "metrics.bogus: unknown key"),
    ],
)
def test_bad_values_name_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(section)
