"""Deterministic Prometheus histories for the SLA checker's tests, backfilled with promtool.

Series are written as OpenMetrics text and turned into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics``; a real Prometheus started on that data
directory then answers queries over them. Backfilled samples must be older than the head
block, so histories start hours in the past and objectives use explicit start/end windows.

Every case gets its own ``job`` label, so one Prometheus serves all cases of a test module.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from target_service.metrics import CONFIDENCE_BUCKETS, latency_buckets_s


def _labels_text(labels: dict[str, str]) -> str:
    inner = ",".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
    return f"{{{inner}}}" if inner else ""


@dataclass
class OpenMetricsHistory:
    """Metric families with timestamped samples, rendered as one OpenMetrics text."""

    families: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def _lines(self, family: str, kind: str) -> list[str]:
        if family not in self.families:
            self.families[family] = (kind, [])
        return self.families[family][1]

    def gauge(
        self, name: str, labels: dict[str, str], points: Iterable[tuple[float, float]]
    ) -> None:
        lines = self._lines(name, "gauge")
        lines += [
            f"{name}{_labels_text(labels)} {value!r} {time_s:.3f}" for time_s, value in points
        ]

    def counter(
        self, family: str, labels: dict[str, str], points: Iterable[tuple[float, float]]
    ) -> None:
        """A counter family ``family`` (samples are written as ``family_total``)."""
        lines = self._lines(family, "counter")
        text = _labels_text(labels)
        lines += [f"{family}_total{text} {value!r} {time_s:.3f}" for time_s, value in points]

    def histogram(
        self,
        family: str,
        labels: dict[str, str],
        bounds: Sequence[float],
        times_s: Sequence[float] | np.ndarray,
        cumulative_observations: Sequence[np.ndarray],
    ) -> None:
        """A histogram whose state at ``times_s[i]`` is ``cumulative_observations[i]``.

        Each array holds every observation made up to that time (a reset: a shorter array).
        """
        lines = self._lines(family, "histogram")
        for time_s, observed in zip(times_s, cumulative_observations, strict=True):
            ordered = np.sort(observed)
            for bound in bounds:
                count = int(np.searchsorted(ordered, bound, side="right"))
                bucket_labels = {**labels, "le": repr(float(bound))}
                lines.append(f"{family}_bucket{_labels_text(bucket_labels)} {count} {time_s:.3f}")
            inf_labels = {**labels, "le": "+Inf"}
            lines.append(f"{family}_bucket{_labels_text(inf_labels)} {len(ordered)} {time_s:.3f}")
            lines.append(f"{family}_count{_labels_text(labels)} {len(ordered)} {time_s:.3f}")
            lines.append(
                f"{family}_sum{_labels_text(labels)} {float(ordered.sum())!r} {time_s:.3f}"
            )

    def text(self) -> str:
        out: list[str] = []
        for family, (kind, lines) in self.families.items():
            out.append(f"# TYPE {family} {kind}")
            out += lines
        out.append("# EOF")
        return "\n".join(out) + "\n"


def backfill(history: OpenMetricsHistory, data_dir: Path) -> None:
    """Write the history as TSDB blocks into ``data_dir`` (promtool must be installed)."""
    source = data_dir.parent / "history.om"
    source.write_text(history.text())
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def up_points(
    start_s: float,
    end_s: float,
    interval_s: float,
    down: Sequence[tuple[float, float]] = (),
    missing: Sequence[tuple[float, float]] = (),
) -> list[tuple[float, float]]:
    """``up`` samples every ``interval_s``: 0 inside ``down`` spans, absent inside ``missing``."""
    points = []
    for time_s in np.arange(start_s, end_s + interval_s / 2, interval_s):
        if any(low <= time_s < high for low, high in missing):
            continue
        value = 0.0 if any(low <= time_s < high for low, high in down) else 1.0
        points.append((float(time_s), value))
    return points


def observation_history(
    observation_times_s: np.ndarray,
    values: np.ndarray,
    scrape_times_s: np.ndarray,
    reset_at_s: float | None = None,
) -> list[np.ndarray]:
    """What a histogram holds at each scrape: observations made up to then.

    With ``reset_at_s`` the process restarts then: later scrapes hold only the observations
    made after the restart.
    """
    states = []
    for scrape_s in scrape_times_s:
        since_s = reset_at_s if reset_at_s is not None and scrape_s >= reset_at_s else -np.inf
        mask = (observation_times_s <= scrape_s) & (observation_times_s > since_s)
        states.append(values[mask])
    return states


# --- the cases ---

LATENCY = "inference_latency_seconds"
HTTP = "http_request_duration_seconds"
CONFIDENCE = "prediction_confidence"
HISTORY_S = 600
RATE_PER_VERSION = 5.0
V1_MEDIAN_S = 0.040
V2_MEDIAN_S = 0.080
LATENCY_SIGMA = 0.5
HTTP_OVERHEAD_S = 0.002
ERROR_EVERY = 25
RESET_OFFSET_S = 300.5
ACCURACY = {"v1": 0.8, "v2": 0.6}
ACCURACY_GAUGE = {"v1": 0.81, "v2": 0.62}
DRIFT_ON_OFFSET_S = 150
ALERT_ON_OFFSET_S = 160
DRIFT_LOW, DRIFT_HIGH = 0.05, 0.5


@dataclass
class Observations:
    """Raw observations of one series: when, and what value."""

    times_s: np.ndarray
    values: np.ndarray

    def between(self, start_s: float, end_s: float) -> np.ndarray:
        """Values observed in (start_s, end_s], what an increase over that window counts."""
        mask = (self.times_s > start_s) & (self.times_s <= end_s)
        return self.values[mask]


@dataclass
class Cases:
    """Raw data behind the backfilled history, for computing expectations."""

    t0_s: float
    latency: dict[str, Observations] = field(default_factory=dict)
    http_ok: Observations | None = None
    http_error: Observations | None = None
    feedback_correct: dict[str, Observations] = field(default_factory=dict)
    confidence: dict[str, Observations] = field(default_factory=dict)
    reset_latency: Observations | None = None
    reset_visible: Observations | None = None
    # Latency observations of the single-series jobs (gap, down, few, inf, slowscrape, drift).
    simple: dict[str, Observations] = field(default_factory=dict)


def _poisson_times(
    rng: np.random.Generator, start_s: float, rate: float, span_s: float
) -> np.ndarray:
    count = rng.poisson(rate * span_s)
    return np.sort(rng.uniform(start_s, start_s + span_s, count))


def _latencies(rng: np.random.Generator, median_s: float, size: int) -> np.ndarray:
    return rng.lognormal(np.log(median_s), LATENCY_SIGMA, size)


def build_cases(t0_s: float, rng: np.random.Generator) -> tuple[OpenMetricsHistory, Cases]:
    """Every case's history starting at ``t0_s`` (whole seconds, hours in the past)."""
    history = OpenMetricsHistory()
    cases = Cases(t0_s=t0_s)
    scrapes = np.arange(t0_s, t0_s + HISTORY_S + 0.5, 1.0)
    bounds = latency_buckets_s()

    _build_lat(history, cases, rng, scrapes, bounds)
    _build_reset(history, cases, rng, scrapes, bounds)
    for job in ("gap", "down", "few", "inf", "slowscrape", "drift"):
        cases.simple[job] = _build_simple(history, job, rng, t0_s, bounds)
    _build_drift(history, t0_s, scrapes)
    # The default scrape job, for files that cannot set defaults (scenario files).
    history.gauge("up", {"job": "target_service"}, up_points(t0_s, t0_s + HISTORY_S, 1.0))
    return history, cases


def _build_lat(
    history: OpenMetricsHistory,
    cases: Cases,
    rng: np.random.Generator,
    scrapes: np.ndarray,
    bounds: Sequence[float],
) -> None:
    t0_s = cases.t0_s
    job = {"job": "lat"}
    all_times, all_values = [], []
    for version, median_s in (("v1", V1_MEDIAN_S), ("v2", V2_MEDIAN_S)):
        times = _poisson_times(rng, t0_s, RATE_PER_VERSION, HISTORY_S)
        values = _latencies(rng, median_s, len(times))
        cases.latency[version] = Observations(times, values)
        labels = {**job, "model_version": version}
        history.histogram(
            LATENCY, labels, bounds, scrapes, observation_history(times, values, scrapes)
        )
        predictions = [(float(s), float(np.sum(times <= s))) for s in scrapes]
        history.counter("prediction_count", {**labels, "predicted_class": "visit"}, predictions)

        correct = rng.random(len(times)) < ACCURACY[version]
        cases.feedback_correct[version] = Observations(times, correct.astype(float))
        history.counter("feedback_count", labels, predictions)
        history.counter(
            "feedback_correct",
            labels,
            [(float(s), float(np.sum(correct[times <= s]))) for s in scrapes],
        )
        history.gauge(
            "model_accuracy", labels, [(float(s), ACCURACY_GAUGE[version]) for s in scrapes]
        )

        confidence = rng.uniform(0.5, 1.0, len(times))
        cases.confidence[version] = Observations(times, confidence)
        history.histogram(
            CONFIDENCE,
            labels,
            CONFIDENCE_BUCKETS,
            scrapes,
            observation_history(times, confidence, scrapes),
        )
        all_times.append(times)
        all_values.append(values + HTTP_OVERHEAD_S)

    times = np.concatenate(all_times)
    order = np.argsort(times)
    times, values = times[order], np.concatenate(all_values)[order]
    is_error = np.arange(len(times)) % ERROR_EVERY == 0
    route = {**job, "route": "/predict", "method": "POST"}
    for status, mask in (("200", ~is_error), ("500", is_error)):
        observed = Observations(times[mask], values[mask])
        if status == "200":
            cases.http_ok = observed
        else:
            cases.http_error = observed
        history.histogram(
            HTTP,
            {**route, "status": status},
            bounds,
            scrapes,
            observation_history(observed.times_s, observed.values, scrapes),
        )
    history.gauge("up", job, up_points(t0_s, t0_s + HISTORY_S, 1.0))


def _build_reset(
    history: OpenMetricsHistory,
    cases: Cases,
    rng: np.random.Generator,
    scrapes: np.ndarray,
    bounds: Sequence[float],
) -> None:
    t0_s = cases.t0_s
    times = _poisson_times(rng, t0_s, RATE_PER_VERSION, HISTORY_S)
    values = _latencies(rng, V1_MEDIAN_S, len(times))
    reset_s = t0_s + RESET_OFFSET_S
    cases.reset_latency = Observations(times, values)
    # Observations between the last scrape before the restart and the restart are lost.
    last_scrape_s = float(np.floor(reset_s))
    visible = (times <= last_scrape_s) | (times > reset_s)
    cases.reset_visible = Observations(times[visible], values[visible])
    states = observation_history(times, values, scrapes, reset_at_s=reset_s)
    labels = {"job": "reset", "model_version": "v1"}
    history.histogram(LATENCY, labels, bounds, scrapes, states)
    history.gauge("up", {"job": "reset"}, up_points(t0_s, t0_s + HISTORY_S, 1.0))


def _build_simple(
    history: OpenMetricsHistory,
    job: str,
    rng: np.random.Generator,
    t0_s: float,
    bounds: Sequence[float],
) -> Observations:
    """Latency at 5 req/s (or 10 requests for ``few``), with the case's scrape pattern."""
    interval_s = 5.0 if job == "slowscrape" else 1.0
    scrapes = np.arange(t0_s, t0_s + HISTORY_S + 0.5, interval_s)
    if job == "few":
        times = np.sort(rng.uniform(t0_s + 10, t0_s + HISTORY_S - 10, 10))
    else:
        times = _poisson_times(rng, t0_s, RATE_PER_VERSION, HISTORY_S)
    values = _latencies(rng, V1_MEDIAN_S, len(times))
    if job == "inf":
        beyond = rng.random(len(times)) < 0.7
        values[beyond] = rng.uniform(2.5, 4.0, int(beyond.sum()))
    labels = {"job": job, "model_version": "v1"}
    history.histogram(LATENCY, labels, bounds, scrapes, observation_history(times, values, scrapes))

    missing = [(t0_s + 200, t0_s + 320)] if job == "gap" else []
    down = [(t0_s + 250, t0_s + 260)] if job == "down" else []
    up = up_points(t0_s, t0_s + HISTORY_S, interval_s, down=down, missing=missing)
    history.gauge("up", {"job": job}, up)
    return Observations(times, values)


def _build_drift(history: OpenMetricsHistory, t0_s: float, scrapes: np.ndarray) -> None:
    job = {"job": "drift"}
    on_s = t0_s + DRIFT_ON_OFFSET_S
    history.gauge(
        "dataset_drift_share",
        job,
        [(float(s), DRIFT_HIGH if s >= on_s else DRIFT_LOW) for s in scrapes],
    )
    alert_on_s = t0_s + ALERT_ON_OFFSET_S
    history.gauge(
        "ALERTS",
        {**job, "alertname": "DatasetDrift", "alertstate": "firing"},
        [(float(s), 1.0) for s in scrapes if alert_on_s <= s <= t0_s + 300],
    )


def history_start_s(now_s: float) -> float:
    """A whole minute four hours before ``now_s``: old enough to lie before the head block."""
    return float(int(now_s - 4 * 3600) // 60 * 60)


@dataclass(frozen=True)
class Backfilled:
    """A Prometheus serving a backfilled history, and the cases written into it."""

    url: str
    cases: Cases

    @property
    def t0_s(self) -> float:
        return self.cases.t0_s
