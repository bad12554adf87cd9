"""Every Prometheus metric of the reference service, declared in one place.

Metric names are a contract (docs/metrics.md; rules, dashboards and SLA files use them).
Label sets are small and fixed: no request can create a label value beyond the known model
versions, classes, features, routes, HTTP methods and rejection reasons.

The metrics are built on a registry that is passed in, so tests use a fresh
``CollectorRegistry``. In multi-worker mode (``PROMETHEUS_MULTIPROC_DIR`` set before
``prometheus_client`` is imported) the values live in memory-mapped files and ``/metrics``
aggregates them across workers; the drift and accuracy gauges are set by one leader worker
only and use ``livemax`` so that only a live process's value is shown.

CPU and memory are measured over the whole service, the process that was started and every
process below it (the uvicorn supervisor and its workers), by :class:`ServiceProcessCollector`
at scrape time; any worker answering ``/metrics`` reports the same whole-service numbers.

Use::

    metrics = ServiceMetrics(CollectorRegistry(), versions=("v1", "v2"), classes=CLASSES,
                             features=FEATURE_NAMES)
    metrics.predictions["v1"]["visit"].inc()
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Why a request was refused. Every 4xx answer of /predict and /feedback carries one of these.
REJECTION_REASONS: tuple[str, ...] = (
    "malformed_json",
    "empty_body",
    "body_too_large",
    "wrong_type",
    "missing_feature",
    "unknown_feature",
    "non_finite",
    "out_of_range",
    "too_long",
    "empty_batch",
    "batch_too_large",
    "unknown_model_version",
    "missing_field",
    "unknown_field",
    "unknown_request_id",
    "bad_label",
)

HTTP_METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OTHER_METHOD = "OTHER"
UNMATCHED_ROUTE = "<unmatched>"

# Bucket bounds that must be exact, so that "p99 <= threshold" is read without interpolation:
# the round SLA thresholds, plus the ends of the range the ladder covers.
ANCHORS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
)
MAX_BUCKET_RATIO = 1.2
SUB_MILLISECOND_BUCKETS_S: tuple[float, ...] = (0.0001, 0.00025)

CONFIDENCE_BUCKETS: tuple[float, ...] = tuple(round(0.5 + 0.05 * step, 2) for step in range(11))


def latency_buckets_s() -> tuple[float, ...]:
    """Histogram bounds from 0.1 ms to 2 s: the anchors exactly, geometric steps in between.

    Between two neighbouring anchors the bounds grow by one constant factor, the smallest
    number of steps that keeps it at or below ``MAX_BUCKET_RATIO``. So any threshold from
    1 ms to 1 s lies within 10 % of a bound (half a 1.2 step is a factor of 1.095).
    """
    bounds = set(SUB_MILLISECOND_BUCKETS_S) | set(ANCHORS_S)
    for low, high in itertools.pairwise(ANCHORS_S):
        steps = math.ceil(math.log(high / low) / math.log(MAX_BUCKET_RATIO) - 1e-9)
        ratio = (high / low) ** (1 / steps)
        bounds |= {float(f"{low * ratio**step:.6g}") for step in range(1, steps)}
    return tuple(sorted(bounds))


class ServiceMetrics:
    """The service's metrics on one registry, with label children bound up front.

    Binding the children once keeps the per-request cost to a lock and an add, and makes
    every series visible (at zero) from the first scrape, so ``rate()`` has a starting point.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        versions: Sequence[str],
        classes: Sequence[str],
        features: Sequence[str],
        categorical_features: Sequence[str] = (),
        service_pid: int | None = None,
    ) -> None:
        self.registry = registry
        self.versions = tuple(versions)
        self.features = tuple(features)
        self._declare_model_metrics(registry, classes)
        self._declare_http_metrics(registry)
        self._declare_drift_metrics(registry, categorical_features)
        self._declare_feedback_metrics(registry)
        # Read live at each scrape; in multiprocess mode /metrics serves it beside the
        # aggregated values (see instrument.exposition).
        self.processes = ServiceProcessCollector(
            os.getpid() if service_pid is None else service_pid
        )
        registry.register(self.processes)

    def _declare_model_metrics(self, registry: CollectorRegistry, classes: Sequence[str]) -> None:
        prediction_count = Counter(
            "prediction_count",
            "Predictions served, one per record (a batch of n records counts n), by model "
            "version and predicted class.",
            ["model_version", "predicted_class"],
            registry=registry,
        )
        latency = Histogram(
            "inference_latency_seconds",
            "Time of the model call alone (encoded rows in, probabilities out, injected "
            "latency included), per request, by model version.",
            ["model_version"],
            buckets=latency_buckets_s(),
            registry=registry,
        )
        confidence = Histogram(
            "prediction_confidence",
            "Probability the model gives to the class it predicts (0.5 to 1), by model version.",
            ["model_version"],
            buckets=CONFIDENCE_BUCKETS,
            registry=registry,
        )
        self.predictions = {
            version: {label: prediction_count.labels(version, label) for label in classes}
            for version in self.versions
        }
        self.inference_latency = {version: latency.labels(version) for version in self.versions}
        self.confidence = {version: confidence.labels(version) for version in self.versions}

    def _declare_http_metrics(self, registry: CollectorRegistry) -> None:
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the end of the response, by method, route "
            "template and status code; /metrics itself is not counted.",
            ["method", "route", "status"],
            buckets=latency_buckets_s(),
            registry=registry,
        )
        rejected = Counter(
            "rejected_requests",
            "Requests refused with a 4xx answer, by reason (a bounded set, see docs/metrics.md).",
            ["reason"],
            registry=registry,
        )
        self.rejected = {reason: rejected.labels(reason) for reason in REJECTION_REASONS}

    def _declare_drift_metrics(
        self, registry: CollectorRegistry, categorical_features: Sequence[str]
    ) -> None:
        # Set by the leader worker alone; 'livemax' hides the zeros of the other workers and
        # the values of dead ones (all these gauges are >= 0).
        mode: Literal["livemax"] = "livemax"
        self.drift_score = Gauge(
            "feature_drift_score",
            "Drift statistic of a feature over the current window against the training data "
            "(KS distance or PSI for numeric features, total-variation distance for categorical).",
            ["feature"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.drift_pvalue = Gauge(
            "feature_drift_pvalue",
            "p-value of the feature's drift test over the current window (small means drift).",
            ["feature"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.drift_detected = Gauge(
            "feature_drift_detected",
            "1 if the feature's drift test fires at the corrected significance level, else 0.",
            ["feature"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.missing_share = Gauge(
            "feature_missing_share",
            "Share of null or unseen category values of a categorical feature in the window.",
            ["feature"],
            registry=registry,
            multiprocess_mode=mode,
        )
        self.categorical_features = tuple(categorical_features)
        self.dataset_drift_share = Gauge(
            "dataset_drift_share",
            "Share of features whose drift test fires in the current window (0 to 1).",
            registry=registry,
            multiprocess_mode=mode,
        )
        self.drift_window_size = Gauge(
            "drift_window_size",
            "Records in the drift monitor's current window (all workers together).",
            registry=registry,
            multiprocess_mode=mode,
        )
        self.drift_last_evaluation = Gauge(
            "drift_last_evaluation_timestamp_seconds",
            "Unix time of the drift monitor's last evaluation.",
            registry=registry,
            multiprocess_mode=mode,
        )

    def _declare_feedback_metrics(self, registry: CollectorRegistry) -> None:
        accuracy = Gauge(
            "model_accuracy",
            "Share of correct predictions among the last feedback_window feedbacks of a "
            "model version (all workers together); absent until the first feedback.",
            ["model_version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        feedback_count = Counter(
            "feedback_count",
            "Feedbacks (true labels) received, by the model version that made the prediction.",
            ["model_version"],
            registry=registry,
        )
        feedback_correct = Counter(
            "feedback_correct",
            "Feedbacks whose true label matched the prediction, by model version.",
            ["model_version"],
            registry=registry,
        )
        self.accuracy_gauge = accuracy
        self.feedback_count = {version: feedback_count.labels(version) for version in self.versions}
        self.feedback_correct = {
            version: feedback_correct.labels(version) for version in self.versions
        }


PROC_DIR = Path("/proc")


class ServiceProcessCollector(Collector):
    """CPU time, resident memory and number of the processes of one service, read per scrape.

    The service is the process ``root_pid`` and all its descendants: with N uvicorn workers
    that is the supervisor and the workers, so the numbers are right for 1 or N workers.
    prometheus-client's ``ProcessCollector`` reads one pid, and the multiprocess collector
    leaves process metrics out, hence this collector.

    Each process's CPU includes the CPU of the children it has already waited for (a worker
    that exited and was replaced), so the counter does not drop when a worker restarts.
    Resident memory is a plain sum of RSS: pages shared between processes (libraries, the
    interpreter) count once per process, so it overstates the service's real footprint by
    up to the size of those pages times the number of workers.

    Use::

        registry.register(ServiceProcessCollector(os.getpid()))
    """

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid

    def describe(self) -> Iterable[Metric]:
        # Lets a registry learn the names without measuring anything.
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self.measure())

    def measure(self) -> tuple[float, int, int]:
        """(CPU seconds, resident bytes, processes) summed over the service's live processes."""
        cpu_s = 0.0
        resident_bytes = 0
        processes = 0
        for pid in service_pids(self.root_pid):
            try:
                process = psutil.Process(pid)
                with process.oneshot():
                    times = process.cpu_times()
                    rss_bytes = process.memory_info().rss
            except psutil.Error as error:
                # The process ended between listing and reading: it is no longer the service's.
                logger.debug("process gone pid=%s: %s", pid, error)
                continue
            cpu_s += times.user + times.system + times.children_user + times.children_system
            resident_bytes += rss_bytes
            processes += 1
        return cpu_s, resident_bytes, processes

    @staticmethod
    def _families(measured: tuple[float, int, int] | None) -> list[Metric]:
        # Without a measurement the families carry no sample (for describe()).
        cpu_s, resident_bytes, processes = measured or (None, None, None)
        return [
            CounterMetricFamily(
                "service_process_cpu_seconds",
                "User and system CPU time of all the service's processes (the started process "
                "and its descendants, e.g. the uvicorn supervisor and workers), in seconds.",
                value=cpu_s,
            ),
            GaugeMetricFamily(
                "service_process_resident_memory_bytes",
                "Resident memory (RSS) summed over all the service's processes, in bytes.",
                value=resident_bytes,
            ),
            GaugeMetricFamily(
                "service_processes",
                "Live processes of the service: the started process and its descendants.",
                value=processes,
            ),
        ]


def service_pids(root_pid: int, proc_dir: Path = PROC_DIR) -> list[int]:
    """``root_pid`` and every live descendant; empty if ``root_pid`` is gone.

    On Linux the tree is walked through ``/proc/<pid>/task/<tid>/children``, which costs a
    few file reads per thread of the service; elsewhere psutil scans every process of the
    machine, which is slower.
    """
    # The main thread's id is the pid; no such file: not Linux, or a kernel without it.
    if not (proc_dir / str(root_pid) / "task" / str(root_pid) / "children").exists():
        return _psutil_tree(root_pid)
    pids: list[int] = []
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        pending.extend(_proc_children(proc_dir, pid))
    return pids


def _proc_children(proc_dir: Path, pid: int) -> Iterator[int]:
    # Each thread lists the children it forked, so every thread's file is read.
    try:
        threads = os.listdir(proc_dir / str(pid) / "task")
    except OSError:
        return
    for thread in threads:
        try:
            listed = (proc_dir / str(pid) / "task" / thread / "children").read_text()
        except OSError:
            continue
        yield from (int(child) for child in listed.split())


def _psutil_tree(root_pid: int) -> list[int]:
    try:
        root = psutil.Process(root_pid)
        return [root_pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []
