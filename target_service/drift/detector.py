"""The drift detector: a sliding window and sequential statistics against the training data.

Use::

    detector = DriftDetector(split.train, FEATURES, settings.drift, np.random.default_rng(seed))
    rows = detector.encode(records)       # (n, n_features) float64
    detector.observe(rows)                # every request (or batch)
    report = detector.evaluate()          # every second: a DriftReport

Two detectors watch every numeric feature; a feature is *detected* when either fires:

* **CUSUM** (sequential, per request): a two-sided CUSUM of the value standardised by the
  reference mean and standard deviation, allowance ``cusum_k_sd`` (0.3 sd: between the best
  allowances for a half-sd and a one-sd mean shift). Each of the 2 x (numeric features)
  one-sided CUSUMs gets an equal part of ``sequential_budget_share * false_alarm_budget``,
  and its threshold ``h`` is calibrated at start-up by bootstrap from the reference rows
  (:mod:`target_service.drift.calibration`) so that P(any crossing within
  ``budget_horizon_requests`` requests) stays within that part, for live traffic whose mean is
  within ``cusum_mean_tolerance_sd`` of the reference's. The statistic is clamped at 2h, so it
  falls back below h about h / k requests after a drift ends. A crossing anywhere between two
  evaluations counts at the next evaluation.
* **Window test** (per evaluation): the last ``window_size`` values against the reference, with
  two-sample Kolmogorov-Smirnov (``numeric_test="ks"``, default) or PSI on reference-quantile
  bins (``"psi"``). Catches scale and shape changes that a mean CUSUM misses.

Categorical features have the window test only: the likelihood-ratio chi-square test (G-test)
of homogeneity between reference and window counts of the known categories (Pearson's X^2 gives
far too small p-values for rare categories in the tails where alarms are decided). A missing
value or an unseen category is counted in ``missing_or_unseen_share`` and left out of the test;
it never raises an alarm by itself (gate on the ``feature_missing_share`` metric for that).

The window tests of all features share the other part of the budget: Holm's correction across
features at a per-evaluation family alpha of

    window_budget / (window_looks_factor * budget_horizon_requests / window_size)

i.e. Bonferroni over the number of effectively independent evaluations in the horizon. Windows
tested every second overlap almost entirely, so that number is far below the number of
evaluations; ``window_looks_factor`` (looks per window length) was measured by simulation in
``bench/drift_detection.py`` (see ``docs/drift-monitor.md``).

Scores have one direction: higher means more drift (KS D in [0, 1], PSI >= 0, total-variation
distance in [0, 1] for categorical features). Below ``min_samples`` values in the window,
nothing is declared (the scores are still computed).

Edge cases: an empty window, an all-missing feature, a constant feature (in the reference or
the window) and unseen categories give finite scores and no alarm. A feature constant in the
reference has no CUSUM (no scale to standardise by); its window test still flags a window
whose values differ from that constant, which is a real change.

Not thread-safe: call ``observe`` and ``evaluate`` from one thread (or under one lock).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from target_service.config import DriftSettings
from target_service.dataset import FeatureSpec
from target_service.drift import stats
from target_service.drift.calibration import calibrate_cusum_pair
from target_service.drift.stats import FloatArray
from target_service.errors import ConfigError

logger = logging.getLogger(__name__)

UNSEEN_CATEGORY = -1.0
CUSUM_CAP_FACTOR = 2.0


@dataclass(frozen=True)
class FeatureDrift:
    """The drift verdict of one feature at one evaluation.

    ``score``: the window test's distance, higher means more drift (KS D, PSI, or total-variation
    distance). ``p_value``: the window test's p-value before correction. ``detected``: the window
    test (after correction) or the CUSUM fired. ``missing_or_unseen_share``: share of the window
    that is missing (or, for categorical features, an unseen category). ``test``: "ks", "psi" or
    "g_test". ``sequential_score``: the CUSUM's largest value since the previous evaluation
    over its threshold (>= 1 means it fired; 0 for categorical features).
    """

    feature: str
    score: float
    p_value: float
    detected: bool
    missing_or_unseen_share: float
    test: str
    sequential_score: float = 0.0


@dataclass(frozen=True)
class DriftReport:
    """All features' verdicts at one evaluation.

    ``dataset_drift_share``: share of features detected, in [0, 1]. ``window_size``: values in
    the window now. ``observed_total``: rows observed since start. ``enough_samples``: the window
    holds at least ``min_samples`` rows (otherwise nothing is detected).
    """

    features: tuple[FeatureDrift, ...]
    dataset_drift_share: float
    window_size: int
    observed_total: int
    enough_samples: bool


@dataclass(frozen=True)
class _NumericReference:
    column: int
    sorted_values: FloatArray
    mean: float
    sd: float
    psi_edges: FloatArray
    psi_counts: FloatArray


@dataclass(frozen=True)
class _CategoricalReference:
    column: int
    codes: dict[str, int]
    counts: FloatArray


class DriftDetector:
    """Sliding-window tests and CUSUMs of live feature values against the reference rows.

    Build it once at start-up (calibration takes well under a second for a few numeric
    features), then ``observe`` rows as they arrive and ``evaluate`` on a timer.
    """

    def __init__(
        self,
        reference: pd.DataFrame,
        features: Sequence[FeatureSpec],
        settings: DriftSettings,
        rng: np.random.Generator,
    ) -> None:
        started_s = time.perf_counter()
        self._features = _checked_features(reference, features)
        self._settings = settings
        self._numeric = tuple(
            _numeric_reference(column, reference[spec.name], settings.psi_bins)
            for column, spec in enumerate(self._features)
            if spec.kind == "numeric"
        )
        self._categorical = tuple(
            _categorical_reference(column, spec, reference[spec.name])
            for column, spec in enumerate(self._features)
            if spec.kind == "categorical"
        )
        self._numeric_columns = np.array([ref.column for ref in self._numeric], dtype=int)

        self._window = np.full((settings.window_size, len(self._features)), np.nan)
        self._window_count = 0
        self._window_next = 0
        self._observed_total = 0

        self._calibrate_cusums(reference, rng)
        self._window_family_alpha = _window_family_alpha(settings)
        logger.info(
            "drift detector calibrated features=%s window_family_alpha=%.3g elapsed_s=%.3f",
            len(self._features),
            self._window_family_alpha,
            time.perf_counter() - started_s,
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features, in the column order of ``encode``."""
        return tuple(spec.name for spec in self._features)

    @property
    def window_family_alpha(self) -> float:
        """Family-wise alpha of the window tests at one evaluation (Holm across features)."""
        return self._window_family_alpha

    @property
    def cusum_thresholds(self) -> dict[str, tuple[float, float]]:
        """Per numeric feature: (upward, downward) CUSUM thresholds in reference sd; inf = off."""
        n_numeric = len(self._numeric)
        return {
            self._features[ref.column].name: (
                float(self._cusum_threshold[i]),
                float(self._cusum_threshold[n_numeric + i]),
            )
            for i, ref in enumerate(self._numeric)
        }

    def encode(self, records: Sequence[Mapping[str, float | str | None]]) -> FloatArray:
        """Rows of floats: the numeric value (NaN if missing); for a categorical feature the
        category's index in the feature's categories, -1 if unseen, NaN if missing."""
        rows = np.full((len(records), len(self._features)), np.nan)
        categorical_by_column = {ref.column: ref for ref in self._categorical}
        for row_index, record in enumerate(records):
            for column, spec in enumerate(self._features):
                value = record.get(spec.name)
                if column in categorical_by_column:
                    rows[row_index, column] = _category_code(categorical_by_column[column], value)
                else:
                    rows[row_index, column] = _numeric_value(value)
        return rows

    def observe(self, rows: FloatArray) -> None:
        """Append encoded rows to the window and advance the CUSUMs by one step per row."""
        if rows.ndim != 2 or rows.shape[1] != len(self._features):
            raise ValueError(
                f"rows: expected shape (n, {len(self._features)}) from encode(), got {rows.shape}"
            )
        if rows.shape[0] == 0:
            return

        self._append_to_window(rows)
        self._observed_total += rows.shape[0]
        self._advance_cusums(rows)

    def evaluate(self) -> DriftReport:
        """Test the window now and collect the CUSUM alarms raised since the last evaluation."""
        window = self._window[: self._window_count]
        enough_samples = self._window_count >= self._settings.min_samples
        n_features = len(self._features)
        scores = np.zeros(n_features)
        p_values = np.ones(n_features)
        n_valid = np.zeros(n_features)
        tests = ["g_test"] * n_features

        self._numeric_window_tests(window, scores, p_values, n_valid, tests)
        self._categorical_window_tests(window, scores, p_values, n_valid)
        missing_share = self._missing_shares(window)

        testable = n_valid >= self._settings.min_samples
        tested_p_values = np.where(testable, p_values, 1.0)
        window_alarm = stats.holm_reject(tested_p_values, self._window_family_alpha)
        sequential_score = self._take_sequential_scores()
        detected = enough_samples & ((testable & window_alarm) | (sequential_score >= 1.0))

        verdicts = tuple(
            FeatureDrift(
                feature=spec.name,
                score=float(scores[column]),
                p_value=float(p_values[column]),
                detected=bool(detected[column]),
                missing_or_unseen_share=float(missing_share[column]),
                test=tests[column],
                sequential_score=float(sequential_score[column]),
            )
            for column, spec in enumerate(self._features)
        )
        return DriftReport(
            features=verdicts,
            dataset_drift_share=float(detected.mean()) if n_features else 0.0,
            window_size=self._window_count,
            observed_total=self._observed_total,
            enough_samples=bool(enough_samples),
        )

    def _calibrate_cusums(self, reference: pd.DataFrame, rng: np.random.Generator) -> None:
        settings = self._settings
        n_numeric = len(self._numeric)
        active = [ref for ref in self._numeric if ref.sd > 0.0]
        n_streams = 2 * len(active)
        stream_budget = (
            settings.false_alarm_budget * settings.sequential_budget_share / max(n_streams, 1)
        )

        thresholds = np.full(2 * n_numeric, np.inf)
        for i, ref in enumerate(self._numeric):
            if ref.sd == 0.0 or stream_budget <= 0.0:
                continue
            z_reference = (ref.sorted_values - ref.mean) / ref.sd
            upward, downward = calibrate_cusum_pair(
                z_reference,
                settings.cusum_k_sd,
                stream_budget,
                settings.budget_horizon_requests,
                rng,
                settings.cusum_mean_tolerance_sd,
            )
            thresholds[i] = upward.threshold
            thresholds[n_numeric + i] = downward.threshold

        self._cusum_threshold = thresholds
        self._cusum_cap = CUSUM_CAP_FACTOR * thresholds
        self._cusum_value = np.zeros(2 * n_numeric)
        self._cusum_peak = np.zeros(2 * n_numeric)
        self._numeric_mean = np.array([ref.mean for ref in self._numeric])
        # A constant feature gets scale 1 and z = 0 below, so its CUSUM stays at 0.
        self._numeric_scale = np.array([ref.sd if ref.sd > 0 else 1.0 for ref in self._numeric])
        self._numeric_constant = np.array([ref.sd == 0.0 for ref in self._numeric], dtype=bool)

    def _append_to_window(self, rows: FloatArray) -> None:
        capacity = self._window.shape[0]
        rows = rows[-capacity:]
        positions = (self._window_next + np.arange(rows.shape[0])) % capacity
        self._window[positions] = rows
        self._window_next = int((self._window_next + rows.shape[0]) % capacity)
        self._window_count = min(capacity, self._window_count + rows.shape[0])

    def _advance_cusums(self, rows: FloatArray) -> None:
        if self._numeric_columns.size == 0:
            return

        z = (rows[:, self._numeric_columns] - self._numeric_mean) / self._numeric_scale
        z[:, self._numeric_constant] = 0.0
        k_sd = self._settings.cusum_k_sd
        increments = np.concatenate([z - k_sd, -z - k_sd], axis=1)
        # A missing value leaves the CUSUM where it is.
        increments[np.isnan(increments)] = 0.0

        self._cusum_value, batch_peak = stats.cusum_advance(
            self._cusum_value, increments, self._cusum_cap
        )
        self._cusum_peak = np.maximum(self._cusum_peak, batch_peak)

    def _take_sequential_scores(self) -> FloatArray:
        n_numeric = len(self._numeric)
        ratio = self._cusum_peak / self._cusum_threshold
        per_numeric = np.maximum(ratio[:n_numeric], ratio[n_numeric:])
        self._cusum_peak = self._cusum_value.copy()

        scores = np.zeros(len(self._features))
        scores[self._numeric_columns] = per_numeric
        return scores

    def _numeric_window_tests(
        self,
        window: FloatArray,
        scores: FloatArray,
        p_values: FloatArray,
        n_valid: FloatArray,
        tests: list[str],
    ) -> None:
        use_psi = self._settings.numeric_test == "psi"
        ks_scores, ks_sizes, ks_references, ks_columns = [], [], [], []
        for ref in self._numeric:
            values = window[:, ref.column]
            values = values[~np.isnan(values)]
            n_valid[ref.column] = values.size
            tests[ref.column] = "psi" if use_psi else "ks"
            if use_psi:
                counts = stats.bin_counts(values, ref.psi_edges)
                scores[ref.column] = stats.psi(ref.psi_counts, counts)
                p_values[ref.column] = stats.psi_pvalue(
                    scores[ref.column], values.size, ref.sorted_values.size, ref.psi_counts.size
                )
            else:
                ks_scores.append(stats.ks_statistic(ref.sorted_values, values))
                ks_sizes.append(values.size)
                ks_references.append(ref.sorted_values.size)
                ks_columns.append(ref.column)

        if ks_columns:
            scores[ks_columns] = ks_scores
            p_values[ks_columns] = stats.ks_pvalue(
                np.array(ks_scores), np.array(ks_sizes), np.array(ks_references)
            )

    def _categorical_window_tests(
        self, window: FloatArray, scores: FloatArray, p_values: FloatArray, n_valid: FloatArray
    ) -> None:
        for ref in self._categorical:
            values = window[:, ref.column]
            known = values[values >= 0].astype(int)
            counts = np.bincount(known, minlength=ref.counts.size).astype(float)
            n_valid[ref.column] = known.size
            scores[ref.column] = stats.total_variation(ref.counts, counts)
            p_values[ref.column] = stats.g_test_counts(ref.counts, counts)[1]

    def _missing_shares(self, window: FloatArray) -> FloatArray:
        if window.shape[0] == 0:
            return np.zeros(len(self._features))
        # NaN compares False, so "not >= 0" is true for both missing and unseen (-1) codes.
        missing = np.isnan(window)
        for ref in self._categorical:
            missing[:, ref.column] = ~(window[:, ref.column] >= 0)
        return missing.mean(axis=0)


def _checked_features(
    reference: pd.DataFrame, features: Sequence[FeatureSpec]
) -> tuple[FeatureSpec, ...]:
    if not features:
        raise ConfigError("drift features: at least one feature is needed, got none")
    names = [spec.name for spec in features]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"drift features: duplicate names {duplicates}; each feature once")
    absent = [name for name in names if name not in reference.columns]
    if absent:
        raise ConfigError(
            f"drift reference: columns {absent} are missing; "
            f"reference columns: {', '.join(map(str, reference.columns))}"
        )
    for spec in features:
        if spec.kind not in ("numeric", "categorical"):
            raise ConfigError(
                f"drift features: {spec.name}: unknown kind {spec.kind!r}; "
                "valid kinds: numeric, categorical"
            )
    return tuple(features)


def _numeric_reference(column: int, values: pd.Series, psi_bins: int) -> _NumericReference:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    numbers = np.sort(numbers[np.isfinite(numbers)])
    if numbers.size == 0:
        raise ConfigError(f"drift reference: column {values.name!r} has no finite numeric value")
    edges = stats.psi_bin_edges(numbers, psi_bins)
    return _NumericReference(
        column=column,
        sorted_values=numbers,
        mean=float(numbers.mean()),
        sd=float(numbers.std()),
        psi_edges=edges,
        psi_counts=stats.bin_counts(numbers, edges),
    )


def _categorical_reference(
    column: int, spec: FeatureSpec, values: pd.Series
) -> _CategoricalReference:
    present = values.dropna().astype(str)
    categories = spec.categories or tuple(sorted(present.unique()))
    codes = {category: code for code, category in enumerate(categories)}
    known = present[present.isin(codes)].map(codes).to_numpy(dtype=int)
    if known.size == 0:
        raise ConfigError(
            f"drift reference: column {spec.name!r} holds none of its categories "
            f"{', '.join(categories)}"
        )
    counts = np.bincount(known, minlength=len(categories)).astype(float)
    return _CategoricalReference(column=column, codes=codes, counts=counts)


def _window_family_alpha(settings: DriftSettings) -> float:
    window_budget = settings.false_alarm_budget * (1.0 - settings.sequential_budget_share)
    independent_looks = max(
        1.0, settings.window_looks_factor * settings.budget_horizon_requests / settings.window_size
    )
    return window_budget / independent_looks


def _category_code(ref: _CategoricalReference, value: object) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    return float(ref.codes.get(str(value), UNSEEN_CATEGORY))


def _numeric_value(value: object) -> float:
    # bool is an int subclass, but True is no measurement.
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan
