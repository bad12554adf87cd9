"""Run a scenario's load with Locust, in one process or distributed, and return the manifest.

:func:`run_load` is what ``driftgate run`` calls. Locust always runs in child processes
(``python -m locust``), so the caller's process is never patched by gevent:

* ``workers=0``: one headless Locust process;
* ``workers=N``: a Locust master bound to 127.0.0.1 and N ``--worker`` processes.

The Locust master (or the single process) writes ``manifest.json``, ``progress.jsonl`` and
Locust's CSV statistics (``locust_stats.csv`` ...) into the run folder; logs go to
``logs/locust-*.log``. Every child runs in a process group of its own and is stopped
(SIGTERM, then SIGKILL after a grace period) when the run ends, fails or is interrupted,
and at interpreter exit; Locust processes also quit by themselves if this process dies.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
import orjson
import yaml

from driftgate.errors import RunError
from driftgate.manifest import MANIFEST_FILENAME, RunManifest
from driftgate.processes import ChildProcess, free_loopback_port
from driftgate.scenario import Scenario, load_scenario
from loadtests.results import build_manifest

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
PROGRESS_FILENAME = "progress.jsonl"
SCENARIO_COPY_FILENAME = "scenario.yaml"
READY_TIMEOUT_S = 3.0
MAX_WORKERS = 16
# Locust start-up (imports, dataset, workers connecting) before the first phase begins.
STARTUP_ALLOWANCE_S = 90.0
# After the last phase: final worker reports, CSV files, exit.
SHUTDOWN_ALLOWANCE_S = 45.0
GRACEFUL_STOP_S = 20.0
POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class LoadProgress:
    """One progress report from the load generator (client-side figures, about every second)."""

    phase: str
    phase_left_s: float
    run_left_s: float
    users: int
    requests_per_s: float
    p95_s: float | None
    error_ratio: float


ProgressCallback = Callable[[LoadProgress], None]


def check_target_ready(target_url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Raise a RunError unless ``GET /readyz`` (or ``/healthz`` if absent) answers 200."""
    base = target_url.rstrip("/")
    try:
        response = httpx.get(f"{base}/readyz", timeout=timeout_s)
        if response.status_code == 404:
            response = httpx.get(f"{base}/healthz", timeout=timeout_s)
    except httpx.HTTPError as error:
        raise RunError(
            f"target {base} is unreachable ({type(error).__name__}: {error}); start the service "
            "or fix target.url"
        ) from None
    if response.status_code != 200:
        raise RunError(
            f"target {base} is not ready: GET {response.request.url.path} answered "
            f"{response.status_code}; wait for the service or fix target.url"
        )


def run_load(
    scenario: Scenario | Path,
    target_url: str | None,
    run_dir: Path,
    workers: int = 0,
    on_progress: ProgressCallback | None = None,
) -> RunManifest:
    """Send the scenario's load to ``target_url`` and return the run manifest.

    ``target_url`` may be None when the scenario names ``target.url``. The manifest is
    written to ``run_dir/manifest.json`` in every case: ``completed`` is false if the run
    was interrupted (KeyboardInterrupt or SIGTERM; re-raised as KeyboardInterrupt after
    the manifest is written) or a Locust process failed (a RunError naming it). A run that
    sent no request raises a RunError: no data is never a pass.
    """
    if isinstance(scenario, Path):
        scenario = load_scenario(scenario)
    url = _target_url(scenario, target_url)
    if not 0 <= workers <= MAX_WORKERS:
        raise RunError(f"workers must be between 0 and {MAX_WORKERS}, got {workers}")
    check_target_ready(url)

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    for stale in (MANIFEST_FILENAME, PROGRESS_FILENAME):
        (run_dir / stale).unlink(missing_ok=True)
    scenario_path = _scenario_file_for_locust(scenario, run_dir)

    fleet = LocustFleet(scenario_path, url, run_dir, workers)
    launched_s = time.time()
    with _stop_on_exit(fleet), _sigterm_as_interrupt():
        try:
            fleet.start()
            fleet.wait(scenario.duration_s, on_progress)
        except KeyboardInterrupt:
            logger.warning("load interrupted; stopping Locust and writing what was measured")
            fleet.stop()
            _manifest_or_fallback(scenario, url, run_dir, workers, launched_s)
            raise
        except RunError:
            fleet.stop()
            _manifest_or_fallback(scenario, url, run_dir, workers, launched_s)
            raise
        finally:
            # Whatever happened (an on_progress callback may raise too), nothing outlives us.
            fleet.stop()

    return _finished_manifest(scenario, url, run_dir, workers, launched_s, fleet)


def _target_url(scenario: Scenario, target_url: str | None) -> str:
    url = target_url or scenario.target.url
    if url is None:
        raise RunError(
            f"scenario {scenario.name!r} starts the bundled service (target.service); pass the "
            "URL it listens on as target_url"
        )
    return url


def _scenario_file_for_locust(scenario: Scenario, run_dir: Path) -> Path:
    """The file Locust reads: a copy of the validated scenario kept with the run."""
    copy_path = run_dir / SCENARIO_COPY_FILENAME
    source = scenario.source_path
    header = f"# copied from {source}\n" if source is not None else ""
    body = yaml.safe_dump(
        scenario.model_dump(mode="json", exclude_unset=True, by_alias=True), sort_keys=False
    )
    copy_path.write_text(header + body)
    return source if source is not None else copy_path


class LocustFleet:
    """The Locust processes of one run: a single one, or a master and its workers."""

    def __init__(self, scenario_path: Path, target_url: str, run_dir: Path, workers: int) -> None:
        self.run_dir = run_dir
        self.workers = workers
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "DRIFTGATE_SCENARIO": str(scenario_path.resolve()),
            "DRIFTGATE_RUN_DIR": str(run_dir.resolve()),
            "DRIFTGATE_PARENT_PID": str(os.getpid()),
        }
        base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "INFO"]
        controller = [
            *base,
            "--headless",
            "--host",
            target_url,
            "--csv",
            str(run_dir.resolve() / "locust"),
            "--only-summary",
            "--exit-code-on-error",
            "0",
        ]
        logs = run_dir / "logs"
        if workers == 0:
            self.controller = ChildProcess(
                "locust", controller, logs / "locust.log", env, REPO_ROOT
            )
            self.worker_processes: list[ChildProcess] = []
            return

        port = free_loopback_port()
        master = [
            *controller,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            str(int(STARTUP_ALLOWANCE_S)),
        ]
        worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        self.controller = ChildProcess(
            "locust-master", master, logs / "locust-master.log", env, REPO_ROOT
        )
        self.worker_processes = [
            # A worker whose master is gone keeps retrying it, and nothing of its own is
            # lost with it: if driftgate itself dies, it is killed outright.
            ChildProcess(
                f"locust-worker-{n}",
                worker,
                logs / f"locust-worker-{n}.log",
                env,
                REPO_ROOT,
                parent_death_signal=signal.SIGKILL,
            )
            for n in range(1, workers + 1)
        ]

    @property
    def processes(self) -> list[ChildProcess]:
        return [self.controller, *self.worker_processes]

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def wait(self, duration_s: float, on_progress: ProgressCallback | None) -> None:
        """Until the controller exits; progress lines are passed on as they arrive."""
        deadline = time.monotonic() + STARTUP_ALLOWANCE_S + duration_s + SHUTDOWN_ALLOWANCE_S
        progress = ProgressReader(self.run_dir / PROGRESS_FILENAME)
        while self.controller.is_running():
            self._raise_if_worker_died()
            for report in progress.new_reports():
                if on_progress is not None:
                    on_progress(report)
            if time.monotonic() > deadline:
                raise RunError(
                    f"Locust did not finish within {duration_s:.0f}s of load plus "
                    f"{STARTUP_ALLOWANCE_S + SHUTDOWN_ALLOWANCE_S:.0f}s; see "
                    f"{self.controller.log_path}"
                )
            time.sleep(POLL_INTERVAL_S)

        code = self.controller.exit_code()
        if code not in (0, None):
            raise RunError(
                f"{self.controller.name} exited with code {code}; last lines of "
                f"{self.controller.log_path}:\n{self.controller.log_tail()}"
            )

    def _raise_if_worker_died(self) -> None:
        for worker in self.worker_processes:
            code = worker.exit_code()
            # Workers exit with 0 when the master tells them to quit at the end.
            if code not in (None, 0) and self.controller.is_running():
                raise RunError(
                    f"{worker.name} exited with code {code} during the run; last lines of "
                    f"{worker.log_path}:\n{worker.log_tail()}"
                )

    def stop(self) -> None:
        """Controller first (it collects the workers' final reports), then the workers.

        A headless Locust with a load shape installs its SIGTERM handler only after the
        shape ends, so SIGTERM mid-run kills it without a manifest; SIGINT makes it stop
        its users, collect the final reports and write what it measured.
        """
        self._interrupt_controller()
        self.controller.stop(grace_s=GRACEFUL_STOP_S)
        for worker in self.worker_processes:
            worker.stop()

    def _interrupt_controller(self) -> None:
        pid = self.controller.pid
        if pid is None or not self.controller.is_running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + GRACEFUL_STOP_S
        while self.controller.is_running() and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)


class ProgressReader:
    """Reads the progress lines the Locust controller appends, each once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0

    def new_reports(self) -> Iterator[LoadProgress]:
        try:
            with self._path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            yield LoadProgress(**orjson.loads(line))


def _manifest_or_fallback(
    scenario: Scenario, url: str, run_dir: Path, workers: int, launched_s: float
) -> RunManifest:
    """The manifest Locust wrote, or one saying that nothing was measured."""
    path = run_dir / MANIFEST_FILENAME
    if path.exists():
        return RunManifest.load(path)
    now_s = time.time()
    manifest = build_manifest(
        scenario,
        url,
        start_s=launched_s,
        ended_s=now_s,
        completed=False,
        stats=None,
        locust_workers=workers,
        scenario_file=scenario.source_path,
    )
    manifest.phases = []
    manifest.save(path)
    return manifest


def _finished_manifest(
    scenario: Scenario,
    url: str,
    run_dir: Path,
    workers: int,
    launched_s: float,
    fleet: LocustFleet,
) -> RunManifest:
    manifest = _manifest_or_fallback(scenario, url, run_dir, workers, launched_s)
    require_requests(manifest, fleet.controller.log_path)
    return manifest


def require_requests(manifest: RunManifest, log_path: Path) -> None:
    """Raise a RunError if the run measured nothing: no data is never a pass."""
    if manifest.client_stats is None:
        raise RunError(f"Locust ended without writing statistics; see {log_path}")
    if manifest.client_stats.total_requests == 0:
        raise RunError(
            f"the run sent no request to {manifest.target_url}; see {log_path} (no data is "
            "never a pass)"
        )


@contextmanager
def _stop_on_exit(fleet: LocustFleet) -> Iterator[None]:
    """Stop the fleet if the interpreter exits while it runs (atexit), and on the way out."""
    atexit.register(fleet.stop)
    try:
        yield
    finally:
        atexit.unregister(fleet.stop)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the load runs, SIGTERM stops it like Ctrl-C (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
