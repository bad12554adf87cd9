"""The drift detector: encoding, edge cases, detection of injected drift, quiet normal traffic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from target_service.config import DriftSettings
from target_service.dataset import FEATURES, TARGET, FeatureSpec, load_split
from target_service.drift import DriftDetector, DriftReport
from target_service.errors import ConfigError

SYNTHETIC_FEATURES = (
    FeatureSpec("a", "numeric", "normal"),
    FeatureSpec("b", "numeric", "normal"),
    FeatureSpec("flat", "numeric", "constant in the reference"),
    FeatureSpec("colour", "categorical", "three colours", categories=("red", "green", "blue")),
)
COLOUR_SHARES = (0.5, 0.3, 0.2)


def _synthetic_frame(n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(10.0, 2.0, n_rows),
            "b": rng.normal(0.0, 1.0, n_rows),
            "flat": np.full(n_rows, 3.0),
            "colour": rng.choice(["red", "green", "blue"], n_rows, p=COLOUR_SHARES),
        }
    )


@pytest.fixture(scope="module")
def synthetic_reference() -> pd.DataFrame:
    return _synthetic_frame(5000, np.random.default_rng(11))


@pytest.fixture
def detector(synthetic_reference: pd.DataFrame) -> DriftDetector:
    return DriftDetector(
        synthetic_reference, SYNTHETIC_FEATURES, DriftSettings(), np.random.default_rng(12)
    )


def _verdict(report: DriftReport, feature: str) -> tuple[bool, float, float]:
    found = next(f for f in report.features if f.feature == feature)
    return found.detected, found.score, found.p_value


def _observe_frame(detector: DriftDetector, frame: pd.DataFrame, batch: int = 50) -> DriftReport:
    records = frame.to_dict("records")
    report = detector.evaluate()
    for start in range(0, len(records), batch):
        detector.observe(detector.encode(records[start : start + batch]))
        report = detector.evaluate()
    return report


def test_encode_numeric_categorical_unseen_and_missing(detector: DriftDetector) -> None:
    rows = detector.encode(
        [
            {"a": 1.5, "b": -2, "flat": 3.0, "colour": "blue"},
            {"a": None, "b": float("inf"), "flat": "text", "colour": "purple"},
            {"a": 0.0, "b": 1.0, "colour": None},
        ]
    )

    assert rows.shape == (3, 4)
    assert rows[0].tolist() == [1.5, -2.0, 3.0, 2.0]
    assert math.isnan(rows[1, 0]) and math.isnan(rows[1, 1]) and math.isnan(rows[1, 2])
    assert rows[1, 3] == -1.0
    assert math.isnan(rows[2, 2]) and math.isnan(rows[2, 3])


def test_empty_window_declares_nothing(detector: DriftDetector) -> None:
    report = detector.evaluate()

    assert not report.enough_samples
    assert report.window_size == 0 and report.observed_total == 0
    assert report.dataset_drift_share == 0.0
    assert all(not f.detected and f.score == 0.0 and f.p_value == 1.0 for f in report.features)


def test_all_missing_window_neither_crashes_nor_flags(detector: DriftDetector) -> None:
    detector.observe(np.full((400, 4), np.nan))

    report = detector.evaluate()

    assert report.enough_samples
    assert report.dataset_drift_share == 0.0
    assert [f.missing_or_unseen_share for f in report.features] == [1.0, 1.0, 1.0, 1.0]
    assert all(math.isfinite(f.score) and math.isfinite(f.p_value) for f in report.features)


def test_constant_feature_has_no_cusum_and_no_alarm_when_unchanged(
    detector: DriftDetector, synthetic_reference: pd.DataFrame
) -> None:
    assert detector.cusum_thresholds["flat"] == (math.inf, math.inf)

    report = _observe_frame(detector, _synthetic_frame(600, np.random.default_rng(13)))

    detected, score, p_value = _verdict(report, "flat")
    assert not detected
    assert score == 0.0 and p_value == 1.0


def test_constant_window_of_a_common_value_is_not_flagged() -> None:
    rng = np.random.default_rng(14)
    reference = pd.DataFrame({"rare": (rng.random(5000) < 0.01).astype(float)})
    spec = (FeatureSpec("rare", "numeric", "1 in 100 rows is 1"),)
    detector = DriftDetector(reference, spec, DriftSettings(), rng)

    detector.observe(np.zeros((300, 1)))
    report = detector.evaluate()

    assert not report.features[0].detected
    expected = scipy_stats.ks_2samp(reference["rare"], np.zeros(300), method="asymp")
    assert report.features[0].score == pytest.approx(expected.statistic)


def test_unseen_categories_are_counted_not_flagged(detector: DriftDetector) -> None:
    frame = _synthetic_frame(500, np.random.default_rng(15))
    frame.loc[:9, "colour"] = "ultraviolet"

    report = _observe_frame(detector, frame)

    colour = next(f for f in report.features if f.feature == "colour")
    assert not colour.detected
    assert colour.missing_or_unseen_share == pytest.approx(10 / 500)


def test_window_is_a_ring_buffer_of_the_latest_rows(detector: DriftDetector) -> None:
    detector.observe(np.full((700, 4), np.nan))
    latest = _synthetic_frame(500, np.random.default_rng(16))
    detector.observe(detector.encode(latest.to_dict("records")))

    report = detector.evaluate()

    assert report.window_size == DriftSettings().window_size == 500
    assert report.observed_total == 1200
    assert all(f.missing_or_unseen_share == 0.0 for f in report.features)


def test_one_sd_mean_shift_in_one_feature_is_flagged(detector: DriftDetector) -> None:
    _observe_frame(detector, _synthetic_frame(500, np.random.default_rng(17)))
    drifted = _synthetic_frame(300, np.random.default_rng(18))
    drifted["a"] += 2.0

    report = _observe_frame(detector, drifted)

    assert _verdict(report, "a")[0]
    assert not any(_verdict(report, name)[0] for name in ("b", "flat", "colour"))
    assert report.dataset_drift_share == pytest.approx(1 / 4)


def test_scale_change_is_flagged_by_the_window_test(
    detector: DriftDetector, synthetic_reference: pd.DataFrame
) -> None:
    drifted = _synthetic_frame(500, np.random.default_rng(19))
    drifted["b"] *= 2.0

    report = _observe_frame(detector, drifted)

    detected, score, p_value = _verdict(report, "b")
    assert detected
    window = detector.encode(drifted.to_dict("records"))[:, 1]
    expected = scipy_stats.ks_2samp(synthetic_reference["b"], window)
    assert score == pytest.approx(expected.statistic)
    assert p_value < detector.window_family_alpha / 4


def test_categorical_frequency_change_is_flagged(detector: DriftDetector) -> None:
    drifted = _synthetic_frame(500, np.random.default_rng(20))
    drifted["colour"] = np.random.default_rng(21).choice(
        ["red", "green", "blue"], 500, p=(0.3, 0.3, 0.4)
    )

    report = _observe_frame(detector, drifted)

    detected, score, _ = _verdict(report, "colour")
    assert detected
    window_shares = drifted["colour"].value_counts(normalize=True)
    by_hand = 0.5 * sum(
        abs(window_shares.get(name, 0.0) - share)
        for name, share in zip(("red", "green", "blue"), COLOUR_SHARES, strict=True)
    )
    assert score == pytest.approx(by_hand, abs=0.03)


def test_psi_option_flags_a_mean_shift(synthetic_reference: pd.DataFrame) -> None:
    settings = DriftSettings(numeric_test="psi")
    detector = DriftDetector(
        synthetic_reference, SYNTHETIC_FEATURES, settings, np.random.default_rng(22)
    )
    drifted = _synthetic_frame(500, np.random.default_rng(23))
    drifted["b"] += 1.0

    report = _observe_frame(detector, drifted)

    b = next(f for f in report.features if f.feature == "b")
    assert b.test == "psi" and b.detected and b.score > 0.1


def test_alarm_clears_after_the_drift_ends(detector: DriftDetector) -> None:
    drifted = _synthetic_frame(300, np.random.default_rng(24))
    drifted["a"] += 2.0
    assert _verdict(_observe_frame(detector, drifted), "a")[0]

    report = _observe_frame(detector, _synthetic_frame(1000, np.random.default_rng(25)))

    assert report.dataset_drift_share == 0.0


def test_nothing_is_declared_below_min_samples(detector: DriftDetector) -> None:
    drifted = _synthetic_frame(60, np.random.default_rng(26))
    drifted["a"] += 20.0

    report = _observe_frame(detector, drifted)

    assert not report.enough_samples
    assert report.dataset_drift_share == 0.0
    assert _verdict(report, "a")[1] > 0.9


def test_observe_rejects_rows_of_the_wrong_width(detector: DriftDetector) -> None:
    with pytest.raises(ValueError, match="expected shape"):
        detector.observe(np.zeros((3, 2)))


def test_missing_reference_column_is_a_config_error(synthetic_reference: pd.DataFrame) -> None:
    features = (*SYNTHETIC_FEATURES, FeatureSpec("absent", "numeric", "not in the frame"))

    with pytest.raises(ConfigError, match="absent"):
        DriftDetector(synthetic_reference, features, DriftSettings(), np.random.default_rng(0))


def test_normal_traffic_from_the_reference_dataset_raises_no_alarm() -> None:
    split = load_split()
    detector = DriftDetector(split.train, FEATURES, DriftSettings(), np.random.default_rng(30))
    rows = detector.encode(split.holdout.drop(columns=[TARGET]).to_dict("records"))
    rng = np.random.default_rng(31)

    alarms = 0
    for _ in range(3 * 10_000 // 50):
        detector.observe(rows[rng.integers(0, rows.shape[0], 50)])
        alarms += detector.evaluate().dataset_drift_share > 0

    assert alarms == 0
