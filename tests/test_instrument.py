"""instrument(): another FastAPI app gets /metrics, HTTP timing and the drift monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from target_service.config import DriftSettings
from target_service.dataset import FeatureSpec
from target_service.instrument import instrument

FEATURES = (
    FeatureSpec("age", "numeric", "age in years", valid_min=0, valid_max=120),
    FeatureSpec("plan", "categorical", "insurance plan", categories=("basic", "premium")),
)


def reference_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"age": rng.normal(40, 10, rows), "plan": rng.choice(["basic", "premium"], rows)}
    )


def test_user_app_gets_metrics_timing_and_drift_monitoring(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    app = FastAPI()
    drift = DriftSettings.model_validate(
        {"window_size": 100, "min_samples": 20, "evaluation_interval_s": 60}
    )
    watch = instrument(
        app,
        features=FEATURES,
        reference=reference_frame(2000),
        registry=registry,
        classes=("no", "yes"),
        drift=drift,
        shared_dir=tmp_path,
        rng=np.random.default_rng(2),
    )

    @app.post("/score")
    async def score(record: dict[str, Any]) -> dict[str, str]:
        watch.observe_records([record])
        watch.record_prediction("v1", "yes", confidence=0.8, latency_s=0.002)
        return {"label": "yes"}

    shifted = np.random.default_rng(3).normal(80, 10, 60)
    with TestClient(app) as client:
        for age in shifted:
            client.post("/score", json={"age": float(age), "plan": "gold"})
        watch.monitor.tick()
        text = client.get("/metrics").text

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("prediction_count_total", model_version="v1", predicted_class="yes") == 60
    assert value("inference_latency_seconds_count", model_version="v1") == 60
    labels = {"method": "POST", "route": "/score", "status": "200"}
    assert value("http_request_duration_seconds_count", **labels) == 60
    assert value("drift_window_size") == 60
    assert value("feature_missing_share", feature="plan") == 1.0
    assert value("feature_drift_detected", feature="age") == 1.0
    assert "feature_drift_score" in text
