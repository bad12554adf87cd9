"""Which phase runs when, from the shared start."""

from __future__ import annotations

from driftgate.scenario import parse_scenario
from loadtests.schedule import PhaseSchedule


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
    assert plan.at(0.0).phase.name == "a"
    assert plan.at(9.999).phase.name == "a"
    assert plan.at(10.0).phase.name == "b"
    assert plan.at(10.0).start_offset_s == 10.0
    assert plan.at(69.999).phase.name == "b"
    assert plan.at(70.0) is None
