"""Give any FastAPI app the reference service's metrics endpoint, HTTP timing and drift monitor.

::

    from prometheus_client import CollectorRegistry
    from target_service.instrument import instrument

    app = FastAPI()
    watch = instrument(app, features=MY_FEATURES, reference=training_frame,
                       registry=CollectorRegistry())

    @app.post("/score")
    async def score(record: dict) -> dict:
        watch.observe_records([record])          # queued for the drift window
        ...
        watch.record_prediction("v1", "visit", confidence=0.8, latency_s=0.002)

``features`` are :class:`target_service.dataset.FeatureSpec` objects describing the
columns of ``reference``. With several worker processes, pass the same ``shared_dir`` to
all of them (and set ``PROMETHEUS_MULTIPROC_DIR``) so that one leader sees every worker's rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from target_service.config import DriftSettings
from target_service.dataset import CLASSES, FeatureSpec
from target_service.metrics import ServiceMetrics
from target_service.middleware import HttpMetricsMiddleware
from target_service.models import MISSING_CODE, UNSEEN_CODE
from target_service.monitor import (
    MULTIPROCESS_ENV,
    DetectorFactory,
    MonitoringService,
    default_detector_factory,
)


@dataclass
class Instrumentation:
    """Handles an instrumented app uses on its request path."""

    metrics: ServiceMetrics
    monitor: MonitoringService
    features: tuple[FeatureSpec, ...]

    def observe_records(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Queue validated records for the drift window (unknown categories count as missing)."""
        self.monitor.record_rows(raw_rows(self.features, records))

    def record_prediction(
        self, version: str, predicted_class: str, confidence: float, latency_s: float
    ) -> None:
        """Count one prediction and observe its confidence and model-call latency."""
        self.metrics.predictions[version][predicted_class].inc()
        self.metrics.confidence[version].observe(confidence)
        self.metrics.inference_latency[version].observe(latency_s)


def raw_rows(features: Sequence[FeatureSpec], records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Raw rows of records: numeric values, category codes, -1 if unseen, NaN if null."""
    codes = [
        {category: float(code) for code, category in enumerate(spec.categories)}
        for spec in features
    ]
    return np.array(
        [
            [
                float(record[spec.name])
                if spec.kind == "numeric"
                else _category_code(code, record[spec.name])
                for spec, code in zip(features, codes, strict=True)
            ]
            for record in records
        ]
    ).reshape(len(records), len(features))


def _category_code(codes: Mapping[str, float], value: Any) -> float:
    return MISSING_CODE if value is None else codes.get(value, UNSEEN_CODE)


def exposition(registry: CollectorRegistry, live: Sequence[Collector] = ()) -> bytes:
    """The text exposition: aggregated over all workers in multiprocess mode.

    ``live`` collectors measure at scrape time in this process (the service's CPU and
    memory); in multiprocess mode they are served beside the aggregated values.
    """
    if os.environ.get(MULTIPROCESS_ENV):
        aggregate = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregate)
        for collector in live:
            aggregate.register(collector)
        return generate_latest(aggregate)
    return generate_latest(registry)


def instrument(
    app: FastAPI,
    *,
    features: Sequence[FeatureSpec],
    reference: pd.DataFrame,
    registry: CollectorRegistry | None = None,
    versions: Sequence[str] = ("v1",),
    classes: Sequence[str] = CLASSES,
    drift: DriftSettings | None = None,
    feedback_window: int = 500,
    shared_dir: Path | None = None,
    rng: np.random.Generator | None = None,
    detector_factory: DetectorFactory | None = None,
    metrics_path: str = "/metrics",
    service_pid: int | None = None,
) -> Instrumentation:
    """Add ``metrics_path``, HTTP timing and a drift/accuracy monitor to ``app``.

    The monitor starts and stops with the app's lifespan; ``rng`` seeds the drift
    detector's calibration (default: ``numpy.random.default_rng(0)``). CPU and memory are
    reported for ``service_pid`` and its descendants (default: this process).
    """
    drift = drift or DriftSettings.model_validate({})
    metrics = ServiceMetrics(
        registry or CollectorRegistry(),
        versions=versions,
        classes=classes,
        features=[spec.name for spec in features],
        categorical_features=[spec.name for spec in features if spec.kind == "categorical"],
        service_pid=service_pid,
    )
    factory = detector_factory or default_detector_factory(
        reference, features, drift, rng or np.random.default_rng(0)
    )
    owned_dir: Path | None = None
    if shared_dir is None:
        # The rings then live in a private directory, removed at shutdown.
        shared_dir = owned_dir = Path(tempfile.mkdtemp(prefix="driftgate-"))
    monitor = MonitoringService(
        shared_dir=shared_dir,
        features=features,
        versions=versions,
        metrics=metrics,
        drift=drift,
        detector_factory=factory,
        feedback_window=feedback_window,
    )

    app.add_middleware(
        HttpMetricsMiddleware, histogram=metrics.http_duration, excluded_paths=(metrics_path,)
    )
    _add_metrics_route(app, metrics, metrics_path)
    _run_with_lifespan(app, monitor, owned_dir)
    return Instrumentation(metrics, monitor, tuple(features))


def _add_metrics_route(app: FastAPI, metrics: ServiceMetrics, path: str) -> None:
    async def metrics_endpoint(request: Request) -> Response:
        body = exposition(metrics.registry, live=[metrics.processes])
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(path, metrics_endpoint, methods=["GET"], include_in_schema=False)


def _run_with_lifespan(app: FastAPI, monitor: MonitoringService, owned_dir: Path | None) -> None:
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            monitor.start()
            try:
                yield state
            finally:
                await monitor.stop()
                if os.environ.get(MULTIPROCESS_ENV):
                    multiprocess.mark_process_dead(os.getpid())
                if owned_dir is not None:
                    shutil.rmtree(owned_dir, ignore_errors=True)

    app.router.lifespan_context = lifespan
