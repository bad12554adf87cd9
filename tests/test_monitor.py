"""The monitor: ring buffers, leader election across "workers", drift and accuracy gauges."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from target_service.config import DriftSettings
from target_service.dataset import CATEGORICAL_FEATURES, FEATURE_NAMES, FEATURES, load_split
from target_service.drift import DriftDetector, DriftReport
from target_service.instrument import raw_rows
from target_service.metrics import ServiceMetrics
from target_service.monitor import UNSEEN_CATEGORY, DetectorFactory, MonitoringService, RowRing

VERSIONS = ("v1", "v2")
DRIFT = DriftSettings.model_validate({"window_size": 500, "min_samples": 50})


def make_monitor(
    shared_dir: Path,
    tag: str,
    feedback_window: int = 4,
    detector_factory: DetectorFactory | None = None,
) -> MonitoringService:
    registry = CollectorRegistry()
    metrics = ServiceMetrics(
        registry, VERSIONS, ("no_visit", "visit"), FEATURE_NAMES, CATEGORICAL_FEATURES
    )
    reference = load_split().train

    def detector() -> DriftDetector:
        return DriftDetector(reference, FEATURES, DRIFT, np.random.default_rng(5))

    monitor = MonitoringService(
        shared_dir=shared_dir,
        features=FEATURES,
        versions=VERSIONS,
        metrics=metrics,
        drift=DRIFT,
        detector_factory=detector_factory or detector,
        feedback_window=feedback_window,
        process_tag=tag,
    )
    monitor.open()
    return monitor


def gauge(monitor: MonitoringService, name: str, **labels: str) -> float | None:
    return monitor.metrics.registry.get_sample_value(name, labels)


def holdout_records(start: int, stop: int) -> list[dict[str, float | str | None]]:
    frame = load_split().holdout.iloc[start:stop]
    return [{spec.name: row[spec.name] for spec in FEATURES} for _, row in frame.iterrows()]


def test_ring_keeps_the_newest_rows_in_order_across_wrap_around(tmp_path: Path) -> None:
    writer = RowRing(tmp_path / "r.ring", width=2, capacity=4, create=True)
    reader = RowRing.open_for_reading(tmp_path / "r.ring")
    rows = np.arange(14, dtype=float).reshape(7, 2)

    writer.append(rows[:3])
    first, cursor = reader.read_since(0)
    writer.append(rows[3:])
    second, cursor = reader.read_since(cursor)

    np.testing.assert_array_equal(first, rows[:3])
    np.testing.assert_array_equal(second, rows[3:])
    assert cursor == 7
    writer.append(rows)
    lapped, cursor = reader.read_since(cursor)
    np.testing.assert_array_equal(lapped, rows[-4:])
    assert cursor == 14


def test_one_leader_at_a_time_and_another_takes_over(tmp_path: Path) -> None:
    first = make_monitor(tmp_path, "a")
    second = make_monitor(tmp_path, "b")

    assert first.tick() is True
    assert second.tick() is False
    asyncio.run(first.stop())
    assert second.tick() is True
    asyncio.run(second.stop())


def test_leader_publishes_drift_of_all_workers_rows(tmp_path: Path) -> None:
    leader = make_monitor(tmp_path, "a")
    follower = make_monitor(tmp_path, "b")
    records_a, records_b = holdout_records(0, 120), holdout_records(120, 300)
    records_b[0]["self_rated_health"] = "unheard-of"
    leader.record_rows(raw_rows(FEATURES, records_a))
    follower.record_rows(raw_rows(FEATURES, records_b))

    assert leader.tick() is True
    assert follower.tick() is False

    independent = DriftDetector(load_split().train, FEATURES, DRIFT, np.random.default_rng(5))
    expected_records = [*records_a, *records_b]
    independent.observe(independent.encode(expected_records))
    report = independent.evaluate()
    assert gauge(leader, "drift_window_size") == 300
    assert gauge(leader, "dataset_drift_share") == pytest.approx(report.dataset_drift_share)
    for drift in report.features:
        assert gauge(leader, "feature_drift_score", feature=drift.feature) == pytest.approx(
            drift.score
        )
        assert gauge(leader, "feature_drift_pvalue", feature=drift.feature) == pytest.approx(
            drift.p_value
        )
    assert gauge(leader, "feature_missing_share", feature="self_rated_health") == pytest.approx(
        1 / 300
    )
    assert gauge(leader, "feature_missing_share", feature="chronic_diseases") is None
    assert gauge(follower, "drift_window_size") == 0.0
    asyncio.run(leader.stop())
    asyncio.run(follower.stop())


def test_new_leader_rebuilds_the_window_from_the_rings(tmp_path: Path) -> None:
    first = make_monitor(tmp_path, "a")
    second = make_monitor(tmp_path, "b")
    first.record_rows(raw_rows(FEATURES, holdout_records(0, 80)))
    second.record_rows(raw_rows(FEATURES, holdout_records(80, 200)))
    first.tick()
    asyncio.run(first.stop())

    second.tick()

    assert gauge(second, "drift_window_size") == 200
    asyncio.run(second.stop())


def test_accuracy_merges_workers_feedback_by_time(tmp_path: Path) -> None:
    leader = make_monitor(tmp_path, "a", feedback_window=4)
    follower = make_monitor(tmp_path, "b", feedback_window=4)
    # (worker, version, correct) in arrival order
    arrivals = [
        (leader, "v1", True),
        (follower, "v1", False),
        (follower, "v1", False),
        (leader, "v1", True),
        (follower, "v1", True),
        (leader, "v2", False),
        (follower, "v1", True),
    ]
    for worker, version, correct in arrivals:
        worker.record_feedback(version, correct)

    leader.tick()

    v1_outcomes = [correct for _, version, correct in arrivals if version == "v1"]
    assert gauge(leader, "model_accuracy", model_version="v1") == pytest.approx(
        sum(v1_outcomes[-4:]) / 4
    )
    assert gauge(leader, "model_accuracy", model_version="v2") == 0.0
    assert gauge(follower, "model_accuracy", model_version="v1") is None
    asyncio.run(leader.stop())
    asyncio.run(follower.stop())


def test_decode_inverts_raw_rows_keeping_null_apart_from_unseen(tmp_path: Path) -> None:
    monitor = make_monitor(tmp_path, "a")
    records = holdout_records(0, 3)
    records[1]["coinsurance_pct"] = "7"
    records[2]["deductible_plan"] = None

    decoded = monitor.decode(raw_rows(FEATURES, records))

    records[1]["coinsurance_pct"] = UNSEEN_CATEGORY
    assert decoded == records
    asyncio.run(monitor.stop())


class DoublingDetector:
    """A detector with its own encoding (numbers doubled): rows must go through encode()."""

    def __init__(self) -> None:
        self.observed: list[np.ndarray] = []

    def encode(self, records: Sequence[Mapping[str, float | str | None]]) -> np.ndarray:
        return np.array([[2.0 * len(str(value)) for value in r.values()] for r in records])

    def observe(self, rows: np.ndarray) -> None:
        self.observed.append(rows)

    def evaluate(self) -> DriftReport:
        return DriftReport((), 0.0, sum(len(rows) for rows in self.observed), 0, False)


def test_rows_go_through_encode_when_the_detector_encodes_differently(tmp_path: Path) -> None:
    detector = DoublingDetector()
    monitor = make_monitor(tmp_path, "a", detector_factory=lambda: detector)
    records = holdout_records(0, 5)
    monitor.record_rows(raw_rows(FEATURES, records))

    monitor.tick()

    expected = detector.encode(monitor.decode(raw_rows(FEATURES, records)))
    np.testing.assert_array_equal(detector.observed[-1], expected)
    asyncio.run(monitor.stop())
