"""The reference model service: FastAPI app with /predict, /feedback, health and metrics.

``create_app(settings)`` builds the app in-process (tests pass a fresh
``CollectorRegistry``); ``create_worker_app()`` is the factory uvicorn workers call, reading
the settings, the shared monitor directory and the service's root pid that
``python -m target_service`` put in the environment. See docs/service.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from threadpoolctl import threadpool_limits

from target_service.config import MODEL_VERSIONS, ServiceSettings
from target_service.dataset import CLASSES, FEATURES, example_record, load_split
from target_service.faults import FaultInjector, InjectedFault
from target_service.instrument import Instrumentation, instrument
from target_service.models import TrainedModel, load_models
from target_service.monitor import DetectorFactory
from target_service.routing import VersionRouter
from target_service.schemas import (
    BatchResponse,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    PredictionResponse,
    RecordParser,
    RequestRejected,
    parse_feedback,
    parse_json,
    record_model,
)

logger = logging.getLogger(__name__)

SETTINGS_ENV = "TARGET_SERVICE_SETTINGS_JSON"
SHARED_DIR_ENV = "TARGET_SERVICE_SHARED_DIR"
SERVICE_PID_ENV = "TARGET_SERVICE_PID"
VERSION_HEADER = "x-model-version"
JSON_MEDIA_TYPE = "application/json"


class ServiceState:
    """What the request handlers share: models, parser, router, faults and instrumentation."""

    def __init__(
        self,
        settings: ServiceSettings,
        rng: np.random.Generator,
        models: dict[str, TrainedModel] | None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.parser = RecordParser(FEATURES, settings.max_batch_size)
        self.router = VersionRouter(settings.model_weights, MODEL_VERSIONS, rng)
        self.faults = FaultInjector(settings.faults, rng)
        self.instrumentation: Instrumentation | None = None


def create_app(
    settings: ServiceSettings,
    *,
    registry: CollectorRegistry | None = None,
    shared_dir: Path | None = None,
    rng: np.random.Generator | None = None,
    models: dict[str, TrainedModel] | None = None,
    detector_factory: DetectorFactory | None = None,
    service_pid: int | None = None,
) -> FastAPI:
    """The service app; models load at start-up unless given, ``rng`` drives routing and faults.

    CPU and memory metrics cover ``service_pid`` and its descendants (default: this process).
    """
    state = ServiceState(settings, rng or np.random.default_rng(settings.seed), models)
    app = FastAPI(
        title="driftgate reference model service",
        version="1",
        description="Predicts whether a person visits a doctor within a year (RAND HIE data).",
        lifespan=_lifespan(state),
    )
    app.state.service = state

    if settings.instrumentation_enabled:
        state.instrumentation = instrument(
            app,
            features=FEATURES,
            reference=load_split().train,
            registry=registry,
            versions=MODEL_VERSIONS,
            drift=settings.drift,
            feedback_window=settings.feedback_window,
            shared_dir=shared_dir,
            rng=np.random.default_rng(settings.seed),
            detector_factory=detector_factory,
            service_pid=service_pid,
        )
    _add_routes(app, state)
    return app


def create_worker_app() -> FastAPI:
    """App factory for uvicorn workers started by ``python -m target_service``."""
    settings = ServiceSettings.model_validate_json(os.environ[SETTINGS_ENV])
    # Each worker draws its own routing sequence; the seed still fixes the family of them.
    rng = np.random.default_rng([settings.seed, os.getpid()])
    return create_app(
        settings,
        shared_dir=Path(os.environ[SHARED_DIR_ENV]),
        rng=rng,
        service_pid=int(os.environ[SERVICE_PID_ENV]),
    )


def _lifespan(state: ServiceState) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One BLAS/OpenMP thread: single-row calls must not pay for waking a thread pool.
        threadpool_limits(limits=1)
        # Requests are checked for finite numbers already; skip scikit-learn's second check.
        # (A thread-local setting: requests run on this event loop's thread.)
        sklearn.set_config(assume_finite=True)
        if state.models is None:
            state.models = load_models(state.settings.resolved_cache_dir())
        logger.info("worker ready pid=%s", os.getpid())
        yield

    return lifespan


def _rejection(state: ServiceState, rejected: RequestRejected) -> Response:
    if state.instrumentation is not None:
        state.instrumentation.metrics.rejected[rejected.reason].inc()
    body = json.dumps({"detail": rejected.detail, "reason": rejected.reason})
    return Response(body, status_code=rejected.status, media_type=JSON_MEDIA_TYPE)


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestRejected(
            413, "body_too_large", f"body: {declared} bytes declared, at most {max_bytes} allowed"
        )
    # Content-Length can be absent (chunked) or wrong, so the streamed size is checked too.
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestRejected(
                413,
                "body_too_large",
                f"body: more than {max_bytes} bytes sent, at most {max_bytes} allowed",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _add_routes(app: FastAPI, state: ServiceState) -> None:
    settings = state.settings
    bodies = _request_bodies(settings)

    async def predict(request: Request) -> Response:
        try:
            document = parse_json(await _read_body(request, settings.max_body_bytes))
            raw, is_batch = state.parser.parse_body(document)
            version = state.router.choose(request.headers.get(VERSION_HEADER))
        except RequestRejected as rejected:
            return _rejection(state, rejected)
        if state.models is None:
            return JSONResponse({"detail": "models are loading", "reason": "not_ready"}, 503)
        try:
            predictions = await _predict(state, state.models[version], raw)
        except InjectedFault as fault:
            body = json.dumps({"detail": str(fault), "reason": "injected_error"})
            return Response(body, status_code=500, media_type=JSON_MEDIA_TYPE)
        payload = {"predictions": predictions} if is_batch else predictions[0]
        return Response(json.dumps(payload), media_type=JSON_MEDIA_TYPE)

    async def feedback(request: Request) -> Response:
        try:
            document = parse_json(await _read_body(request, settings.max_body_bytes))
            outcome = parse_feedback(document, MODEL_VERSIONS)
        except RequestRejected as rejected:
            return _rejection(state, rejected)
        correct = outcome.predicted_class == outcome.true_label
        if state.instrumentation is not None:
            metrics = state.instrumentation.metrics
            metrics.feedback_count[outcome.model_version].inc()
            if correct:
                metrics.feedback_correct[outcome.model_version].inc()
            state.instrumentation.monitor.record_feedback(outcome.model_version, correct)
        payload = {"correct": correct, "model_version": outcome.model_version}
        return Response(json.dumps(payload), media_type=JSON_MEDIA_TYPE)

    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    async def readyz() -> JSONResponse:
        if state.models is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        leading = state.instrumentation is not None and state.instrumentation.monitor.is_leader
        payload = {
            "status": "ready",
            "model_versions": sorted(state.models),
            "pid": os.getpid(),
            "monitor_leader": leading,
        }
        return JSONResponse(payload)

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (400, 413, 422)
    }
    app.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        summary="Predict for one record or a batch",
        openapi_extra=bodies["/predict"],
        responses={200: {"model": PredictionResponse | BatchResponse}, **errors},
    )
    app.add_api_route(
        "/feedback",
        feedback,
        methods=["POST"],
        summary="Send the true label of an earlier prediction",
        openapi_extra=bodies["/feedback"],
        responses={200: {"model": FeedbackResponse}, **errors},
    )
    app.add_api_route("/healthz", healthz, methods=["GET"], summary="Liveness")
    app.add_api_route("/readyz", readyz, methods=["GET"], summary="Readiness (models loaded)")


async def _predict(
    state: ServiceState, model: TrainedModel, raw: np.ndarray
) -> list[dict[str, Any]]:
    version = model.version
    state.faults.maybe_fail(version)

    start_s = time.perf_counter()
    visit_probability = model.visit_probability(raw)
    if state.faults.has_faults(version):
        await state.faults.delay(version)
    latency_s = time.perf_counter() - start_s

    predicted = (visit_probability >= 0.5).astype(np.intp)
    confidence = np.where(predicted == 1, visit_probability, 1.0 - visit_probability)
    predicted = state.faults.degrade(version, predicted)

    if state.instrumentation is not None:
        _record(state.instrumentation, version, predicted, confidence, latency_s, raw)
    return [
        {
            "predicted_class": CLASSES[index],
            "confidence": round(float(share), 6),
            "model_version": version,
            "request_id": f"{version}.{index}.{uuid.uuid4().hex}",
        }
        for index, share in zip(predicted.tolist(), confidence, strict=True)
    ]


def _record(
    instrumentation: Instrumentation,
    version: str,
    predicted: np.ndarray,
    confidence: np.ndarray,
    latency_s: float,
    raw: np.ndarray,
) -> None:
    metrics = instrumentation.metrics
    metrics.inference_latency[version].observe(latency_s)
    instrumentation.monitor.record_rows(raw)
    if predicted.shape[0] == 1:
        # The common case, one record: skip the counting arrays.
        metrics.predictions[version][CLASSES[int(predicted[0])]].inc()
        metrics.confidence[version].observe(float(confidence[0]))
        return
    counts = np.bincount(predicted, minlength=len(CLASSES))
    for label, count in zip(CLASSES, counts.tolist(), strict=True):
        if count:
            metrics.predictions[version][label].inc(count)
    for share in confidence.tolist():
        metrics.confidence[version].observe(share)


def _request_bodies(settings: ServiceSettings) -> dict[str, dict[str, Any]]:
    """OpenAPI ``requestBody`` of each hand-parsed route, with every feature and an example."""
    example = example_record()
    record = record_model(FEATURES, example).model_json_schema()
    batch = {
        "title": "PredictionBatch",
        "type": "object",
        "properties": {
            "instances": {
                "type": "array",
                "items": record,
                "minItems": 1,
                "maxItems": settings.max_batch_size,
            }
        },
        "required": ["instances"],
        "additionalProperties": False,
    }
    feedback_example = {
        "request_id": "v1.1.0123456789abcdef0123456789abcdef",
        "true_label": "visit",
    }
    bodies = {
        "/predict": ({"oneOf": [record, batch]}, example),
        "/feedback": (FeedbackRequest.model_json_schema(), feedback_example),
    }
    return {
        path: {
            "requestBody": {
                "required": True,
                "content": {JSON_MEDIA_TYPE: {"schema": body_schema, "example": body_example}},
            }
        }
        for path, (body_schema, body_example) in bodies.items()
    }
