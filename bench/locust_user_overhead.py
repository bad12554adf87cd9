"""How much the scenario user's own work costs, against a bare FastHttpUser, side by side.

Both arms run one Locust process with the same number of users and no wait time against
the same service, alternating for a few rounds:

* bare: ``bench/bare_user_locustfile.py`` posts one fixed body to /predict;
* scenario: ``loadtests/locustfile.py`` samples held-out rows, applies a mean shift, encodes
  them, parses each answer, keeps per-version statistics and sends feedback for half of
  the predictions after 0.5 s (through :func:`loadtests.runner.run_load`).

Printed: requests/s of each round, the median of each arm, and the ratio scenario/bare for
all requests and for /predict alone. The target is a ratio of at least 0.90. Against the
reference service on a 2-core machine the service shares the CPU with Locust, so the ratio
says how much CPU the user's work takes from both.

    PYTHONPATH=. python bench/locust_user_overhead.py [--rounds 3] [--round-s 10] [--users 8]
        [--target-url http://127.0.0.1:P]   # default: start python -m target_service
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from driftgate.processes import ChildProcess, free_loopback_port
from driftgate.scenario import parse_scenario
from loadtests.runner import run_load
from target_service.dataset import example_record

REPO_ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_S = 2.0
BARE_LOCUSTFILE = Path(__file__).resolve().parent / "bare_user_locustfile.py"


def start_reference_service(work_dir: Path) -> tuple[ChildProcess, str]:
    port = free_loopback_port()
    service = ChildProcess(
        "service",
        [sys.executable, "-m", "target_service", "--port", str(port)],
        work_dir / "service.log",
        cwd=REPO_ROOT,
    )
    service.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return service, url
        except httpx.HTTPError:
            pass
        if service.exit_code() is not None:
            break
        time.sleep(0.3)
    service.stop()
    raise SystemExit(f"the reference service did not start; see {service.log_path}")


@dataclass(frozen=True)
class Round:
    """One arm's round: request rates, and the Locust process's requests and CPU seconds."""

    requests_per_s: float
    predict_per_s: float
    requests: int
    cpu_s: float


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_round(stats_csv: Path, cpu_s: float) -> Round:
    """Rates from Locust's stats CSV; CPU includes Locust's start-up (imports, data)."""
    rates, counts = {}, {}
    with stats_csv.open() as handle:
        for row in csv.DictReader(handle):
            rates[row["Name"]] = float(row["Requests/s"])
            counts[row["Name"]] = int(row["Request Count"])
    return Round(rates["Aggregated"], rates.get("/predict", 0.0), counts["Aggregated"], cpu_s)


def run_bare(url: str, users: int, round_s: float, work_dir: Path) -> Round:
    cpu_before_s = children_cpu_s()
    prefix = work_dir / f"bare-{time.monotonic_ns()}"
    env = {**os.environ, "BENCH_BODY": json.dumps(example_record())}
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(BARE_LOCUSTFILE),
        "--headless",
        "--host",
        url,
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{round_s:g}s",
        "--csv",
        str(prefix),
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    subprocess.run(
        command,
        env=env,
        check=True,
        timeout=round_s + 60,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return read_round(Path(f"{prefix}_stats.csv"), children_cpu_s() - cpu_before_s)


def run_scenario(
    url: str, users: int, round_s: float, work_dir: Path, feedback_share: float
) -> Round:
    cpu_before_s = children_cpu_s()
    scenario = parse_scenario(
        {
            "name": "bench",
            "description": "scenario user at full speed",
            "target": {"url": url},
            "load": {
                "wait_time": {"min": 0, "max": 0},
                "phases": [
                    {
                        "name": "drift",
                        "duration": round_s,
                        "users": users,
                        "spawn_rate": users,
                        "traffic": {
                            "kind": "mean_shift",
                            "size": 1.0,
                            "features": ["chronic_diseases", "participation_incentive_log"],
                        },
                    }
                ],
            },
            "feedback": {"share": feedback_share, "delay": "500ms"},
        }
    )
    run_dir = work_dir / f"scenario-{time.monotonic_ns()}"
    run_load(scenario, None, run_dir)
    return read_round(run_dir / "locust_stats.csv", children_cpu_s() - cpu_before_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-s", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--target-url", default=None, help="default: start the reference service")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="driftgate-bench-") as temp:
        work_dir = Path(temp)
        service = None
        url = options.target_url
        if url is None:
            service, url = start_reference_service(work_dir)
        try:
            arms = {
                "bare": lambda round_s: run_bare(url, options.users, round_s, work_dir),
                "scenario": lambda round_s: run_scenario(
                    url, options.users, round_s, work_dir, 0.5
                ),
                "no feedback": lambda round_s: run_scenario(
                    url, options.users, round_s, work_dir, 0.0
                ),
            }
            # A short run per arm measures the fixed start-up CPU (imports, data) to remove.
            short = {arm: run(CALIBRATION_S) for arm, run in arms.items()}
            rounds: dict[str, list[Round]] = {arm: [] for arm in arms}
            for round_index in range(1, options.rounds + 1):
                for arm, run in arms.items():
                    rounds[arm].append(run(options.round_s))
                print(
                    f"round {round_index}: "
                    + " | ".join(
                        f"{arm} {done[-1].requests_per_s:6.1f} req/s"
                        for arm, done in rounds.items()
                    )
                )
        finally:
            if service is not None:
                service.stop()

    report(rounds, short, url, options)


# The scenario user's own work per iteration, without HTTP: phase lookup, sampling with
# drift, version header, parsing the answer, per-version statistics, feedback body.
# Run in a child process because importing Locust patches the interpreter with gevent.
OWN_WORK_CODE = """
import locust
import time, numpy as np, orjson
from locust.env import Environment
from driftgate.scenario import parse_scenario
from loadtests.session import LoadSession
from loadtests.user_steps import read_prediction
scenario = parse_scenario({"name": "b", "description": "d", "target": {"url": "http://127.0.0.1:1"},
    "load": {"phases": [{"name": "p", "duration": 60, "users": 1, "spawn_rate": 1, "traffic":
    {"kind": "mean_shift", "size": 1, "features": ["chronic_diseases"]}}]}})
session = LoadSession(Environment(), scenario, None)
session.start_clock(time.time())
rng = np.random.default_rng(0)
answer = orjson.dumps({"predicted_class": "visit", "confidence": 0.7, "model_version": "v1",
    "request_id": "v1.1.0123456789abcdef0123456789abcdef"})
count = 50_000
started = time.process_time()
for _ in range(count):
    scheduled, elapsed_s = session.current(time.time())
    sample = session.source.sample(scheduled, elapsed_s)
    session.version_header(rng)
    version, request_id = read_prediction(answer)
    session.log_version("/predict", version, 3.0, len(answer), None)
    if rng.random() < 0.5:
        orjson.dumps({"request_id": request_id, "true_label": sample.true_label})
        session.log_version("/feedback", version, 1.0, 40, None)
    rng.uniform(0.05, 0.15)
print((time.process_time() - started) / count)
"""


def own_work_per_iteration_s() -> float:
    result = subprocess.run(
        [sys.executable, "-c", OWN_WORK_CODE],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    return float(result.stdout.strip().splitlines()[-1])


def cpu_per_request_s(done: list[Round], short: Round) -> float:
    """CPU per request net of start-up: the slope between the short run and each round."""
    return statistics.median((r.cpu_s - short.cpu_s) / (r.requests - short.requests) for r in done)


def report(
    arms: dict[str, list[Round]], short: dict[str, Round], url: str, options: argparse.Namespace
) -> None:
    def median(arm: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in arms[arm])

    bare_rate = median("bare", "requests_per_s")
    bare_cpu = cpu_per_request_s(arms["bare"], short["bare"])
    print(f"target: {url} ({'reference service' if options.target_url is None else 'given'})")
    print(
        f"one Locust process, {options.users} users, {options.rounds} x {options.round_s:g}s, "
        "medians:"
    )
    print(
        f"{'arm':<14}{'req/s':>9}{'/predict/s':>12}{'ratio req/s':>13}"
        f"{'client CPU/req':>16}{'client capacity ratio':>23}"
    )
    for arm in arms:
        rate, predict = median(arm, "requests_per_s"), median(arm, "predict_per_s")
        cpu = cpu_per_request_s(arms[arm], short[arm])
        print(
            f"{arm:<14}{rate:9.1f}{predict:12.1f}{rate / bare_rate:13.3f}"
            f"{cpu * 1e6:13.0f} us{bare_cpu / cpu:23.3f}"
        )
    own_s = own_work_per_iteration_s()
    print(
        f"scenario user's own work per iteration (no HTTP, in-process): {own_s * 1e6:.1f} us "
        f"= {own_s / bare_cpu:.1%} of the bare arm's CPU per request"
    )
    print(
        "ratio req/s: requests/s against the bare arm (target >= 0.90); the service shares "
        "the CPU, so it is the bound here."
    )
    print(
        "client capacity ratio: bare CPU per request / arm CPU per request, i.e. the share "
        "of a client-bound Locust process's rate the arm keeps (start-up CPU removed)."
    )


if __name__ == "__main__":
    main()
