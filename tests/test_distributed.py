"""The same scenario with a Locust master and two workers on loopback.

From what the service saw: drifted records start within one second of the phase boundary
the manifest records, and the final statistics include every worker's last report.
"""

from __future__ import annotations

from pathlib import Path

from load_helpers import MARKER, locust_processes_for, marker_scenario, recording_service

from loadtests.runner import run_load

USERS = 6
WORKERS = 2


def test_two_workers_switch_phases_together_and_report_everything(tmp_path: Path):
    run_dir = tmp_path / "run"
    with recording_service(tmp_path) as service:
        scenario = marker_scenario(service.url, phase_s=4.0, users=USERS, extra_phase_s=3.0)
        manifest = run_load(scenario, None, run_dir, workers=WORKERS)
        arrivals = service.arrivals()

    assert manifest.completed
    assert manifest.locust_workers == WORKERS
    drift, after = manifest.phase("drift"), manifest.phase("after")

    predicts = [a for a in arrivals if a["route"] == "/predict"]
    marked = [a["t"] for a in predicts if a["body"]["self_rated_health"] == MARKER]
    unmarked_before = [a["t"] for a in predicts if a["t"] < drift.start_s]
    assert unmarked_before, "no normal traffic arrived before the drift phase"
    assert drift.start_s <= min(marked) < drift.start_s + 1.0
    # Every process stops the drift at the same boundary, too.
    assert drift.end_s - 1.0 < max(marked) < drift.end_s + 1.0
    assert after.start_s == drift.end_s
    normal_in_drift = [
        a["t"]
        for a in predicts
        if drift.start_s + 1.0 <= a["t"] < drift.end_s and a["body"]["self_rated_health"] != MARKER
    ]
    assert normal_in_drift == []

    # Every request the service saw was counted (both workers' final reports are in) but for
    # at most one in flight per user at the stop.
    assert manifest.client_stats is not None
    stats = {row.name: row for row in manifest.client_stats.requests}
    seen = len(predicts)
    assert seen - USERS <= stats["/predict"].requests <= seen
    seen_feedback = sum(1 for a in arrivals if a["route"] == "/feedback")
    assert seen_feedback - USERS <= stats["/feedback"].requests <= seen_feedback
    assert stats["/predict [v1]"].requests == stats["/predict"].requests
    for worker in (1, 2):
        log = (run_dir / "logs" / f"locust-worker-{worker}.log").read_text()
        assert "phase clock start_s=" in log
    master_log = (run_dir / "logs" / "locust-master.log").read_text()
    assert "no final statistics" not in master_log
    assert locust_processes_for(run_dir) == []
