"""Prometheus configuration, rules and rule tests of driftgate (see docs/dashboards.md)."""
