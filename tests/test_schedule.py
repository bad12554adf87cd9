"""Which phase runs when, from the shared start."""

from __future__ import annotations

from driftgate.scenario import parse_scenario
from loadtests.schedule import PhaseSchedule


def phase_name(plan: PhaseSchedule, elapsed_s: float) -> str | None:
    scheduled = plan.at(elapsed_s)
    return None if scheduled is None else scheduled.phase.name


def test_phases_are_laid_end_to_end():
    scenario = parse_scenario(
        {
            "name": "s",
            "description": "d",
            "target": {"url": "http://127.0.0.1:1"},
            "load": {
                "phases": [
                    {"name": "a", "duration": "10s", "users": 1, "spawn_rate": 1},
                    {"name": "b", "duration": "1m", "users": 2, "spawn_rate": 1},
                ]
            },
        }
    )
    plan = PhaseSchedule.from_scenario(scenario)

    assert plan.duration_s == 70.0
    assert plan.at(-0.001) is None
    assert phase_name(plan, 0.0) == "a"
    assert phase_name(plan, 9.999) == "a"
    assert phase_name(plan, 10.0) == "b"
    assert phase_name(plan, 69.999) == "b"
    at_boundary = plan.at(10.0)
    assert at_boundary is not None and at_boundary.start_offset_s == 10.0
    assert plan.at(70.0) is None
