"""Each drift kind makes the drift it is asked for, checked against independent figures.

Expected values come from the raw training frame (pandas, ddof=0) and the raw input rows,
never from ``ReferenceStats`` or the drift code itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from driftgate.scenario import DRIFT_KINDS, parse_scenario
from loadtests.drift import (
    DRIFT_FUNCTIONS,
    PhaseProgress,
    ReferenceStats,
    Rows,
    apply_traffic,
    concept_drift,
    recurring_is_on,
)
from target_service.dataset import CLASSES, FEATURES_BY_NAME, load_split

NO_PROGRESS = PhaseProgress(elapsed_s=0.0, duration_s=60.0)


@pytest.fixture(scope="module")
def train():
    return load_split().train


@pytest.fixture(scope="module")
def reference(train) -> ReferenceStats:
    return ReferenceStats.from_frame(train)


@pytest.fixture(scope="module")
def holdout_rows() -> Rows:
    return Rows.from_frame(load_split().holdout)


def spec_of(traffic: dict | str) -> Any:
    """A traffic spec validated through the scenario model, as a run would get it."""
    scenario = parse_scenario(
        {
            "name": "t",
            "description": "d",
            "target": {"url": "http://127.0.0.1:1"},
            "load": {
                "phases": [
                    {
                        "name": "p",
                        "duration": "60s",
                        "users": 1,
                        "spawn_rate": 1,
                        "traffic": traffic,
                    }
                ]
            },
        }
    )
    return scenario.load.phases[0].traffic


def binomial_tolerance(share: float, count: int) -> float:
    """Five standard errors of a sample share: a false failure is a one-in-millions event."""
    return 5 * math.sqrt(max(share * (1 - share), 1e-4) / count)


def test_every_kind_has_a_function():
    assert set(DRIFT_FUNCTIONS) == set(DRIFT_KINDS)


def test_normal_leaves_rows_alone(holdout_rows, reference):
    out = apply_traffic(
        holdout_rows, spec_of("normal"), reference, np.random.default_rng(0), NO_PROGRESS
    )
    for name, values in holdout_rows.columns.items():
        assert np.array_equal(out.columns[name], values)
    assert np.array_equal(out.labels, holdout_rows.labels)


@pytest.mark.parametrize("size", [0.5, 1.0, 2.0])
def test_mean_shift_moves_the_mean_by_size_training_sds(holdout_rows, reference, train, size):
    features = ["chronic_diseases", "participation_incentive_log"]
    spec = spec_of({"kind": "mean_shift", "size": size, "features": features})

    out = apply_traffic(holdout_rows, spec, reference, np.random.default_rng(0), NO_PROGRESS)

    for name in features:
        train_sd = train[name].std(ddof=0)
        # Only valid if nothing was clipped at the API's bound; check that first.
        assert holdout_rows.columns[name].max() + size * train_sd < FEATURES_BY_NAME[name].valid_max
        moved_sd = (out.columns[name].mean() - holdout_rows.columns[name].mean()) / train_sd
        assert moved_sd == pytest.approx(size, rel=1e-9)
    untouched = "max_deductible_log"
    assert np.array_equal(out.columns[untouched], holdout_rows.columns[untouched])
    assert np.array_equal(out.labels, holdout_rows.labels)


def test_mean_shift_down_and_clipping_to_the_valid_range(reference, train):
    rng = np.random.default_rng(1)
    base = holdout_like(rng, chronic_mean=100.0)
    spec = spec_of(
        {"kind": "mean_shift", "size": 1.0, "direction": "down", "features": ["chronic_diseases"]}
    )
    out = apply_traffic(base, spec, reference, rng, NO_PROGRESS)
    train_sd = train["chronic_diseases"].std(ddof=0)
    assert (out.columns["chronic_diseases"].mean() - 100.0 + train_sd) == pytest.approx(
        base.columns["chronic_diseases"].mean() - 100.0, abs=1e-9
    )

    huge = spec_of({"kind": "mean_shift", "size": 100, "features": ["chronic_diseases"]})
    clipped = apply_traffic(base, huge, reference, rng, NO_PROGRESS)
    assert (
        clipped.columns["chronic_diseases"].max() == FEATURES_BY_NAME["chronic_diseases"].valid_max
    )


def holdout_like(
    rng: np.random.Generator, chronic_mean: float, chronic_sd: float = 5.0, count: int = 4000
) -> Rows:
    """Synthetic rows far from the API's bounds, so that no clipping interferes."""
    rows = Rows.from_frame(load_split().holdout.iloc[:count])
    return rows.with_column("chronic_diseases", rng.normal(chronic_mean, chronic_sd, len(rows)))


@pytest.mark.parametrize("size", [0.5, 2.0])
def test_scale_multiplies_the_spread_around_the_training_mean(reference, train, size):
    rng = np.random.default_rng(2)
    train_mean = train["chronic_diseases"].mean()
    base = holdout_like(rng, chronic_mean=train_mean, chronic_sd=1.0)
    spec = spec_of({"kind": "scale", "size": size, "features": ["chronic_diseases"]})

    out = apply_traffic(base, spec, reference, rng, NO_PROGRESS)

    before = base.columns["chronic_diseases"]
    after = out.columns["chronic_diseases"]
    assert np.allclose(after - train_mean, size * (before - train_mean))
    assert after.std() / before.std() == pytest.approx(size, rel=1e-9)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0])
def test_gradual_ramps_from_zero_to_size_over_the_phase(holdout_rows, reference, train, fraction):
    spec = spec_of({"kind": "gradual", "size": 2.0, "features": ["chronic_diseases"]})
    progress = PhaseProgress(elapsed_s=fraction * 80.0, duration_s=80.0)

    out = apply_traffic(holdout_rows, spec, reference, np.random.default_rng(0), progress)

    train_sd = train["chronic_diseases"].std(ddof=0)
    moved = out.columns["chronic_diseases"] - holdout_rows.columns["chronic_diseases"]
    assert moved.mean() / train_sd == pytest.approx(2.0 * fraction, abs=1e-9)


@pytest.mark.parametrize(
    ("elapsed_s", "expected_on"),
    [
        (0.0, True),
        (1.99, True),
        (2.0, False),
        (4.99, False),
        (5.0, True),
        (6.5, True),
        (7.5, False),
    ],
)
def test_recurring_is_on_for_on_then_off_for_off(
    holdout_rows, reference, train, elapsed_s, expected_on
):
    spec = spec_of(
        {
            "kind": "recurring",
            "size": 1.0,
            "on": "2s",
            "off": "3s",
            "features": ["chronic_diseases"],
        }
    )
    assert recurring_is_on(spec, elapsed_s) is expected_on

    out = apply_traffic(
        holdout_rows, spec, reference, np.random.default_rng(0), PhaseProgress(elapsed_s, 60.0)
    )
    moved = out.columns["chronic_diseases"] - holdout_rows.columns["chronic_diseases"]
    expected_sd = 1.0 if expected_on else 0.0
    assert moved.mean() / train["chronic_diseases"].std(ddof=0) == pytest.approx(expected_sd)


@pytest.mark.parametrize("size", [0.1, 0.4, 1.0])
def test_category_shift_moves_the_asked_share_to_the_category(holdout_rows, reference, size):
    spec = spec_of(
        {
            "kind": "category_shift",
            "size": size,
            "category": "poor",
            "features": ["self_rated_health"],
        }
    )

    out = apply_traffic(holdout_rows, spec, reference, np.random.default_rng(3), NO_PROGRESS)

    before = holdout_rows.columns["self_rated_health"]
    after = out.columns["self_rated_health"]
    were_other = before != "poor"
    moved_share = float(np.mean(after[were_other] == "poor"))
    assert moved_share == pytest.approx(size, abs=binomial_tolerance(size, int(were_other.sum())))
    assert np.array_equal(after[after != "poor"], before[after != "poor"])
    assert np.array_equal(out.columns["deductible_plan"], holdout_rows.columns["deductible_plan"])


def test_category_shift_to_an_unseen_category(holdout_rows, reference):
    spec = spec_of(
        {
            "kind": "category_shift",
            "size": 0.3,
            "category": "brand-new",
            "features": ["coinsurance_pct"],
        }
    )
    out = apply_traffic(holdout_rows, spec, reference, np.random.default_rng(4), NO_PROGRESS)
    share = float(np.mean(out.columns["coinsurance_pct"] == "brand-new"))
    assert share == pytest.approx(0.3, abs=binomial_tolerance(0.3, len(holdout_rows)))


@pytest.mark.parametrize("size", [0.2, 0.5, 0.9])
def test_prior_shift_sets_the_class_balance(holdout_rows, reference, size):
    spec = spec_of({"kind": "prior_shift", "size": size, "label": "no_visit"})

    out = apply_traffic(holdout_rows, spec, reference, np.random.default_rng(5), NO_PROGRESS)

    assert len(out) == len(holdout_rows)
    share = float(np.mean(out.labels == "no_visit"))
    assert share == pytest.approx(size, abs=binomial_tolerance(size, len(out)))
    # Resampling only: every output row is an input row with its own label.
    originals = set(
        zip(
            holdout_rows.columns["chronic_diseases"].tolist(),
            holdout_rows.columns["participation_incentive_log"].tolist(),
            holdout_rows.labels.tolist(),
            strict=True,
        )
    )
    produced = zip(
        out.columns["chronic_diseases"].tolist(),
        out.columns["participation_incentive_log"].tolist(),
        out.labels.tolist(),
        strict=True,
    )
    assert all(row in originals for row in produced)


def test_concept_drift_flips_labels_only_in_the_region(holdout_rows, reference, train):
    spec = spec_of(
        {"kind": "concept", "size": 1.0, "above_quantile": 0.75, "features": ["chronic_diseases"]}
    )

    out = concept_drift(holdout_rows, spec, reference, np.random.default_rng(6), NO_PROGRESS)

    for name, values in holdout_rows.columns.items():
        assert np.array_equal(out.columns[name], values)
    threshold = train["chronic_diseases"].quantile(0.75)
    region = holdout_rows.columns["chronic_diseases"] > threshold
    flipped = out.labels != holdout_rows.labels
    assert np.array_equal(flipped, region)
    assert set(out.labels[flipped]) <= set(CLASSES)


def test_concept_drift_flips_the_asked_share_of_the_region(holdout_rows, reference, train):
    spec = spec_of(
        {"kind": "concept", "size": 0.5, "above_quantile": 0.5, "features": ["chronic_diseases"]}
    )
    out = concept_drift(holdout_rows, spec, reference, np.random.default_rng(7), NO_PROGRESS)

    region = holdout_rows.columns["chronic_diseases"] > train["chronic_diseases"].quantile(0.5)
    flipped = out.labels != holdout_rows.labels
    assert not flipped[~region].any()
    share = float(flipped[region].mean())
    assert share == pytest.approx(0.5, abs=binomial_tolerance(0.5, int(region.sum())))


def test_random_features_resolve_to_features_of_the_right_kind():
    numeric = spec_of({"kind": "mean_shift", "size": 1, "features": {"random": 2, "seed": 11}})
    again = spec_of({"kind": "mean_shift", "size": 1, "features": {"random": 2, "seed": 11}})
    categorical = spec_of(
        {
            "kind": "category_shift",
            "size": 0.5,
            "category": "x",
            "features": {"random": 1, "seed": 11},
        }
    )

    assert numeric.feature_names() == again.feature_names()
    assert len(set(numeric.feature_names())) == 2
    assert all(FEATURES_BY_NAME[n].kind == "numeric" for n in numeric.feature_names())
    assert FEATURES_BY_NAME[categorical.feature_names()[0]].kind == "categorical"
