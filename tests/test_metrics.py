"""The service's metrics: exported names, types and label sets, the latency buckets, and the
CPU and memory of the service's process tree checked against an independent psutil reading."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from target_service.app import create_app
from target_service.config import load_settings
from target_service.dataset import CATEGORICAL_FEATURES, CLASSES, FEATURE_NAMES, example_record
from target_service.metrics import (
    ANCHORS_S,
    REJECTION_REASONS,
    ServiceProcessCollector,
    latency_buckets_s,
    service_pids,
)
from target_service.models import load_models

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"

# name -> (type, label names): the contract of docs/metrics.md and docs/api-contract.
DOCUMENTED = {
    "prediction_count": ("counter", {"model_version", "predicted_class"}),
    "inference_latency_seconds": ("histogram", {"model_version"}),
    "http_request_duration_seconds": ("histogram", {"method", "route", "status"}),
    "prediction_confidence": ("histogram", {"model_version"}),
    "feature_drift_score": ("gauge", {"feature"}),
    "feature_drift_pvalue": ("gauge", {"feature"}),
    "feature_drift_detected": ("gauge", {"feature"}),
    "feature_missing_share": ("gauge", {"feature"}),
    "dataset_drift_share": ("gauge", set()),
    "drift_window_size": ("gauge", set()),
    "drift_last_evaluation_timestamp_seconds": ("gauge", set()),
    "model_accuracy": ("gauge", {"model_version"}),
    "feedback_count": ("counter", {"model_version"}),
    "feedback_correct": ("counter", {"model_version"}),
    "rejected_requests": ("counter", {"reason"}),
    "service_process_cpu_seconds": ("counter", set()),
    "service_process_resident_memory_bytes": ("gauge", set()),
    "service_processes": ("gauge", set()),
}


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Metric]:
    tmp = tmp_path_factory.mktemp("metrics")
    settings = load_settings(drift={"evaluation_interval_s": 60, "min_samples": 10})
    app = create_app(
        settings,
        registry=CollectorRegistry(),
        shared_dir=tmp / "monitor",
        rng=np.random.default_rng(0),
        models=load_models(tmp / "models"),
    )
    with TestClient(app) as client:
        prediction = client.post("/predict", json=example_record()).json()
        client.post(
            "/feedback", json={"request_id": prediction["request_id"], "true_label": "visit"}
        )
        client.post("/predict", content=b"{")
        app.state.service.instrumentation.monitor.tick()
        text = client.get("/metrics").text
    return {family.name: family for family in text_string_to_metric_families(text)}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_documented_metric_is_exported_with_its_type_and_labels(
    scraped: dict[str, Metric], name: str
) -> None:
    kind, labels = DOCUMENTED[name]
    family = scraped[name]

    assert family.type == kind
    assert family.documentation
    for sample in family.samples:
        assert set(sample.labels) - {"le"} == labels


def test_label_values_cover_exactly_the_known_sets(scraped: dict[str, Metric]) -> None:
    def values(name: str, label: str, suffix: str = "") -> set[str]:
        return {s.labels[label] for s in scraped[name].samples if s.name == name + suffix}

    assert values("prediction_count", "predicted_class", "_total") == set(CLASSES)
    assert values("prediction_count", "model_version", "_total") == {"v1", "v2"}
    assert values("rejected_requests", "reason", "_total") == set(REJECTION_REASONS)
    assert values("feature_drift_score", "feature") == set(FEATURE_NAMES)
    assert values("feature_missing_share", "feature") == set(CATEGORICAL_FEATURES)
    assert values("http_request_duration_seconds", "route", "_count") == {"/predict", "/feedback"}


def test_no_metric_is_exported_that_the_docs_do_not_name(scraped: dict[str, Metric]) -> None:
    # Counters and histograms also expose a "_created" timestamp, parsed as its own family.
    ours = {
        name
        for name in scraped
        if not name.startswith(("python_", "process_")) and not name.endswith("_created")
    }

    assert ours == set(DOCUMENTED)


def test_docs_name_every_metric_and_reason() -> None:
    text = DOCS.read_text()

    for name, (kind, _) in DOCUMENTED.items():
        exported = f"{name}_total" if kind == "counter" else name
        assert re.search(rf"`{exported}`\s*\|\s*{kind}", text), exported
    for reason in REJECTION_REASONS:
        assert f"`{reason}`" in text


def test_docs_give_a_query_for_every_metric() -> None:
    queries = DOCS.read_text().split("```promql")[1].split("```")[0]

    for name, (kind, _) in DOCUMENTED.items():
        exported = f"{name}_total" if kind == "counter" else name
        assert exported in queries, exported


def test_docs_list_the_buckets_the_code_builds() -> None:
    block = DOCS.read_text().split("## Latency buckets")[1].split("```")[1]

    documented = [float(value) for value in re.findall(r"[0-9.]+", block)]

    assert documented == pytest.approx(list(latency_buckets_s()))


def test_latency_buckets_hold_every_sla_threshold_exactly() -> None:
    buckets = latency_buckets_s()

    for threshold in (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0):
        assert threshold in buckets
    assert set(ANCHORS_S) <= set(buckets)


def test_any_threshold_from_1ms_to_1s_is_within_10_percent_of_a_bound() -> None:
    buckets = np.array(latency_buckets_s())
    thresholds = np.geomspace(0.001, 1.0, 5000)

    nearest = np.min(np.abs(buckets[None, :] / thresholds[:, None] - 1), axis=1)

    assert nearest.max() <= 0.10
    ratios = buckets[1:] / buckets[:-1]
    assert ratios[buckets[1:] > 0.0005].max() <= 1.2 + 1e-9
    assert all(math.isfinite(bound) for bound in buckets)


# A parent that burns CPU_BURN_S of CPU in a child it waits for, then starts two sleeping
# children (one with a child of its own) and prints "ready". Every process ends by itself.
TREE_SCRIPT = """
import subprocess, sys, time
burn = "import time\\nwhile time.process_time() < {burn_s}: pass"
subprocess.run([sys.executable, "-c", burn], check=True)
sleep = "import time; time.sleep({life_s})"
nested = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {{sleep!r}}])"
children = [subprocess.Popen([sys.executable, "-c", code]) for code in (sleep, nested)]
print("ready", flush=True)
time.sleep({life_s})
"""
CPU_BURN_S = 0.3
TREE_LIFE_S = 60
# Processes in the tree: parent, two children, one grandchild.
TREE_SIZE = 4
# Every clock-tick-rounded CPU figure can be short by one 10 ms tick.
TICK_S = 0.01
# Sums of the same tick counts in another order may differ in the last float bits.
SUM_ORDER_SLACK_S = 1e-9


@pytest.fixture
def process_tree() -> Iterator[psutil.Process]:
    """A small process tree that has reaped one CPU-burning child; stopped afterwards."""
    code = TREE_SCRIPT.format(burn_s=CPU_BURN_S, life_s=TREE_LIFE_S)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        root = psutil.Process(parent.pid)
        deadline = time.monotonic() + 30
        while len(root.children(recursive=True)) < TREE_SIZE - 1:
            assert time.monotonic() < deadline, "the process tree did not start"
            time.sleep(0.05)
        yield root
    finally:
        for process in _tree(parent.pid):
            process.kill()
        parent.wait(timeout=10)
        psutil.wait_procs(_tree(parent.pid), timeout=10)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return []


def _cpu_s(processes: list[psutil.Process]) -> float:
    total_s = 0.0
    for process in processes:
        times = process.cpu_times()
        total_s += times.user + times.system + times.children_user + times.children_system
    return total_s


def test_process_tree_is_found_on_proc_and_through_psutil(
    process_tree: psutil.Process, tmp_path: Path
) -> None:
    expected = {process_tree.pid} | {child.pid for child in process_tree.children(True)}

    from_proc = service_pids(process_tree.pid)
    # An empty directory has no /proc files, so the psutil fallback answers.
    from_psutil = service_pids(process_tree.pid, proc_dir=tmp_path)

    assert len(expected) == TREE_SIZE
    assert sorted(from_proc) == sorted(expected)
    assert sorted(from_psutil) == sorted(expected)


def test_process_sums_agree_with_an_independent_psutil_reading(
    process_tree: psutil.Process,
) -> None:
    processes = _tree(process_tree.pid)
    cpu_before_s = _cpu_s(processes)

    samples = {
        family.name: family.samples[0].value
        for family in ServiceProcessCollector(process_tree.pid).collect()
    }

    cpu_after_s = _cpu_s(processes)
    rss_bytes = sum(process.memory_info().rss for process in processes)
    assert samples["service_processes"] == len(processes) == TREE_SIZE
    cpu_s = samples["service_process_cpu_seconds"]
    assert cpu_before_s - SUM_ORDER_SLACK_S <= cpu_s <= cpu_after_s + SUM_ORDER_SLACK_S
    assert samples["service_process_resident_memory_bytes"] == pytest.approx(rss_bytes, rel=0.3)


def test_cpu_of_a_reaped_child_stays_in_the_counter(process_tree: psutil.Process) -> None:
    cpu_s, _, _ = ServiceProcessCollector(process_tree.pid).measure()

    # The burning child exited before "ready"; the parent alone started in well under that.
    assert cpu_s >= CPU_BURN_S - TICK_S
    own = process_tree.cpu_times()
    assert own.user + own.system < CPU_BURN_S - TICK_S


def test_a_gone_service_reports_no_process() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=30)

    assert service_pids(finished.pid) == []
    assert ServiceProcessCollector(finished.pid).measure() == (0.0, 0, 0)


def test_the_app_serves_the_process_metrics(scraped: dict[str, Metric]) -> None:
    def value(name: str) -> float:
        return scraped[name].samples[0].value

    # In-process, the service's root is this test process, which has used CPU and memory.
    assert value("service_processes") >= 1
    assert value("service_process_cpu_seconds") > 0
    assert value("service_process_resident_memory_bytes") > 0
