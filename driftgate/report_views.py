"""What the HTML report shows of a check: verdict rows, threshold lines, the detection mark."""

from __future__ import annotations

from driftgate.errors import ManifestError
from driftgate.html_report import CrossCheckLine, VerdictRow
from driftgate.manifest import RunManifest
from driftgate.plots import Detection, Threshold
from sla.evaluate import format_result_value, quantile_name
from sla.objectives import DriftDetectedObjective, LatencyObjective, SlaFile
from sla.report import CheckReport
from sla.verdicts import ObjectiveResult, Verdict

# The latency figure plots the model call alone; other latency objectives have no curve there.
PLOTTED_LATENCY_METRIC = "inference_latency_seconds"


def verdict_row(result: ObjectiveResult) -> VerdictRow:
    return VerdictRow(
        name=result.name,
        verdict=result.verdict.value,
        measured=format_result_value(result),
        threshold=result.threshold,
        reason=result.reason,
        promql="\n".join(result.queries),
    )


def cross_check_lines(report: CheckReport) -> list[CrossCheckLine]:
    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1000

    return [
        CrossCheckLine(
            route=f"{row.method} {row.route}",
            requests=row.requests,
            client_ms=(ms(row.client_p50_s), ms(row.client_p95_s), ms(row.client_p99_s)),
            server_ms=(ms(row.server_p50_s), ms(row.server_p95_s), ms(row.server_p99_s)),
            note=row.note,
        )
        for row in report.cross_check
    ]


def latency_thresholds(sla_file: SlaFile) -> list[Threshold]:
    """A dashed line per latency objective with an upper bound, labelled with its quantile."""
    return [
        Threshold(f"{objective.name} ({quantile_name(objective.quantile)})", objective.max)
        for objective in sla_file.objectives
        if isinstance(objective, LatencyObjective)
        and objective.metric == PLOTTED_LATENCY_METRIC
        and objective.max is not None
    ]


def detection_of(sla_file: SlaFile, report: CheckReport, manifest: RunManifest) -> Detection | None:
    """The first drift-detected objective: when its phase began and the delay measured."""
    results = {result.name: result for result in report.objectives}
    for objective in sla_file.objectives:
        if not isinstance(objective, DriftDetectedObjective):
            continue
        try:
            injected_at_s = manifest.phase(objective.phase).start_s
        except ManifestError:
            return None
        result = results.get(objective.name)
        if result is None or result.verdict == Verdict.INCONCLUSIVE:
            return None
        return Detection(injected_at_s, result.value)
    return None
