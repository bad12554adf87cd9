"""The phase schedule: which phase runs at a given moment, from one shared start time.

Every Locust process (master, workers, a local runner) derives the current phase from the
same UTC epoch start and the scenario's durations, so they all switch at the same moment
without messages at each boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftgate.scenario import Phase, Scenario


@dataclass(frozen=True)
class ScheduledPhase:
    """A phase with its offsets from the run start, in seconds."""

    index: int
    phase: Phase
    start_offset_s: float
    end_offset_s: float


@dataclass(frozen=True)
class PhaseSchedule:
    """The scenario's phases laid end to end."""

    phases: tuple[ScheduledPhase, ...]

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> PhaseSchedule:
        scheduled = []
        offset_s = 0.0
        for index, phase in enumerate(scenario.load.phases):
            scheduled.append(ScheduledPhase(index, phase, offset_s, offset_s + phase.duration))
            offset_s += phase.duration
        return cls(tuple(scheduled))

    @property
    def duration_s(self) -> float:
        return self.phases[-1].end_offset_s

    def at(self, elapsed_s: float) -> ScheduledPhase | None:
        """The phase running ``elapsed_s`` after the start; None before it and after the end."""
        if elapsed_s < 0:
            return None
        for scheduled in self.phases:
            if elapsed_s < scheduled.end_offset_s:
                return scheduled
        return None
