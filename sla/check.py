"""``driftgate check``: evaluate an SLA against Prometheus and report the verdicts.

Order of work: read the SLA (and manifest, baseline), resolve every window (an unknown phase
or a too-short window is a usage error, found before any verdict), make sure Prometheus
answers (if not, every objective is inconclusive), measure each objective (baselines last,
as they read other objectives' values), cross-check Locust's client-side percentiles, and
write the outputs.

    report = run_check(Path("sla.yaml"), PrometheusSettings(url="http://127.0.0.1:9090"))
    sys.exit(exit_code(report))
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from rich.console import Console

from driftgate.errors import ManifestError
from driftgate.manifest import RequestStats, RunManifest
from sla.errors import (
    BaselineError,
    ObjectiveError,
    PrometheusAccessError,
    SlaError,
    WindowError,
)
from sla.evaluate import Evaluator, format_value, to_result, unmeasured
from sla.objectives import (
    CheckDefaults,
    LatencyMeasure,
    SlaFile,
    WindowSpec,
    describe_validation_error,
    load_sla_file,
)
from sla.prometheus import PrometheusClient, PrometheusSettings
from sla.report import (
    CheckReport,
    CrossCheckRow,
    RunInfo,
    count_verdicts,
    render_table,
    write_outputs,
)
from sla.verdicts import (
    EXIT_USAGE,
    ObjectiveResult,
    exit_code_for,
    overall_verdict,
)
from sla.windows import TimeWindow, check_window_length, extra_window_s, resolve_window

logger = logging.getLogger(__name__)

# A client p95 beyond CLIENT_GAP_FACTOR x the server's plus CLIENT_GAP_S is explained in a note.
CLIENT_GAP_FACTOR = 2.0
CLIENT_GAP_S = 0.005
CROSS_CHECK_METRIC = "http_request_duration_seconds"
REACHABILITY_QUERY = "vector(1)"
SECRET_FIELDS: tuple[str, ...] = ("bearer_token", "basic_auth_password")
# Kinds whose values are never negative: a negative baseline value of one is refused.
NON_NEGATIVE_KINDS: tuple[str, ...] = (
    "latency",
    "error_ratio",
    "throughput",
    "accuracy",
    "confidence",
    "drift_detected",
)


def prometheus_settings(
    sla: SlaFile,
    url: str | None = None,
    bearer_token: str | None = None,
    basic_auth: str | None = None,
    ca_file: Path | None = None,
    timeout_s: float | None = None,
    retries: int | None = None,
) -> PrometheusSettings:
    """Connection settings: command-line values over the SLA file's ``prometheus`` section.

    ``basic_auth`` is ``user:password``. Raises ObjectiveError (one line) when invalid.
    """
    defaults = sla.prometheus
    chosen_url = url or defaults.url
    if chosen_url is None:
        raise ObjectiveError("no Prometheus URL: pass --prometheus-url or set prometheus.url")
    values: dict[str, Any] = {"url": chosen_url}
    if bearer_token:
        values["bearer_token"] = SecretStr(bearer_token)
    if basic_auth:
        user, separator, password = basic_auth.partition(":")
        if not separator or not user:
            raise ObjectiveError("--basic-auth: expected USER:PASSWORD")
        values["basic_auth_user"] = user
        values["basic_auth_password"] = SecretStr(password)
    for name, given, default in (
        ("ca_file", ca_file, defaults.ca_file),
        ("timeout_s", timeout_s, defaults.timeout_s),
        ("retries", retries, defaults.retries),
    ):
        if given is not None or default is not None:
            values[name] = given if given is not None else default
    try:
        return PrometheusSettings(**values)
    except ValidationError as error:
        raise ObjectiveError(_settings_error(error)) from None


def _settings_error(error: ValidationError) -> str:
    """One line: the field, what is wrong, and the value (never a secret's)."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not field:
        # A check across fields: its message names the fields itself.
        return f"prometheus settings: {message}"
    shown = "" if field in SECRET_FIELDS else f", got {first.get('input')!r}"
    return f"prometheus settings: {field}: {message}{shown}"


def run_check(
    sla: SlaFile | Path | Sequence[Any],
    prometheus: PrometheusSettings,
    manifest: RunManifest | Path | None = None,
    baseline_report: Path | None = None,
    out_dir: Path | None = None,
    now_s: float | None = None,
    defaults: CheckDefaults | None = None,
) -> CheckReport:
    """Evaluate every objective and return the report (written to ``out_dir`` if given).

    ``sla`` is an SLA file path, a parsed SlaFile, or a list of objectives (a scenario's);
    ``defaults``, if given, replaces the SLA file's ``defaults`` section. Raises SlaError
    (usage: bad SLA, window, manifest or baseline); never for Prometheus trouble, which makes
    objectives inconclusive instead.
    """
    sla_file, source = _as_sla_file(sla)
    if defaults is not None:
        sla_file = sla_file.model_copy(update={"defaults": defaults})
    run_manifest = _as_manifest(manifest)
    baseline = _baseline_results(sla_file, baseline_report)
    now_s = time.time() if now_s is None else now_s
    windows = resolve_windows(sla_file, run_manifest, now_s)

    client = PrometheusClient(prometheus)
    try:
        evaluator = Evaluator(client, sla_file.defaults, baseline)
        results = _evaluate_all(client, evaluator, sla_file, windows, now_s)
        cross_check = _cross_check(evaluator, run_manifest)
    finally:
        client.close()

    report = _report(sla_file, source, prometheus, run_manifest, baseline_report, results)
    report.cross_check = cross_check
    report.notes += [row.note for row in cross_check if row.note]
    if out_dir is not None:
        write_outputs(report, out_dir)
    return report


def exit_code(report: CheckReport) -> int:
    """0 pass (warnings allowed), 1 a fail, 3 inconclusive (fail wins over inconclusive)."""
    return exit_code_for(report.verdict)


def check_command(
    sla_path: Path,
    prometheus_url: str | None = None,
    manifest_path: Path | None = None,
    baseline_path: Path | None = None,
    out_dir: Path | None = None,
    bearer_token: str | None = None,
    basic_auth: str | None = None,
    ca_file: Path | None = None,
    timeout_s: float | None = None,
    retries: int | None = None,
    console: Console | None = None,
    error_console: Console | None = None,
) -> int:
    """The whole ``driftgate check`` command: run, print the table, return the exit code.

    Usage errors are printed as one line on ``error_console`` (stderr) with EXIT_USAGE.
    """
    console = console or Console()
    error_console = error_console or Console(stderr=True)
    try:
        sla_file = load_sla_file(sla_path)
        settings = prometheus_settings(
            sla_file, prometheus_url, bearer_token, basic_auth, ca_file, timeout_s, retries
        )
        report = run_check(sla_file, settings, manifest_path, baseline_path)
    except (SlaError, ManifestError) as error:
        error_console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USAGE

    report.sla_source = str(sla_path)
    if out_dir is not None:
        write_outputs(report, out_dir)
    render_table(report, console)
    return exit_code(report)


# --- steps ---


def _as_sla_file(sla: SlaFile | Path | Sequence[Any]) -> tuple[SlaFile, str | None]:
    if isinstance(sla, SlaFile):
        return sla, None
    if isinstance(sla, Path):
        return load_sla_file(sla), str(sla)
    try:
        return SlaFile(objectives=list(sla)), None
    except ValidationError as error:
        raise ObjectiveError(describe_validation_error(error, "objectives")) from None


def _baseline_results(
    sla: SlaFile, baseline_report: Path | None
) -> dict[str, ObjectiveResult] | None:
    """The baseline report's results by name; BaselineError for an impossible value.

    Only the objectives a baseline objective refers to are checked: a NaN or infinite value,
    or a negative one of a kind that cannot be negative, means the report was tampered with
    or broken, and comparing against it would decide nothing.
    """
    if baseline_report is None:
        return None
    results = CheckReport.load(baseline_report).results_by_name()
    referred = {o.objective for o in sla.objectives if o.kind == "baseline"}
    for name in sorted(referred & results.keys()):
        value = results[name].value
        if value is None:
            continue
        if not math.isfinite(value):
            raise BaselineError(
                f"{baseline_report}: objective {name!r} has value {value}; "
                "a baseline value must be a finite number"
            )
        if value < 0 and results[name].kind in NON_NEGATIVE_KINDS:
            raise BaselineError(
                f"{baseline_report}: objective {name!r} has value {value:g}; "
                f"a {results[name].kind} value cannot be negative"
            )
    return results


def _as_manifest(manifest: RunManifest | Path | None) -> RunManifest | None:
    if isinstance(manifest, Path):
        try:
            return RunManifest.load(manifest)
        except ManifestError as error:
            raise WindowError(str(error)) from None
    return manifest


def resolve_windows(
    sla: SlaFile, manifest: RunManifest | None, now_s: float
) -> dict[str, list[TimeWindow]]:
    """Every objective's window(s), by objective name; WindowError if one cannot be had."""
    windows: dict[str, list[TimeWindow]] = {}
    for objective in sla.objectives:
        name = objective.name
        if objective.kind == "baseline":
            windows[name] = []
        elif objective.kind == "drift_detected":
            windows[name] = [_drift_search_window(objective, manifest, now_s)]
        elif objective.kind == "no_false_alarm" and objective.phases:
            windows[name] = [
                resolve_window(_phase_spec(phase), manifest, now_s, name)
                for phase in objective.phases
            ]
        else:
            spec = objective.window or sla.defaults.window
            windows[name] = [resolve_window(spec, manifest, now_s, name)]
    return windows


def _phase_spec(phase: str) -> WindowSpec:
    return WindowSpec(phase=phase)


def _drift_search_window(objective: Any, manifest: RunManifest | None, now_s: float) -> TimeWindow:
    """From the phase start to the later of ``within`` and the phase end (never past now)."""
    phase = resolve_window(_phase_spec(objective.phase), manifest, now_s, objective.name)
    end_s = min(max(phase.start_s + objective.within, phase.end_s), now_s)
    return TimeWindow(phase.start_s, end_s, f"phase {objective.phase} (+{objective.within:g}s)")


def _evaluate_all(
    client: PrometheusClient,
    evaluator: Evaluator,
    sla: SlaFile,
    windows: dict[str, list[TimeWindow]],
    now_s: float,
) -> list[ObjectiveResult]:
    unreachable = _unreachable(client, now_s)
    if unreachable is not None:
        return [
            _unmeasured(objective, windows[objective.name], unreachable)
            for objective in sla.objectives
        ]

    _check_window_lengths(evaluator, sla, windows)
    results: dict[str, ObjectiveResult] = {}
    ordered = sorted(sla.objectives, key=lambda objective: objective.kind == "baseline")
    for objective in ordered:
        results[objective.name] = evaluator.evaluate(objective, windows[objective.name], results)
    return [results[objective.name] for objective in sla.objectives]


def _unreachable(client: PrometheusClient, now_s: float) -> str | None:
    """Why Prometheus cannot be used, or None if it answers a trivial query."""
    try:
        client.instant(REACHABILITY_QUERY, now_s)
    except PrometheusAccessError as error:
        logger.warning("prometheus unusable: %s", error)
        return str(error)
    return None


def _unmeasured(objective: Any, windows: list[TimeWindow], reason: str) -> ObjectiveResult:
    return to_result(objective, windows, unmeasured(objective, reason), [])


def _check_window_lengths(
    evaluator: Evaluator, sla: SlaFile, windows: dict[str, list[TimeWindow]]
) -> None:
    """Refuse windows shorter than 4 scrape intervals (plus 1 minute for worst_1m)."""
    for objective in sla.objectives:
        extra_s = extra_window_s(objective)
        for window in windows[objective.name]:
            try:
                interval_s = evaluator.scrape_health(window).interval_s
            except PrometheusAccessError:
                # Measured later, where the same error makes the objective inconclusive.
                continue
            if interval_s is not None:
                check_window_length(window, interval_s, objective.name, extra_s)


def _cross_check(evaluator: Evaluator, manifest: RunManifest | None) -> list[CrossCheckRow]:
    """Locust's client-side percentiles beside Prometheus's, per route, over the whole run."""
    if manifest is None or manifest.client_stats is None:
        return []
    window = TimeWindow(manifest.started_s, manifest.ended_s, "whole run")
    rows = []
    for stats in manifest.client_stats.requests:
        if stats.model_version is None and stats.requests > 0:
            rows.append(_cross_check_row(evaluator, stats, window))
    return rows


def _cross_check_row(
    evaluator: Evaluator, stats: RequestStats, window: TimeWindow
) -> CrossCheckRow:
    server: dict[float, float | None] = {}
    queries: list[str] = []
    for quantile in (0.5, 0.95, 0.99):
        measure = LatencyMeasure(
            kind="latency",
            metric=CROSS_CHECK_METRIC,
            quantile=quantile,
            route=stats.name,
            labels={"method": stats.method},
            min_requests=1,
        )
        try:
            measured, ran = evaluator.measure_recorded(measure, window)
        except PrometheusAccessError as error:
            logger.warning("cross-check route=%s failed: %s", stats.name, error)
            break
        # A lower bound (a quantile in the +Inf bucket) is no server figure to compare with.
        server[quantile] = None if measured.above else measured.value
        queries += ran
    row = CrossCheckRow(
        route=stats.name,
        method=stats.method,
        requests=stats.requests,
        client_p50_s=stats.p50_s,
        client_p95_s=stats.p95_s,
        client_p99_s=stats.p99_s,
        server_p50_s=server.get(0.5),
        server_p95_s=server.get(0.95),
        server_p99_s=server.get(0.99),
        queries=queries,
    )
    row.note = _gap_note(row)
    return row


def _gap_note(row: CrossCheckRow) -> str | None:
    """Explain a client p95 far above the server's, rather than hide it."""
    client_s, server_s = row.client_p95_s, row.server_p95_s
    if client_s is None or server_s is None:
        return None
    if client_s <= CLIENT_GAP_FACTOR * server_s + CLIENT_GAP_S:
        return None
    return (
        f"{row.method} {row.route}: client p95 {format_value(client_s, 's')} is more than "
        f"{CLIENT_GAP_FACTOR:g}x the server's {format_value(server_s, 's')} + "
        f"{CLIENT_GAP_S * 1000:g} ms: the time is spent outside the request handler "
        "(queueing before a worker accepts the connection, the network, or the load "
        "generator's own CPU); the gate uses the server-side figure"
    )


def _report(
    sla: SlaFile,
    source: str | None,
    prometheus: PrometheusSettings,
    manifest: RunManifest | None,
    baseline_report: Path | None,
    results: list[ObjectiveResult],
) -> CheckReport:
    verdict = overall_verdict(results)
    run = None
    if manifest is not None:
        run = RunInfo(
            scenario=manifest.scenario,
            started_s=manifest.started_s,
            ended_s=manifest.ended_s,
            completed=manifest.completed,
        )
    notes = []
    if manifest is not None and not manifest.completed:
        notes.append("the run was interrupted; its phases end at the stop")
    return CheckReport(
        generated_at_s=time.time(),
        prometheus_url=prometheus.url,
        sla_source=source,
        run=run,
        baseline_report=str(baseline_report) if baseline_report else None,
        verdict=verdict,
        exit_code=exit_code_for(verdict),
        counts=count_verdicts(results),
        objectives=results,
        notes=notes,
    )
