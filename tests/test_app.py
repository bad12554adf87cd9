"""API tests of the reference service, in-process with a fresh metrics registry each time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from target_service.app import create_app
from target_service.config import load_settings
from target_service.dataset import CLASSES, FEATURES, TARGET, example_record, load_split
from target_service.metrics import REJECTION_REASONS
from target_service.models import TrainedModel, load_models

MAX_BODY_BYTES = 2048
MAX_BATCH = 4


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainedModel]:
    return load_models(tmp_path_factory.mktemp("model-cache"))


class Service:
    """A running app, its registry and handles on its internals."""

    def __init__(self, client: TestClient, registry: CollectorRegistry, app: Any) -> None:
        self.client = client
        self.registry = registry
        self.state = app.state.service

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    @property
    def monitor(self) -> Any:
        return self.state.instrumentation.monitor


@pytest.fixture
def make_service(tmp_path: Path, models: dict[str, TrainedModel]) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(rng_seed: int = 0, **overrides: Any) -> Service:
        overrides.setdefault("max_body_bytes", MAX_BODY_BYTES)
        overrides.setdefault("max_batch_size", MAX_BATCH)
        # A long interval: tests run monitor ticks themselves.
        overrides.setdefault("drift", {"evaluation_interval_s": 60, "min_samples": 10})
        settings = load_settings(model_cache_dir=tmp_path / "unused", **overrides)
        registry = CollectorRegistry()
        app = create_app(
            settings,
            registry=registry,
            shared_dir=tmp_path / f"monitor-{len(clients)}",
            rng=np.random.default_rng(rng_seed),
            models=models,
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return Service(client, registry, app)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def record_with(**changes: Any) -> dict[str, Any]:
    return {**example_record(), **changes}


def without(name: str) -> dict[str, Any]:
    record = example_record()
    del record[name]
    return record


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


BAD_PREDICT_BODIES = [
    pytest.param(
        b'{"participation_incentive_log": ', 400, "malformed_json", "body", id="truncated"
    ),
    pytest.param(b"\xff\xfe{}", 400, "malformed_json", "body", id="not-utf8"),
    pytest.param(b"", 400, "empty_body", "body", id="empty"),
    pytest.param(b"   \n", 400, "empty_body", "body", id="blank"),
    pytest.param(body([1, 2]), 422, "wrong_type", "body", id="list-body"),
    pytest.param(body("text"), 422, "wrong_type", "body", id="string-body"),
    pytest.param(
        body(without("chronic_diseases")), 422, "missing_feature", "chronic_diseases", id="missing"
    ),
    pytest.param(body(record_with(shoe_size=42)), 422, "unknown_feature", "shoe_size", id="extra"),
    pytest.param(
        body(record_with(chronic_diseases="3")),
        422,
        "wrong_type",
        "chronic_diseases",
        id="string-for-number",
    ),
    pytest.param(
        body(record_with(physical_limitation=True)),
        422,
        "wrong_type",
        "physical_limitation",
        id="bool-for-number",
    ),
    pytest.param(
        body(record_with(chronic_diseases=None)),
        422,
        "wrong_type",
        "chronic_diseases",
        id="null-for-number",
    ),
    pytest.param(
        body(record_with(self_rated_health=3)),
        422,
        "wrong_type",
        "self_rated_health",
        id="number-for-category",
    ),
    pytest.param(
        body(record_with(self_rated_health="x" * 65)),
        422,
        "too_long",
        "self_rated_health",
        id="long-category",
    ),
    pytest.param(
        body(record_with(chronic_diseases=1000)),
        422,
        "out_of_range",
        "chronic_diseases",
        id="out-of-range",
    ),
    pytest.param(
        body(record_with(physical_limitation=-5.5)),
        422,
        "out_of_range",
        "physical_limitation",
        id="below-range",
    ),
    pytest.param(
        body(record_with(chronic_diseases=0)).replace(
            b'"chronic_diseases": 0', b'"chronic_diseases": NaN'
        ),
        422,
        "non_finite",
        "NaN",
        id="nan-literal",
    ),
    pytest.param(
        body(record_with(chronic_diseases=0)).replace(
            b'"chronic_diseases": 0', b'"chronic_diseases": Infinity'
        ),
        422,
        "non_finite",
        "Infinity",
        id="infinity-literal",
    ),
    pytest.param(
        body(record_with(chronic_diseases=0)).replace(
            b'"chronic_diseases": 0', b'"chronic_diseases": -Infinity'
        ),
        422,
        "non_finite",
        "Infinity",
        id="minus-infinity-literal",
    ),
    pytest.param(
        body(record_with(chronic_diseases=0)).replace(
            b'"chronic_diseases": 0', b'"chronic_diseases": 1e999'
        ),
        422,
        "non_finite",
        "chronic_diseases",
        id="overflowing-number",
    ),
    pytest.param(
        body(record_with(chronic_diseases=0)).replace(
            b'"chronic_diseases": 0', b'"chronic_diseases": 1' + b"0" * 400
        ),
        422,
        "non_finite",
        "chronic_diseases",
        id="huge-integer",
    ),
    pytest.param(b"[" * 2000, 400, "malformed_json", "body", id="deep-nesting"),
    pytest.param(body({"instances": []}), 422, "empty_batch", "instances", id="empty-batch"),
    pytest.param(
        body({"instances": [example_record()] * (MAX_BATCH + 1)}),
        422,
        "batch_too_large",
        "instances",
        id="long-batch",
    ),
    pytest.param(
        body({"instances": {"a": 1}}), 422, "wrong_type", "instances", id="batch-not-list"
    ),
    pytest.param(
        body(
            {"instances": [example_record(), example_record(), record_with(chronic_diseases="x")]}
        ),
        422,
        "wrong_type",
        "instances[2].chronic_diseases",
        id="bad-record-in-batch",
    ),
    pytest.param(
        body({"instances": [example_record(), 7]}),
        422,
        "wrong_type",
        "instances[1]",
        id="batch-item-not-object",
    ),
    pytest.param(
        body({"instances": [example_record()], "extra": 1}),
        422,
        "unknown_feature",
        "extra",
        id="key-next-to-instances",
    ),
    pytest.param(
        b"{" + b" " * MAX_BODY_BYTES + b"}", 413, "body_too_large", "body", id="large-body"
    ),
]


def assert_refused(
    service: Service, response: Any, status: int, reason: str, field: str, rows_before: int
) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["reason"] == reason
    assert field in payload["detail"]
    assert "\n" not in payload["detail"]
    assert service.value("rejected_requests_total", reason=reason) == 1.0
    assert service.monitor.rows_recorded == rows_before
    predictions = sum(
        service.value("prediction_count_total", model_version=v, predicted_class=c)
        for v in ("v1", "v2")
        for c in CLASSES
    )
    assert predictions == rows_before


@pytest.mark.parametrize(("content", "status", "reason", "field"), BAD_PREDICT_BODIES)
def test_bad_predict_body_is_refused_counted_and_kept_out_of_the_drift_window(
    make_service: Any, content: bytes, status: int, reason: str, field: str
) -> None:
    service = make_service()
    service.client.post("/predict", json=example_record())

    response = service.client.post(
        "/predict", content=content, headers={"Content-Type": "application/json"}
    )

    assert_refused(service, response, status, reason, field, rows_before=1)


def test_streamed_body_over_the_limit_is_refused_without_content_length(make_service: Any) -> None:
    service = make_service()

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b" " * (MAX_BODY_BYTES // 2)

    response = service.client.post("/predict", content=chunks())

    assert_refused(service, response, 413, "body_too_large", "body", rows_before=0)


def test_unknown_model_version_header_is_refused(make_service: Any) -> None:
    service = make_service()

    response = service.client.post(
        "/predict", json=example_record(), headers={"X-Model-Version": "v3"}
    )

    assert_refused(service, response, 400, "unknown_model_version", "X-Model-Version", 0)
    assert "v1, v2" in response.json()["detail"]


BAD_FEEDBACK = [
    pytest.param(
        {"request_id": "nonsense", "true_label": "visit"},
        "unknown_request_id",
        "request_id",
        id="malformed-id",
    ),
    pytest.param(
        {"request_id": "v9.1." + "a" * 32, "true_label": "visit"},
        "unknown_request_id",
        "request_id",
        id="unknown-version",
    ),
    pytest.param(
        {"request_id": "v1.7." + "a" * 32, "true_label": "visit"},
        "unknown_request_id",
        "request_id",
        id="unknown-class",
    ),
    pytest.param(
        {"request_id": 12, "true_label": "visit"},
        "unknown_request_id",
        "request_id",
        id="number-id",
    ),
    pytest.param(
        {"request_id": "v1.1." + "a" * 32, "true_label": "maybe"},
        "bad_label",
        "true_label",
        id="bad-label",
    ),
    pytest.param(
        {"request_id": "v1.1." + "a" * 32}, "missing_field", "true_label", id="missing-label"
    ),
    pytest.param(
        {"request_id": "v1.1." + "a" * 32, "true_label": "visit", "x": 1},
        "unknown_field",
        "x",
        id="extra-field",
    ),
    pytest.param([1], "wrong_type", "body", id="not-object"),
]


@pytest.mark.parametrize(("document", "reason", "field"), BAD_FEEDBACK)
def test_bad_feedback_is_refused_and_counted(
    make_service: Any, document: Any, reason: str, field: str
) -> None:
    service = make_service()

    response = service.client.post("/feedback", json=document)

    assert response.status_code == 422
    assert response.json()["reason"] == reason
    assert field in response.json()["detail"]
    assert service.value("rejected_requests_total", reason=reason) == 1.0
    assert service.value("feedback_count_total", model_version="v1") == 0.0


def test_single_and_batch_predictions_follow_the_contract(
    make_service: Any, models: dict[str, TrainedModel]
) -> None:
    service = make_service()
    holdout = load_split().holdout.head(3)
    records = [{spec.name: row[spec.name] for spec in FEATURES} for _, row in holdout.iterrows()]

    single = service.client.post("/predict", json=records[0], headers={"X-Model-Version": "v2"})
    batch = service.client.post("/predict", json={"instances": records})

    assert single.status_code == 200
    assert set(single.json()) == {"predicted_class", "confidence", "model_version", "request_id"}
    assert single.json()["model_version"] == "v2"
    predictions = batch.json()["predictions"]
    assert len(predictions) == 3
    assert len({p["request_id"] for p in predictions}) == 3
    version = predictions[0]["model_version"]
    encoder = models[version].encoder
    expected = models[version].visit_probability(encoder.raw_rows(holdout))
    for prediction, probability in zip(predictions, expected, strict=True):
        visit = probability >= 0.5
        assert prediction["predicted_class"] == CLASSES[int(visit)]
        assert prediction["confidence"] == pytest.approx(
            max(probability, 1 - probability), abs=1e-6
        )
        assert prediction["request_id"].startswith(f"{version}.{int(visit)}.")
    assert (
        service.value(
            "prediction_count_total",
            model_version="v2",
            predicted_class=single.json()["predicted_class"],
        )
        >= 1.0
    )
    assert service.monitor.rows_recorded == 4


def test_unseen_and_null_categories_are_accepted(make_service: Any) -> None:
    service = make_service()

    response = service.client.post(
        "/predict", json=record_with(self_rated_health="superb", deductible_plan=None)
    )

    assert response.status_code == 200
    assert service.monitor.rows_recorded == 1


def test_health_and_readiness(make_service: Any) -> None:
    service = make_service()

    assert service.client.get("/healthz").json() == {"status": "alive"}
    assert service.client.get("/readyz").status_code == 200


def test_openapi_documents_every_feature_and_a_valid_example(make_service: Any) -> None:
    service = make_service()
    document = service.client.get("/openapi.json").json()
    content = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    record_schema = content["schema"]["oneOf"][0]

    for spec in FEATURES:
        field = record_schema["properties"][spec.name]
        if spec.kind == "numeric":
            assert field["type"] == "number"
            assert (field["minimum"], field["maximum"]) == (spec.valid_min, spec.valid_max)
        else:
            assert field["x-known-categories"] == list(spec.categories)
        assert field["description"]
    assert sorted(record_schema["required"]) == sorted(spec.name for spec in FEATURES)
    assert service.client.post("/predict", json=content["example"]).status_code == 200


def test_feedback_accuracy_matches_an_independent_count(make_service: Any) -> None:
    window = 10
    service = make_service(feedback_window=window)
    holdout = load_split().holdout.iloc[:25]
    outcomes = []
    for _, row in holdout.iterrows():
        record = {spec.name: row[spec.name] for spec in FEATURES}
        prediction = service.client.post(
            "/predict", json=record, headers={"X-Model-Version": "v1"}
        ).json()
        answer = service.client.post(
            "/feedback",
            json={"request_id": prediction["request_id"], "true_label": row[TARGET]},
        ).json()
        outcomes.append(prediction["predicted_class"] == row[TARGET])
        assert answer == {"correct": outcomes[-1], "model_version": "v1"}

    service.monitor.tick()

    assert service.value("feedback_count_total", model_version="v1") == 25
    assert service.value("feedback_correct_total", model_version="v1") == sum(outcomes)
    expected = sum(outcomes[-window:]) / window
    assert service.value("model_accuracy", model_version="v1") == pytest.approx(expected)
    assert service.registry.get_sample_value("model_accuracy", {"model_version": "v2"}) is None


def test_weighted_routing_follows_the_seeded_draws(make_service: Any) -> None:
    requests = 200
    service = make_service(rng_seed=7, model_weights={"v1": 0.7, "v2": 0.3})

    versions = [
        service.client.post("/predict", json=example_record()).json()["model_version"]
        for _ in range(requests)
    ]

    draws = np.random.default_rng(7).random(requests)
    assert versions == ["v1" if draw < 0.7 else "v2" for draw in draws]


def test_injected_latency_shows_in_the_inference_histogram(make_service: Any) -> None:
    service = make_service(faults={"v2": {"extra_latency_s": 0.03}})

    for version in ("v1", "v2", "v2"):
        service.client.post("/predict", json=example_record(), headers={"X-Model-Version": version})

    bucket = "inference_latency_seconds_bucket"
    assert service.value(bucket, model_version="v2", le="0.025") == 0.0
    assert service.value("inference_latency_seconds_count", model_version="v2") == 2.0
    assert service.value("inference_latency_seconds_sum", model_version="v2") >= 0.06
    assert service.value(bucket, model_version="v1", le="0.025") == 1.0


def test_injected_error_rate_answers_500_for_the_drawn_share(make_service: Any) -> None:
    requests = 60
    service = make_service(rng_seed=3, faults={"v2": {"error_rate": 0.3}})

    statuses = [
        service.client.post(
            "/predict", json=example_record(), headers={"X-Model-Version": "v2"}
        ).status_code
        for _ in range(requests)
    ]

    failing = np.random.default_rng(3).random(requests) < 0.3
    assert statuses == [500 if fail else 200 for fail in failing]
    duration = "http_request_duration_seconds_count"
    assert service.value(duration, method="POST", route="/predict", status="500") == failing.sum()
    assert service.monitor.rows_recorded == requests - failing.sum()


def test_degraded_model_flips_predictions_and_accuracy_falls(
    make_service: Any, models: dict[str, TrainedModel]
) -> None:
    service = make_service(faults={"v2": {"degraded_share": 1.0}})
    holdout = load_split().holdout.iloc[:40]
    model = models["v2"]
    clean = (model.visit_probability(model.encoder.raw_rows(holdout)) >= 0.5).astype(int)
    records = [{spec.name: row[spec.name] for spec in FEATURES} for _, row in holdout.iterrows()]

    predictions = service.client.post(
        "/predict", json={"instances": records[:MAX_BATCH]}, headers={"X-Model-Version": "v2"}
    ).json()["predictions"]
    for start in range(MAX_BATCH, len(records), MAX_BATCH):
        predictions += service.client.post(
            "/predict",
            json={"instances": records[start : start + MAX_BATCH]},
            headers={"X-Model-Version": "v2"},
        ).json()["predictions"]
    for prediction, row_label in zip(predictions, holdout[TARGET], strict=True):
        service.client.post(
            "/feedback", json={"request_id": prediction["request_id"], "true_label": row_label}
        )
    service.monitor.tick()

    assert [CLASSES.index(p["predicted_class"]) for p in predictions] == (1 - clean).tolist()
    clean_accuracy = float((np.array(CLASSES)[clean] == holdout[TARGET].to_numpy()).mean())
    accuracy = service.value("model_accuracy", model_version="v2")
    assert accuracy == pytest.approx(1 - clean_accuracy)
    assert accuracy < 0.5


def test_label_values_stay_within_the_known_sets(make_service: Any) -> None:
    service = make_service()
    client = service.client
    client.get("/no/such/path/123")
    client.request("PROPFIND", "/predict")
    client.post("/predict", json=record_with(self_rated_health="<script>"))
    client.post("/predict", json=example_record(), headers={"X-Model-Version": "v1; drop"})
    client.post("/predict", json=record_with(**{"weird label": 1}))
    service.monitor.tick()

    from prometheus_client.parser import text_string_to_metric_families

    routes = {
        "/predict",
        "/feedback",
        "/healthz",
        "/readyz",
        "<unmatched>",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
    allowed = {
        "model_version": {"v1", "v2"},
        "predicted_class": set(CLASSES),
        "feature": {spec.name for spec in FEATURES},
        "route": routes,
        "method": {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER"},
    }
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label in allowed:
                    assert value in allowed[label], (family.name, label, value)
    assert 'route="<unmatched>"' in text
    assert 'method="OTHER"' in text


def test_bare_service_predicts_without_metrics_or_monitor(
    tmp_path: Path, models: dict[str, TrainedModel]
) -> None:
    settings = load_settings(instrumentation_enabled=False, drift={"enabled": False})
    registry = CollectorRegistry()
    app = create_app(settings, registry=registry, shared_dir=tmp_path, models=models)

    with TestClient(app) as client:
        prediction = client.post("/predict", json=example_record())
        refused = client.post("/predict", content=b"{")
        metrics = client.get("/metrics")

    assert prediction.status_code == 200
    assert refused.json()["reason"] == "malformed_json"
    assert metrics.status_code == 404
    assert list(registry.collect()) == []
    assert not any(tmp_path.iterdir())


ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1e308,
    -1e308,
    2**70,
    "",
    "x" * 70,
    "good",
    [],
    [1],
    {},
    {"a": 1},
    0.5,
    "NaN",
    "1e3",
    "\u00e9\u4e2d",
    7.17,
    58.6,
]


def test_randomly_mangled_records_never_get_a_server_error(make_service: Any) -> None:
    service = make_service(rng_seed=11)
    rng = np.random.default_rng(11)
    names = [spec.name for spec in FEATURES]

    statuses = set()
    for _ in range(300):
        record: dict[str, Any] = example_record()
        for name in rng.choice(names, size=int(rng.integers(1, 4)), replace=False):
            record[str(name)] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
        if rng.random() < 0.2:
            del record[str(rng.choice(names))]
        document = {"instances": [record]} if rng.random() < 0.3 else record
        statuses.add(service.client.post("/predict", json=document).status_code)

    assert statuses <= {200, 422}
    assert 422 in statuses
    refused = sum(service.value("rejected_requests_total", reason=r) for r in REJECTION_REASONS)
    assert refused + service.monitor.rows_recorded == 300
