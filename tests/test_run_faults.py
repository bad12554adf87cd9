"""Faults during ``driftgate run``: each gives a clear message, a non-zero exit code, keeps what
was measured, and leaves no process behind."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest
from e2e_helpers import (
    SCENARIOS,
    assert_nothing_left,
    only_run_dir,
    processes_with_marker,
    run_driftgate,
    shortened_scenario,
    start_driftgate,
)

from driftgate.cli import EXIT_INTERRUPTED, EXIT_RUN_ERROR
from driftgate.manifest import RunManifest
from driftgate.processes import free_loopback_port

pytestmark = pytest.mark.e2e

LOAD_START_TIMEOUT_S = 120.0
END_TIMEOUT_S = 120.0
# Children told of driftgate's death stop gracefully: Prometheus and uvicorn within seconds.
ORPHAN_GRACE_S = 30.0


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def _wait_for_load(runs_dir: Path) -> Path:
    """The run folder, once Locust has reported progress (the load is under way)."""
    deadline = time.monotonic() + LOAD_START_TIMEOUT_S
    while time.monotonic() < deadline:
        run_dir = only_run_dir(runs_dir)
        progress = run_dir / "progress.jsonl" if run_dir else None
        if progress is not None and progress.exists() and progress.stat().st_size > 0:
            return progress.parent
        time.sleep(0.2)
    raise AssertionError("the load never started")


def _wait_for_phase(run_dir: Path, phase: str, seconds_into: float) -> None:
    """Until Locust has reported ``seconds_into`` seconds of ``phase``."""
    deadline = time.monotonic() + LOAD_START_TIMEOUT_S
    while time.monotonic() < deadline:
        lines = (run_dir / "progress.jsonl").read_text().splitlines()
        reports = [json.loads(line) for line in lines if line.strip()]
        if sum(1 for report in reports if report.get("phase") == phase) > seconds_into:
            return
        time.sleep(0.2)
    raise AssertionError(f"phase {phase!r} never ran for {seconds_into}s")


def _marked_process(marker: str, argument: str) -> psutil.Process:
    """The run's child process whose command line has ``argument`` (a whole argument)."""
    for process in processes_with_marker(marker):
        if any(part == argument or part.startswith(f"{argument}=") for part in process.cmdline()):
            return process
    raise AssertionError(f"no running process with argument {argument!r}")


def _long_smoke(tmp_path: Path) -> Path:
    # Long enough that the fault surely lands during the load.
    return shortened_scenario("smoke", tmp_path, {"warmup": 5, "steady": 60})


def test_prometheus_dying_mid_run_stops_the_run(runs_dir: Path, tmp_path: Path) -> None:
    process, marker = start_driftgate(["run", str(_long_smoke(tmp_path))], runs_dir)
    try:
        run_dir = _wait_for_load(runs_dir)
        _marked_process(marker, "--storage.tsdb.path").kill()
        _, stderr = process.communicate(timeout=END_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()

    assert_nothing_left(marker)
    assert process.returncode == EXIT_RUN_ERROR
    assert "Prometheus died during the run" in stderr
    assert "Traceback" not in stderr
    manifest = RunManifest.load(run_dir / "manifest.json")
    assert not manifest.completed, "an interrupted run says so"


def test_ctrl_c_stops_everything_and_keeps_the_manifest(runs_dir: Path, tmp_path: Path) -> None:
    process, marker = start_driftgate(["run", str(_long_smoke(tmp_path))], runs_dir)
    try:
        run_dir = _wait_for_load(runs_dir)
        # Far enough into "steady" that its objectives have something to measure.
        _wait_for_phase(run_dir, "steady", seconds_into=8)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=END_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()

    assert_nothing_left(marker)
    assert process.returncode == EXIT_INTERRUPTED
    assert "interrupted" in stderr and "Traceback" not in stderr
    manifest = RunManifest.load(run_dir / "manifest.json")
    assert not manifest.completed
    assert (run_dir / "series").is_dir(), "the series measured so far were saved"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["run"]["completed"] is False, "the partial run's verdicts say it was cut"


def test_service_that_never_gets_ready_is_reported_with_its_log(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache folder inside a regular file cannot be created: the service exits at start-up.
    monkeypatch.setenv("DRIFTGATE_MODEL_CACHE_DIR", "/etc/hostname/models")

    result = run_driftgate(["run", str(SCENARIOS / "smoke.yaml")], runs_dir)

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_RUN_ERROR
    assert "the reference service exited with code" in result.stderr
    assert "service.log" in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[0]


def test_silent_prometheus_url_is_refused_before_anything_starts(runs_dir: Path) -> None:
    silent_url = f"http://127.0.0.1:{free_loopback_port()}"
    service_port = str(free_loopback_port())

    result = run_driftgate(
        [
            "run",
            str(SCENARIOS / "smoke.yaml"),
            "--prometheus-url",
            silent_url,
            "--service-port",
            service_port,
        ],
        runs_dir,
    )

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_RUN_ERROR
    assert f"--prometheus-url {silent_url}: does not answer a query" in result.stderr
    assert result.run_dir is None, "refused before the run folder was made"


def test_prometheus_url_with_the_bundled_service_needs_its_port(runs_dir: Path) -> None:
    # An outside Prometheus cannot scrape a service on a port chosen at random.
    url = f"http://127.0.0.1:{free_loopback_port()}"

    result = run_driftgate(
        ["run", str(SCENARIOS / "smoke.yaml"), "--prometheus-url", url], runs_dir
    )

    assert result.exit_code == 2
    assert "--prometheus-url needs --service-port" in result.stderr
    assert result.run_dir is None


def test_port_in_use_is_named(runs_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as occupier:
        occupier.bind(("127.0.0.1", 0))
        occupier.listen()
        port = occupier.getsockname()[1]

        result = run_driftgate(
            ["run", str(SCENARIOS / "smoke.yaml"), "--service-port", str(port)], runs_dir
        )

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_RUN_ERROR
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr


def test_crashed_locust_worker_fails_the_run(runs_dir: Path, tmp_path: Path) -> None:
    process, marker = start_driftgate(
        ["run", str(_long_smoke(tmp_path)), "--workers", "2"], runs_dir
    )
    try:
        _wait_for_load(runs_dir)
        _marked_process(marker, "--worker").kill()
        _, stderr = process.communicate(timeout=END_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()

    assert_nothing_left(marker)
    assert process.returncode == EXIT_RUN_ERROR, stderr
    assert "locust" in stderr.lower() and "Traceback" not in stderr


def test_bad_scenario_is_one_line_and_starts_nothing(runs_dir: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    text = (SCENARIOS / "smoke.yaml").read_text().replace("duration: 5s", 'duration: "3O s"')
    scenario.write_text(text)

    result = run_driftgate(["run", str(scenario)], runs_dir)

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "load.phases[0].duration" in lines[0] and "3O s" in lines[0]
    assert result.run_dir is None, "nothing was created or started"
    assert_nothing_left(result.marker)


def test_driftgate_killed_outright_leaves_no_process(runs_dir: Path, tmp_path: Path) -> None:
    # SIGKILL runs no clean-up in driftgate: its children must notice and end by themselves.
    process, marker = start_driftgate(
        ["run", str(_long_smoke(tmp_path)), "--workers", "2"], runs_dir
    )
    try:
        _wait_for_load(runs_dir)
        process.kill()
        process.wait(timeout=END_TIMEOUT_S)
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while processes_with_marker(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        if process.poll() is None:
            process.kill()

    assert_nothing_left(marker)
