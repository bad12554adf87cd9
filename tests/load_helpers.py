"""Shared by the load tests: a recording loopback service and short scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from driftgate.processes import free_loopback_port
from driftgate.scenario import Scenario, parse_scenario

SERVICE_SCRIPT = Path(__file__).resolve().parent / "loopback_service.py"
MARKER = "drifted-marker"


@dataclass(frozen=True)
class RecordingService:
    url: str
    record_path: Path

    def arrivals(self) -> list[dict]:
        return [json.loads(line) for line in self.record_path.read_text().splitlines() if line]


@contextmanager
def recording_service(tmp_path: Path, mode: str = "ok") -> Iterator[RecordingService]:
    port = free_loopback_port()
    record_path = tmp_path / "arrivals.jsonl"
    record_path.touch()
    process = subprocess.Popen(
        [
            sys.executable,
            str(SERVICE_SCRIPT),
            "--port",
            str(port),
            "--record",
            str(record_path),
            "--mode",
            mode,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/readyz", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield RecordingService(url, record_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def marker_scenario(
    url: str,
    phase_s: float = 3.0,
    users: int = 4,
    feedback_share: float = 0.5,
    extra_phase_s: float = 0.0,
) -> Scenario:
    """Normal traffic, then every record marked (unseen category): arrivals show the switch."""
    phases = [
        {
            "name": "warmup",
            "duration": phase_s,
            "users": users,
            "spawn_rate": users,
            "traffic": "normal",
        },
        {
            "name": "drift",
            "duration": phase_s,
            "users": users,
            "spawn_rate": users,
            "traffic": {
                "kind": "category_shift",
                "size": 1.0,
                "category": MARKER,
                "features": ["self_rated_health"],
            },
        },
    ]
    if extra_phase_s:
        phases.append(
            {
                "name": "after",
                "duration": extra_phase_s,
                "users": users,
                "spawn_rate": users,
                "traffic": "normal",
            }
        )
    return parse_scenario(
        {
            "name": "marker",
            "description": "normal, then every record marked",
            "seed": 3,
            "target": {"url": url},
            "load": {"wait_time": {"min": "20ms", "max": "60ms"}, "phases": phases},
            "feedback": {"share": feedback_share, "delay": "300ms"},
        }
    )


def locust_processes_for(run_dir: Path) -> list[psutil.Process]:
    """Locust processes started for ``run_dir`` that are still alive."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("DRIFTGATE_RUN_DIR") == str(run_dir.resolve()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
