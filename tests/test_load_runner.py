"""run_load in one Locust process against a recording loopback service.

What the service saw is the ground truth: request counts, and when drifted records began.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from load_helpers import MARKER, locust_processes_for, marker_scenario, recording_service

from driftgate.errors import RunError
from driftgate.manifest import RunManifest
from driftgate.processes import free_loopback_port
from driftgate.scenario import parse_scenario
from loadtests.results import build_manifest, client_stats
from loadtests.runner import LoadProgress, check_target_ready, require_requests, run_load

REPO_ROOT = Path(__file__).resolve().parents[1]
USERS = 4


def is_marked(arrival: dict) -> bool:
    return arrival["body"].get("self_rated_health") == MARKER


def test_a_local_run_records_phases_stats_and_progress(tmp_path: Path):
    reports: list[LoadProgress] = []
    with recording_service(tmp_path) as service:
        scenario = marker_scenario(service.url, users=USERS)
        manifest = run_load(scenario, None, tmp_path / "run", on_progress=reports.append)
        arrivals = service.arrivals()

    assert manifest.completed
    assert manifest == RunManifest.load(tmp_path / "run" / "manifest.json")
    warmup, drift = manifest.phase("warmup"), manifest.phase("drift")
    assert warmup.end_s == drift.start_s
    assert drift.duration_s == pytest.approx(3.0)
    assert drift.traffic["kind"] == "category_shift"

    # Counts: the service saw what Locust counted, give or take requests in flight at stop.
    client = manifest.client_stats
    assert client is not None
    stats = {row.name: row for row in client.requests}
    seen_predict = sum(1 for a in arrivals if a["route"] == "/predict")
    seen_feedback = sum(1 for a in arrivals if a["route"] == "/feedback")
    assert seen_predict - USERS <= stats["/predict"].requests <= seen_predict
    assert seen_feedback - USERS <= stats["/feedback"].requests <= seen_feedback
    assert stats["/predict [v1]"].model_version == "v1"
    assert stats["/predict [v1]"].requests == stats["/predict"].requests
    assert set(stats) == {"/predict", "/feedback", "/predict [v1]", "/feedback [v1]"}
    assert client.total_failures == 0
    p50_s, p99_s = stats["/predict"].p50_s, stats["/predict"].p99_s
    assert p50_s is not None and p99_s is not None and p50_s <= p99_s

    # Drifted records arrive from the phase boundary on, and only then.
    predicts = [a for a in arrivals if a["route"] == "/predict"]
    first_marked = min(a["t"] for a in predicts if is_marked(a))
    last_normal = max(a["t"] for a in predicts if not is_marked(a))
    assert drift.start_s <= first_marked < drift.start_s + 1.0
    assert last_normal < drift.start_s + 1.0

    # Feedback carries the true labels of held-out rows for about half the predictions.
    labels = {a["body"]["true_label"] for a in arrivals if a["route"] == "/feedback"}
    assert labels <= {"visit", "no_visit"}
    assert 0.3 < seen_feedback / seen_predict < 0.7

    assert len(reports) >= 3
    assert reports[0].phase == "warmup"
    assert reports[-1].phase == "drift"
    assert all(0 <= r.run_left_s <= 6.0 for r in reports)
    assert (tmp_path / "run" / "locust_stats.csv").exists()
    assert (tmp_path / "run" / "scenario.yaml").exists()


def test_version_header_weights_force_versions(tmp_path: Path):
    with recording_service(tmp_path) as service:
        scenario = marker_scenario(service.url, phase_s=2.0, users=USERS)
        scenario.load.model_version_weights = {"v2": 1.0}
        manifest = run_load(scenario, None, tmp_path / "run")

    assert manifest.client_stats is not None
    versions = {row.model_version for row in manifest.client_stats.requests if row.model_version}
    assert versions == {"v2"}


def test_feedback_beyond_max_pending_is_dropped_and_counted(tmp_path: Path):
    scenario = marker_scenario("http://127.0.0.1:1", phase_s=2.0, users=2, feedback_share=1.0)
    scenario.feedback.delay = 60.0
    scenario.feedback.max_pending = 3
    with recording_service(tmp_path) as service:
        scenario.target.url = service.url
        manifest = run_load(scenario, None, tmp_path / "run")
        feedbacks = [a for a in service.arrivals() if a["route"] == "/feedback"]

    assert manifest.client_stats is not None
    predictions = {row.name: row for row in manifest.client_stats.requests}["/predict"].requests
    dropped = manifest.client_stats.errors[
        "client: feedback dropped (feedback.max_pending reached)"
    ]
    # Nothing is due within the run; each user keeps its last 3 and dropped the rest.
    assert feedbacks == []
    assert dropped == predictions - 2 * 3


def test_bad_answers_are_counted_failures_not_lost_requests(tmp_path: Path):
    with recording_service(tmp_path, mode="garbage") as service:
        manifest = run_load(
            marker_scenario(service.url, phase_s=2.0, users=2), None, tmp_path / "run"
        )
        seen = sum(1 for a in service.arrivals() if a["route"] == "/predict")

    client = manifest.client_stats
    assert client is not None
    stats = {row.name: row for row in client.requests}
    assert stats["/predict"].failures == stats["/predict"].requests
    assert seen - 2 <= stats["/predict"].requests <= seen
    assert "/feedback" not in stats
    assert client.errors == {
        "POST /predict: client: the /predict answer is not JSON": stats["/predict"].failures
    }


def test_an_unreachable_target_fails_before_any_load(tmp_path: Path):
    url = f"http://127.0.0.1:{free_loopback_port()}"
    with pytest.raises(RunError, match=r"target http://127\.0\.0\.1:\d+ is unreachable"):
        run_load(marker_scenario(url), None, tmp_path / "run")
    assert not (tmp_path / "run" / "logs" / "locust.log").exists()


def test_a_target_that_is_not_ready_fails_before_any_load(tmp_path: Path):
    with recording_service(tmp_path, mode="unready") as service:
        with pytest.raises(RunError, match="is not ready: GET /readyz answered 503"):
            check_target_ready(service.url)
        with pytest.raises(RunError, match="not ready"):
            run_load(marker_scenario(service.url), None, tmp_path / "run")
        assert service.arrivals() == []


def test_the_bundled_service_needs_its_url(tmp_path: Path):
    scenario = parse_scenario(
        {
            "name": "s",
            "description": "d",
            "target": {"service": {}},
            "load": {"phases": [{"name": "p", "duration": 1, "users": 1, "spawn_rate": 1}]},
        }
    )
    with pytest.raises(RunError, match="pass the URL it listens on"):
        run_load(scenario, None, tmp_path / "run")


def test_a_failing_progress_callback_stops_every_locust_process(tmp_path: Path):
    def fail(report: LoadProgress) -> None:
        raise ValueError("the progress panel broke")

    run_dir = tmp_path / "run"
    with (
        recording_service(tmp_path) as service,
        pytest.raises(ValueError, match="the progress panel broke"),
    ):
        run_load(marker_scenario(service.url, phase_s=20.0), None, run_dir, on_progress=fail)
    assert locust_processes_for(run_dir) == []


def test_a_run_without_requests_is_an_error(tmp_path: Path):
    scenario = marker_scenario("http://127.0.0.1:1")
    empty = build_manifest(
        scenario,
        "http://127.0.0.1:1",
        1000.0,
        1006.0,
        completed=True,
        stats=client_stats([], [], {}),
    )
    with pytest.raises(RunError, match=r"the run sent no request to http://127\.0\.0\.1:1"):
        require_requests(empty, tmp_path / "locust.log")
    unmeasured = build_manifest(
        scenario, "http://127.0.0.1:1", 1000.0, 1006.0, completed=True, stats=None
    )
    with pytest.raises(RunError, match="without writing statistics"):
        require_requests(unmeasured, tmp_path / "locust.log")


INTERRUPTED_RUN = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from load_helpers import marker_scenario
from loadtests.runner import run_load
try:
    scenario = marker_scenario({url!r}, phase_s=30.0, users=2)
    run_load(scenario, None, Path({run_dir!r}), workers={workers})
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_an_interrupted_run_writes_its_manifest_and_leaves_no_process(tmp_path: Path, workers):
    run_dir = tmp_path / "run"
    with recording_service(tmp_path) as service:
        code = INTERRUPTED_RUN.format(
            tests=str(Path(__file__).parent),
            url=service.url,
            run_dir=str(run_dir),
            workers=workers,
        )
        runner = subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while not (run_dir / "progress.jsonl").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.0)
            runner.send_signal(signal.SIGTERM)
            output, _ = runner.communicate(timeout=60)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()

    assert "interrupted" in output
    manifest = RunManifest.load(run_dir / "manifest.json")
    assert not manifest.completed
    assert [phase.name for phase in manifest.phases] == ["warmup"]
    assert manifest.phases[0].end_s == pytest.approx(manifest.ended_s)
    assert manifest.phases[0].duration_s < 30.0
    assert manifest.client_stats is not None and manifest.client_stats.total_requests > 0
    assert locust_processes_for(run_dir) == []
    json.loads((run_dir / "manifest.json").read_text())
