"""Time windows: turning an objective's window spec into exact UTC epoch start and end.

A window is a phase of the run manifest (exact start and end as the load generator recorded
them), a duration ending now or at a given time, or an explicit start and end. A window
shorter than ``MIN_SCRAPES_PER_WINDOW`` scrape intervals is refused: ``rate``/``increase``
need at least two samples inside the range and return nothing, or a badly extrapolated
figure, with fewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from driftgate.errors import ManifestError
from driftgate.manifest import RunManifest
from sla.errors import WindowError
from sla.objectives import WindowSpec

MIN_SCRAPES_PER_WINDOW = 4
WORST_WINDOW_S = 60.0


@dataclass(frozen=True)
class TimeWindow:
    """A closed interval of UTC epoch seconds with a label for the report."""

    start_s: float
    end_s: float
    label: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def range_selector(self) -> str:
        """The window length as a PromQL range duration (``300s`` or ``1500ms``)."""
        return promql_duration(self.duration_s)


def promql_duration(duration_s: float) -> str:
    """``300s`` for whole seconds, else ``1500ms``; PromQL accepts both."""
    milliseconds = round(duration_s * 1000)
    if milliseconds % 1000 == 0:
        return f"{milliseconds // 1000}s"
    return f"{milliseconds}ms"


def resolve_window(
    spec: WindowSpec | None,
    manifest: RunManifest | None,
    now_s: float,
    objective_name: str,
) -> TimeWindow:
    """The exact window of ``spec``; without a spec, the whole run of the manifest."""
    if spec is None:
        if manifest is None:
            raise WindowError(
                f"objectives.{objective_name}.window: no window given and no run manifest; "
                "set window: (phase: NAME, duration: 5m, or start/end), defaults.window, "
                "or pass --manifest"
            )
        return TimeWindow(manifest.started_s, manifest.ended_s, "whole run")

    if spec.phase is not None:
        return phase_window(spec.phase, manifest, objective_name)
    if spec.duration_s is not None:
        end_s = spec.end if spec.end is not None else now_s
        return TimeWindow(end_s - spec.duration_s, end_s, spec.describe())
    if spec.start is not None and spec.end is not None:
        return TimeWindow(spec.start, spec.end, spec.describe())
    raise WindowError(f"objectives.{objective_name}.window: empty window spec")


def phase_window(phase: str, manifest: RunManifest | None, objective_name: str) -> TimeWindow:
    """The window of phase ``phase`` from the run manifest."""
    if manifest is None:
        raise WindowError(
            f"objectives.{objective_name}: phase {phase!r} needs a run manifest; pass --manifest"
        )
    try:
        record = manifest.phase(phase)
    except ManifestError as error:
        raise WindowError(f"objectives.{objective_name}: {error}") from None
    return TimeWindow(record.start_s, record.end_s, f"phase {phase}")


def extra_window_s(objective: Any) -> float:
    """Time an objective needs beyond four scrapes: a worst-1-minute statistic needs a minute."""
    measures = (objective, getattr(objective, "left", None), getattr(objective, "right", None))
    worst = any(getattr(measure, "statistic", "") == "worst_1m" for measure in measures)
    return WORST_WINDOW_S if worst else 0.0


def check_window_length(
    window: TimeWindow, scrape_interval_s: float, objective_name: str, extra_s: float = 0.0
) -> None:
    """Refuse a window too short for ``rate``/``increase`` at this scrape interval.

    ``extra_s`` is added for statistics that need a sub-window (the worst 1-minute window).
    """
    needed_s = MIN_SCRAPES_PER_WINDOW * scrape_interval_s + extra_s
    if window.duration_s + 1e-9 < needed_s:
        because = (
            f"a {WORST_WINDOW_S:g}s sub-window plus " if extra_s else ""
        ) + f"{MIN_SCRAPES_PER_WINDOW} scrape intervals of {scrape_interval_s:g}s"
        raise WindowError(
            f"objectives.{objective_name}.window: {window.label} lasts "
            f"{window.duration_s:g}s, shorter than {because} = {needed_s:g}s; rate() and "
            "increase() over so few samples return nothing or a badly extrapolated value; "
            "widen the window"
        )


def expected_scrapes(window: TimeWindow, scrape_interval_s: float) -> int:
    """How many scrapes of one target fall inside the window at this interval."""
    return max(1, math.floor(window.duration_s / scrape_interval_s))
