"""``driftgate run`` end to end: the real service, Prometheus and Locust as processes.

The scenario runs check what a user relies on: a normal run passes and leaves its report,
a sudden drift is detected and its alert fires only when it should, and a slow challenger
fails its latency gate (the twin that proves the gate can fail).
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from e2e_helpers import (
    SCENARIOS,
    assert_nothing_left,
    run_driftgate,
    shortened_scenario,
)

from driftgate.cli import EXIT_RUN_ERROR
from driftgate.manifest import RunManifest
from sla.verdicts import EXIT_FAIL, EXIT_OK

pytestmark = pytest.mark.e2e

INJECTED_V2_LATENCY_S = 0.08  # scenarios/latency-regression.yaml: faults.v2.extra_latency_s


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def test_smoke_runs_end_to_end_and_leaves_its_report(runs_dir: Path) -> None:
    result = run_driftgate(["run", str(SCENARIOS / "smoke.yaml")], runs_dir)

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.run_dir is not None
    assert set(result.verdicts().values()) == {"pass"}
    assert "Time per stage" in result.stdout

    junit = ElementTree.parse(result.run_dir / "junit.xml").getroot()
    assert len(list(junit.iter("testcase"))) == len(result.verdicts())

    manifest = RunManifest.load(result.run_dir / "manifest.json")
    assert [phase.name for phase in manifest.phases] == ["warmup", "steady"]
    assert manifest.completed
    assert manifest.client_stats is not None and manifest.client_stats.total_requests > 0

    with (result.run_dir / "series" / "predictions_per_s.csv").open() as series_file:
        rows = list(csv.DictReader(series_file))
    assert len(rows) >= 10, "about one point per second of load"
    html_text = (result.run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html_text


def test_sudden_drift_is_detected_and_alerts_only_then(runs_dir: Path) -> None:
    result = run_driftgate(["run", str(SCENARIOS / "drift-sudden.yaml")], runs_dir)

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_OK, result.stdout + result.stderr
    verdicts = result.verdicts()
    assert verdicts["drift alert fired during the drift"] == "pass"
    assert verdicts["no drift alert on normal traffic"] == "pass"
    assert verdicts["no drift alarm on normal traffic"] == "pass"

    detection = next(
        item for item in result.report()["objectives"] if item["kind"] == "drift_detected"
    )
    assert detection["verdict"] == "pass"
    delay_s = detection["value"]
    assert 0 < delay_s <= 20, "the delay is measured from the drift phase's start"
    assert "after phase drift started" in (result.run_dir / "report.html").read_text()


def test_slow_challenger_fails_its_latency_gate(runs_dir: Path, tmp_path: Path) -> None:
    scenario = shortened_scenario("latency-regression", tmp_path, {"warmup": 5, "measure": 15})

    result = run_driftgate(["run", str(scenario)], runs_dir)

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_FAIL, result.stdout + result.stderr
    by_name = {item["name"]: item for item in result.report()["objectives"]}
    challenger = by_name["challenger p95 inference latency"]
    assert challenger["verdict"] == "fail"
    # Every v2 call sleeps the injected 80 ms, so its p95 cannot be below that (how far above
    # depends on how busy the machine is, so no upper bound is asserted).
    assert challenger["value"] >= INJECTED_V2_LATENCY_S
    assert by_name["champion p95 inference latency"]["verdict"] == "pass"
    assert by_name["challenger p95 at most 10 % above champion's"]["verdict"] == "fail"


def test_baseline_traffic_fires_no_alert(runs_dir: Path, tmp_path: Path) -> None:
    scenario = shortened_scenario("baseline", tmp_path, {"warmup": 5, "steady": 25})

    result = run_driftgate(["run", str(scenario)], runs_dir)

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_OK, result.stdout + result.stderr
    assert result.verdicts()["no alert fired"] == "pass"


def test_missing_prometheus_is_a_clear_run_error(runs_dir: Path) -> None:
    result = run_driftgate(
        ["run", str(SCENARIOS / "smoke.yaml"), "--prometheus-binary", "/nonexistent/prometheus"],
        runs_dir,
    )

    assert_nothing_left(result.marker)
    assert result.exit_code == EXIT_RUN_ERROR
    message = result.stderr.strip()
    assert "/nonexistent/prometheus" in message and "apt-get install" in message
    assert "Traceback" not in result.stderr
