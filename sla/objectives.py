"""Service-level objectives: what an SLA file (or a scenario's ``objectives:``) may say.

An objective has a ``name``, a ``kind``, a ``severity`` (``fail`` or ``warn``), a window and a
threshold. Thresholds carry units in the text and are stored in base units:
durations (``250ms``, ``0.25s``, ``2m``, or a bare number of seconds) become seconds, ratios
(``1%`` or ``0.01``, between 0 and 1) become fractions, quantiles (``p95``, ``p99.9``,
``0.95``) become fractions in (0, 1).

Kinds (see docs/sla.md for every field)::

    latency          a quantile of inference_latency_seconds / http_request_duration_seconds
    error_ratio      5xx share of http_request_duration_seconds_count on a route
    throughput       requests (or predictions, per version) per second, min and/or max
    accuracy         feedback_correct_total / feedback_count_total increases, or model_accuracy
    confidence       a quantile of prediction_confidence, min and/or max
    drift_detected   a drift signal becomes true within a time after a named phase starts
    no_false_alarm   a drift signal stays below its level throughout named phases
    alert            a named alert fires, or does not, during a window
    comparison       one measured value against another (challenger vs champion)
    baseline         an objective's value against the same objective in an earlier report
    promql           any PromQL returning one value, with min and/or max (escape hatch)

Every validation message is one line naming the field and the value and, where the field has
a fixed set of choices, listing them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sla.errors import ObjectiveError

LATENCY_METRICS: tuple[str, ...] = ("inference_latency_seconds", "http_request_duration_seconds")
DEFAULT_ROUTE = "/predict"
DEFAULT_DRIFT_METRIC = "dataset_drift_share"
DEFAULT_SCRAPE_JOB = "target_service"
DEFAULT_MIN_REQUESTS = 20
# Keys that make a YAML mapping a scenario file rather than an SLA file.
SCENARIO_KEYS: tuple[str, ...] = ("load", "target")

_DURATION_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)")
# One part (``250ms``, ``0.5 s``) or several, largest first, as in scenario files (``1m30s``).
_DURATION_RE = re.compile(r"^\s*(?:(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ms|s|m|h|d))+\s*$")
_QUANTILE_RE = re.compile(r"^\s*p(\d+(?:\.\d+)?)\s*$", re.IGNORECASE)


def parse_duration_s(value: Any) -> float:
    """Seconds from ``250ms``, ``0.25s``, ``5m``, ``1m30s``, ``1h``, ``1d`` or a bare number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 250ms, 0.25s or 5m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        if _DURATION_RE.match(value) is None:
            units = ", ".join(_DURATION_UNITS_S)
            raise ValueError(f"expected a duration like 250ms, 0.25s or 5m (units: {units})")
        parts = _DURATION_PART_RE.findall(value)
        if len({unit for _, unit in parts}) != len(parts):
            raise ValueError(f"expected each unit once in a duration like 1m30s, got {value!r}")
        seconds = sum(float(number) * _DURATION_UNITS_S[unit] for number, unit in parts)
    else:
        raise ValueError("expected a duration like 250ms, 0.25s or 5m")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be finite and >= 0")
    return seconds


def parse_ratio(value: Any) -> float:
    """A fraction from ``1%``, ``0.5 %`` or a bare number (0.01)."""
    if isinstance(value, bool):
        raise ValueError("expected a ratio like 1% or 0.01")
    if isinstance(value, str):
        text = value.strip()
        try:
            ratio = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError("expected a ratio like 1% or 0.01") from None
    elif isinstance(value, int | float):
        ratio = float(value)
    else:
        raise ValueError("expected a ratio like 1% or 0.01")
    if not math.isfinite(ratio) or ratio < 0:
        raise ValueError("a ratio must be finite and >= 0")
    return ratio


def parse_unit_ratio(value: Any) -> float:
    """A share between 0 and 1 from ``1%``, ``0.01`` or ``100%``; 60 or 150% are refused."""
    ratio = parse_ratio(value)
    if ratio > 1:
        raise ValueError("expected a ratio between 0 and 1 (or 0%..100%)")
    return ratio


def parse_quantile(value: Any) -> float:
    """A quantile in (0, 1) from ``p95``, ``p99.9``, ``95%`` or ``0.95``."""
    if isinstance(value, str):
        match = _QUANTILE_RE.match(value)
        quantile = float(match.group(1)) / 100 if match else parse_ratio(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        quantile = float(value)
    else:
        raise ValueError("expected a quantile like p95, p99.9 or 0.95")
    if not 0.0 < quantile < 1.0:
        raise ValueError("a quantile must lie strictly between 0 and 1 (p50, p95, 0.99)")
    return quantile


def parse_timestamp_s(value: Any) -> float:
    """UTC epoch seconds from a number or an ISO 8601 time with a zone (``2026-12-04T15:00Z``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("expected epoch seconds or an ISO 8601 time with a zone") from None
    else:
        raise ValueError("expected epoch seconds or an ISO 8601 time with a zone")
    if moment.tzinfo is None:
        raise ValueError("an ISO 8601 time needs a zone (e.g. Z or +00:00)")
    return moment.timestamp()


def format_utc(epoch_s: float) -> str:
    """``2026-12-04T15:00:00Z`` (milliseconds shown only when not whole seconds)."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    pattern = "%Y-%m-%dT%H:%M:%SZ" if epoch_s == int(epoch_s) else "%Y-%m-%dT%H:%M:%S.%fZ"
    return moment.strftime(pattern)


DurationS = Annotated[float, BeforeValidator(parse_duration_s)]
# A share of something (error ratio, accuracy, confidence): between 0 and 1.
Ratio = Annotated[float, BeforeValidator(parse_unit_ratio)]
# A relative change (a baseline's allowed regression): 10%, or 150% for "2.5 times".
RelativeChange = Annotated[float, BeforeValidator(parse_ratio)]
Quantile = Annotated[float, BeforeValidator(parse_quantile)]
TimestampS = Annotated[float, BeforeValidator(parse_timestamp_s)]
Severity = Literal["fail", "warn"]
Labels = dict[str, str]


class StrictModel(BaseModel):
    """A block that rejects unknown keys and lists the valid ones, so a typo shows its fix."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = [field.alias or name for name, field in cls.model_fields.items()]
            unknown = [key for key in data if key not in names and key not in cls.model_fields]
            if unknown:
                valid = ", ".join(names)
                raise ValueError(f"unknown field {unknown[0]!r}; valid fields: {valid}")
        return data


class WindowSpec(StrictModel):
    """When to measure: a phase of the run manifest, a duration ending now (or at ``end``),
    or an explicit ``start``/``end``.

    A string is a shorthand: ``phase:drift`` or ``5m``.
    """

    phase: str | None = None
    duration_s: DurationS | None = Field(None, gt=0, alias="duration")
    start: TimestampS | None = None
    end: TimestampS | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            text = data.strip()
            if text.startswith("phase:"):
                return {"phase": text.removeprefix("phase:").strip()}
            return {"duration": text}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> WindowSpec:
        forms = [
            self.phase is not None,
            self.duration_s is not None,
            self.start is not None,
        ]
        if sum(forms) != 1:
            raise ValueError(
                "a window is exactly one of: phase: NAME, duration: 5m [end: TIME], "
                "or start: TIME with end: TIME"
            )
        if self.phase is not None and self.end is not None:
            raise ValueError("a phase window takes its end from the run manifest; drop 'end'")
        if self.start is not None and self.end is None:
            raise ValueError("a window with 'start' needs 'end' too")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"window end {self.end} must be after start {self.start}")
        return self

    def describe(self) -> str:
        if self.phase is not None:
            return f"phase {self.phase}"
        if self.duration_s is not None:
            until = f" until {format_utc(self.end)}" if self.end is not None else ""
            return f"last {self.duration_s:g}s{until}"
        return f"{format_utc(self.start or 0.0)} to {format_utc(self.end or 0.0)}"


class _Bounds(StrictModel):
    """``min`` and/or ``max``: the measured value must lie within them (inclusive)."""

    @model_validator(mode="after")
    def _at_least_one_bound(self) -> _Bounds:
        low = getattr(self, "min", None)
        high = getattr(self, "max", None)
        if low is None and high is None:
            raise ValueError("give a threshold: 'min', 'max' or both")
        if low is not None and high is not None and low > high:
            raise ValueError(f"min {low} is above max {high}")
        return self


# --- Measures: what to measure, without a threshold (also the sides of a comparison) ---


class LatencyMeasure(StrictModel):
    """A quantile of a latency histogram over the window (seconds).

    ``statistic: window`` (default) takes the quantile of all requests in the window;
    ``worst_1m`` takes the highest quantile of any 1-minute window inside it.
    ``http_request_duration_seconds`` has no model_version label; it is filtered by ``route``.
    """

    kind: Literal["latency"]
    metric: Literal["inference_latency_seconds", "http_request_duration_seconds"] = (
        "inference_latency_seconds"
    )
    quantile: Quantile
    model_version: str | None = None
    route: str | None = None
    labels: Labels = Field(default_factory=dict)
    statistic: Literal["window", "worst_1m"] = "window"
    min_requests: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _labels_of_metric(self) -> LatencyMeasure:
        if self.metric == "http_request_duration_seconds" and self.model_version is not None:
            raise ValueError(
                "model_version: http_request_duration_seconds has no model_version label; "
                "use metric: inference_latency_seconds for a per-version latency"
            )
        if self.metric == "inference_latency_seconds" and self.route is not None:
            raise ValueError(
                "route: inference_latency_seconds has no route label; "
                "use metric: http_request_duration_seconds for a per-route latency"
            )
        return self


class ErrorRatioMeasure(StrictModel):
    """Share of requests on ``route`` answered with a 5xx status (fraction)."""

    kind: Literal["error_ratio"]
    route: str = DEFAULT_ROUTE
    labels: Labels = Field(default_factory=dict)
    min_requests: int | None = Field(None, ge=1)


class ThroughputMeasure(StrictModel):
    """Requests per second on ``route``; with ``model_version``, predictions per second of it."""

    kind: Literal["throughput"]
    route: str = DEFAULT_ROUTE
    model_version: str | None = None
    labels: Labels = Field(default_factory=dict)


class AccuracyMeasure(StrictModel):
    """Share of correct predictions (fraction).

    ``source: feedback`` (default) divides the increases of feedback_correct_total and
    feedback_count_total over the window; ``gauge`` reads model_accuracy at the window end.
    """

    kind: Literal["accuracy"]
    model_version: str | None = None
    source: Literal["feedback", "gauge"] = "feedback"
    labels: Labels = Field(default_factory=dict)
    min_requests: int | None = Field(None, ge=1, description="minimum feedbacks in the window")


class ConfidenceMeasure(StrictModel):
    """A quantile (default the median) of prediction_confidence over the window."""

    kind: Literal["confidence"]
    quantile: Quantile = 0.5
    model_version: str | None = None
    labels: Labels = Field(default_factory=dict)
    min_requests: int | None = Field(None, ge=1)


class PromqlMeasure(StrictModel):
    """Any PromQL returning one series; ``$window`` is replaced by the window length (``300s``).

    It is evaluated at the window end.
    """

    kind: Literal["promql"]
    query: str = Field(min_length=1)


Measure = Annotated[
    LatencyMeasure
    | ErrorRatioMeasure
    | ThroughputMeasure
    | AccuracyMeasure
    | ConfidenceMeasure
    | PromqlMeasure,
    Field(discriminator="kind"),
]
MEASURE_KINDS: tuple[str, ...] = (
    "latency",
    "error_ratio",
    "throughput",
    "accuracy",
    "confidence",
    "promql",
)


# --- Objectives ---


class ObjectiveBase(StrictModel):
    """Fields every objective has."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]+$")
    severity: Severity = "fail"
    description: str | None = None
    window: WindowSpec | None = Field(
        None, description="default: the SLA file's defaults.window, else the whole run"
    )


class LatencyObjective(_Bounds, ObjectiveBase, LatencyMeasure):
    """Latency quantile within bounds, e.g. ``quantile: p95, max: 250ms``."""

    min: DurationS | None = None
    max: DurationS | None = None


class ErrorRatioObjective(_Bounds, ObjectiveBase, ErrorRatioMeasure):
    """5xx share within bounds, e.g. ``max: 1%``."""

    min: Ratio | None = None
    max: Ratio | None = None


class ThroughputObjective(_Bounds, ObjectiveBase, ThroughputMeasure):
    """Requests per second within bounds, e.g. ``min: 20, max: 500``."""

    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, ge=0)


class AccuracyObjective(_Bounds, ObjectiveBase, AccuracyMeasure):
    """Accuracy within bounds, e.g. ``min: 0.7``."""

    min: Ratio | None = None
    max: Ratio | None = None


class ConfidenceObjective(_Bounds, ObjectiveBase, ConfidenceMeasure):
    """Confidence quantile within bounds, e.g. ``min: 0.6`` for the median."""

    min: Ratio | None = None
    max: Ratio | None = None


class PromqlObjective(_Bounds, ObjectiveBase, PromqlMeasure):
    """Any PromQL value within bounds."""

    min: float | None = None
    max: float | None = None


class DriftSignal(StrictModel):
    """The drift signal: a gauge above a level, or a named alert firing."""

    metric: str | None = None
    above: float | None = None
    alert: str | None = None
    labels: Labels = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_signal(self) -> DriftSignal:
        if self.alert is not None and (self.metric is not None or self.above is not None):
            raise ValueError("a signal is either 'alert: NAME' or 'metric' with 'above', not both")
        if self.alert is None and self.above is None:
            raise ValueError(
                "a signal needs 'above: LEVEL' (with optional 'metric', default "
                f"{DEFAULT_DRIFT_METRIC}) or 'alert: NAME'"
            )
        if self.alert is None and self.metric is None:
            self.metric = DEFAULT_DRIFT_METRIC
        return self

    def describe(self) -> str:
        if self.alert is not None:
            return f"alert {self.alert} firing"
        return f"{self.metric} > {self.above:g}"


class DriftDetectedObjective(ObjectiveBase):
    """The drift signal becomes true within ``within`` after phase ``phase`` starts.

    The measured value is the detection delay in seconds, read from a range query at the
    scrape resolution (so it is exact to one scrape interval).
    """

    kind: Literal["drift_detected"]
    signal: DriftSignal
    phase: str = Field(min_length=1)
    within: DurationS = Field(gt=0)


class NoFalseAlarmObjective(ObjectiveBase):
    """The drift signal stays false throughout each named phase (or the window)."""

    kind: Literal["no_false_alarm"]
    signal: DriftSignal
    phases: list[str] = Field(default_factory=list)


class AlertObjective(ObjectiveBase):
    """A named alert in the ALERTS series fires (``expect: fired``) or not during the window."""

    kind: Literal["alert"]
    alert: str = Field(min_length=1)
    labels: Labels = Field(default_factory=dict)
    expect: Literal["fired", "not_fired"]


class ComparisonObjective(ObjectiveBase):
    """``left OP factor * right + offset``, e.g. challenger p95 <= 1.10 * champion p95."""

    kind: Literal["comparison"]
    left: Measure
    op: Literal["<=", "<", ">=", ">"]
    right: Measure
    factor: float = Field(1.0, gt=0)
    offset: float = Field(0.0, description="in the measures' unit (seconds, fraction)")

    @model_validator(mode="before")
    @classmethod
    def _offset_units(cls, data: Any) -> Any:
        # An offset for latencies may be written as a duration; a ratio as a percentage.
        if isinstance(data, dict) and isinstance(data.get("offset"), str):
            text = data["offset"].strip()
            sign = -1.0 if text.startswith("-") else 1.0
            body = text.lstrip("+-")
            try:
                value = parse_ratio(body) if body.endswith("%") else parse_duration_s(body)
            except ValueError:
                value = parse_ratio(body)
            data = {**data, "offset": sign * value}
        return data


class BaselineObjective(ObjectiveBase):
    """Objective ``objective`` may be at most ``max_regression`` worse than in the baseline.

    ``worse`` says which direction is a regression; it defaults to ``higher`` for latency and
    error_ratio and ``lower`` for accuracy, confidence and throughput.
    """

    kind: Literal["baseline"]
    objective: str = Field(min_length=1)
    max_regression: RelativeChange
    worse: Literal["higher", "lower"] | None = None


Objective = Annotated[
    LatencyObjective
    | ErrorRatioObjective
    | ThroughputObjective
    | AccuracyObjective
    | ConfidenceObjective
    | DriftDetectedObjective
    | NoFalseAlarmObjective
    | AlertObjective
    | ComparisonObjective
    | BaselineObjective
    | PromqlObjective,
    Field(discriminator="kind"),
]
OBJECTIVE_KINDS: tuple[str, ...] = (
    "latency",
    "error_ratio",
    "throughput",
    "accuracy",
    "confidence",
    "drift_detected",
    "no_false_alarm",
    "alert",
    "comparison",
    "baseline",
    "promql",
)
# Which direction is a regression, for kinds where it is obvious.
WORSE_DIRECTION: dict[str, Literal["higher", "lower"]] = {
    "latency": "higher",
    "error_ratio": "higher",
    "accuracy": "lower",
    "confidence": "lower",
    "throughput": "lower",
}
BASELINE_TARGET_KINDS: tuple[str, ...] = (
    "latency",
    "error_ratio",
    "throughput",
    "accuracy",
    "confidence",
    "promql",
    "drift_detected",
)


class CheckDefaults(StrictModel):
    """Settings that apply to every objective of an SLA file unless it says otherwise."""

    window: WindowSpec | None = None
    min_requests: int = Field(DEFAULT_MIN_REQUESTS, ge=1)
    scrape_job: str | None = Field(
        DEFAULT_SCRAPE_JOB, description="the job whose `up` series proves scrapes; null: skip"
    )
    scrape_interval_s: DurationS | None = Field(
        None, gt=0, description="default: inferred from the `up` samples"
    )
    min_scrape_coverage: Ratio = Field(
        0.9, gt=0, le=1, description="share of expected scrapes that must be present"
    )


class PrometheusDefaults(StrictModel):
    """Connection settings an SLA file may carry; credentials come only from the command line."""

    url: str | None = None
    ca_file: Path | None = None
    timeout_s: DurationS | None = Field(None, gt=0)
    retries: int | None = Field(None, ge=0, le=10)


class SlaFile(StrictModel):
    """An SLA file: ``objectives`` plus optional ``defaults`` and ``prometheus`` sections."""

    prometheus: PrometheusDefaults = Field(default_factory=PrometheusDefaults)
    defaults: CheckDefaults = Field(default_factory=CheckDefaults)
    objectives: list[Objective] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SlaFile:
        check_objective_set(self.objectives)
        return self


def check_objective_set(objectives: list[Any]) -> None:
    """Raise ValueError (one line) for duplicate names or a baseline naming no usable objective.

    ``objectives`` are Objective models; scenario files call this on their own list too.
    """
    seen: dict[str, str] = {}
    for objective in objectives:
        if objective.name in seen:
            raise ValueError(f"objective name {objective.name!r} is used twice; names must differ")
        seen[objective.name] = objective.kind

    for objective in objectives:
        if objective.kind != "baseline":
            continue
        target_kind = seen.get(objective.objective)
        if target_kind is None:
            names = ", ".join(name for name, kind in seen.items() if kind != "baseline")
            raise ValueError(
                f"objectives.{objective.name}.objective: no objective named "
                f"{objective.objective!r}; objectives: {names or '(none)'}"
            )
        if target_kind not in BASELINE_TARGET_KINDS:
            raise ValueError(
                f"objectives.{objective.name}.objective: {objective.objective!r} is a "
                f"{target_kind} objective; a baseline compares one of: "
                f"{', '.join(BASELINE_TARGET_KINDS)}"
            )
        if objective.worse is None and target_kind not in WORSE_DIRECTION:
            raise ValueError(
                f"objectives.{objective.name}.worse: say which direction is a regression for "
                f"a {target_kind} objective; choices: higher, lower"
            )
        worse = objective.worse or WORSE_DIRECTION[target_kind]
        if worse == "lower" and objective.max_regression >= 1:
            raise ValueError(
                f"objectives.{objective.name}.max_regression: a drop of "
                f"{objective.max_regression:.0%} or more always passes when lower is worse; "
                "give less than 100%"
            )


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line: the source, the field path, what is wrong, and the value given."""
    first = error.errors()[0]
    path = _field_path(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    shown = (
        "" if isinstance(value, dict | list) or "unknown field" in message else f", got {value!r}"
    )
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    where = f"{source}: {path}: " if path else f"{source}: "
    return f"{where}{message}{shown}{suffix}".replace("\n", " ")


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``objectives[0].max`` from pydantic's ``('objectives', 0, 'latency', 'max')``.

    The union tag pydantic inserts after a list index or a comparison side is dropped.
    """
    parts: list[str] = []
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif part in OBJECTIVE_KINDS and (
            isinstance(previous, int) or previous in ("left", "right")
        ):
            pass
        else:
            parts.append(str(part))
        previous = part
    return ".".join(parts)


def parse_sla(data: Any, source: str = "SLA") -> SlaFile:
    """An SlaFile from already-loaded YAML/JSON data; ObjectiveError (one line) if invalid."""
    if not isinstance(data, dict):
        raise ObjectiveError(
            f"{source}: expected a mapping with 'objectives' (and optional 'defaults', "
            f"'prometheus'), got {type(data).__name__}"
        )
    try:
        return SlaFile.model_validate(data)
    except ValidationError as error:
        raise ObjectiveError(describe_validation_error(error, source)) from None


def load_sla_file(path: Path) -> SlaFile:
    """Read and validate an SLA file (YAML or JSON), or the objectives of a scenario file.

    A mapping with ``load`` or ``target`` is a scenario (driftgate's own model, not read
    here): only its ``objectives`` list is taken, with the default ``defaults``.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ObjectiveError(f"{path}: cannot read the SLA file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ObjectiveError(
            f"{path}: not a text file (byte {error.start} is not UTF-8); "
            "an SLA file is YAML or JSON"
        ) from None
    except yaml.YAMLError as error:
        raise ObjectiveError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None
    if data is None:
        raise ObjectiveError(
            f"{path}: the file is empty; expected a mapping with 'objectives' "
            "(and optional 'defaults', 'prometheus')"
        )
    if isinstance(data, dict) and any(key in data for key in SCENARIO_KEYS):
        if not data.get("objectives"):
            raise ObjectiveError(f"{path}: the scenario file has no 'objectives' to check")
        data = {"objectives": data["objectives"]}
    return parse_sla(data, str(path))
