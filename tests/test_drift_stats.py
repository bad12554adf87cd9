"""The drift statistics against scipy, statsmodels, plain loops and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from target_service.drift import stats


@pytest.mark.parametrize(
    ("reference", "window"),
    [
        (np.random.default_rng(1).normal(size=400), np.random.default_rng(2).normal(0.3, 1, 90)),
        (np.random.default_rng(3).integers(0, 5, 300), np.random.default_rng(4).integers(0, 6, 70)),
        (np.array([0.0, 0.0, 1.0, 1.0, 1.0, 2.0]), np.array([1.0, 1.0, 3.0])),
        (np.array([5.0] * 10), np.array([5.0, 5.0])),
    ],
    ids=["continuous", "ties", "tiny", "constant"],
)
def test_ks_statistic_and_pvalue_match_scipy(reference: np.ndarray, window: np.ndarray) -> None:
    expected = scipy_stats.ks_2samp(reference, window, method="asymp")

    statistic = stats.ks_statistic(np.sort(reference.astype(float)), window.astype(float))
    p_value = stats.ks_pvalue(statistic, window.size, reference.size)

    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert float(p_value) == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_ks_statistic_of_an_empty_window_is_zero() -> None:
    assert stats.ks_statistic(np.arange(5.0), np.empty(0)) == 0.0
    assert float(stats.ks_pvalue(0.0, 0, 5)) == 1.0


def test_ks_pvalue_is_vectorised_over_features() -> None:
    p_values = stats.ks_pvalue(np.array([0.1, 0.3]), np.array([100, 50]), np.array([1000, 800]))

    single = [float(stats.ks_pvalue(0.1, 100, 1000)), float(stats.ks_pvalue(0.3, 50, 800))]
    assert p_values.tolist() == pytest.approx(single)


def test_g_test_matches_scipy_contingency_and_drops_empty_categories() -> None:
    reference = np.array([120.0, 60.0, 0.0, 20.0])
    window = np.array([30.0, 25.0, 0.0, 5.0])

    statistic, p_value = stats.g_test_counts(reference, window)

    expected = scipy_stats.chi2_contingency(
        np.array([[120, 60, 20], [30, 25, 5]]), correction=False, lambda_="log-likelihood"
    )
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)


def test_g_test_with_a_category_empty_in_the_window_matches_scipy() -> None:
    reference = np.array([50.0, 30.0, 20.0])
    window = np.array([12.0, 8.0, 0.0])

    statistic, p_value = stats.g_test_counts(reference, window)

    expected = scipy_stats.chi2_contingency(
        np.vstack([reference, window]), correction=False, lambda_="log-likelihood"
    )
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)


def test_g_test_with_an_empty_window_or_one_category_is_no_evidence() -> None:
    assert stats.g_test_counts(np.array([5.0, 5.0]), np.zeros(2)) == (0.0, 1.0)
    assert stats.g_test_counts(np.array([5.0, 0.0]), np.array([3.0, 0.0])) == (0.0, 1.0)


def test_psi_by_hand_with_an_empty_window_bin() -> None:
    reference_counts = np.array([2.0, 1.0, 1.0])
    window_counts = np.array([0.0, 2.0, 2.0])

    # Half a count added to each bin: reference (2.5, 1.5, 1.5)/5.5, window (0.5, 2.5, 2.5)/5.5.
    by_hand = (0.5 - 2.5) / 5.5 * math.log(0.5 / 2.5) + 2 * (2.5 - 1.5) / 5.5 * math.log(2.5 / 1.5)

    assert stats.psi(reference_counts, window_counts) == pytest.approx(by_hand)
    assert math.isfinite(stats.psi(np.array([10.0, 0.0]), np.array([0.0, 10.0])))


def test_psi_of_identical_shares_and_of_an_empty_window_is_zero() -> None:
    assert stats.psi(np.array([4.0, 2.0]), np.array([4.0, 2.0])) == pytest.approx(0.0)
    assert stats.psi(np.array([4.0, 2.0]), np.zeros(2)) == 0.0


def test_psi_bin_edges_at_reference_quantiles() -> None:
    edges = stats.psi_bin_edges(np.arange(1.0, 11.0), 5)

    # Linear-interpolated quantiles of 1..10 at 0.2, 0.4, 0.6, 0.8: 1 + q * 9.
    assert edges.tolist() == pytest.approx([2.8, 4.6, 6.4, 8.2])


def test_psi_bin_edges_collapse_on_ties() -> None:
    reference = np.array([0.0] * 8 + [1.0] * 2)

    edges = stats.psi_bin_edges(reference, 4)

    assert edges.tolist() == [0.0]
    assert stats.bin_counts(reference, edges).tolist() == [8.0, 2.0]


def test_psi_times_effective_size_approximates_the_chi_square_statistic() -> None:
    reference = np.array([3000.0, 2500.0, 2000.0, 1500.0, 1000.0])
    window = np.array([290.0, 265.0, 190.0, 150.0, 105.0])

    effective_n = window.sum() * reference.sum() / (window.sum() + reference.sum())
    chi_square = scipy_stats.chi2_contingency(np.vstack([reference, window]), correction=False)

    assert stats.psi(reference, window) * effective_n == pytest.approx(
        chi_square.statistic, rel=0.05
    )
    p_value = stats.psi_pvalue(stats.psi(reference, window), 1000, 10_000, 5)
    assert p_value == pytest.approx(chi_square.pvalue, rel=0.1)


def test_total_variation_by_hand() -> None:
    reference = np.array([50.0, 30.0, 20.0])
    window = np.array([10.0, 5.0, 5.0])

    # Window shares (0.5, 0.25, 0.25) against (0.5, 0.3, 0.2): half of 0 + 0.05 + 0.05.
    assert stats.total_variation(reference, window) == pytest.approx(0.05)
    assert stats.total_variation(reference, np.zeros(3)) == 0.0


@pytest.mark.parametrize(
    "p_values",
    [
        [0.001, 0.04, 0.03, 0.5, 0.012],
        [0.2, 0.3, 0.9],
        [0.0001, 0.0002, 0.0003],
        [0.01, 0.01, 0.04],
    ],
)
def test_holm_matches_statsmodels(p_values: list[float]) -> None:
    expected, *_ = multipletests(p_values, alpha=0.05, method="holm")

    rejected = stats.holm_reject(np.array(p_values), 0.05)

    assert rejected.tolist() == expected.tolist()


def test_holm_of_no_p_value_rejects_nothing() -> None:
    assert stats.holm_reject(np.empty(0), 0.05).size == 0


def _cusum_by_loop(
    start: np.ndarray, increments: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    value, peak = start.astype(float).copy(), start.astype(float).copy()
    for step in increments:
        for path in range(value.size):
            value[path] = min(cap[path], max(0.0, value[path] + step[path]))
            peak[path] = max(peak[path], value[path])
    return value, peak


@pytest.mark.parametrize("cap_value", [1e9, 3.0], ids=["below_cap", "cap_reached"])
def test_cusum_advance_matches_a_plain_loop(cap_value: float) -> None:
    rng = np.random.default_rng(7)
    increments = rng.normal(0.1, 1.0, size=(200, 4))
    start = np.array([0.0, 1.0, 2.5, 0.2])
    cap = np.full(4, cap_value)

    value, peak = stats.cusum_advance(start, increments, cap)

    expected_value, expected_peak = _cusum_by_loop(start, increments, cap)
    assert value.tolist() == pytest.approx(expected_value.tolist())
    assert peak.tolist() == pytest.approx(expected_peak.tolist())


def test_cusum_advance_over_no_step_keeps_the_start() -> None:
    value, peak = stats.cusum_advance(np.array([1.5]), np.empty((0, 1)), np.array([9.0]))

    assert value.tolist() == [1.5]
    assert peak.tolist() == [1.5]
