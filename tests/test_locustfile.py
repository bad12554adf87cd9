"""The locustfile used directly with Locust's own command line (no driftgate runner)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from load_helpers import marker_scenario, recording_service

from driftgate.processes import free_loopback_port

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"


def run_locust(tmp_path: Path, url: str, extra_args: list[str]) -> subprocess.CompletedProcess:
    scenario_path = tmp_path / "scenario.yaml"
    scenario = marker_scenario(url, phase_s=2.0, users=2)
    scenario_path.write_text(yaml.safe_dump(scenario.model_dump(mode="json", exclude_unset=True)))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DRIFTGATE_SCENARIO": str(scenario_path)}
    env.pop("DRIFTGATE_RUN_DIR", None)
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url, *extra_args]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, output)


def test_headless_run_ends_after_the_last_phase(tmp_path: Path):
    with recording_service(tmp_path) as service:
        result = run_locust(tmp_path, service.url, ["--headless", "--only-summary"])
        seen = len(service.arrivals())

    assert result.returncode == 0, result.stdout
    assert "Shape test stopping" in result.stdout
    assert seen > 0


def test_web_ui_run_also_ends_by_itself(tmp_path: Path):
    web_port = free_loopback_port()
    with recording_service(tmp_path) as service:
        result = run_locust(
            tmp_path,
            service.url,
            ["--autostart", "--web-host", "127.0.0.1", "--web-port", str(web_port)],
        )
        seen = len(service.arrivals())

    assert result.returncode == 0, result.stdout
    assert "Shape test stopping" in result.stdout
    assert seen > 0


def test_a_missing_scenario_variable_is_a_clear_error(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("DRIFTGATE_SCENARIO", None)
    with recording_service(tmp_path) as service:
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            service.url,
        ]
        result = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert service.arrivals() == []
    assert result.returncode != 0
    assert "set DRIFTGATE_SCENARIO to a scenario file" in result.stdout + result.stderr
