"""Benchmark of the drift monitor: false alarms, detection delays and evaluation cost.

Run from the repository root::

    PYTHONPATH=. python bench/drift_detection.py            # full: a few minutes on 2 cores
    PYTHONPATH=. python bench/drift_detection.py --quick    # smaller samples, about a minute

Simulation (seeded): the reference is the training split of ``target_service.dataset``; live
traffic is held-out rows drawn with replacement, at ``REQUEST_RATE_PER_S`` requests per second
with one evaluation per second, i.e. one ``evaluate()`` every ``EVALUATION_EVERY_REQUESTS``
requests. Settings are the service defaults (``DriftSettings()``).

Goals checked:
1. P(any alarm, any feature, over 10,000 normal requests) <= 1 %: estimated with a 95 %
   Clopper-Pearson interval, over several calibrations (the thresholds are random too).
2. A 0.5 sd mean shift of one numeric feature is detected within 150 drifted requests at the
   median and 250 at the 90th percentile; 3. a 1 sd shift within 100 at the 90th percentile.
Also: delays for a scale change and categorical frequency changes; a plain sliding-window KS at
p < 0.05 on the same normal traffic; the measured ``window_looks_factor``; evaluation cost of 30
features over a 1,000-value window next to plain scipy calls on the same data.

Results go to stdout; progress goes to stderr through logging.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from target_service.config import DriftSettings
from target_service.dataset import (
    CATEGORICAL_FEATURES,
    FEATURES,
    FEATURES_BY_NAME,
    NUMERIC_FEATURES,
    TARGET,
    FeatureSpec,
    load_split,
)
from target_service.drift import DriftDetector

logger = logging.getLogger("bench.drift_detection")

REQUEST_RATE_PER_S = 50
EVALUATION_EVERY_REQUESTS = 50
HORIZON_REQUESTS = 10_000
PLAIN_ALPHA = 0.05
WARM_UP_REQUESTS = 550
MAX_DRIFTED_REQUESTS = 2000
SCALE_FACTOR = 1.5
CATEGORY_REPLACED_SHARES = (0.25, 0.5)


@dataclass(frozen=True)
class Scale:
    """Sample sizes of one bench run."""

    calibrations: int
    runs_per_calibration: int
    delay_runs: int
    timing_repeats: int


FULL = Scale(calibrations=20, runs_per_calibration=100, delay_runs=200, timing_repeats=300)
QUICK = Scale(calibrations=4, runs_per_calibration=25, delay_runs=40, timing_repeats=100)


@dataclass(frozen=True)
class NullRun:
    """One run of normal traffic over the horizon."""

    any_alarm: bool
    cusum_alarm: bool
    window_alarm: bool
    min_bonferroni_p: float
    min_p_by_feature: tuple[float, ...]
    plain_alarm_looks: int
    plain_first_alarm_look: int
    looks: int


@dataclass(frozen=True)
class Scenario:
    """A drift applied to one feature from a chosen request on."""

    name: str
    feature: str
    kind: str
    size: float


def _holdout_rows(detector: DriftDetector) -> np.ndarray:
    holdout = load_split().holdout.drop(columns=[TARGET])
    return detector.encode(holdout.to_dict("records"))


def _new_detector(seed: int, settings: DriftSettings) -> DriftDetector:
    return DriftDetector(load_split().train, FEATURES, settings, np.random.default_rng(seed))


def _null_runs(calibration_seed: int, n_runs: int, settings: DriftSettings) -> list[NullRun]:
    calibrated = _new_detector(calibration_seed, settings)
    rows = _holdout_rows(calibrated)
    numeric = [i for i, spec in enumerate(FEATURES) if spec.kind == "numeric"]
    rng = np.random.default_rng(calibration_seed + 1_000_003)
    return [_null_run(copy.deepcopy(calibrated), rows, numeric, rng) for _ in range(n_runs)]


def _null_run(
    detector: DriftDetector, rows: np.ndarray, numeric: list[int], rng: np.random.Generator
) -> NullRun:
    any_alarm = cusum_alarm = window_alarm = False
    min_bonferroni_p = 1.0
    min_p_by_feature = np.ones(len(detector.feature_names))
    plain_looks, plain_first = 0, -1
    n_looks = HORIZON_REQUESTS // EVALUATION_EVERY_REQUESTS

    for look in range(n_looks):
        detector.observe(rows[rng.integers(0, rows.shape[0], EVALUATION_EVERY_REQUESTS)])
        report = detector.evaluate()
        if not report.enough_samples:
            continue
        p_values = np.array([f.p_value for f in report.features])
        sequential = np.array([f.sequential_score for f in report.features])
        detected = np.array([f.detected for f in report.features])

        any_alarm |= bool(detected.any())
        cusum_alarm |= bool((sequential >= 1.0).any())
        window_alarm |= bool((detected & (sequential < 1.0)).any())
        min_bonferroni_p = min(min_bonferroni_p, float(p_values.min() * p_values.size))
        min_p_by_feature = np.minimum(min_p_by_feature, p_values)
        if (p_values[numeric] < PLAIN_ALPHA).any():
            plain_looks += 1
            plain_first = look if plain_first < 0 else plain_first

    return NullRun(
        any_alarm,
        cusum_alarm,
        window_alarm,
        min_bonferroni_p,
        tuple(min_p_by_feature.tolist()),
        plain_looks,
        plain_first,
        n_looks,
    )


def _drifted(
    scenario: Scenario, rows: np.ndarray, detector: DriftDetector, rng: np.random.Generator
) -> np.ndarray:
    column = detector.feature_names.index(scenario.feature)
    out = rows.copy()
    reference = load_split().train[scenario.feature]
    if scenario.kind == "mean_shift":
        out[:, column] += scenario.size * float(reference.std(ddof=0))
    elif scenario.kind == "scale":
        mean = float(reference.mean())
        out[:, column] = mean + scenario.size * (out[:, column] - mean)
    else:
        n_categories = len(FEATURES_BY_NAME[scenario.feature].categories)
        replaced = rng.random(out.shape[0]) < scenario.size
        out[replaced, column] = rng.integers(0, n_categories, int(np.count_nonzero(replaced)))
    return out


def _delay_runs(
    scenario: Scenario, seed: int, n_runs: int, settings: DriftSettings
) -> list[tuple[int, str]]:
    calibrated = _new_detector(seed, settings)
    rows = _holdout_rows(calibrated)
    column = calibrated.feature_names.index(scenario.feature)
    rng = np.random.default_rng(seed + 7)
    return [
        _delay_run(copy.deepcopy(calibrated), scenario, rows, column, rng) for _ in range(n_runs)
    ]


def _delay_run(
    detector: DriftDetector,
    scenario: Scenario,
    rows: np.ndarray,
    column: int,
    rng: np.random.Generator,
) -> tuple[int, str]:
    """Drifted requests seen at the first evaluation that flags the feature, and by which test.

    The drift starts at a random point within an evaluation interval, as it would in a
    service evaluated every second. Returns (-1, "missed") if not flagged within
    MAX_DRIFTED_REQUESTS.
    """
    detector.observe(rows[rng.integers(0, rows.shape[0], WARM_UP_REQUESTS)])
    detector.evaluate()
    normal_before = int(rng.integers(0, EVALUATION_EVERY_REQUESTS))
    detector.observe(rows[rng.integers(0, rows.shape[0], normal_before)])

    drifted_seen = 0
    batch = EVALUATION_EVERY_REQUESTS - normal_before
    while drifted_seen < MAX_DRIFTED_REQUESTS:
        sample = rows[rng.integers(0, rows.shape[0], batch)]
        detector.observe(_drifted(scenario, sample, detector, rng))
        drifted_seen += batch
        verdict = detector.evaluate().features[column]
        if verdict.detected:
            return drifted_seen, "cusum" if verdict.sequential_score >= 1.0 else "window"
        batch = EVALUATION_EVERY_REQUESTS
    return -1, "missed"


def _scenarios() -> list[Scenario]:
    scenarios = [
        Scenario(f"mean +{size:g} sd", name, "mean_shift", size)
        for size in (0.5, 1.0)
        for name in NUMERIC_FEATURES
    ]
    scenarios += [Scenario("mean -0.5 sd", name, "mean_shift", -0.5) for name in NUMERIC_FEATURES]
    scenarios += [
        Scenario(f"scale x{SCALE_FACTOR:g}", name, "scale", SCALE_FACTOR)
        for name in NUMERIC_FEATURES
    ]
    scenarios += [
        Scenario(f"{share:.0%} values redrawn uniformly", name, "categorical", share)
        for share in CATEGORY_REPLACED_SHARES
        for name in CATEGORICAL_FEATURES
    ]
    return scenarios


def _clopper_pearson(successes: int, trials: int) -> tuple[float, float]:
    interval = scipy_stats.binomtest(successes, trials).proportion_ci(method="exact")
    return float(interval.low), float(interval.high)


def _report_false_alarms(runs: Sequence[NullRun], settings: DriftSettings) -> None:
    n = len(runs)
    any_alarms = sum(r.any_alarm for r in runs)
    low, high = _clopper_pearson(any_alarms, n)
    print(f"\n== 1. False alarms on normal traffic: {n} runs of {HORIZON_REQUESTS:,} requests ==")
    print(
        f"any alarm (CUSUM or window, any of {len(FEATURES)} features): {any_alarms}/{n} = "
        f"{any_alarms / n:.2%}  95% CI [{low:.2%}, {high:.2%}]  goal <= 1%"
    )
    for label, count in (
        ("CUSUM alarms", sum(r.cusum_alarm for r in runs)),
        ("window-test alarms", sum(r.window_alarm for r in runs)),
    ):
        c_low, c_high = _clopper_pearson(count, n)
        print(f"  {label}: {count}/{n} = {count / n:.2%}  95% CI [{c_low:.2%}, {c_high:.2%}]")

    looks = sum(r.looks for r in runs)
    plain_runs = sum(r.plain_alarm_looks > 0 for r in runs)
    plain_looks = sum(r.plain_alarm_looks for r in runs)
    first = [r.plain_first_alarm_look for r in runs if r.plain_first_alarm_look >= 0]
    print(
        f"plain sliding-window {settings.numeric_test.upper()} at p < {PLAIN_ALPHA} "
        "(numeric features, no correction): "
        f"alarm in {plain_runs / n:.1%} of runs, at {plain_looks / looks:.1%} of evaluations; "
        f"median first false alarm after "
        f"{(np.median(first) + 1) * EVALUATION_EVERY_REQUESTS / REQUEST_RATE_PER_S:.0f} s"
        if first
        else "plain KS: no alarm"
    )
    _report_looks_factor(runs, settings)


def _report_looks_factor(runs: Sequence[NullRun], settings: DriftSettings) -> None:
    """Effective independent evaluations per window length, from the window tests' minima.

    A run has a window alarm at family alpha a when min over evaluations of (m * min p) <= a
    (Holm's first step). With L effectively independent evaluations, P = 1 - exp(-L a).
    """
    minima = np.array([r.min_bonferroni_p for r in runs])
    windows_in_horizon = HORIZON_REQUESTS / settings.window_size
    window_budget = settings.false_alarm_budget * (1 - settings.sequential_budget_share)
    in_use = window_budget / (settings.window_looks_factor * windows_in_horizon)
    print(
        f"window tests: family alpha per evaluation in use {in_use:.3g} "
        f"(window_looks_factor={settings.window_looks_factor:g}); measured:"
    )
    for alpha in (in_use * 100, in_use * 30, in_use * 10, in_use * 3, in_use):
        rate = float(np.mean(minima <= alpha))
        factor = -math.log1p(-min(rate, 0.999)) / alpha / windows_in_horizon
        print(
            f"  family alpha {alpha:.3g}: runs alarmed {rate:.2%} -> "
            f"{factor:.1f} effective looks per window length"
        )
    for rate in (0.01, window_budget):
        alpha = float(np.quantile(minima, rate))
        factor = -math.log1p(-rate) / alpha / windows_in_horizon
        print(
            f"  family alpha that alarms {rate:.1%} of runs: {alpha:.3g} "
            f"-> window_looks_factor {factor:.1f} (from {round(rate * len(runs))} runs)"
        )
    by_feature = np.array([r.min_p_by_feature for r in runs])
    shares = (by_feature <= in_use / len(FEATURES)).mean(axis=0)
    named = zip(FEATURES, shares, strict=True)
    print(
        "  runs reaching p <= alpha/m, by feature: "
        + ", ".join(f"{spec.name} {share:.1%}" for spec, share in named)
    )


def _report_delays(results: dict[Scenario, list[tuple[int, str]]]) -> None:
    print(
        f"\n== 2./3. Detection delay in drifted requests "
        f"(evaluation every {EVALUATION_EVERY_REQUESTS} requests = 1 s at "
        f"{REQUEST_RATE_PER_S} req/s; cap {MAX_DRIFTED_REQUESTS}) =="
    )
    print(f"{'drift':<32} {'feature':<28} {'median':>7} {'p90':>7} {'missed':>7}  first by")
    for scenario, outcomes in results.items():
        delays = np.array([d if d >= 0 else np.inf for d, _ in outcomes], dtype=float)
        missed = int(np.isinf(delays).sum())
        by_cusum = sum(kind == "cusum" for _, kind in outcomes)
        by_window = sum(kind == "window" for _, kind in outcomes)
        print(
            f"{scenario.name:<32} {scenario.feature:<28} {_quantile(delays, 0.5):>7} "
            f"{_quantile(delays, 0.9):>7} {missed:>7}  cusum {by_cusum}, window {by_window}"
        )
    print("goals: mean +0.5 sd median <= 150 and p90 <= 250; mean +1 sd p90 <= 100")


def _quantile(delays: np.ndarray, q: float) -> str:
    value = float(np.quantile(delays, q, method="inverted_cdf"))
    return "inf" if math.isinf(value) else f"{value:.0f}"


def _wide_frame(
    n_features: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    train = load_split().train
    columns: dict[str, np.ndarray] = {}
    specs: list[FeatureSpec] = []
    for i in range(n_features):
        spec = FEATURES[i % len(FEATURES)]
        name = f"{spec.name}_{i}"
        columns[name] = train[spec.name].to_numpy()[rng.permutation(len(train))]
        specs.append(replace(spec, name=name))
    return pd.DataFrame(columns), specs


def _time_ms(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    elapsed = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        elapsed.append(time.perf_counter() - started)
    return float(np.median(elapsed) * 1e3), float(np.percentile(elapsed, 90) * 1e3)


def _report_cost(scale: Scale, seed: int, numeric_test: str) -> None:
    rng = np.random.default_rng(seed)
    frame, specs = _wide_frame(30, rng)
    settings = DriftSettings(window_size=1000, numeric_test=numeric_test)

    started = time.perf_counter()
    detector = DriftDetector(frame, specs, settings, rng)
    calibration_s = time.perf_counter() - started
    window_frame = frame.sample(1000, random_state=seed, replace=True)
    window = detector.encode(window_frame.to_dict("records"))
    detector.observe(window)

    def plain_scipy() -> None:
        for column, spec in enumerate(specs):
            if spec.kind == "numeric":
                scipy_stats.ks_2samp(frame[spec.name], window[:, column], method="asymp")
            else:
                reference = frame[spec.name].value_counts().reindex(spec.categories, fill_value=0)
                live = np.bincount(window[:, column].astype(int), minlength=len(spec.categories))
                scipy_stats.chi2_contingency(np.vstack([reference.to_numpy(), live]))

    ours_median, ours_p90 = _time_ms(detector.evaluate, scale.timing_repeats)
    plain_median, plain_p90 = _time_ms(plain_scipy, max(scale.timing_repeats // 5, 10))
    batch = window[:50]
    observe_median, _ = _time_ms(lambda: detector.observe(batch), scale.timing_repeats)
    n_numeric = sum(spec.kind == "numeric" for spec in specs)
    print(f"\n== 4. Cost: {len(specs)} features ({n_numeric} numeric), window of 1,000 ==")
    print(f"start-up calibration: {calibration_s:.2f} s")
    print(f"evaluate(): median {ours_median:.2f} ms, p90 {ours_p90:.2f} ms  goal <= 10 ms")
    print(
        f"plain scipy ks_2samp/chi2_contingency on the same window: median {plain_median:.2f} ms, "
        f"p90 {plain_p90:.2f} ms  (ratio plain/ours {plain_median / ours_median:.1f}x)"
    )
    print(f"observe() of 50 rows: median {observe_median * 1e3:.0f} us")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples, about a minute")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--numeric-test", choices=("ks", "psi"), default="ks")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    scale = QUICK if args.quick else FULL
    settings = DriftSettings(numeric_test=args.numeric_test)

    print(
        f"drift bench: seed {args.seed}, {'quick' if args.quick else 'full'}; traffic = held-out "
        f"rows resampled, {REQUEST_RATE_PER_S} req/s, evaluate() every "
        f"{EVALUATION_EVERY_REQUESTS} requests; settings {settings.model_dump()}"
    )
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        seeds = [args.seed + 101 * i for i in range(scale.calibrations)]
        runs = scale.runs_per_calibration
        null_jobs = [pool.submit(_null_runs, seed, runs, settings) for seed in seeds]
        scenarios = _scenarios()
        delay_jobs = {
            scenario: pool.submit(
                _delay_runs, scenario, args.seed + 7919 * i, scale.delay_runs, settings
            )
            for i, scenario in enumerate(scenarios)
        }
        null_runs = [run for job in null_jobs for run in job.result()]
        logger.info("false-alarm simulation done")
        delays = {scenario: job.result() for scenario, job in delay_jobs.items()}
        logger.info("delay simulation done")

    _report_false_alarms(null_runs, settings)
    _report_delays(delays)
    _report_cost(scale, args.seed, args.numeric_test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
