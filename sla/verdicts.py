"""Verdicts, one objective's result, and the exit codes they map to.

A verdict and a failure to measure are different things: ``fail`` means the measurement
breaks the objective; ``inconclusive`` means there was nothing trustworthy to measure (no
series, NaN, a quantile beyond the last finite bucket against a threshold above it, too few
requests, a scrape gap, Prometheus unreachable). No data is never a pass.

Exit codes (``driftgate check``)::

    EXIT_OK            0  every objective passed (warnings allowed)
    EXIT_FAIL          1  at least one objective of severity fail failed
    EXIT_USAGE         2  the SLA file, a window, the manifest or an option is invalid
    EXIT_INCONCLUSIVE  3  nothing failed, but at least one objective could not be measured

When objectives both fail and are inconclusive, the exit code is ``EXIT_FAIL``: a measured
regression is the stronger finding, and the report still lists every inconclusive objective.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class WindowRecord(BaseModel):
    """The exact window an objective was measured over."""

    model_config = ConfigDict(extra="forbid")

    label: str
    start_s: float
    end_s: float


class ObjectiveResult(BaseModel):
    """One objective's outcome, with everything needed to re-run and understand it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    severity: str
    verdict: Verdict
    value: float | None = Field(description="the measured value, in `unit`; null if none")
    unit: str = Field(description='"s", "ratio", "req/s", "pred/s" or "" (plain number)')
    threshold: str = Field(description='the bound applied, e.g. "<= 0.25"; in `unit`')
    min: float | None = Field(None, description="lower bound applied, in `unit`")
    max: float | None = Field(None, description="upper bound applied, in `unit`")
    reason: str = Field(description="one line: why this verdict")
    queries: list[str] = Field(description="the exact PromQL this objective ran, in order")
    window: WindowRecord | None = None
    details: dict[str, float | str | None] = Field(
        default_factory=dict, description="extra measurements (request count, delay, sides)"
    )


def breach_verdict(severity: str) -> Verdict:
    """What breaking an objective of ``severity`` means."""
    return Verdict.FAIL if severity == "fail" else Verdict.WARN


def overall_verdict(results: Iterable[ObjectiveResult]) -> Verdict:
    """fail beats inconclusive beats warn beats pass; an empty check is inconclusive."""
    verdicts = {result.verdict for result in results}
    for verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.WARN, Verdict.PASS):
        if verdict in verdicts:
            return verdict
    return Verdict.INCONCLUSIVE


def exit_code_for(verdict: Verdict) -> int:
    """The process exit code of an overall verdict."""
    return {
        Verdict.PASS: EXIT_OK,
        Verdict.WARN: EXIT_OK,
        Verdict.FAIL: EXIT_FAIL,
        Verdict.INCONCLUSIVE: EXIT_INCONCLUSIVE,
    }[verdict]
