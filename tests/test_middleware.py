"""The HTTP timing middleware: route templates as labels, /metrics left out, errors timed."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram

from target_service.middleware import HttpMetricsMiddleware


@pytest.fixture
def timed() -> tuple[TestClient, CollectorRegistry]:
    registry = CollectorRegistry()
    histogram = Histogram(
        "http_request_duration_seconds", "test", ["method", "route", "status"], registry=registry
    )
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/metrics")
    async def metrics() -> str:
        return "metrics"

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("failing on purpose")

    app.add_middleware(HttpMetricsMiddleware, histogram=histogram)
    return TestClient(app, raise_server_exceptions=False), registry


def count(registry: CollectorRegistry, method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return registry.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


def test_route_label_is_the_template_not_the_path(
    timed: tuple[TestClient, CollectorRegistry],
) -> None:
    client, registry = timed

    for item_id in (1, 2, 3):
        client.get(f"/items/{item_id}")
    client.get("/items/not-a-number")

    assert count(registry, "GET", "/items/{item_id}", "200") == 3
    assert count(registry, "GET", "/items/{item_id}", "422") == 1


def test_unmatched_paths_and_odd_methods_share_fixed_labels(
    timed: tuple[TestClient, CollectorRegistry],
) -> None:
    client, registry = timed

    client.get("/random/a")
    client.get("/random/b")
    client.request("BREW", "/items/1")

    assert count(registry, "GET", "<unmatched>", "404") == 2
    assert count(registry, "OTHER", "/items/{item_id}", "405") == 1


def test_metrics_path_is_not_timed_and_errors_are(
    timed: tuple[TestClient, CollectorRegistry],
) -> None:
    client, registry = timed

    client.get("/metrics")
    response = client.get("/boom")

    assert response.status_code == 500
    assert count(registry, "GET", "/boom", "500") == 1
    assert count(registry, "GET", "/metrics", "200") == 0
