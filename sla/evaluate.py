"""Measuring objectives against Prometheus and turning the measurements into verdicts.

Every objective is measured over its window, evaluated at the window end. Before a value is
trusted the window's scrapes are checked: ``up`` of ``scrape_job`` present, never 0, and at
least ``min_scrape_coverage`` of the expected scrapes. A measurement that cannot be trusted
(no series, NaN or infinity, fewer observations than ``min_requests``, a scrape gap,
Prometheus unreachable) is inconclusive, never a pass. A quantile in the +Inf bucket is known
only to lie above the highest finite bound B: a max at or below B is breached, a lone min at
or below B is met, and any other threshold is inconclusive.

How far a latency quantile can be off: Prometheus interpolates linearly inside the bucket
the quantile falls in, so the figure can be off by up to that bucket's width (the service's
buckets grow by at most 1.2x per step, so at most 20 %; with smooth distributions far less).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sla.errors import PrometheusAccessError
from sla.objectives import (
    DEFAULT_ROUTE,
    WORSE_DIRECTION,
    AccuracyMeasure,
    AlertObjective,
    BaselineObjective,
    CheckDefaults,
    ComparisonObjective,
    ConfidenceMeasure,
    DriftDetectedObjective,
    DriftSignal,
    ErrorRatioMeasure,
    LatencyMeasure,
    NoFalseAlarmObjective,
    PromqlMeasure,
    ThroughputMeasure,
)
from sla.prometheus import PrometheusClient, Sample, Series, step_for_range_s
from sla.queries import (
    alert_fired_in_window,
    bucket_increases,
    counter_increase,
    counter_rate,
    firing_alert,
    gauge_last,
    gauge_max,
    gauge_now,
    scrape_lowest_up,
    scrape_raw,
    scrape_samples,
    selector,
    server_error_increase,
    substitute_window,
    window_quantile,
    worst_minute_quantile,
)
from sla.verdicts import ObjectiveResult, Verdict, WindowRecord, breach_verdict
from sla.windows import TimeWindow, expected_scrapes

logger = logging.getLogger(__name__)

REQUEST_COUNTER = "http_request_duration_seconds_count"
PREDICTION_COUNTER = "prediction_count_total"
FEEDBACK_COUNTER = "feedback_count_total"
FEEDBACK_CORRECT_COUNTER = "feedback_correct_total"
ACCURACY_GAUGE = "model_accuracy"
CONFIDENCE_HISTOGRAM = "prediction_confidence"
# Longest stretch of raw `up` samples read to infer the scrape interval from their spacing.
INTERVAL_PROBE_S = 600.0
# When no scrape interval is known or inferable, range queries use this resolution.
FALLBACK_RESOLUTION_S = 1.0
# details[VALUE_BOUND] == VALUE_ABOVE: the reported value is a lower bound of the true value.
VALUE_BOUND = "value_bound"
VALUE_ABOVE = "above"

Measurable = (
    LatencyMeasure
    | ErrorRatioMeasure
    | ThroughputMeasure
    | AccuracyMeasure
    | ConfidenceMeasure
    | PromqlMeasure
)
Details = dict[str, float | str | None]


@dataclass(frozen=True)
class ScrapeHealth:
    """Whether a window's scrapes can be trusted, and the scrape interval seen in it."""

    interval_s: float | None
    problem: str | None
    queries: tuple[str, ...] = ()


@dataclass
class Measurement:
    """A measured value, or the reason there is none (``problem``)."""

    value: float | None
    problem: str | None = None
    details: Details = field(default_factory=dict)
    # True when ``value`` is only a lower bound (a quantile in the +Inf bucket): the true
    # value lies strictly above it; ``note`` then says so.
    above: bool = False
    note: str = ""


@dataclass
class Outcome:
    """A verdict with its value, bounds and reason, before it becomes an ObjectiveResult."""

    verdict: Verdict
    value: float | None
    reason: str
    unit: str = ""
    threshold: str = ""
    low: float | None = None
    high: float | None = None
    details: Details = field(default_factory=dict)


class Evaluator:
    """Measures objectives through one Prometheus client, recording every query it runs.

    ``baseline`` maps objective names to their results in an earlier report (None when no
    baseline report was given).
    """

    def __init__(
        self,
        client: PrometheusClient,
        defaults: CheckDefaults,
        baseline: dict[str, ObjectiveResult] | None = None,
    ) -> None:
        self._client = client
        self._defaults = defaults
        self._baseline_results = baseline
        self._health: dict[tuple[float, float], ScrapeHealth] = {}
        # The alerting rules Prometheus has loaded, read once (None: no rules API).
        self._alert_rules: list[str] | None = None
        self._alert_rules_read = False
        self._queries: list[str] = []

    # --- queries, recorded for the report ---

    def _instant(self, query: str, at_s: float) -> list[Sample]:
        self._queries.append(query)
        return self._client.instant(query, at_s)

    def _raw(self, query: str, at_s: float) -> list[Series]:
        self._queries.append(query)
        return self._client.instant_range_vector(query, at_s)

    def _range(self, query: str, start_s: float, end_s: float, step_s: float) -> list[Series]:
        self._queries.append(f"{query}  # range {start_s:.3f}..{end_s:.3f} step {step_s:g}s")
        return self._client.range(query, start_s, end_s, step_s)

    # --- scrape health ---

    def scrape_health(self, window: TimeWindow) -> ScrapeHealth:
        """Check the window's scrapes of ``scrape_job`` (cached per window).

        Raises PrometheusAccessError when Prometheus cannot answer.
        """
        key = (window.start_s, window.end_s)
        if key not in self._health:
            saved, self._queries = self._queries, []
            try:
                found = self._measure_scrape_health(window)
                self._health[key] = ScrapeHealth(
                    found.interval_s, found.problem, tuple(self._queries)
                )
            finally:
                self._queries = saved
        return self._health[key]

    def _measure_scrape_health(self, window: TimeWindow) -> ScrapeHealth:
        job = self._defaults.scrape_job
        interval_s = self._defaults.scrape_interval_s
        if job is None:
            return ScrapeHealth(interval_s, None)

        missing = (
            f'no up{{job="{job}"}} samples in {window.label}: the target was not scraped '
            "then (or defaults.scrape_job names another job)"
        )
        if interval_s is None:
            probe_s = min(window.duration_s, INTERVAL_PROBE_S)
            interval_s = _median_spacing_s(self._raw(scrape_raw(job, probe_s), window.end_s))
            if interval_s is None:
                return ScrapeHealth(None, missing)

        counts = self._instant(scrape_samples(job, window.duration_s), window.end_s)
        lowest = self._instant(scrape_lowest_up(job, window.duration_s), window.end_s)
        if not counts or not lowest:
            return ScrapeHealth(interval_s, missing)
        down = [sample for sample in lowest if sample.value < 1]
        if down:
            instance = down[0].labels.get("instance")
            target = f"target {instance}" if instance else "a target"
            problem = f"{target} of job {job} failed a scrape (up=0) in {window.label}"
            return ScrapeHealth(interval_s, problem)

        expected = expected_scrapes(window, interval_s)
        fewest = int(min(sample.value for sample in counts))
        coverage = self._defaults.min_scrape_coverage
        if fewest < coverage * expected:
            return ScrapeHealth(
                interval_s,
                f"scrape gap: {fewest} of {expected} expected scrapes of job {job} in "
                f"{window.label} (every {interval_s:g}s), below {coverage:.0%}",
            )
        return ScrapeHealth(interval_s, None)

    # --- objectives ---

    def evaluate(
        self,
        objective: Any,
        windows: Sequence[TimeWindow],
        results: dict[str, ObjectiveResult],
    ) -> ObjectiveResult:
        """The result of one objective over its window(s); ``results`` holds earlier ones.

        Drift and no-false-alarm objectives may span several windows (phases); every other
        kind has exactly one. Baseline objectives read the result they refer to from
        ``results``.
        """
        self._queries = []
        try:
            outcome = self._outcome(objective, windows, results)
        except PrometheusAccessError as error:
            outcome = unmeasured(objective, str(error))
        logger.info("objective name=%s verdict=%s", objective.name, outcome.verdict)
        return to_result(objective, windows, outcome, self._queries)

    def _outcome(
        self,
        objective: Any,
        windows: Sequence[TimeWindow],
        results: dict[str, ObjectiveResult],
    ) -> Outcome:
        if isinstance(objective, BaselineObjective):
            return self._baseline(objective, results)

        for window in windows:
            health = self.scrape_health(window)
            self._queries.extend(health.queries)
            if health.problem:
                return unmeasured(objective, health.problem)

        alert = _alert_of(objective)
        if alert is not None:
            problem = self._alert_rule_problem(alert)
            if problem is not None:
                return unmeasured(objective, problem)

        if isinstance(objective, DriftDetectedObjective):
            return self._drift_detected(objective, windows[0])
        if isinstance(objective, NoFalseAlarmObjective):
            return self._no_false_alarm(objective, windows)
        if isinstance(objective, AlertObjective):
            return self._alert(objective, windows[0])
        if isinstance(objective, ComparisonObjective):
            return self._comparison(objective, windows[0])
        return self._bounded(objective, windows[0])

    def _bounded(self, objective: Any, window: TimeWindow) -> Outcome:
        low, high = objective.min, objective.max
        unit = unit_of(objective)
        outcome = unmeasured(objective, "")
        measurement = self.measure(objective, window)
        outcome.details = measurement.details
        if measurement.problem is not None or measurement.value is None:
            outcome.reason = measurement.problem or "no value"
            return outcome

        value = measurement.value
        outcome.value = value
        if measurement.above:
            return _bounded_above(objective, outcome, measurement, window)
        within = (low is None or value >= low) and (high is None or value <= high)
        outcome.verdict = Verdict.PASS if within else breach_verdict(objective.severity)
        relation = "within" if within else "outside"
        outcome.reason = (
            f"{describe_measure(objective)} = {format_value(value, unit)} over {window.label}, "
            f"{relation} {outcome.threshold}"
        )
        return outcome

    def _alert_rule_problem(self, alert: str) -> str | None:
        """Why ``alert``'s absence from ALERTS would prove nothing; None if its rule is loaded.

        An alert whose rule is not loaded never fires, so "did not fire" would pass silently.
        """
        if not self._alert_rules_read:
            self._alert_rules = self._client.alert_rule_names()
            self._alert_rules_read = True
        names = self._alert_rules
        if names is None:
            return (
                f"cannot verify that an alerting rule {alert} is loaded: {self._client.url} "
                "has no rules API (HTTP 404 on /api/v1/rules)"
            )
        if alert not in names:
            return (
                f"no alerting rule named {alert} is loaded in Prometheus, so its silence proves "
                f"nothing; loaded alerts: {', '.join(names) or '(none)'}"
            )
        return None

    # --- measures ---

    def measure_recorded(
        self, measure: Measurable, window: TimeWindow
    ) -> tuple[Measurement, list[str]]:
        """``measure`` outside any objective, with the queries it ran (for cross-checks)."""
        saved, self._queries = self._queries, []
        try:
            return self.measure(measure, window), self._queries
        finally:
            self._queries = saved

    def measure(self, measure: Measurable, window: TimeWindow) -> Measurement:
        """The value of one measure over the window (or why there is none)."""
        if isinstance(measure, LatencyMeasure):
            labels = dict(measure.labels)
            if measure.model_version is not None:
                labels["model_version"] = measure.model_version
            if measure.metric == "http_request_duration_seconds":
                labels["route"] = measure.route or DEFAULT_ROUTE
            return self._histogram_quantile(measure, measure.metric, labels, window)
        if isinstance(measure, ConfidenceMeasure):
            labels = _with_version(measure.labels, measure.model_version)
            return self._histogram_quantile(measure, CONFIDENCE_HISTOGRAM, labels, window)
        if isinstance(measure, ErrorRatioMeasure):
            return self._error_ratio(measure, window)
        if isinstance(measure, ThroughputMeasure):
            return self._throughput(measure, window)
        if isinstance(measure, AccuracyMeasure):
            return self._accuracy(measure, window)
        return self._promql(measure, window)

    def _min_requests(self, measure: Any) -> int:
        own = getattr(measure, "min_requests", None)
        return int(own) if own is not None else self._defaults.min_requests

    def _histogram_quantile(
        self,
        measure: LatencyMeasure | ConfidenceMeasure,
        metric: str,
        labels: dict[str, str],
        window: TimeWindow,
    ) -> Measurement:
        buckets = self._instant(bucket_increases(metric, labels, window.duration_s), window.end_s)
        histogram = _cumulative_histogram(buckets)
        if histogram is None:
            series = selector(f"{metric}_bucket", labels)
            return Measurement(None, f"no series match {series} in the window")
        total = histogram[-1][1]
        details: Details = {"observations": round(total, 3)}
        minimum = self._min_requests(measure)
        if not math.isfinite(total) or total < minimum:
            shown = f"{total:.0f}" if math.isfinite(total) else str(total)
            return Measurement(
                None,
                f"only {shown} observations of {metric} in the window, fewer than "
                f"min_requests={minimum}: too few to estimate a quantile",
                details,
            )

        quantile = measure.quantile
        statistic = getattr(measure, "statistic", "window")
        if statistic == "worst_1m":
            step_s = self._resolution_s(window)
            query = worst_minute_quantile(quantile, metric, labels, window.duration_s, step_s)
        else:
            query = window_quantile(quantile, metric, labels, window.duration_s)
        samples = self._instant(query, window.end_s)
        value = _single_value(samples)
        if value is None:
            return Measurement(None, f"histogram_quantile of {metric} returned no value", details)
        if not math.isfinite(value):
            return Measurement(None, f"histogram_quantile of {metric} returned {value}", details)

        finite = [(bound, count) for bound, count in histogram if math.isfinite(bound)]
        if finite:
            top_bound, top_count = finite[-1]
            details["highest_finite_bucket"] = top_bound
            beyond = quantile * total > top_count
            if value >= top_bound or (statistic == "window" and beyond):
                # Only a lower bound is known: the quantile is some observation above it.
                details[VALUE_BOUND] = VALUE_ABOVE
                details["beyond_highest_finite_bucket"] = round(total - top_count, 3)
                return Measurement(
                    top_bound,
                    None,
                    details,
                    above=True,
                    note=(
                        f"the {quantile_name(quantile)} lies in the +Inf bucket of {metric}: "
                        f"the true value is above the highest finite bound {top_bound:g} "
                        f"({total - top_count:.0f} of {total:.0f} observations beyond it)"
                    ),
                )
        return Measurement(value, None, details)

    def _error_ratio(self, measure: ErrorRatioMeasure, window: TimeWindow) -> Measurement:
        labels = {**measure.labels, "route": measure.route}
        total = _single_value(
            self._instant(
                counter_increase(REQUEST_COUNTER, labels, window.duration_s), window.end_s
            )
        )
        if total is None or not math.isfinite(total):
            return Measurement(None, f"no {REQUEST_COUNTER} series for route {measure.route}")
        minimum = self._min_requests(measure)
        details: Details = {"requests": round(total, 3)}
        if total < minimum:
            return Measurement(
                None,
                f"only {total:.0f} requests on {measure.route} in the window, fewer than "
                f"min_requests={minimum}",
                details,
            )

        errors_query = server_error_increase(REQUEST_COUNTER, labels, window.duration_s)
        errors = _single_value(self._instant(errors_query, window.end_s))
        # No 5xx series at all means no 5xx answer was ever recorded on this route.
        errors = 0.0 if errors is None else errors
        details["server_errors"] = round(errors, 3)
        return _finite(errors / total, details, "error ratio")

    def _throughput(self, measure: ThroughputMeasure, window: TimeWindow) -> Measurement:
        if measure.model_version is not None:
            labels = _with_version(measure.labels, measure.model_version)
            query = counter_rate(PREDICTION_COUNTER, labels, window.duration_s)
        else:
            labels = {**measure.labels, "route": measure.route}
            query = counter_rate(REQUEST_COUNTER, labels, window.duration_s)
        value = _single_value(self._instant(query, window.end_s))
        if value is None:
            return Measurement(None, "no request counter series in the window")
        return _finite(value, {}, "throughput")

    def _accuracy(self, measure: AccuracyMeasure, window: TimeWindow) -> Measurement:
        labels = _with_version(measure.labels, measure.model_version)
        if measure.source == "gauge":
            samples = self._instant(
                gauge_last(ACCURACY_GAUGE, labels, window.duration_s), window.end_s
            )
            if len(samples) != 1:
                return Measurement(
                    None,
                    f"{ACCURACY_GAUGE} has {len(samples)} series in the window; "
                    "exactly one is needed (set model_version)",
                )
            return _finite(samples[0].value, {}, ACCURACY_GAUGE)

        count_query = counter_increase(FEEDBACK_COUNTER, labels, window.duration_s)
        count = _single_value(self._instant(count_query, window.end_s))
        if count is None or not math.isfinite(count):
            return Measurement(None, f"no {FEEDBACK_COUNTER} series in the window")
        minimum = self._min_requests(measure)
        details: Details = {"feedbacks": round(count, 3)}
        if count < minimum:
            return Measurement(
                None,
                f"only {count:.0f} feedbacks in the window, fewer than min_requests={minimum}",
                details,
            )
        correct_query = counter_increase(FEEDBACK_CORRECT_COUNTER, labels, window.duration_s)
        correct = _single_value(self._instant(correct_query, window.end_s))
        if correct is None:
            return Measurement(None, f"no {FEEDBACK_CORRECT_COUNTER} series in the window", details)
        return _finite(correct / count, details, "accuracy")

    def _promql(self, measure: PromqlMeasure, window: TimeWindow) -> Measurement:
        query = substitute_window(measure.query, window.duration_s)
        samples = self._instant(query, window.end_s)
        if len(samples) != 1:
            return Measurement(
                None, f"the query returned {len(samples)} series; it must return exactly one"
            )
        return _finite(samples[0].value, {}, "the query")

    def _resolution_s(self, window: TimeWindow) -> float:
        interval_s = self._health.get((window.start_s, window.end_s))
        if interval_s is not None and interval_s.interval_s is not None:
            return interval_s.interval_s
        return self._defaults.scrape_interval_s or FALLBACK_RESOLUTION_S

    # --- drift, alerts ---

    def _drift_detected(self, objective: DriftDetectedObjective, window: TimeWindow) -> Outcome:
        signal = objective.signal
        outcome = unmeasured(objective, "")
        step_s = step_for_range_s(window.duration_s, self._resolution_s(window))
        series = self._range(_signal_query(signal), window.start_s, window.end_s, step_s)
        points = sorted(point for one in series for point in one.points)
        if signal.metric is not None and not points:
            outcome.reason = f"no samples of {signal.metric} in {window.label}"
            return outcome

        outcome.details = {"resolution_s": step_s, "searched_s": round(window.duration_s, 3)}
        if points and points[0][0] <= window.start_s + step_s and _signal_on(signal, points[0][1]):
            # Already on when the phase began: left over from earlier traffic, so no delay can
            # be attributed to this phase's drift; neither a pass nor a fail is proven.
            outcome.reason = (
                f"{signal.describe()} was already true when phase {objective.phase} started; "
                "the detection cannot be attributed to this phase (lengthen the phase before it)"
            )
            return outcome

        first = next((time_s for time_s, value in points if _signal_on(signal, value)), None)
        if first is None:
            outcome.verdict = breach_verdict(objective.severity)
            outcome.reason = (
                f"{signal.describe()} never became true in the {window.duration_s:g}s after "
                f"phase {objective.phase} started"
            )
            return outcome

        delay_s = max(0.0, first - window.start_s)
        outcome.value = delay_s
        in_time = delay_s <= objective.within
        outcome.verdict = Verdict.PASS if in_time else breach_verdict(objective.severity)
        relation = "within" if in_time else "later than"
        outcome.reason = (
            f"{signal.describe()} became true {delay_s:.1f}s after phase {objective.phase} "
            f"started (+/- {step_s:g}s), {relation} {objective.within:g}s"
        )
        return outcome

    def _no_false_alarm(
        self, objective: NoFalseAlarmObjective, windows: Sequence[TimeWindow]
    ) -> Outcome:
        signal = objective.signal
        level = signal.above if signal.above is not None else 0.0
        outcome = unmeasured(objective, "")
        worst: tuple[float, str] | None = None
        for window in windows:
            peak = self._signal_peak(signal, window)
            if peak is None:
                outcome.reason = f"no samples of {signal.metric} in {window.label}"
                return outcome
            outcome.details[f"peak {window.label}"] = peak
            if worst is None or peak > worst[0]:
                worst = (peak, window.label)

        if worst is None:
            outcome.reason = "no window to check"
            return outcome
        peak, label = worst
        outcome.value = peak
        alarmed = _signal_on(signal, peak)
        outcome.verdict = breach_verdict(objective.severity) if alarmed else Verdict.PASS
        where = ", ".join(window.label for window in windows)
        if signal.alert is not None:
            outcome.reason = (
                f"alert {signal.alert} fired in {label}"
                if alarmed
                else f"alert {signal.alert} never fired in {where}"
            )
        else:
            outcome.reason = (
                f"{signal.metric} reached {peak:g} in {label}, above {level:g}: a false alarm"
                if alarmed
                else f"{signal.metric} peaked at {peak:g} in {where}, never above {level:g}"
            )
        return outcome

    def _signal_peak(self, signal: DriftSignal, window: TimeWindow) -> float | None:
        """The highest signal level in the window; for an alert 1 if it fired, else 0."""
        if signal.alert is not None:
            query = alert_fired_in_window(signal.alert, signal.labels, window.duration_s)
            fired = _single_value(self._instant(query, window.end_s))
            return 1.0 if fired is not None else 0.0
        query = gauge_max(signal.metric or "", signal.labels, window.duration_s)
        return _single_value(self._instant(query, window.end_s))

    def _alert(self, objective: AlertObjective, window: TimeWindow) -> Outcome:
        query = alert_fired_in_window(objective.alert, objective.labels, window.duration_s)
        fired = _single_value(self._instant(query, window.end_s)) is not None
        wanted = objective.expect == "fired"
        happened = "fired" if fired else "did not fire"
        outcome = unmeasured(objective, "")
        outcome.verdict = Verdict.PASS if fired == wanted else breach_verdict(objective.severity)
        outcome.value = 1.0 if fired else 0.0
        outcome.reason = (
            f"alert {objective.alert} {happened} in {window.label} (expected: {objective.expect})"
        )
        return outcome

    # --- comparison, baseline ---

    def _comparison(self, objective: ComparisonObjective, window: TimeWindow) -> Outcome:
        left = self.measure(objective.left, window)
        right = self.measure(objective.right, window)
        unit = unit_of(objective.left)
        outcome = unmeasured(objective, "")
        outcome.details = {"left": left.value, "right": right.value}
        for side, measured in (("left", left), ("right", right)):
            if measured.problem is not None or measured.value is None:
                outcome.reason = f"{side} side: {measured.problem or 'no value'}"
                return outcome

        left_value, right_value = left.value or 0.0, right.value or 0.0
        bound = objective.factor * right_value + objective.offset
        outcome.value = left_value
        if left.above:
            outcome.details[VALUE_BOUND] = VALUE_ABOVE
        outcome.threshold = (
            f"{objective.op} {_bound_formula(objective)} {_equals(right.above)} "
            f"{format_value(bound, unit)}"
        )
        if objective.op in ("<=", "<"):
            outcome.high = bound
        else:
            outcome.low = bound
        holds = _comparison_holds(left, objective.op, bound, right.above)
        if holds is None:
            notes = "; ".join(side.note for side in (left, right) if side.above)
            outcome.reason = (
                f"{notes}; with only a bound known, {describe_measure(objective.left)} "
                f"{objective.op} {_bound_formula(objective)} cannot be decided"
            )
            return outcome
        outcome.verdict = Verdict.PASS if holds else breach_verdict(objective.severity)
        outcome.reason = (
            f"{describe_measure(objective.left)} {_equals(left.above)} "
            f"{format_value(left_value, unit)} "
            f"{objective.op if holds else 'breaks ' + objective.op} "
            f"{_bound_formula(objective)} {_equals(right.above)} {format_value(bound, unit)} "
            f"({describe_measure(objective.right)} {_equals(right.above)} "
            f"{format_value(right_value, unit)})"
        )
        if left.above or right.above:
            outcome.reason += "; " + "; ".join(side.note for side in (left, right) if side.above)
        return outcome

    def _baseline(
        self, objective: BaselineObjective, results: dict[str, ObjectiveResult]
    ) -> Outcome:
        current = results[objective.objective]
        worse = objective.worse or WORSE_DIRECTION[current.kind]
        self._queries.extend(current.queries)
        outcome = Outcome(Verdict.INCONCLUSIVE, None, "", current.unit)
        if current.value is None:
            outcome.reason = f"objective {objective.objective} has no value in this run"
            return outcome
        if self._baseline_results is None:
            outcome.reason = "no baseline report given (pass --baseline report.json)"
            return outcome
        earlier_result = self._baseline_results.get(objective.objective)
        unusable = _unusable_baseline(earlier_result)
        if unusable is not None or earlier_result is None or earlier_result.value is None:
            outcome.reason = (
                f"no usable baseline value for objective {objective.objective}: {unusable}"
            )
            return outcome

        earlier = earlier_result.value
        factor = 1 + objective.max_regression if worse == "higher" else 1 - objective.max_regression
        limit = earlier * factor
        unit = current.unit
        sign = "+" if worse == "higher" else "-"
        outcome.value = current.value
        outcome.details = {"baseline": earlier, "change": _relative_change(current.value, earlier)}
        outcome.threshold = (
            f"{'<=' if worse == 'higher' else '>='} {format_value(limit, unit)} "
            f"(baseline {sign} {objective.max_regression:.0%})"
        )
        if worse == "higher":
            outcome.high = limit
        else:
            outcome.low = limit
        above = current.details.get(VALUE_BOUND) == VALUE_ABOVE
        if above:
            outcome.details[VALUE_BOUND] = VALUE_ABOVE
        ok = _within_baseline(current.value, above, limit, worse)
        shown = f"{'>' if above else '='} {format_value(current.value, unit)}"
        if ok is None:
            outcome.reason = (
                f"{objective.objective} {shown} (only a lower bound: the value lies in the "
                f"+Inf bucket) cannot be compared with the limit {format_value(limit, unit)}"
            )
            return outcome
        outcome.verdict = Verdict.PASS if ok else breach_verdict(objective.severity)
        outcome.reason = (
            f"{objective.objective} {shown} vs baseline "
            f"{format_value(earlier, unit)} ({outcome.details['change']}), "
            f"{'within' if ok else 'beyond'} the allowed {objective.max_regression:.0%} "
            f"({worse} is worse)"
        )
        if earlier_result.verdict == Verdict.FAIL:
            outcome.reason += "; baseline run failed this objective"
        return outcome


# --- helpers ---


def _alert_of(objective: Any) -> str | None:
    """The alert an objective reads from ALERTS, if any."""
    if isinstance(objective, AlertObjective):
        return objective.alert
    if isinstance(objective, DriftDetectedObjective | NoFalseAlarmObjective):
        return objective.signal.alert
    return None


def _bounded_above(
    objective: Any, outcome: Outcome, measurement: Measurement, window: TimeWindow
) -> Outcome:
    """Bounds against a value known only to lie strictly above ``measurement.value``.

    A max at or below that bound is surely breached, a lone min at or below it surely met;
    any other threshold cannot be decided from the histogram.
    """
    bound = measurement.value or 0.0
    low, high = objective.min, objective.max
    measured = (
        f"{describe_measure(objective)} > {format_value(bound, outcome.unit)} over {window.label}"
    )
    if high is not None and high <= bound:
        outcome.verdict = breach_verdict(objective.severity)
        outcome.reason = f"{measured}, outside {outcome.threshold}: {measurement.note}"
    elif high is None and (low is None or low <= bound):
        outcome.verdict = Verdict.PASS
        outcome.reason = f"{measured}, within {outcome.threshold}: {measurement.note}"
    else:
        outcome.verdict = Verdict.INCONCLUSIVE
        outcome.reason = (
            f"{measurement.note}; the threshold {outcome.threshold} lies above that bound, "
            "so the histogram cannot tell whether it holds"
        )
    return outcome


def to_result(
    objective: Any, windows: Sequence[TimeWindow], outcome: Outcome, queries: list[str]
) -> ObjectiveResult:
    """The report entry of an objective's outcome."""
    return ObjectiveResult(
        name=objective.name,
        kind=objective.kind,
        severity=objective.severity,
        verdict=outcome.verdict,
        value=outcome.value,
        unit=outcome.unit,
        threshold=outcome.threshold,
        min=outcome.low,
        max=outcome.high,
        # Prometheus error texts may span lines; a reason is one line.
        reason=" ".join(outcome.reason.split()),
        queries=queries,
        window=_record(windows[0]) if len(windows) == 1 else None,
        details=outcome.details,
    )


def unmeasured(objective: Any, reason: str) -> Outcome:
    """An inconclusive outcome carrying the objective's unit and threshold."""
    outcome = Outcome(Verdict.INCONCLUSIVE, None, reason)
    kind = objective.kind
    if kind == "drift_detected":
        outcome.unit, outcome.high = "s", objective.within
        outcome.threshold = f"<= {format_value(objective.within, 's')}"
    elif kind == "no_false_alarm":
        level = objective.signal.above
        outcome.threshold = "never fired" if level is None else f"<= {level:g}"
        outcome.high = 0.0 if level is None else level
    elif kind == "alert":
        outcome.threshold = "fired" if objective.expect == "fired" else "not fired"
    elif kind == "comparison":
        outcome.unit = unit_of(objective.left)
        outcome.threshold = f"{objective.op} {_bound_formula(objective)}"
    elif kind != "baseline":
        outcome.unit = unit_of(objective)
        outcome.low, outcome.high = objective.min, objective.max
        outcome.threshold = _bounds_text(objective.min, objective.max, outcome.unit)
    return outcome


def unit_of(measure: Any) -> str:
    """The unit of a measure's value, as the report shows it."""
    kind = measure.kind
    if kind == "latency":
        return "s"
    if kind in ("error_ratio", "accuracy", "confidence"):
        return "ratio"
    if kind == "throughput":
        return "pred/s" if measure.model_version is not None else "req/s"
    return ""


def format_value(value: float | None, unit: str) -> str:
    """A value for people: seconds (ms below 1 s), percent for ratios.

    ``0.25`` s is ``250.0 ms``, ``2.0`` s is ``2.0 s``, and from 10 s on whole seconds: ``20 s``.
    """
    if value is None:
        return "-"
    if unit == "s":
        if abs(value) < 1:
            return f"{value * 1000:.1f} ms"
        return f"{value:.1f} s" if abs(value) < 10 else f"{value:.0f} s"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit:
        return f"{value:.3g} {unit}"
    return f"{value:.4g}"


def format_result_value(result: ObjectiveResult) -> str:
    """A result's value for people, ``> 2.0 s`` when it is only a lower bound."""
    text = format_value(result.value, result.unit)
    above = result.value is not None and result.details.get(VALUE_BOUND) == VALUE_ABOVE
    return f"> {text}" if above else text


def quantile_name(quantile: float) -> str:
    """``p95`` for 0.95, ``p99.9`` for 0.999."""
    return f"p{quantile * 100:g}"


def describe_measure(measure: Any) -> str:
    """A short name of what is measured, e.g. ``p95 inference_latency_seconds{v2}``."""
    version = getattr(measure, "model_version", None)
    scope = f"{{{version}}}" if version else ""
    if isinstance(measure, LatencyMeasure):
        worst = " worst 1m" if measure.statistic == "worst_1m" else ""
        return f"{quantile_name(measure.quantile)}{worst} {measure.metric}{scope}"
    if isinstance(measure, ConfidenceMeasure):
        return f"{quantile_name(measure.quantile)} {CONFIDENCE_HISTOGRAM}{scope}"
    if isinstance(measure, ErrorRatioMeasure):
        return f"5xx ratio on {measure.route}"
    if isinstance(measure, ThroughputMeasure):
        return f"throughput{scope}" if version else f"throughput on {measure.route}"
    if isinstance(measure, AccuracyMeasure):
        return f"accuracy{scope} ({measure.source})"
    return "value"


def _record(window: TimeWindow) -> WindowRecord:
    return WindowRecord(label=window.label, start_s=window.start_s, end_s=window.end_s)


def _with_version(labels: dict[str, str], version: str | None) -> dict[str, str]:
    return {**labels, "model_version": version} if version is not None else dict(labels)


def _single_value(samples: list[Sample]) -> float | None:
    """The value of a one-sample result; None when the result is empty."""
    return samples[0].value if samples else None


def _finite(value: float, details: Details, what: str) -> Measurement:
    if not math.isfinite(value):
        return Measurement(None, f"{what} is {value} (no usable data in the window)", details)
    return Measurement(value, None, details)


def _cumulative_histogram(samples: list[Sample]) -> list[tuple[float, float]] | None:
    """(upper bound, cumulative count) sorted by bound, ending at +Inf; None if unusable."""
    buckets = sorted(
        (float(sample.labels["le"]), sample.value) for sample in samples if "le" in sample.labels
    )
    if not buckets or not math.isinf(buckets[-1][0]):
        return None
    return buckets


def _median_spacing_s(series: list[Series]) -> float | None:
    """The typical time between raw samples (the scrape interval); None with < 2 samples."""
    gaps = [
        later[0] - earlier[0]
        for one in series
        for earlier, later in zip(one.points, one.points[1:], strict=False)
    ]
    return statistics.median(gaps) if gaps else None


def _signal_query(signal: DriftSignal) -> str:
    if signal.alert is not None:
        return f"max({firing_alert(signal.alert, signal.labels)})"
    return gauge_now(signal.metric or "", signal.labels)


def _signal_on(signal: DriftSignal, value: float) -> bool:
    if signal.alert is not None:
        return value >= 1
    return signal.above is not None and value > signal.above


def _bounds_text(low: float | None, high: float | None, unit: str) -> str:
    parts = []
    if low is not None:
        parts.append(f">= {format_value(low, unit)}")
    if high is not None:
        parts.append(f"<= {format_value(high, unit)}")
    return " and ".join(parts)


def _bound_formula(objective: ComparisonObjective) -> str:
    text = f"{objective.factor:g} x right"
    if objective.offset:
        text += f" {'+' if objective.offset > 0 else '-'} {abs(objective.offset):g}"
    return text


def _equals(above: bool) -> str:
    """``>`` when a figure is only a lower bound of the true value, else ``=``."""
    return ">" if above else "="


def _comparison_holds(left: Measurement, op: str, bound: float, bound_above: bool) -> bool | None:
    """Whether ``left op bound`` holds; None when a lower bound alone cannot decide it.

    ``left.above``: the left value lies strictly above ``left.value``. ``bound_above``: the
    right side's bound (factor > 0) lies strictly above ``bound``.
    """
    value = left.value or 0.0
    smaller = op in ("<=", "<")
    if left.above and bound_above:
        return None
    if left.above:
        # left > value >= bound: "left below bound" surely fails, "left above" surely holds.
        return None if value < bound else not smaller
    if bound_above:
        # left <= bound < true bound: "left below" surely holds, "left above" surely fails.
        return None if value > bound else smaller
    return _compare(value, op, bound)


def _compare(left: float, op: str, right: float) -> bool:
    return {
        "<=": left <= right,
        "<": left < right,
        ">=": left >= right,
        ">": left > right,
    }[op]


def _unusable_baseline(earlier: ObjectiveResult | None) -> str | None:
    """Why a baseline report's entry cannot serve as a baseline; None when it can."""
    if earlier is None:
        return "the baseline report has no such objective"
    if earlier.verdict == Verdict.INCONCLUSIVE or earlier.value is None:
        return f"it was inconclusive in the baseline run ({earlier.reason})"
    if earlier.details.get(VALUE_BOUND) == VALUE_ABOVE:
        return "the baseline value is only a lower bound (a quantile in the +Inf bucket)"
    return None


def _within_baseline(value: float, above: bool, limit: float, worse: str) -> bool | None:
    """Whether ``value`` is within ``limit``; None when a lower bound alone cannot tell."""
    if not above:
        return value <= limit if worse == "higher" else value >= limit
    if value < limit:
        return None
    # The true value lies strictly above value >= limit.
    return worse == "lower"


def _relative_change(current: float, earlier: float) -> str:
    if earlier == 0:
        return "baseline is 0"
    return f"{(current - earlier) / abs(earlier):+.1%}"
