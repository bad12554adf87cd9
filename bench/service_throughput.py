"""Throughput of the reference service, with and without instrumentation and drift monitoring.

Starts two single-worker services on free loopback ports, one fully instrumented (metrics,
HTTP timing, drift monitor) and one bare (``instrumentation_enabled: false``,
``drift.enabled: false``), then drives ``POST /predict`` with single records from ``wrk``
in interleaved rounds (the order alternates each round), so both meet the same machine
conditions. Prints requests/s per round, the medians, and instrumented/bare as a ratio.

The load generator shares the machine (and other work may run on it), so throughput is
noisy. The bench therefore also prints the service process's CPU time per request (user +
system, the monitor thread included), which other processes disturb much less, and the
bare/instrumented ratio of it: the throughput share instrumentation would leave on a
CPU-bound worker.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``). Usage::

    python bench/service_throughput.py [--rounds 6] [--duration-s 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

from target_service.dataset import example_record

READY_PATTERN = re.compile(r"ready url=(http://\S+)")
RATE_PATTERN = re.compile(r"Requests/sec:\s+([0-9.]+)")
TOTAL_PATTERN = re.compile(r"(\d+) requests in")
NON_2XX_PATTERN = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
WARM_UP_S = 2.0

CONFIGURATIONS: dict[str, dict[str, object]] = {
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
    print(f"CPU-cost ratio bare/instrumented: {cpu['bare'] / cpu['instrumented']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
