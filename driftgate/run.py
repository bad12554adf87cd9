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
from urllib.parse import urlsplit

from rich.console import Console

from driftgate.errors import DriftgateError, PrometheusError, RunError
from driftgate.html_report import render_report, write_report
from driftgate.manifest import MANIFEST_FILENAME, RunManifest
from driftgate.plots import (
    champion_challenger_figure,
    drift_figure,
    latency_figure,
    model_figure,
    traffic_figure,
)
from driftgate.preflight import (
    SCRAPE_INTERVAL_S,
    check_scenario_windows,
    measurable_part,
    objectives_of,
)
from driftgate.progress import ProgressPanel
from driftgate.prometheus_server import PrometheusServer, find_prometheus_binary
from driftgate.report_views import (
    cross_check_lines,
    detection_of,
    latency_thresholds,
    verdict_row,
)
from driftgate.scenario import Scenario, Target, load_scenario
from driftgate.service_process import ReferenceServiceProcess
from driftgate.stages import StageTimer
from driftgate.timeseries import fetch_series, save_csv
from loadtests.runner import LoadProgress, check_target_ready, run_load
from sla.check import exit_code, prometheus_settings, run_check
from sla.errors import PrometheusAccessError, SlaError
from sla.objectives import SlaFile
from sla.prometheus import PrometheusClient, PrometheusSettings
from sla.report import CheckReport, render_table, write_outputs

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CI_RULES_FILE = REPO_ROOT / "prometheus" / "rules" / "driftgate-ci.yml"
# After the last request: one more scrape, then one more rule evaluation, with a margin.
FINAL_SCRAPE_WAIT_S = 3 * SCRAPE_INTERVAL_S
# Plots start a little before the first request and end a little after the last.
REPORT_MARGIN_S = 5.0
PROBE_TIMEOUT_S = 5.0


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
    try:
        (run_dir / "logs").mkdir(parents=True)
    except OSError as error:
        raise DriftgateError(
            f"--runs-dir {runs_root}: cannot create the run folder {run_dir}: {error.strerror}"
        ) from None
    return run_dir


class ScenarioRun:
    """Everything one run starts, so that all of it can be stopped in one place."""

    def __init__(self, options: RunOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.service: ReferenceServiceProcess | None = None
        self.prometheus: PrometheusServer | None = None
        self.prometheus_url: str | None = options.prometheus_url

    def prometheus_settings(self) -> PrometheusSettings:
        """How the checker and the report reach this run's Prometheus (once it is known)."""
        if self.prometheus_url is None:
            raise RunError("no Prometheus for this run: it was neither started nor named")
        return PrometheusSettings(url=self.prometheus_url)

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

    def start_service(self, target: Target, run_dir: Path) -> str:
        """Start the bundled service if the scenario asks for it; return the target URL."""
        if target.service is None:
            # The model validator guarantees exactly one of service and url.
            return str(target.url)

        self.service = ReferenceServiceProcess(
            target.service, run_dir, port=self.options.service_port
        )
        self.service.start()
        return self.service.url

    def start_prometheus(self, target_url: str, run_dir: Path) -> str:
        """Start Prometheus for this run, or use the one named with --prometheus-url."""
        if self.prometheus_url is not None:
            return self.prometheus_url

        target = urlsplit(target_url)
        self.prometheus = PrometheusServer(
            run_dir / "prometheus" / "data",
            scrape_targets=[target.netloc],
            scheme=target.scheme,
            metrics_path=f"{target.path.rstrip('/')}/metrics",
            scrape_interval_s=SCRAPE_INTERVAL_S,
            rule_files=[CI_RULES_FILE],
            binary=self.options.prometheus_binary,
            log_path=run_dir / "logs" / "prometheus.log",
        )
        self.prometheus.start()
        self.prometheus.wait_for_first_scrape()
        self.prometheus_url = self.prometheus.url
        return self.prometheus.url


def _usable_prometheus(sla_file: SlaFile, url: str) -> PrometheusSettings:
    """Settings for a --prometheus-url that answers a query; refused before any load."""
    settings = prometheus_settings(sla_file, url=url)
    client = PrometheusClient(settings.model_copy(update={"timeout_s": PROBE_TIMEOUT_S}))
    try:
        client.instant("vector(1)", time.time())
    except PrometheusAccessError as error:
        raise PrometheusError(
            f"--prometheus-url {url}: does not answer a query ({error}); check the URL, or "
            "leave the option out to start a Prometheus for this run"
        ) from None
    finally:
        client.close()
    return settings


def _check_before_start(options: RunOptions, scenario: Scenario, sla_file: SlaFile) -> None:
    """Everything that can be known wrong before a process starts or a request is sent."""
    check_scenario_windows(scenario, sla_file)
    if options.prometheus_url is None:
        find_prometheus_binary(options.prometheus_binary)
    else:
        if scenario.target.service is not None and options.service_port is None:
            raise DriftgateError(
                "--prometheus-url needs --service-port when the scenario starts the bundled "
                "service: your Prometheus must know the port to scrape"
            )
        _usable_prometheus(sla_file, options.prometheus_url)
    if scenario.target.url is not None:
        check_target_ready(scenario.target.url)


def wait_for_final_scrape() -> None:
    """Give Prometheus one more scrape and rule evaluation after the last request."""
    time.sleep(FINAL_SCRAPE_WAIT_S)


def run_scenario(options: RunOptions, console: Console) -> int:
    """Run the scenario end to end and return the gate's exit code.

    Raises RunError when the run itself fails (the run folder keeps what was measured),
    ScenarioError or SlaError for bad input found before anything starts.
    """
    timer = StageTimer()
    with timer.stage("validate"):
        scenario = load_scenario(options.scenario_path)
        sla_file = objectives_of(scenario)
        _check_before_start(options, scenario, sla_file)
        run_dir = make_run_dir(options.runs_root, scenario.name)
    console.print(f"driftgate: scenario {scenario.name!r}, run folder {run_dir}")

    run = ScenarioRun(options, console)
    try:
        manifest = _measure(run, scenario, run_dir, timer)
        with timer.stage("check"):
            report = run_check(sla_file, run.prometheus_settings(), manifest, out_dir=run_dir)
        with timer.stage("report"):
            _write_html_report(run, scenario.name, manifest, sla_file, report, run_dir, timer)
    except (RunError, SlaError, KeyboardInterrupt):
        _salvage(run, run_dir, console, sla_file)
        raise
    finally:
        run.stop_children()

    render_table(report, console)
    timer.print(console)
    console.print(f"driftgate: report {run_dir / 'report.html'}")
    return exit_code(report)


def _measure(run: ScenarioRun, scenario: Scenario, run_dir: Path, timer: StageTimer) -> RunManifest:
    """Start the service and Prometheus, drive the load, wait for the final scrape."""
    with timer.stage("start service"):
        target_url = run.start_service(scenario.target, run_dir)
    with timer.stage("start prometheus"):
        prometheus_url = run.start_prometheus(target_url, run_dir)

    with timer.stage("load"), ProgressPanel(run.console, prometheus_url) as panel:

        def on_progress(progress: LoadProgress) -> None:
            run.check_children_alive()
            panel.update(progress)

        manifest = run_load(scenario, target_url, run_dir, run.options.locust_workers, on_progress)

    with timer.stage("final scrape"):
        wait_for_final_scrape()
        run.check_children_alive()
    return manifest


def _report_window(manifest: RunManifest) -> tuple[float, float]:
    return manifest.started_s - REPORT_MARGIN_S, manifest.ended_s + REPORT_MARGIN_S


def _write_html_report(
    run: ScenarioRun,
    title: str,
    manifest: RunManifest,
    sla_file: SlaFile,
    report: CheckReport,
    run_dir: Path,
    timer: StageTimer,
) -> None:
    """Fetch the plotted series, save them as CSV, and write report.html."""
    client = PrometheusClient(run.prometheus_settings())
    try:
        tables = fetch_series(client, *_report_window(manifest))
    finally:
        client.close()
    save_csv(tables, run_dir / "series")

    figures = [
        latency_figure(tables, manifest, latency_thresholds(sla_file)),
        traffic_figure(tables, manifest),
        drift_figure(tables, manifest, detection_of(sla_file, report, manifest)),
        model_figure(tables, manifest),
        champion_challenger_figure(tables),
    ]
    rows = [verdict_row(result) for result in report.objectives]
    # The stage table in the page covers everything up to the report itself.
    page = render_report(
        f"driftgate run: {title}",
        report.verdict.value,
        rows,
        figures,
        report.notes,
        dict(timer.durations_s),
        cross_check_lines(report),
    )
    write_report(run_dir / "report.html", page)


def _salvage(run: ScenarioRun, run_dir: Path, console: Console, sla_file: SlaFile) -> None:
    """After a fault: check and keep what Prometheus holds so far, if it still answers.

    The verdicts of a cut-short run are written (report.json says the run did not
    complete), so that what was measured before the fault is not lost.
    """
    manifest_path = run_dir / MANIFEST_FILENAME
    if run.prometheus is None or not run.prometheus.is_running() or not manifest_path.exists():
        console.print(f"driftgate: what was measured is in {run_dir}")
        return
    try:
        manifest = RunManifest.load(manifest_path)
        client = PrometheusClient(PrometheusSettings(url=run.prometheus.url))
        try:
            save_csv(fetch_series(client, *_report_window(manifest)), run_dir / "series")
        finally:
            client.close()
        measurable, left_out = measurable_part(sla_file, manifest)
        if measurable is None:
            console.print(
                f"driftgate: the run stopped before any objective's window; {run_dir} "
                "keeps the manifest, series and logs"
            )
            return
        report = run_check(measurable, PrometheusSettings(url=run.prometheus.url), manifest)
        if left_out:
            report.notes.append(
                "not measured, the run stopped before their window: " + ", ".join(left_out)
            )
        write_outputs(report, run_dir)
    except (DriftgateError, SlaError) as error:
        logger.warning("could not check what was measured before the fault: %s", error)
    console.print(
        f"driftgate: what was measured is in {run_dir} (manifest, series, logs, and the "
        "verdicts of the partial run in report.json)"
    )
