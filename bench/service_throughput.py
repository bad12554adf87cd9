"""Throughput of the reference service, with and without instrumentation and drift monitoring.

Starts two single-worker services on free loopback ports, one fully instrumented (metrics,
HTTP timing, drift monitor) and one bare (``instrumentation_enabled: false``,
``drift.enabled: false``), then drives ``POST /predict`` with single records from ``wrk``
in interleaved rounds (the order alternates each round), so both meet the same machine
conditions. Prints requests/s per round, the medians, and instrumented/bare as a ratio.

The load generator shares the machine (and other work may run on it), so throughput is
noisy. The bench therefore also prints the service process's CPU time per request (user +
system, the monitor thread included) and the bare/instrumented ratio of it: the share of
throughput instrumentation leaves on a CPU-bound worker. Last, it drives both apps
in-process through ASGI calls (no sockets, no HTTP parsing, so the relative cost shows
larger than over HTTP) and compares CPU time per request, which other processes on the
machine disturb least.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``). Usage::

    python bench/service_throughput.py [--rounds 6] [--duration-s 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import yaml
from prometheus_client import CollectorRegistry

from target_service.app import create_app
from target_service.config import load_settings
from target_service.dataset import example_record
from target_service.models import load_models

READY_PATTERN = re.compile(r"ready url=(http://\S+)")
RATE_PATTERN = re.compile(r"Requests/sec:\s+([0-9.]+)")
TOTAL_PATTERN = re.compile(r"(\d+) requests in")
NON_2XX_PATTERN = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
WARM_UP_S = 2.0

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "instrumented": {"instrumentation_enabled": True, "drift": {"enabled": True}},
    "bare": {"instrumentation_enabled": False, "drift": {"enabled": False}},
}


@dataclass(frozen=True)
class Service:
    """A running one-worker service: its URL and its process (the worker itself)."""

    url: str
    process: psutil.Process


@dataclass(frozen=True)
class Measurement:
    requests_per_s: float
    cpu_per_request_s: float


def lua_script(body: str) -> str:
    """A wrk script that POSTs ``body`` as JSON."""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


@contextlib.contextmanager
def running_service(config_path: Path, log_path: Path) -> Iterator[Service]:
    """A one-worker service on a free loopback port for the duration of the block."""
    command = [
        sys.executable,
        "-m",
        "target_service",
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--workers",
        "1",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = wait_until_ready(process, log_path)
            yield Service(url, psutil.Process(process.pid))
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        match = READY_PATTERN.search(log_path.read_text(errors="replace"))
        if match:
            return match[1]
        time.sleep(0.1)
    raise RuntimeError(f"service did not become ready; see {log_path}")


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def run_wrk(service: Service, script: Path, duration_s: float, connections: int) -> Measurement:
    """One wrk run against the service's /predict; fails on any non-2xx answer."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "-s", str(script)]
    cpu_before_s = cpu_s(service.process)
    output = subprocess.run(
        [*command, f"{service.url}/predict"], capture_output=True, text=True, check=True
    ).stdout
    cpu_used_s = cpu_s(service.process) - cpu_before_s

    non_2xx = NON_2XX_PATTERN.search(output)
    if non_2xx:
        raise RuntimeError(f"{non_2xx[1]} non-2xx answers from {service.url}:\n{output}")
    rate, requests = RATE_PATTERN.search(output), TOTAL_PATTERN.search(output)
    if rate is None or requests is None:
        raise RuntimeError(f"no request count in wrk's output:\n{output}")
    return Measurement(float(rate[1]), cpu_used_s / max(int(requests[1]), 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration-s", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk not found; install it (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2

    with (
        tempfile.TemporaryDirectory(prefix="driftgate-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        script = work / "predict.lua"
        script.write_text(lua_script(json.dumps(example_record())))
        services = {}
        for name, values in CONFIGURATIONS.items():
            config = work / f"{name}.yaml"
            config.write_text(yaml.safe_dump(values))
            services[name] = stack.enter_context(running_service(config, work / f"{name}.log"))
        results = measure(services, script, args)

    report(results)
    in_process_cost(args.rounds)
    return 0


def measure(
    services: dict[str, Service], script: Path, args: argparse.Namespace
) -> dict[str, list[Measurement]]:
    # Warm-up: the first requests pay for lazy imports and the detector's calibration.
    for service in services.values():
        run_wrk(service, script, WARM_UP_S, args.connections)

    results: dict[str, list[Measurement]] = {name: [] for name in services}
    for round_index in range(args.rounds):
        order = list(services) if round_index % 2 == 0 else list(reversed(services))
        for name in order:
            results[name].append(run_wrk(services[name], script, args.duration_s, args.connections))
        print(
            f"round {round_index + 1}: "
            + ", ".join(
                f"{name} {results[name][-1].requests_per_s:.0f} req/s "
                f"({results[name][-1].cpu_per_request_s * 1e6:.0f} us CPU/request)"
                for name in services
            )
        )
    return results


def report(results: dict[str, list[Measurement]]) -> None:
    rate = {n: statistics.median(m.requests_per_s for m in r) for n, r in results.items()}
    cpu = {n: statistics.median(m.cpu_per_request_s for m in r) for n, r in results.items()}
    for name in results:
        print(f"median {name}: {rate[name]:.0f} req/s, {cpu[name] * 1e6:.0f} us CPU/request")
    print(f"throughput ratio instrumented/bare: {rate['instrumented'] / rate['bare']:.3f}")
    # Each round's two runs are adjacent in time; their ratio cancels slow drifts of the load.
    paired = statistics.median(
        one.requests_per_s / other.requests_per_s
        for one, other in zip(results["instrumented"], results["bare"], strict=True)
    )
    print(f"median of per-round throughput ratios instrumented/bare: {paired:.3f}")
    print(f"CPU-cost ratio bare/instrumented: {cpu['bare'] / cpu['instrumented']:.3f}")


def in_process_cost(rounds: int, requests_per_round: int = 3000) -> None:
    """CPU time per request of both apps driven directly through ASGI, interleaved."""
    asyncio.run(_in_process_cost(rounds, requests_per_round))


async def _in_process_cost(rounds: int, requests_per_round: int) -> None:
    settings = {name: load_settings(**values) for name, values in CONFIGURATIONS.items()}
    models = load_models(settings["bare"].resolved_cache_dir())
    body = json.dumps(example_record()).encode()
    cpu_per_request: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory(prefix="driftgate-bench-") as tmp:
        apps = {
            name: create_app(
                values,
                registry=CollectorRegistry(),
                shared_dir=Path(tmp) / name,
                rng=np.random.default_rng(0),
                models=models,
            )
            for name, values in settings.items()
        }
        async with contextlib.AsyncExitStack() as stack:
            for app in apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            # Warm-up, and time for the monitor's first tick, which calibrates the detector.
            for app in apps.values():
                await _drive(app, body, requests_per_round)
            await asyncio.sleep(3 * settings["instrumented"].drift.evaluation_interval_s)
            for round_index in range(rounds):
                order = list(apps) if round_index % 2 == 0 else list(reversed(apps))
                for name in order:
                    start_s = time.process_time()
                    await _drive(apps[name], body, requests_per_round)
                    used_s = (time.process_time() - start_s) / requests_per_round
                    cpu_per_request[name].append(used_s)

    medians = {name: statistics.median(values) for name, values in cpu_per_request.items()}
    for name, median in medians.items():
        print(f"in-process {name}: {median * 1e6:.0f} us CPU/request")
    ratio = medians["bare"] / medians["instrumented"]
    print(f"in-process CPU-cost ratio bare/instrumented: {ratio:.3f}")


async def _drive(app: Any, body: bytes, requests: int) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    statuses = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(requests):
        await app(dict(scope), _receiver(body), send)
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses in-process: {sorted(set(statuses))}")


def _receiver(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI receive callable: the whole body once, then a disconnect."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    return receive


if __name__ == "__main__":
    sys.exit(main())
