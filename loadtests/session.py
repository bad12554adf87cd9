"""What one Locust process (local, master or worker) shares across its users during a run.

Import this module only from a locustfile, after ``locust`` (which patches the standard
library with gevent).

The phase clock: the master (or the local runner) starts the clock on the shape's first
tick and sends the start epoch to every worker in a ``driftgate_clock`` message before the
first spawn message (and to workers that connect later), so every process derives the
current phase from the same UTC start and switches at the same moment.

The final report: when the run stops, the master sends ``driftgate_finish``; each worker
stops its users and sends one last statistics report marked final; the master waits for
all of them (at most ``FINAL_REPORT_TIMEOUT_S``) before it writes the manifest.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import numpy as np
import orjson
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner
from locust.stats import RequestStats, StatsEntry, StatsError

from driftgate.manifest import MANIFEST_FILENAME
from driftgate.scenario import Scenario, load_scenario
from loadtests.drift import ReferenceStats
from loadtests.results import build_manifest, client_stats
from loadtests.sampling import HoldoutPool, TrafficSource
from loadtests.schedule import PhaseSchedule, ScheduledPhase
from target_service.dataset import load_split

logger = logging.getLogger(__name__)

SCENARIO_ENV = "DRIFTGATE_SCENARIO"
RUN_DIR_ENV = "DRIFTGATE_RUN_DIR"
PARENT_PID_ENV = "DRIFTGATE_PARENT_PID"
PROGRESS_FILENAME = "progress.jsonl"
CLOCK_MESSAGE = "driftgate_clock"
FINISH_MESSAGE = "driftgate_finish"
FINAL_REPORT_TIMEOUT_S = 10.0
# A run ends by itself at its last phase's end; this bounds it if the shape is starved.
OVERRUN_LIMIT_S = 60.0
MAX_VERSION_ENTRIES = 16
FEEDBACK_DROPPED_ERROR = "client: feedback dropped (feedback.max_pending reached)"


class LoadSession:
    """The scenario, phase clock, traffic and per-version statistics of one Locust process."""

    def __init__(self, environment: Environment, scenario: Scenario, run_dir: Path | None) -> None:
        self.environment = environment
        self.scenario = scenario
        self.schedule = PhaseSchedule.from_scenario(scenario)
        self.run_dir = run_dir
        self.start_s: float | None = None
        self.stopped_s: float | None = None
        self.reached_end = False
        self.version_stats = RequestStats(use_response_times_cache=False)
        self.feedback_dropped = 0
        self._seed_sequence = np.random.SeedSequence([scenario.seed, _worker_index(environment)])
        self._final_reports: set[str] = set()
        weights = scenario.load.model_version_weights or {}
        self._versions = [version for version, weight in weights.items() if weight > 0]
        shares = np.array([weights[version] for version in self._versions], dtype=float)
        self._version_cdf = np.cumsum(shares / shares.sum())[:-1] if len(shares) else shares
        self._finishing = False

        split = load_split()
        self._reference = ReferenceStats.from_frame(split.train)
        self._pool = HoldoutPool.from_dataset()
        self.source = TrafficSource(self._pool, self._reference, self.process_rng())

    @classmethod
    def from_environment_variables(cls, environment: Environment) -> LoadSession:
        scenario_path = os.environ.get(SCENARIO_ENV)
        if not scenario_path:
            raise RuntimeError(f"set {SCENARIO_ENV} to a scenario file (e.g. scenarios/smoke.yaml)")
        run_dir = os.environ.get(RUN_DIR_ENV)
        return cls(environment, load_scenario(scenario_path), Path(run_dir) if run_dir else None)

    @property
    def runner(self) -> Runner:
        runner = self.environment.runner
        if runner is None:
            raise RuntimeError("the Locust environment has no runner yet")
        return runner

    def process_rng(self) -> np.random.Generator:
        """A generator of its own for this process's shared traffic source."""
        return np.random.default_rng(self._seed_sequence.spawn(1)[0])

    def user_rng(self) -> np.random.Generator:
        """A generator of its own for each user (feedback draws, version header, waits)."""
        return np.random.default_rng(self._seed_sequence.spawn(1)[0])

    def version_header(self, rng: np.random.Generator) -> str | None:
        """The X-Model-Version to force for one request, or None to let the service route."""
        if not self._versions:
            return None
        return self._versions[int(np.searchsorted(self._version_cdf, rng.random(), "right"))]

    # -- the clock ------------------------------------------------------------------------

    def start_clock(self, start_s: float) -> None:
        self.start_s = start_s
        self.stopped_s = None
        self.reached_end = False
        logger.info("phase clock start_s=%.3f phases=%d", start_s, len(self.schedule.phases))

    def current(self, now_s: float) -> tuple[ScheduledPhase, float] | None:
        """The phase running at ``now_s`` and the seconds into it; None outside the run."""
        if self.start_s is None:
            return None
        scheduled = self.schedule.at(now_s - self.start_s)
        if scheduled is None:
            return None
        return scheduled, now_s - self.start_s - scheduled.start_offset_s

    @property
    def end_s(self) -> float | None:
        return None if self.start_s is None else self.start_s + self.schedule.duration_s

    # -- per model version statistics ------------------------------------------------------

    def log_version(
        self,
        route: str,
        version: str,
        response_time_ms: float,
        length: int,
        error: str | None = None,
    ) -> None:
        """Count a request under ``"<route> [<version>]"`` (a bounded number of names)."""
        name = f"{route} [{version}]"
        entries = self.version_stats.entries
        if (name, "POST") not in entries and len(entries) >= MAX_VERSION_ENTRIES:
            name = f"{route} [other]"
        self.version_stats.log_request("POST", name, round(response_time_ms), length)
        if error is not None:
            self.version_stats.log_error("POST", name, error)

    def report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        data["driftgate_versions"] = self.version_stats.serialize_stats()
        data["driftgate_feedback_dropped"] = self.feedback_dropped
        self.feedback_dropped = 0

    def merge_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        for serialized in data.get("driftgate_versions", []):
            entry = StatsEntry.unserialize(serialized, self.version_stats)
            self.version_stats.get(entry.name, entry.method).extend(entry)
        self.feedback_dropped += int(data.get("driftgate_feedback_dropped", 0))
        if data.get("driftgate_final"):
            self._final_reports.add(client_id)

    # -- distributed coordination ------------------------------------------------------------

    def send_clock(self, client_id: str | None = None) -> None:
        if isinstance(self.environment.runner, MasterRunner) and self.start_s is not None:
            self.runner.send_message(CLOCK_MESSAGE, {"start_s": self.start_s}, client_id)

    def on_clock_message(self, environment: Environment, msg: Any) -> None:
        self.start_clock(float(msg.data["start_s"]))

    def finish_workers(self) -> None:
        """Stop every worker and wait for its final statistics report (master only)."""
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner) or self._finishing:
            return
        self._finishing = True
        expected = {client.id for client in runner.clients.all}
        runner.send_message(FINISH_MESSAGE, {})

        deadline = time.monotonic() + FINAL_REPORT_TIMEOUT_S
        while not expected <= self._final_reports and time.monotonic() < deadline:
            gevent.sleep(0.05)
        missing = expected - self._final_reports
        if missing:
            logger.warning(
                "no final statistics from %d worker(s) within %.0fs; their last seconds are "
                "missing from the totals: %s",
                len(missing),
                FINAL_REPORT_TIMEOUT_S,
                ", ".join(sorted(missing)),
            )

    def on_finish_message(self, environment: Environment, msg: Any) -> None:
        """Worker: stop the users, then send one last report marked final."""
        runner = self.environment.runner
        if not isinstance(runner, WorkerRunner):
            return
        runner.stop()
        data: dict[str, Any] = {}
        self.environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
        data["driftgate_final"] = True
        runner.send_message("stats", data)

    # -- outputs -----------------------------------------------------------------------------

    def progress(self) -> dict[str, Any] | None:
        """The progress figures of right now (master or local runner)."""
        now_s = time.time()
        current = self.current(now_s)
        if current is None or self.end_s is None:
            return None
        scheduled, elapsed_in_phase_s = current
        total = self.environment.stats.total
        requests_per_s = float(total.current_rps)
        p95_ms = (
            total.get_current_response_time_percentile(0.95)
            if total.use_response_times_cache
            else None
        )
        return {
            "phase": scheduled.phase.name,
            "phase_left_s": round(scheduled.phase.duration - elapsed_in_phase_s, 3),
            "run_left_s": round(self.end_s - now_s, 3),
            "users": self.runner.user_count,
            "requests_per_s": round(requests_per_s, 2),
            "p95_s": None if not p95_ms else p95_ms / 1000.0,
            "error_ratio": (
                float(total.current_fail_per_sec) / requests_per_s if requests_per_s > 0 else 0.0
            ),
        }

    def write_progress_forever(self) -> None:
        """Append a progress line to ``progress.jsonl`` about every second."""
        if self.run_dir is None:
            return
        path = self.run_dir / PROGRESS_FILENAME
        while True:
            report = self.progress()
            if report is not None:
                with path.open("ab") as handle:
                    handle.write(orjson.dumps(report) + b"\n")
            gevent.sleep(1.0)

    def write_manifest(self) -> None:
        """Write ``manifest.json`` with what was measured so far (master or local runner)."""
        if self.run_dir is None or self.start_s is None:
            return
        stopped_s = self.stopped_s if self.stopped_s is not None else time.time()
        manifest = build_manifest(
            self.scenario,
            target_url=self.environment.host or "",
            start_s=self.start_s,
            ended_s=min(stopped_s, self.end_s or stopped_s) if self.reached_end else stopped_s,
            completed=self.reached_end,
            stats=client_stats(
                self.environment.stats.entries.values(),
                _version_entries(self.version_stats),
                self._errors(),
            ),
            locust_workers=_worker_count(self.environment),
            scenario_file=self.scenario.source_path,
        )
        manifest.save(self.run_dir / MANIFEST_FILENAME)
        logger.info("wrote %s", self.run_dir / MANIFEST_FILENAME)

    def _errors(self) -> dict[str, int]:
        errors: dict[str, int] = {}
        stats_errors: dict[str, StatsError] = self.environment.stats.errors
        for error in stats_errors.values():
            key = f"{error.method} {error.name}: {_error_text(error.error)}"
            errors[key] = errors.get(key, 0) + error.occurrences
        if self.feedback_dropped:
            errors[FEEDBACK_DROPPED_ERROR] = self.feedback_dropped
        return errors


def _error_text(error: Exception | str | None) -> str:
    """The failure message without Locust's wrapper (``CatchResponseError('HTTP 500')``)."""
    text = StatsError.parse_error(error)
    wrapped = re.fullmatch(r"CatchResponseError\((['\"])(.*)\1\)", text)
    return wrapped.group(2) if wrapped else text


def _version_entries(stats: RequestStats) -> list[tuple[str, StatsEntry]]:
    entries = []
    for entry in stats.entries.values():
        version = entry.name.rsplit("[", 1)[-1].rstrip("]")
        entries.append((version, entry))
    return entries


def _worker_index(environment: Environment) -> int:
    # Workers learn their index from the master before the init event; others are 0.
    return max(int(getattr(environment.runner, "worker_index", 0)), 0)


def _worker_count(environment: Environment) -> int:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        return len(runner.worker_indexes)
    return 0


def watch_parent_if_asked(on_orphaned: Callable[[], None]) -> None:
    """If ``DRIFTGATE_PARENT_PID`` names this process's parent, quit when that parent dies."""
    parent = os.environ.get(PARENT_PID_ENV, "")
    if parent.isdigit() and int(parent) == os.getppid():
        gevent.spawn(watch_parent, int(parent), on_orphaned)


def watch_parent(parent_pid: int, on_orphaned: Callable[[], None]) -> None:
    """Call ``on_orphaned`` once the process that started this one is gone."""
    while os.getppid() == parent_pid:
        gevent.sleep(1.0)
    logger.warning("parent process %s is gone; stopping this Locust process", parent_pid)
    on_orphaned()
