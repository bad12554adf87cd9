"""Throughput of the reference service, with and without instrumentation and drift monitoring.

Starts two single-worker services on free loopback ports, one fully instrumented (metrics,
HTTP timing, drift monitor) and one bare (``instrumentation_enabled: false``,
``drift.enabled: false``), then drives ``POST /predict`` with single records from ``wrk``
in interleaved rounds (the order alternates each round), so both meet the same machine
conditions. Prints requests/s per round, the medians, and instrumented/bare as a ratio.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``). Usage::

    python bench/service_throughput.py [--rounds 5] [--duration-s 5] [--connections 16]

Load generator and service share the machine, so the figures are a floor for the service.
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
from pathlib import Path

import yaml

from target_service.dataset import example_record

READY_PATTERN = re.compile(r"ready url=(http://\S+)")
RATE_PATTERN = re.compile(r"Requests/sec:\s+([0-9.]+)")
NON_2XX_PATTERN = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0

CONFIGURATIONS: dict[str, dict[str, object]] = {
    "instrumented": {"instrumentation_enabled": True, "drift": {"enabled": True}},
    "bare": {"instrumentation_enabled": False, "drift": {"enabled": False}},
}


def lua_script(body: str) -> str:
    """A wrk script that POSTs ``body`` as JSON."""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


@contextlib.contextmanager
def running_service(config_path: Path, log_path: Path) -> Iterator[str]:
    """A service on a free loopback port for the duration of the block; yields its URL."""
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
            yield wait_until_ready(process, log_path)
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


def run_wrk(url: str, script: Path, duration_s: float, connections: int) -> float:
    """Requests/s of one wrk run against ``url``/predict; fails on any non-2xx answer."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        "-s",
        str(script),
        f"{url}/predict",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = NON_2XX_PATTERN.search(output)
    if non_2xx:
        raise RuntimeError(f"{non_2xx[1]} non-2xx answers from {url}:\n{output}")
    rate = RATE_PATTERN.search(output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return float(rate[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
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
        urls = {}
        for name, values in CONFIGURATIONS.items():
            config = work / f"{name}.yaml"
            config.write_text(yaml.safe_dump(values))
            urls[name] = stack.enter_context(running_service(config, work / f"{name}.log"))

        # Warm-up: first requests pay for lazy imports and allocator growth.
        for url in urls.values():
            run_wrk(url, script, 2.0, args.connections)

        rates: dict[str, list[float]] = {name: [] for name in urls}
        for round_index in range(args.rounds):
            order = list(urls) if round_index % 2 == 0 else list(reversed(urls))
            for name in order:
                rates[name].append(run_wrk(urls[name], script, args.duration_s, args.connections))
            print(
                f"round {round_index + 1}: "
                + ", ".join(f"{name} {rates[name][-1]:.0f} req/s" for name in urls)
            )

    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, median in medians.items():
        print(f"median {name}: {median:.0f} req/s")
    print(f"ratio instrumented/bare: {medians['instrumented'] / medians['bare']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
