"""From what a load run measured to the run manifest (pure: no Locust, no I/O but the save).

Locust's statistics objects are read through the few attributes used here, so this module
does not import Locust (importing it patches the standard library with gevent).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from driftgate.manifest import ClientStats, PhaseRecord, RequestStats, RunManifest
from driftgate.scenario import Scenario
from loadtests.schedule import PhaseSchedule

PERCENTILES = (0.5, 0.95, 0.99)


class StatsEntryLike(Protocol):
    """The part of ``locust.stats.StatsEntry`` read here (times in milliseconds)."""

    name: str
    method: str
    num_requests: int
    num_failures: int

    @property
    def total_rps(self) -> float: ...

    def get_response_time_percentile(self, percent: float) -> int: ...


def phase_records(
    scenario: Scenario, start_s: float, stopped_s: float | None = None
) -> list[PhaseRecord]:
    """Each phase's exact UTC window; phases cut at ``stopped_s`` if the run stopped early."""
    records = []
    for scheduled in PhaseSchedule.from_scenario(scenario).phases:
        phase_start_s = start_s + scheduled.start_offset_s
        phase_end_s = start_s + scheduled.end_offset_s
        if stopped_s is not None:
            if phase_start_s >= stopped_s:
                break
            phase_end_s = min(phase_end_s, stopped_s)
        records.append(
            PhaseRecord(
                name=scheduled.phase.name,
                start_s=phase_start_s,
                end_s=phase_end_s,
                users=scheduled.phase.users,
                spawn_rate=scheduled.phase.spawn_rate,
                traffic=scheduled.phase.traffic.describe(),
            )
        )
    return records


def request_stats(entry: StatsEntryLike, model_version: str | None = None) -> RequestStats:
    """One manifest row from a Locust stats entry (percentiles converted to seconds)."""
    percentiles: list[float | None] = [None, None, None]
    if entry.num_requests > 0:
        percentiles = [entry.get_response_time_percentile(p) / 1000.0 for p in PERCENTILES]
    return RequestStats(
        name=entry.name,
        method=entry.method,
        model_version=model_version,
        requests=entry.num_requests,
        failures=entry.num_failures,
        requests_per_s=float(entry.total_rps),
        p50_s=percentiles[0],
        p95_s=percentiles[1],
        p99_s=percentiles[2],
    )


def client_stats(
    route_entries: Iterable[StatsEntryLike],
    version_entries: Iterable[tuple[str, StatsEntryLike]],
    errors: dict[str, int],
) -> ClientStats:
    """Per route and per model version, with totals over the routes only."""
    routes = [request_stats(entry) for entry in route_entries if entry.num_requests > 0]
    versions = [
        request_stats(entry, version) for version, entry in version_entries if entry.num_requests
    ]
    return ClientStats(
        total_requests=sum(row.requests for row in routes),
        total_failures=sum(row.failures for row in routes),
        requests=sorted(routes, key=_order) + sorted(versions, key=_order),
        errors=errors,
    )


def _order(row: RequestStats) -> tuple[str, str]:
    return (row.name, row.method)


def build_manifest(
    scenario: Scenario,
    target_url: str,
    start_s: float,
    ended_s: float,
    completed: bool,
    stats: ClientStats | None,
    locust_workers: int = 0,
    scenario_file: Path | None = None,
) -> RunManifest:
    """The manifest of a run that started at ``start_s`` (the shared phase clock)."""
    return RunManifest(
        scenario=scenario.name,
        scenario_file=str(scenario_file) if scenario_file is not None else None,
        target_url=target_url,
        started_s=start_s,
        ended_s=ended_s,
        locust_workers=locust_workers,
        phases=phase_records(scenario, start_s, None if completed else ended_s),
        client_stats=stats,
        completed=completed,
    )
