"""The service as a real process: CLI errors, two uvicorn workers whose counts add up, and
CPU and memory of the whole process tree (supervisor and workers)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from target_service.dataset import FEATURES, TARGET, load_split

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"ready url=(http://127\.0\.0\.1:\d+)")
START_TIMEOUT_S = 90.0


def service_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DRIFTGATE_", "PROMETHEUS_MULTIPROC"))
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "target_service", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=service_env(),
        timeout=60,
    )


def test_bad_setting_in_the_file_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("workers: 0\n")

    result = run_cli("--config", str(config), "--port", "0")

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "workers" in result.stderr and "0" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_version_in_weights_names_the_choices(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"model_weights": {"v7": 1.0}}))

    result = run_cli("--config", str(config))

    assert result.returncode == 2
    assert "model_weights" in result.stderr and "v7" in result.stderr and "v1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@contextlib.contextmanager
def running_service(
    tmp_path: Path, model_cache: Path, env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Two workers on a free loopback port; always stopped (terminate, then kill)."""
    config = tmp_path / "service.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_cache_dir": str(model_cache),
                "drift": {"evaluation_interval_s": 0.2, "min_samples": 10},
            }
        )
    )
    log_path = tmp_path / "service.log"
    command = [sys.executable, "-m", "target_service", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", "0", "--workers", "2"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        try:
            yield wait_for_ready_url(process, log_path), process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def two_workers(tmp_path: Path, model_cache: Path) -> Iterator[str]:
    with running_service(tmp_path, model_cache, service_env()) as (url, _):
        yield url


def test_stopping_the_service_removes_its_run_directory(tmp_path: Path, model_cache: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**service_env(), "TMPDIR": str(temporary)}

    with running_service(tmp_path, model_cache, env) as (_, process):
        run_dirs = list(temporary.glob("driftgate-service-*"))
        contents = {path.name for path in run_dirs[0].iterdir()} if run_dirs else set()
        process.terminate()
        exit_code = process.wait(timeout=15)

    assert len(run_dirs) == 1
    assert contents == {"monitor", "prometheus"}
    assert exit_code == 0
    assert not run_dirs[0].exists()


def wait_for_ready_url(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        match = READY.search(log_path.read_text(errors="replace"))
        if match:
            return match[1]
        time.sleep(0.1)
    raise AssertionError(f"service not ready:\n{log_path.read_text(errors='replace')}")


def fresh_connection(url: str) -> httpx.Client:
    # No keep-alive: each request opens a connection, so the kernel spreads them over workers.
    return httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0), timeout=10)


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and wanted <= set(sample_labels)
    )


def expected_accuracy(outcomes: list[tuple[dict, str]]) -> dict[str, float]:
    by_version: dict[str, list[bool]] = {}
    for prediction, truth in outcomes:
        by_version.setdefault(prediction["model_version"], []).append(
            prediction["predicted_class"] == truth
        )
    return {version: sum(hits) / len(hits) for version, hits in by_version.items()}


def test_two_workers_counts_add_up_and_one_leader_sees_all_rows(two_workers: str) -> None:
    holdout = load_split().holdout.iloc[:60]
    with fresh_connection(two_workers) as client:
        workers = find_worker_pids(client)
        outcomes = []
        for _, row in holdout.iterrows():
            record = {spec.name: row[spec.name] for spec in FEATURES}
            prediction = client.post("/predict", json=record).json()
            outcomes.append((prediction, row[TARGET]))
        for _ in range(7):
            client.post("/predict", content=b"{not json")
        for prediction, truth in outcomes[:25]:
            client.post(
                "/feedback", json={"request_id": prediction["request_id"], "true_label": truth}
            )

        # The leader publishes every 0.2 s; wait (bounded) until it has read everything.
        accuracy = expected_accuracy(outcomes[:25])

        def settled(samples: dict) -> bool:
            published = {
                version: total(samples, "model_accuracy", model_version=version)
                for version in accuracy
            }
            return total(samples, "drift_window_size") == 60 and all(
                published[version] == pytest.approx(value) for version, value in accuracy.items()
            )

        deadline = time.monotonic() + 30
        samples = scrape(client)
        while time.monotonic() < deadline and not settled(samples):
            time.sleep(0.2)
            samples = scrape(client)

    assert len(workers) == 2
    assert total(samples, "prediction_count_total") == 60
    assert total(samples, "rejected_requests_total", reason="malformed_json") == 7
    predict_ok = total(
        samples, "http_request_duration_seconds_count", route="/predict", status="200"
    )
    assert predict_ok == 60
    assert total(samples, "feedback_count_total") == 25
    correct = [p["predicted_class"] == truth for p, truth in outcomes[:25]]
    assert total(samples, "feedback_correct_total") == sum(correct)
    assert settled(samples)


def find_worker_pids(client: httpx.Client, attempts: int = 300) -> dict[int, bool]:
    """pid -> leads the monitor, for both workers (fresh connections spread over them)."""
    workers: dict[int, bool] = {}
    for _ in range(attempts):
        answer = client.get("/readyz").json()
        workers[answer["pid"]] = answer["monitor_leader"]
        if len(workers) == 2 and any(workers.values()):
            break
        time.sleep(0.05)
    return workers


def send_predictions(client: httpx.Client, start: int, stop: int) -> None:
    for _, row in load_split().holdout.iloc[start:stop].iterrows():
        record = {spec.name: row[spec.name] for spec in FEATURES}
        assert client.post("/predict", json=record).status_code == 200


def wait_for_window(client: httpx.Client, rows: float) -> dict:
    deadline = time.monotonic() + 30
    samples = scrape(client)
    while time.monotonic() < deadline and total(samples, "drift_window_size") != rows:
        time.sleep(0.2)
        samples = scrape(client)
    return samples


def test_another_worker_takes_over_when_the_leader_dies(two_workers: str) -> None:
    with fresh_connection(two_workers) as client:
        workers = find_worker_pids(client)
        send_predictions(client, 0, 40)
        before = wait_for_window(client, 40)
        leader = next(pid for pid, leading in workers.items() if leading)

        os.kill(leader, signal.SIGKILL)
        send_predictions(client, 40, 70)
        after = wait_for_window(client, 70)
        takeover = find_worker_pids(client)

    assert len(workers) == 2
    assert total(before, "drift_window_size") == 40
    assert total(after, "drift_window_size") == 70
    new_leaders = [pid for pid, leading in takeover.items() if leading]
    assert new_leaders and leader not in new_leaders
    assert total(after, "drift_last_evaluation_timestamp_seconds") > total(
        before, "drift_last_evaluation_timestamp_seconds"
    )
    # The killed worker's CPU moves to the supervisor when it is reaped: no drop.
    assert total(after, CPU) >= total(before, CPU)


CPU = "service_process_cpu_seconds_total"


def cpu_s(processes: list[psutil.Process]) -> float:
    return sum(sum(process.cpu_times()[:2]) for process in processes)


def test_process_metrics_cover_the_supervisor_and_every_worker(
    tmp_path: Path, model_cache: Path
) -> None:
    with (
        running_service(tmp_path, model_cache, service_env()) as (url, service),
        fresh_connection(url) as client,
    ):
        workers = find_worker_pids(client)
        first = scrape(client)
        send_predictions(client, 0, 40)
        root = psutil.Process(service.pid)
        tree = [root, *root.children(recursive=True)]
        workers_cpu_s = cpu_s([psutil.Process(pid) for pid in workers])
        second = scrape(client)
        rss_bytes = sum(process.memory_info().rss for process in tree)

    assert len(workers) == 2
    assert set(workers) <= {process.pid for process in tree}
    # Supervisor, two workers and multiprocessing's resource tracker, as psutil finds them.
    assert total(second, "service_processes") == len(tree) >= 3
    assert total(first, CPU) <= total(second, CPU)
    assert total(second, CPU) >= workers_cpu_s
    assert total(second, "service_process_resident_memory_bytes") == pytest.approx(
        rss_bytes, rel=0.3
    )
