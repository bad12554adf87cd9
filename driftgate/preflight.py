"""Checks a scenario must pass before any process starts, so that no load is wasted.

A scenario's phase lengths are known in advance, so every objective's window can be laid
over the planned phases and refused now if it is too short to measure (fewer than four
scrape intervals, or a worst-1-minute statistic over a phase shorter than a minute) —
rather than after minutes of load.
"""

from __future__ import annotations

from driftgate.errors import ScenarioError
from driftgate.manifest import PhaseRecord, RunManifest
from driftgate.scenario import Scenario
from sla.check import resolve_windows
from sla.errors import SlaError
from sla.objectives import SlaFile, parse_sla
from sla.windows import check_window_length, extra_window_s

# driftgate run has Prometheus scrape (and evaluate rules) every second.
SCRAPE_INTERVAL_S = 1.0


def objectives_of(scenario: Scenario) -> SlaFile:
    """The scenario's objectives as an SLA file."""
    source = str(scenario.source_path or scenario.name)
    return parse_sla({"objectives": scenario.objectives}, source)


def planned_manifest(scenario: Scenario) -> RunManifest:
    """The phases laid end to end from time 0, as a run would record them."""
    phases = []
    start_s = 0.0
    for phase in scenario.load.phases:
        end_s = start_s + phase.duration
        phases.append(
            PhaseRecord(
                name=phase.name,
                start_s=start_s,
                end_s=end_s,
                users=phase.users,
                spawn_rate=phase.spawn_rate,
                traffic={"kind": "planned"},
            )
        )
        start_s = end_s
    return RunManifest(
        scenario=scenario.name,
        target_url="http://127.0.0.1",
        started_s=0.0,
        ended_s=start_s,
        phases=phases,
    )


def measurable_part(
    sla_file: SlaFile, manifest: RunManifest, scrape_interval_s: float = SCRAPE_INTERVAL_S
) -> tuple[SlaFile | None, list[str]]:
    """The objectives a cut-short run can still measure (None: none), and the others' names.

    An interrupted run may never reach a phase, or cut one too short to measure; those
    objectives are left out rather than failing the whole check. Baselines are left out too:
    they compare whole runs.
    """
    measurable, left_out = [], []
    for objective in sla_file.objectives:
        single = SlaFile(objectives=[objective], defaults=sla_file.defaults)
        try:
            if objective.kind == "baseline":
                raise SlaError("a baseline compares whole runs")
            windows = resolve_windows(single, manifest, now_s=manifest.ended_s)
            extra_s = extra_window_s(objective)
            for window in windows[objective.name]:
                check_window_length(window, scrape_interval_s, objective.name, extra_s)
        except SlaError:
            left_out.append(objective.name)
            continue
        measurable.append(objective)
    if not measurable:
        return None, left_out
    return SlaFile(objectives=measurable, defaults=sla_file.defaults), left_out


def check_scenario_windows(
    scenario: Scenario, sla_file: SlaFile, scrape_interval_s: float = SCRAPE_INTERVAL_S
) -> None:
    """Raise a one-line ScenarioError if an objective's window cannot be measured in this plan."""
    manifest = planned_manifest(scenario)
    try:
        windows = resolve_windows(sla_file, manifest, now_s=manifest.ended_s)
        for objective in sla_file.objectives:
            extra_s = extra_window_s(objective)
            for window in windows[objective.name]:
                check_window_length(window, scrape_interval_s, objective.name, extra_s)
    except SlaError as error:
        raise ScenarioError(f"{scenario.source_path or scenario.name}: {error}") from None
