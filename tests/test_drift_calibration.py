"""CUSUM threshold calibration: the tail exponent by hand, the threshold by direct simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from target_service.drift import calibration


def test_adjustment_coefficient_of_a_two_point_walk() -> None:
    # Steps +1 (share 0.3) and -1 (0.7): 0.3 e^t + 0.7 e^-t = 1 has the root e^t = 0.7 / 0.3.
    steps = np.array([1.0] * 3 + [-1.0] * 7)

    assert calibration.adjustment_coefficient(steps) == pytest.approx(math.log(7 / 3))


def test_adjustment_coefficient_of_normal_steps_is_twice_the_drift() -> None:
    # For N(-k, 1) steps the moment generating function is exp(-k t + t^2 / 2): root t = 2k.
    n = 200_001
    steps = scipy_stats.norm.ppf((np.arange(n) + 0.5) / n) - 0.25

    assert calibration.adjustment_coefficient(steps) == pytest.approx(0.5, rel=0.01)


def test_no_positive_step_means_no_crossing_and_the_fallback_threshold() -> None:
    z_reference = np.array([-0.1, 0.0, 0.1])

    upward, downward = calibration.calibrate_cusum_pair(
        z_reference, 0.25, 0.01, 1000, np.random.default_rng(1)
    )

    assert upward.tail_rate == math.inf and downward.tail_rate == math.inf
    assert upward.threshold == downward.threshold == calibration.NO_NULL_CROSSING_THRESHOLD


def _crossing_share(
    z_reference: np.ndarray, k_sd: float, threshold: float, steps: int, paths: int, seed: int
) -> float:
    rng = np.random.default_rng(seed)
    crossed = 0
    for _ in range(paths // 100):
        walk = np.cumsum(z_reference[rng.integers(0, z_reference.size, (steps, 100))] - k_sd, 0)
        path = walk - np.minimum(0.0, np.minimum.accumulate(walk, axis=0))
        crossed += int(np.sum(path.max(axis=0) >= threshold))
    return crossed / paths


@pytest.mark.parametrize("distribution", ["normal", "skewed"])
def test_calibrated_threshold_keeps_the_crossing_chance_within_the_target(
    distribution: str,
) -> None:
    rng = np.random.default_rng(2)
    raw = rng.normal(size=20_000) if distribution == "normal" else rng.exponential(size=20_000)
    z_reference = (raw - raw.mean()) / raw.std()
    target, horizon = 0.1, 4000

    upward, _ = calibration.calibrate_cusum_pair(z_reference, 0.25, target, horizon, rng)
    share = _crossing_share(z_reference, 0.25, upward.threshold, horizon, 2000, seed=3)

    standard_error = math.sqrt(target * (1 - target) / 2000)
    assert share == pytest.approx(target, abs=3 * standard_error)


def test_mean_tolerance_covers_live_traffic_that_far_off() -> None:
    rng = np.random.default_rng(4)
    raw = rng.normal(size=20_000)
    z_reference = (raw - raw.mean()) / raw.std()
    target, horizon, tolerance_sd = 0.1, 4000, 0.05

    upward, _ = calibration.calibrate_cusum_pair(
        z_reference, 0.25, target, horizon, rng, mean_tolerance_sd=tolerance_sd
    )
    share = _crossing_share(z_reference + tolerance_sd, 0.25, upward.threshold, horizon, 2000, 5)

    standard_error = math.sqrt(target * (1 - target) / 2000)
    assert share == pytest.approx(target, abs=3 * standard_error)
