"""From Locust's statistics and the phase clock to the run manifest."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from driftgate.scenario import parse_scenario
from loadtests.results import build_manifest, client_stats, phase_records

SCENARIO = parse_scenario(
    {
        "name": "s",
        "description": "d",
        "target": {"url": "http://127.0.0.1:1"},
        "load": {
            "phases": [
                {"name": "a", "duration": "10s", "users": 1, "spawn_rate": 1},
                {
                    "name": "b",
                    "duration": "20s",
                    "users": 2,
                    "spawn_rate": 1,
                    "traffic": {"kind": "mean_shift", "size": 1, "features": {"random": 1}},
                },
                {"name": "c", "duration": "5s", "users": 1, "spawn_rate": 1},
            ]
        },
    }
)


@dataclass
class FakeEntry:
    """The attributes of locust.stats.StatsEntry that results.py reads (times in ms)."""

    name: str
    method: str
    num_requests: int
    num_failures: int
    total_rps: float
    times_ms: tuple[int, ...]

    def get_response_time_percentile(self, percent: float) -> int:
        ordered = sorted(self.times_ms)
        return ordered[max(round(percent * len(ordered)) - 1, 0)]


def test_completed_phases_have_exact_windows():
    records = phase_records(SCENARIO, start_s=1000.0)
    assert [(r.name, r.start_s, r.end_s) for r in records] == [
        ("a", 1000.0, 1010.0),
        ("b", 1010.0, 1030.0),
        ("c", 1030.0, 1035.0),
    ]
    assert records[1].traffic["resolved_features"] == list(
        SCENARIO.load.phases[1].traffic.feature_names()
    )


def test_a_stopped_run_cuts_its_phases_at_the_stop():
    records = phase_records(SCENARIO, start_s=1000.0, stopped_s=1015.5)
    assert [(r.name, r.start_s, r.end_s) for r in records] == [
        ("a", 1000.0, 1010.0),
        ("b", 1010.0, 1015.5),
    ]


def test_client_stats_totals_count_routes_not_version_rows():
    times = tuple(range(1, 101))
    predict = FakeEntry("/predict", "POST", 100, 3, 10.0, times)
    feedback = FakeEntry("/feedback", "POST", 50, 0, 5.0, times[:50])
    per_version = FakeEntry("/predict [v1]", "POST", 100, 3, 10.0, times)

    stats = client_stats([predict, feedback], [("v1", per_version)], {"POST /predict: HTTP 500": 3})

    assert stats.total_requests == 150
    assert stats.total_failures == 3
    rows = {row.name: row for row in stats.requests}
    assert rows["/predict"].p50_s == pytest.approx(0.050)
    assert rows["/predict"].p95_s == pytest.approx(0.095)
    assert rows["/predict"].p99_s == pytest.approx(0.099)
    assert rows["/predict [v1]"].model_version == "v1"
    assert "rounds" in stats.note


def test_manifest_of_an_interrupted_run():
    manifest = build_manifest(
        SCENARIO, "http://127.0.0.1:1", 1000.0, 1012.0, completed=False, stats=None
    )
    assert not manifest.completed
    assert manifest.phase("b").end_s == 1012.0
    assert manifest.ended_s == 1012.0
