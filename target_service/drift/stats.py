"""Two-sample statistics of the drift monitor, written for a window tested every second.

Every score here has ONE direction: higher means more drift, 0 means none.

===================  ==============================================  ==========================
function             score                                           p-value
===================  ==============================================  ==========================
ks_statistic         Kolmogorov-Smirnov D in [0, 1]                  ``ks_pvalue`` (Smirnov,
                                                                     asymptotic, as scipy's
                                                                     ``ks_2samp(method="asymp")``)
psi                  population stability index, >= 0               ``psi_pvalue`` (approximate
                                                                     chi-square, see there)
g_test_counts        likelihood-ratio chi-square (G) of two count    chi-square tail
                     rows
total_variation      total-variation distance in [0, 1]              (none; the score of a
                                                                     categorical feature)
===================  ==============================================  ==========================

Costs are bounded by the window, never by the reference: the reference is sorted (or binned, or
counted) once, and a window of ``w`` values costs O(w log w + w log n) against ``n`` reference
values.

The sequential side is ``cusum_advance``: a one-sided CUSUM path advanced over a batch of
increments with numpy (Lindley's recursion written as a running minimum), clamped from above so
that it clears after the drift ends. ``holm_reject`` corrects a set of p-values across features.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import stats

FloatArray = NDArray[np.float64]

PSI_PSEUDO_COUNT = 0.5
"""Added to every PSI bin count (reference and window) so that an empty bin gives no inf or NaN.

Half a count is Jeffreys' prior on the bin shares; against a reference of thousands of rows it
changes a reference share by less than 1e-4, and caps one empty window bin's PSI term.
"""


def ks_statistic(reference_sorted: FloatArray, window: FloatArray) -> float:
    """Two-sample Kolmogorov-Smirnov D between a sorted reference and a window (NaN-free).

    The supremum of |F_ref - F_window| is reached at a jump of one of the two step functions;
    between two window values F_window is flat and F_ref is monotone, so comparing both functions
    at each window value and just left of it is enough. Returns 0.0 if either sample is empty.
    """
    n_ref, n_win = reference_sorted.size, window.size
    if n_ref == 0 or n_win == 0:
        return 0.0

    window_sorted = np.sort(window)
    win_right = np.searchsorted(window_sorted, window_sorted, side="right") / n_win
    win_left = np.searchsorted(window_sorted, window_sorted, side="left") / n_win
    ref_right = np.searchsorted(reference_sorted, window_sorted, side="right") / n_ref
    ref_left = np.searchsorted(reference_sorted, window_sorted, side="left") / n_ref

    at_values = np.abs(ref_right - win_right).max()
    just_left = np.abs(ref_left - win_left).max()
    return float(max(at_values, just_left))


def ks_pvalue(
    statistic: FloatArray | float, n_window: FloatArray | int, n_reference: FloatArray | int
) -> FloatArray:
    """Asymptotic two-sided p-value of the two-sample KS D (Smirnov's distribution).

    The same formula as ``scipy.stats.ks_2samp(..., method="asymp")``: the one-sample KS
    distribution at the effective size round(n*m/(n+m)). With ties (discrete features) the
    test is conservative: p is too large, never too small. Vectorised over features.
    """
    statistic_arr, n_win, n_ref = np.broadcast_arrays(
        np.asarray(statistic, dtype=float),
        np.asarray(n_window, dtype=float),
        np.asarray(n_reference, dtype=float),
    )
    effective_n = np.round(n_win * n_ref / np.maximum(n_win + n_ref, 1.0))
    p_value = np.ones(statistic_arr.shape)
    testable = effective_n >= 1
    p_value[testable] = stats.kstwo.sf(statistic_arr[testable], effective_n[testable])
    return np.clip(p_value, 0.0, 1.0)


def psi_bin_edges(reference: FloatArray, n_bins: int) -> FloatArray:
    """Inner bin edges at the reference's quantiles, duplicates removed (discrete features).

    Bins are (-inf, e1], (e1, e2], ..., (e_last, inf): ``len(edges) + 1`` bins, each holding
    about 1/n_bins of the reference (fewer, larger bins when the reference has ties at the
    quantiles; a value equal to an edge, as the atoms of a discrete feature are, falls below it).
    """
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.empty(0)
    inner_quantiles = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.unique(np.quantile(finite, inner_quantiles))


def bin_counts(values: FloatArray, edges: FloatArray) -> FloatArray:
    """Counts of ``values`` (NaN-free) in the bins that ``edges`` define."""
    bins = np.searchsorted(edges, values, side="left")
    return np.bincount(bins, minlength=edges.size + 1).astype(float)


def smoothed_shares(counts: FloatArray, pseudo_count: float = PSI_PSEUDO_COUNT) -> FloatArray:
    """Bin shares after adding ``pseudo_count`` to every bin: never 0, always summing to 1."""
    smoothed = counts + pseudo_count
    return smoothed / smoothed.sum()


def psi(reference_counts: FloatArray, window_counts: FloatArray) -> float:
    """Population stability index sum((w - r) * ln(w / r)) over smoothed bin shares, >= 0.

    Both count rows are smoothed with ``PSI_PSEUDO_COUNT`` first, so an empty bin gives a large
    but finite term. Returns 0.0 for an empty window.
    """
    if window_counts.sum() == 0:
        return 0.0
    ref_share = smoothed_shares(reference_counts)
    win_share = smoothed_shares(window_counts)
    return float(np.sum((win_share - ref_share) * np.log(win_share / ref_share)))


def psi_pvalue(psi_value: float, n_window: int, n_reference: int, n_bins: int) -> float:
    """Approximate p-value of a PSI: PSI * n*m/(n+m) against chi-square with n_bins - 1 df.

    To second order PSI equals sum((w - r)^2 / r), the chi-square of homogeneity divided by the
    effective sample size, so this is a large-sample approximation; it is least accurate when
    bins hold fewer than about 5 expected window values.
    """
    if n_window == 0 or n_bins < 2:
        return 1.0
    effective_n = n_window * n_reference / (n_window + n_reference)
    return float(stats.chi2.sf(psi_value * effective_n, n_bins - 1))


def g_test_counts(reference_counts: FloatArray, window_counts: FloatArray) -> tuple[float, float]:
    """Likelihood-ratio chi-square test (G-test) of homogeneity of two count rows.

    G = 2 * sum(observed * ln(observed / expected)) over the 2 x k table, against chi-square
    with k - 1 degrees of freedom; the same as ``scipy.stats.chi2_contingency(table,
    correction=False, lambda_="log-likelihood")`` on the categories that are not empty in both
    rows. Chosen over Pearson's X^2 because the drift monitor acts on far tails (p ~ 1e-5):
    with a rare category (a few expected values per window), Pearson's p-values there are
    10 to 20 times too small, G's close to right (measured in bench/drift_detection.py).
    Returns (statistic, p-value); (0.0, 1.0) when fewer than two categories or an empty row remain.
    """
    keep = (reference_counts + window_counts) > 0
    table = np.vstack([reference_counts[keep], window_counts[keep]]).astype(float)
    row_totals = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(row_totals == 0):
        return 0.0, 1.0

    expected = np.outer(row_totals, table.sum(axis=0)) / table.sum()
    observed = table > 0
    statistic = float(2.0 * np.sum(table[observed] * np.log(table[observed] / expected[observed])))
    statistic = max(statistic, 0.0)
    degrees_of_freedom = table.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, degrees_of_freedom))


def total_variation(reference_counts: FloatArray, window_counts: FloatArray) -> float:
    """Total-variation distance 0.5 * sum(|w - r|) between the two rows' shares, in [0, 1].

    It is the largest difference, over any set of categories, in the share of values that fall
    in it. Returns 0.0 when either row is empty.
    """
    ref_total, win_total = reference_counts.sum(), window_counts.sum()
    if ref_total == 0 or win_total == 0:
        return 0.0
    return float(0.5 * np.abs(window_counts / win_total - reference_counts / ref_total).sum())


def holm_reject(p_values: FloatArray, family_alpha: float) -> NDArray[np.bool_]:
    """Holm's step-down rejections: which p-values are significant at family-wise ``family_alpha``.

    The smallest p-value is compared with alpha/m (Bonferroni); each next one with
    alpha/(m - 1), alpha/(m - 2), ... until the first that is not rejected.
    """
    m = p_values.size
    rejected = np.zeros(m, dtype=bool)
    order = np.argsort(p_values, kind="stable")
    limits = family_alpha / (m - np.arange(m))
    passing = p_values[order] <= limits
    n_rejected = m if passing.all() else int(np.argmin(passing))
    rejected[order[:n_rejected]] = True
    return rejected


def cusum_advance(
    start: FloatArray, increments: FloatArray, cap: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Advance one-sided CUSUM paths S_t = min(cap, max(0, S_(t-1) + x_t)) over a batch.

    ``start`` and ``cap`` have one value per path; ``increments`` is (steps, paths). Returns
    (the paths' values after the last step, each path's largest value during the batch).
    Without the cap, Lindley's recursion has the closed form S_t = W_t - min(0, min_(s<=t) W_s)
    with W_t = S_0 + x_1 + ... + x_t, so the whole batch is a cumulative sum; only when a path
    reaches its cap (during a drift) are the steps replayed one by one.
    """
    if increments.shape[0] == 0:
        return start.copy(), start.copy()

    walk = start + np.cumsum(increments, axis=0)
    paths = walk - np.minimum(0.0, np.minimum.accumulate(walk, axis=0))
    if np.all(paths <= cap):
        return paths[-1].copy(), np.maximum(start, paths.max(axis=0))

    value = start.copy()
    peak = start.copy()
    for step in increments:
        value = np.minimum(cap, np.maximum(0.0, value + step))
        peak = np.maximum(peak, value)
    return value, peak
