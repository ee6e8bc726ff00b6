"""Telemetry exporters: Prometheus exposition (GET /metrics) and MQTT publishing, both read FleetState."""
