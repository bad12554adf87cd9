"""Helpers for end-to-end tests that run the real ``driftgate`` command as a process.

Every process a run starts inherits a marker environment variable, so a test can prove that
none of them is left once the command has ended, whatever way it ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = REPO_ROOT / "scenarios"
MARKER_ENV = "DRIFTGATE_TEST_RUN_MARKER"
RUN_TIMEOUT_S = 600


@dataclass
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    run_dir: Path | None
    marker: str

    def report(self) -> dict[str, Any]:
        assert self.run_dir is not None, f"no run folder; stderr: {self.stderr}"
        return json.loads((self.run_dir / "report.json").read_text())

    def verdicts(self) -> dict[str, str]:
        return {item["name"]: item["verdict"] for item in self.report()["objectives"]}


def driftgate_command() -> list[str]:
    return [sys.executable, "-c", "from driftgate.cli import app; app()"]


def marked_env(marker: str) -> dict[str, str]:
    env = dict(os.environ)
    env[MARKER_ENV] = marker
    env["COLUMNS"] = "200"
    return env


def start_driftgate(args: list[str], runs_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``driftgate ARGS --runs-dir RUNS_DIR`` in the background; return it and its marker."""
    marker = uuid.uuid4().hex
    process = subprocess.Popen(
        [*driftgate_command(), *args, "--runs-dir", str(runs_dir)],
        cwd=REPO_ROOT,
        env=marked_env(marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, marker


def run_driftgate(args: list[str], runs_dir: Path) -> RunResult:
    """Run ``driftgate ARGS --runs-dir RUNS_DIR`` to its end."""
    process, marker = start_driftgate(args, runs_dir)
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return RunResult(process.returncode, stdout, stderr, only_run_dir(runs_dir), marker)


def only_run_dir(runs_dir: Path) -> Path | None:
    folders = sorted(path for path in runs_dir.glob("*") if path.is_dir())
    return folders[-1] if folders else None


def processes_with_marker(marker: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``marker`` (children of a run)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER_ENV) == marker and process.status() != "zombie":
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def describe(processes: list[psutil.Process]) -> list[str]:
    """Command lines for an assertion message; a process that just ended is named by pid."""
    described = []
    for process in processes:
        try:
            described.append(" ".join(process.cmdline()))
        except psutil.Error:
            described.append(f"pid {process.pid} (ended while being listed)")
    return described


def assert_nothing_left(marker: str) -> None:
    """No process of the run is alive; kill any that are, so the next test starts clean."""
    leftovers = processes_with_marker(marker)
    kill_marked(marker)
    assert leftovers == [], f"processes left running: {describe(leftovers)}"


def kill_marked(marker: str) -> None:
    """Clean-up after a failed assertion, so one broken test does not leak into the next."""
    for process in processes_with_marker(marker):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue


def shortened_scenario(name: str, tmp_path: Path, phase_seconds: dict[str, int]) -> Path:
    """A copy of a shipped scenario with shorter phases, objectives unchanged."""
    data = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())
    for phase in data["load"]["phases"]:
        if phase["name"] in phase_seconds:
            phase["duration"] = f"{phase_seconds[phase['name']]}s"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
