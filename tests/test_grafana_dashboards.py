"""The Grafana dashboards: generated files up to date, well-formed, and their queries real.

Each panel query is checked three ways: it names only series the service exports or the
rules record; a real Prometheus parses it; and, after a short run of the real service
scraped every second with the CI rules, it returns at least one series.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry
from stack_helpers import scraped_service

from driftgate.prometheus_server import PrometheusServer
from grafana import generate_dashboards
from prometheus import generate_rules
from prometheus.promql import exposed_series_names, metric_names
from target_service.config import MODEL_VERSIONS
from target_service.dataset import CLASSES, FEATURES, TARGET, load_split
from target_service.metrics import ServiceMetrics

GRAFANA_DIR = Path(generate_dashboards.__file__).parent
EXPECTED_UIDS = {
    "driftgate-system-health",
    "driftgate-model-health",
    "driftgate-statistical-health",
    "driftgate-champion-challenger",
}
GRID_COLUMNS = 24
# What Grafana would put in place of each template variable, for sending a query as is.
SUBSTITUTIONS = {
    "$__rate_interval": "15s",
    "$__interval": "5s",
    "$__range": "5m",
    "$model_version": "(v1|v2)",
    "$champion": "v1",
    "$challenger": "v2",
}
PREDICTIONS = 300
TRAFFIC_DURATION_S = 10.0
FEEDBACK_EVERY = 3
DATA_DEADLINE_S = 40.0
HTTP_TIMEOUT_S = 5.0


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
    }


def data_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in model["panels"] if panel["type"] != "row"]


def panel_queries() -> list[tuple[str, str]]:
    """(test id, expr) for every target of every panel of every dashboard."""
    queries = []
    for name, model in load_dashboards().items():
        for panel in data_panels(model):
            for target in panel["targets"]:
                queries.append((f"{name}:{panel['title']}:{target['refId']}", target["expr"]))
    return queries


def substitute(expr: str) -> str:
    # Longest names first, so that "$__range" does not eat part of a longer name.
    for name in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(name, SUBSTITUTIONS[name])
    if "$" in expr:
        raise ValueError(f"unknown template variable left in {expr!r}")
    return expr


def instant_query(prometheus_url: str, expr: str) -> httpx.Response:
    return httpx.get(
        f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=HTTP_TIMEOUT_S
    )


QUERIES = panel_queries()
QUERY_IDS = [query_id for query_id, _ in QUERIES]


def test_committed_dashboards_are_the_generator_output() -> None:
    for name, build in generate_dashboards.DASHBOARDS.items():
        path = generate_dashboards.dashboard_path(name)

        assert path.read_text() == generate_dashboards.render(build()), (
            f"{path} out of date: run python -m grafana.generate_dashboards"
        )


def test_write_all_writes_every_dashboard(tmp_path: Path) -> None:
    written = generate_dashboards.write_all(tmp_path)

    assert {json.loads(path.read_text())["uid"] for path in written} == EXPECTED_UIDS


def test_dashboards_have_stable_uids_and_no_numeric_id() -> None:
    dashboards = load_dashboards()

    assert {model["uid"] for model in dashboards.values()} == EXPECTED_UIDS
    for name, model in dashboards.items():
        assert "id" not in model, name
        assert isinstance(model["schemaVersion"], int), name
        assert model["title"].startswith("driftgate / "), name


@pytest.mark.parametrize("name", sorted(load_dashboards()))
def test_panels_have_grid_positions_inside_the_grid_without_overlap(name: str) -> None:
    model = load_dashboards()[name]
    occupied: set[tuple[int, int]] = set()

    for panel in model["panels"]:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys(), panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        cells = {
            (grid["x"] + column, grid["y"] + row)
            for column in range(grid["w"])
            for row in range(grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


@pytest.mark.parametrize("name", sorted(load_dashboards()))
def test_every_panel_target_and_annotation_uses_the_one_datasource(name: str) -> None:
    model = load_dashboards()[name]
    uid = generate_dashboards.DATASOURCE_UID

    panel_ids = [panel["id"] for panel in model["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    for panel in data_panels(model):
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == uid, panel["title"]
    for annotation in model["annotations"]["list"]:
        assert annotation["datasource"]["uid"] == uid
    for variable in model["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == uid


def test_provisioned_datasource_has_the_uid_the_dashboards_use() -> None:
    provisioning = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )

    (datasource,) = provisioning["datasources"]
    assert datasource["uid"] == generate_dashboards.DATASOURCE_UID
    assert datasource["type"] == "prometheus"


def recorded_in_every_profile() -> set[str]:
    names_per_profile = []
    for profile in generate_rules.PROFILES.values():
        groups = generate_rules.rule_groups(profile)["groups"]
        names_per_profile.append(
            {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
        )
    return set.intersection(*names_per_profile)


def test_every_metric_a_dashboard_names_is_exported_or_recorded() -> None:
    registry = CollectorRegistry()
    ServiceMetrics(registry, MODEL_VERSIONS, CLASSES, [feature.name for feature in FEATURES])
    # `up` and `ALERTS` are written by Prometheus itself (scrapes and alerting rules).
    known = exposed_series_names(registry) | recorded_in_every_profile() | {"up", "ALERTS"}

    named: set[str] = set()
    for _, expr in QUERIES:
        named |= metric_names(substitute(expr))
    for model in load_dashboards().values():
        for annotation in model["annotations"]["list"]:
            named |= metric_names(annotation["expr"])
        for variable in model["templating"]["list"]:
            if variable["type"] == "query":
                # label_values(metric, label): the first argument is the series.
                named.add(variable["query"].removeprefix("label_values(").split(",")[0])

    assert named - known == set()
    assert {"dataset_drift_share", "feature_drift_pvalue", "model_accuracy"} <= named


def test_substitute_refuses_an_unknown_variable() -> None:
    with pytest.raises(ValueError, match=r"\$unknown"):
        substitute("rate(x[$unknown])")


@pytest.fixture(scope="module")
def bare_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus-parse") / "data")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.parametrize(("query_id", "expr"), QUERIES, ids=QUERY_IDS)
def test_panel_query_parses_in_a_real_prometheus(
    bare_prometheus: str, query_id: str, expr: str
) -> None:
    response = instant_query(bare_prometheus, substitute(expr))

    assert response.status_code == 200, f"{query_id}: {response.text}"
    assert response.json()["status"] == "success"


def test_a_query_with_a_syntax_error_is_refused_by_prometheus(bare_prometheus: str) -> None:
    response = instant_query(bare_prometheus, "sum by (job (up)")

    assert response.status_code == 400
    assert response.json()["errorType"] == "bad_data"


def send_traffic(service_url: str) -> None:
    """``PREDICTIONS`` held-out records over about ``TRAFFIC_DURATION_S``, with feedback."""
    holdout = load_split().holdout.head(PREDICTIONS)
    pause_s = TRAFFIC_DURATION_S / PREDICTIONS
    with httpx.Client(base_url=service_url, timeout=HTTP_TIMEOUT_S) as client:
        for index, row in enumerate(holdout.itertuples(index=False)):
            record = {
                spec.name: getattr(row, spec.name)
                if spec.kind == "categorical"
                else float(getattr(row, spec.name))
                for spec in FEATURES
            }
            version = MODEL_VERSIONS[index % len(MODEL_VERSIONS)]
            answer = client.post("/predict", json=record, headers={"X-Model-Version": version})
            answer.raise_for_status()
            if index % FEEDBACK_EVERY == 0:
                feedback = {
                    "request_id": answer.json()["request_id"],
                    "true_label": getattr(row, TARGET),
                }
                client.post("/feedback", json=feedback).raise_for_status()
            time.sleep(pause_s)


@pytest.fixture(scope="module")
def prometheus_after_a_short_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scraped_service(tmp_path_factory.mktemp("dashboards-run")) as (service, prometheus):
        send_traffic(service.url)
        yield prometheus.url


def wait_for_series(
    prometheus_url: str, expr: str, deadline_s: float = DATA_DEADLINE_S
) -> list[dict[str, Any]]:
    """The query's result, polled until it is not empty or ``deadline_s`` has passed.

    Recording rules and the drift monitor need a few evaluations after the traffic.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        response = instant_query(prometheus_url, expr)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        if result or time.monotonic() > deadline:
            return result
        time.sleep(1.0)


@pytest.mark.e2e
@pytest.mark.parametrize(("query_id", "expr"), QUERIES, ids=QUERY_IDS)
def test_panel_query_returns_data_after_a_short_run(
    prometheus_after_a_short_run: str, query_id: str, expr: str
) -> None:
    result = wait_for_series(prometheus_after_a_short_run, substitute(expr))

    assert result, f"{query_id}: no series for {substitute(expr)}"


@pytest.mark.e2e
def test_a_query_for_a_series_nobody_exports_returns_nothing(
    prometheus_after_a_short_run: str,
) -> None:
    expr = 'model_version:prediction_count:rate_1m{model_version="v9"}'

    assert wait_for_series(prometheus_after_a_short_run, expr, deadline_s=2.0) == []
    assert wait_for_series(prometheus_after_a_short_run, "model_version:prediction_count:rate_1m")
