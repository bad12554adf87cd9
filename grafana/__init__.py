"""Grafana provisioning and dashboards of driftgate (see docs/dashboards.md)."""
