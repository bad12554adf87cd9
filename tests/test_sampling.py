"""Request bodies with their true labels, drifted for the phase and refreshed in time."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from driftgate.scenario import parse_scenario
from loadtests.drift import ReferenceStats, Rows
from loadtests.sampling import HoldoutPool, TrafficSource, encode_records
from loadtests.schedule import PhaseSchedule
from target_service.dataset import FEATURE_NAMES, load_split


@pytest.fixture(scope="module")
def pool() -> HoldoutPool:
    return HoldoutPool.from_dataset()


@pytest.fixture(scope="module")
def reference() -> ReferenceStats:
    return ReferenceStats.from_frame(load_split().train)


def schedule(*traffics) -> PhaseSchedule:
    phases = [
        {"name": f"p{i}", "duration": "10s", "users": 1, "spawn_rate": 1, "traffic": traffic}
        for i, traffic in enumerate(traffics)
    ]
    scenario = parse_scenario(
        {
            "name": "s",
            "description": "d",
            "target": {"url": "http://127.0.0.1:1"},
            "load": {"phases": phases},
        }
    )
    return PhaseSchedule.from_scenario(scenario)


def test_bodies_hold_exactly_the_api_features_with_the_row_values():
    holdout = load_split().holdout.iloc[:50]
    rows = Rows.from_frame(holdout)

    bodies = [orjson.loads(body) for body in encode_records(rows)]

    assert all(list(body) == list(FEATURE_NAMES) for body in bodies)
    for body, (_, row) in zip(bodies, holdout.iterrows(), strict=True):
        assert body["chronic_diseases"] == row["chronic_diseases"]
        assert body["self_rated_health"] == row["self_rated_health"]


def test_the_pool_is_the_holdout_never_the_training_rows(pool):
    split = load_split()
    assert len(pool.rows) == len(split.holdout)
    assert len(split.holdout) + len(split.train) == len(split.holdout.index) + len(split.train)


def test_labels_travel_with_their_bodies(reference):
    # Identical records with different labels exist, so tag each row to find its origin.
    rows = Rows.from_frame(load_split().holdout)
    tags = np.arange(len(rows)) * 1e-3
    tagged = HoldoutPool(rows.with_column("participation_incentive_log", tags))
    plan = schedule(
        {"kind": "concept", "size": 1.0, "above_quantile": 0.5, "features": ["chronic_diseases"]}
    )
    source = TrafficSource(tagged, reference, np.random.default_rng(0), block_size=64)
    threshold = load_split().train["chronic_diseases"].quantile(0.5)

    for _ in range(300):
        sample = source.sample(plan.phases[0], 1.0)
        record = orjson.loads(sample.body)
        origin = round(record["participation_incentive_log"] * 1000)
        flipped = sample.true_label != rows.labels[origin]
        assert flipped == (rows.columns["chronic_diseases"][origin] > threshold)


def test_a_new_phase_gets_fresh_rows_at_once(pool, reference):
    plan = schedule(
        "normal",
        {"kind": "category_shift", "size": 1.0, "category": "m", "features": ["self_rated_health"]},
    )
    source = TrafficSource(pool, reference, np.random.default_rng(1), block_size=256)

    source.sample(plan.phases[0], 9.9)
    first_of_next = orjson.loads(source.sample(plan.phases[1], 0.0).body)

    assert first_of_next["self_rated_health"] == "m"


def test_time_varying_drift_is_refreshed_within_the_block_age(
    pool,
    reference,
):
    plan = schedule({"kind": "gradual", "size": 4.0, "features": ["chronic_diseases"]})
    source = TrafficSource(
        pool, reference, np.random.default_rng(2), block_size=10_000, max_block_age_s=0.5
    )
    train_sd = load_split().train["chronic_diseases"].std(ddof=0)
    holdout_mean = load_split().holdout["chronic_diseases"].mean()

    def mean_shift_sd(elapsed_s: float) -> float:
        values = [
            orjson.loads(source.sample(plan.phases[0], elapsed_s).body)["chronic_diseases"]
            for _ in range(2000)
        ]
        return (float(np.mean(values)) - holdout_mean) / train_sd

    # 10 s phase ramping to 4 SD: 0.4 SD per second; sampling noise is about 0.05 SD.
    assert mean_shift_sd(0.0) == pytest.approx(0.0, abs=0.2)
    assert mean_shift_sd(5.0) == pytest.approx(2.0, abs=0.2)
    assert mean_shift_sd(5.3) == pytest.approx(2.0, abs=0.2)
    assert mean_shift_sd(9.0) == pytest.approx(3.6, abs=0.2)


def test_static_traffic_keeps_its_block_until_used_up(pool, reference):
    plan = schedule("normal")
    source = TrafficSource(pool, reference, np.random.default_rng(3), block_size=8)
    first = [source.sample(plan.phases[0], t).body for t in (0.0, 3.0, 6.0, 9.0)]
    again = TrafficSource(pool, reference, np.random.default_rng(3), block_size=8)
    assert first == [again.sample(plan.phases[0], 0.0).body for _ in range(4)]
