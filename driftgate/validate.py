"""``driftgate validate``: check scenario and SLA files without running anything.

A file is a scenario if its top level has a key only scenarios have; otherwise it is read as
an SLA file (``objectives:`` and optional defaults). A scenario's objective windows are
laid over its planned phases and refused if too short to measure.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from driftgate.errors import DriftgateError
from driftgate.preflight import check_scenario_windows, objectives_of
from driftgate.scenario import load_scenario
from sla.errors import SlaError
from sla.objectives import load_sla_file

# Keys only a scenario has; an SLA file has objectives, defaults and prometheus.
SCENARIO_KEYS = frozenset({"load", "target", "name", "description", "seed", "feedback"})


def _looks_like_scenario(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        # Let the scenario loader report the unreadable file in its own words.
        return True
    return isinstance(data, dict) and bool(SCENARIO_KEYS & data.keys())


def validate_file(path: Path) -> tuple[str, bool]:
    """A one-line summary and True if ``path`` is valid; the one-line error and False if not."""
    try:
        if _looks_like_scenario(path):
            scenario = load_scenario(path)
            check_scenario_windows(scenario, objectives_of(scenario))
            phases = len(scenario.load.phases)
            return (
                f"{path}: scenario {scenario.name!r}, {phases} phases, "
                f"{scenario.duration_s:.0f} s of load, {len(scenario.objectives)} objectives",
                True,
            )
        sla_file = load_sla_file(path)
        return f"{path}: SLA file, {len(sla_file.objectives)} objectives", True
    except (DriftgateError, SlaError) as error:
        return str(error), False
