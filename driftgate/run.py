"""``driftgate run``: one scenario end to end on this machine.

The steps, each timed:

1. validate the scenario and create ``runs/<UTC time>-<name>/``;
2. start the reference service on a free loopback port (unless the scenario names a URL);
3. start a real Prometheus scraping it every second with the project's rules (unless
   ``--prometheus-url`` names one that already runs);
4. drive the load phases with Locust, showing progress every second;
5. wait for the final scrape and rule evaluation;
6. run the SLA checker over the run manifest's exact phase windows;
7. write the report (JSON, JUnit, Markdown, HTML with plots and CSV);

and stop everything it started on the way out, whether the run ended, failed or was
interrupted. Whatever was measured before a fault stays in the run folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from driftgate.errors import PrometheusError, RunError
from driftgate.prometheus_server import PrometheusServer
from driftgate.service_process import ReferenceServiceProcess
from driftgate.stages import StageTimer

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CI_RULES_FILE = REPO_ROOT / "prometheus" / "rules" / "driftgate-ci.yml"
SCRAPE_INTERVAL_S = 1.0
# After the last request: one more scrape, then one more rule evaluation, with a margin.
FINAL_SCRAPE_WAIT_S = 3 * SCRAPE_INTERVAL_S


@dataclass(frozen=True)
class RunOptions:
    """What the user chose on the command line."""

    scenario_path: Path
    runs_root: Path = Path("runs")
    prometheus_url: str | None = None
    prometheus_binary: str | None = None
    locust_workers: int = 0
    service_port: int | None = None


def make_run_dir(runs_root: Path, scenario_name: str) -> Path:
    """A fresh ``runs/<UTC time>-<name>/`` folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = runs_root / f"{stamp}-{scenario_name}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs_root / f"{stamp}-{scenario_name}-{suffix}"
    (run_dir / "logs").mkdir(parents=True)
    return run_dir


class ScenarioRun:
    """Everything one run starts, so that all of it can be stopped in one place."""

    def __init__(self, options: RunOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.timer = StageTimer()
        self.service: ReferenceServiceProcess | None = None
        self.prometheus: PrometheusServer | None = None
        self.prometheus_url: str | None = options.prometheus_url

    def stop_children(self) -> None:
        for child in (self.service, self.prometheus):
            if child is not None:
                child.stop()

    def check_children_alive(self) -> None:
        """Raise a RunError naming the child that died, with its log's last lines."""
        if self.service is not None:
            self.service.raise_if_dead("during the run")
        if self.prometheus is not None and not self.prometheus.is_running():
            raise PrometheusError(
                "Prometheus died during the run; last lines of its log:\n"
                f"{self.prometheus.log_tail()}"
            )

    def start_service(self, scenario_target: object, run_dir: Path) -> str:
        """Start the bundled service if the scenario asks for it; return the target URL."""
        url = getattr(scenario_target, "url", None)
        settings = getattr(scenario_target, "service", None)
        if settings is None:
            return str(url)

        self.service = ReferenceServiceProcess(settings, run_dir, port=self.options.service_port)
        self.service.start()
        return self.service.url

    def start_prometheus(self, target_url: str, run_dir: Path) -> str:
        """Start Prometheus for this run, or use the one named with --prometheus-url."""
        if self.prometheus_url is not None:
            return self.prometheus_url

        target = target_url.split("://", 1)[-1].rstrip("/")
        self.prometheus = PrometheusServer(
            run_dir / "prometheus" / "data",
            scrape_targets=[target],
            scrape_interval_s=SCRAPE_INTERVAL_S,
            rule_files=[CI_RULES_FILE],
            binary=self.options.prometheus_binary,
            log_path=run_dir / "logs" / "prometheus.log",
        )
        self.prometheus.start()
        self.prometheus_url = self.prometheus.url
        return self.prometheus.url


def wait_for_final_scrape() -> None:
    """Give Prometheus one more scrape and rule evaluation after the last request."""
    time.sleep(FINAL_SCRAPE_WAIT_S)
