"""The service's metrics: exported names, types and label sets, and the latency buckets."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from target_service.app import create_app
from target_service.config import load_settings
from target_service.dataset import CATEGORICAL_FEATURES, CLASSES, FEATURE_NAMES, example_record
from target_service.metrics import ANCHORS_S, REJECTION_REASONS, latency_buckets_s
from target_service.models import load_models

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"

# name -> (type, label names): the contract of docs/metrics.md and docs/api-contract.
DOCUMENTED = {
    "prediction_count": ("counter", {"model_version", "predicted_class"}),
    "inference_latency_seconds": ("histogram", {"model_version"}),
    "http_request_duration_seconds": ("histogram", {"method", "route", "status"}),
    "prediction_confidence": ("histogram", {"model_version"}),
    "feature_drift_score": ("gauge", {"feature"}),
    "feature_drift_pvalue": ("gauge", {"feature"}),
    "feature_drift_detected": ("gauge", {"feature"}),
    "feature_missing_share": ("gauge", {"feature"}),
    "dataset_drift_share": ("gauge", set()),
    "drift_window_size": ("gauge", set()),
    "drift_last_evaluation_timestamp_seconds": ("gauge", set()),
    "model_accuracy": ("gauge", {"model_version"}),
    "feedback_count": ("counter", {"model_version"}),
    "feedback_correct": ("counter", {"model_version"}),
    "rejected_requests": ("counter", {"reason"}),
}


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Metric]:
    tmp = tmp_path_factory.mktemp("metrics")
    settings = load_settings(drift={"evaluation_interval_s": 60, "min_samples": 10})
    app = create_app(
        settings,
        registry=CollectorRegistry(),
        shared_dir=tmp / "monitor",
        rng=np.random.default_rng(0),
        models=load_models(tmp / "models"),
    )
    with TestClient(app) as client:
        prediction = client.post("/predict", json=example_record()).json()
        client.post(
            "/feedback", json={"request_id": prediction["request_id"], "true_label": "visit"}
        )
        client.post("/predict", content=b"{")
        app.state.service.instrumentation.monitor.tick()
        text = client.get("/metrics").text
    return {family.name: family for family in text_string_to_metric_families(text)}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_documented_metric_is_exported_with_its_type_and_labels(
    scraped: dict[str, Metric], name: str
) -> None:
    kind, labels = DOCUMENTED[name]
    family = scraped[name]

    assert family.type == kind
    assert family.documentation
    for sample in family.samples:
        assert set(sample.labels) - {"le"} == labels


def test_label_values_cover_exactly_the_known_sets(scraped: dict[str, Metric]) -> None:
    def values(name: str, label: str, suffix: str = "") -> set[str]:
        return {s.labels[label] for s in scraped[name].samples if s.name == name + suffix}

    assert values("prediction_count", "predicted_class", "_total") == set(CLASSES)
    assert values("prediction_count", "model_version", "_total") == {"v1", "v2"}
    assert values("rejected_requests", "reason", "_total") == set(REJECTION_REASONS)
    assert values("feature_drift_score", "feature") == set(FEATURE_NAMES)
    assert values("feature_missing_share", "feature") == set(CATEGORICAL_FEATURES)
    assert values("http_request_duration_seconds", "route", "_count") == {"/predict", "/feedback"}


def test_no_metric_is_exported_that_the_docs_do_not_name(scraped: dict[str, Metric]) -> None:
    # Counters and histograms also expose a "_created" timestamp, parsed as its own family.
    ours = {
        name
        for name in scraped
        if not name.startswith(("python_", "process_")) and not name.endswith("_created")
    }

    assert ours == set(DOCUMENTED)


def test_docs_name_every_metric_and_reason() -> None:
    text = DOCS.read_text()

    for name, (kind, _) in DOCUMENTED.items():
        exported = f"{name}_total" if kind == "counter" else name
        assert re.search(rf"`{exported}`\s*\|\s*{kind}", text), exported
    for reason in REJECTION_REASONS:
        assert f"`{reason}`" in text


def test_docs_give_a_query_for_every_metric() -> None:
    queries = DOCS.read_text().split("```promql")[1].split("```")[0]

    for name, (kind, _) in DOCUMENTED.items():
        exported = f"{name}_total" if kind == "counter" else name
        assert exported in queries, exported


def test_docs_list_the_buckets_the_code_builds() -> None:
    block = DOCS.read_text().split("## Latency buckets")[1].split("```")[1]

    documented = [float(value) for value in re.findall(r"[0-9.]+", block)]

    assert documented == pytest.approx(list(latency_buckets_s()))


def test_latency_buckets_hold_every_sla_threshold_exactly() -> None:
    buckets = latency_buckets_s()

    for threshold in (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0):
        assert threshold in buckets
    assert set(ANCHORS_S) <= set(buckets)


def test_any_threshold_from_1ms_to_1s_is_within_10_percent_of_a_bound() -> None:
    buckets = np.array(latency_buckets_s())
    thresholds = np.geomspace(0.001, 1.0, 5000)

    nearest = np.min(np.abs(buckets[None, :] / thresholds[:, None] - 1), axis=1)

    assert nearest.max() <= 0.10
    ratios = buckets[1:] / buckets[:-1]
    assert ratios[buckets[1:] > 0.0005].max() <= 1.2 + 1e-9
    assert all(math.isfinite(bound) for bound in buckets)
