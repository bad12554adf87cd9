"""The Prometheus rules: generated files up to date, valid, unit-tested with promtool.

promtool is Prometheus's own checker (Debian's ``prometheus`` package ships it). Each
promtool test has a twin that feeds it something broken and expects it to fail, so that a
promtool that passes everything would be caught.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from prometheus_client import CollectorRegistry
from stack_helpers import scraped_service

from prometheus import generate_rules
from prometheus.promql import exposed_series_names, metric_names
from target_service.config import MODEL_VERSIONS
from target_service.dataset import CLASSES, FEATURES, load_split
from target_service.metrics import ServiceMetrics

PROMETHEUS_DIR = Path(generate_rules.__file__).parent
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
PROMTOOL_TIMEOUT_S = 120
SEVERITIES = {"info", "warning", "critical"}
REQUIRED_ALERTS = {
    "FeatureDriftDetected",
    "SingleFeatureDrift",
    "InferenceLatencySLOBreach",
    "HighErrorRatio",
    "ModelAccuracyDrop",
    "ConfidenceCollapse",
    "NoTraffic",
    "TargetDown",
}


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        raise RuntimeError("promtool not found; install Debian's prometheus package")
    return subprocess.run(
        [binary, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


def all_rules(profile_name: str) -> list[dict[str, Any]]:
    path = generate_rules.rule_file_path(profile_name)
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def service_series_names() -> set[str]:
    registry = CollectorRegistry()
    ServiceMetrics(registry, MODEL_VERSIONS, CLASSES, [feature.name for feature in FEATURES])
    return exposed_series_names(registry)


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_committed_rule_file_is_the_generator_output(profile_name: str) -> None:
    profile = generate_rules.PROFILES[profile_name]
    committed = generate_rules.rule_file_path(profile_name).read_text()

    assert committed == generate_rules.render(profile), (
        "rule file out of date: run python -m prometheus.generate_rules"
    )


def test_write_all_writes_one_file_per_profile(tmp_path: Path) -> None:
    written = generate_rules.write_all(tmp_path)

    assert sorted(path.name for path in written) == [
        f"driftgate-{name}.yml" for name in sorted(generate_rules.PROFILES)
    ]
    assert written[0].read_text() == generate_rules.render(
        generate_rules.PROFILES[written[0].stem.removeprefix("driftgate-")]
    )


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_promtool_accepts_the_rule_file(profile_name: str) -> None:
    result = promtool("check", "rules", generate_rules.rule_file_path(profile_name))

    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_rule_with_a_promql_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    rule = {"alert": "Broken", "expr": "sum by (job (up)", "for": "1m"}
    broken.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [rule]}]}))

    result = promtool("check", "rules", broken)

    assert result.returncode != 0
    assert "could not parse expression" in result.stdout + result.stderr


def test_promtool_accepts_the_compose_configuration() -> None:
    result = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_configuration_naming_a_missing_rule_file(tmp_path: Path) -> None:
    configuration = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    configuration["rule_files"] = ["rules/missing.yml"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(configuration))

    result = promtool("check", "config", path)

    assert result.returncode != 0


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_promtool_unit_tests_pass(profile_name: str) -> None:
    result = promtool("test", "rules", RULE_TESTS_DIR / f"driftgate-{profile_name}.test.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def copy_rules_and_tests(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of rules/ and tests/ side by side, as the tests' relative paths expect."""
    rules_dir = tmp_path / "rules"
    tests_dir = tmp_path / "tests"
    shutil.copytree(generate_rules.RULES_DIR, rules_dir)
    shutil.copytree(RULE_TESTS_DIR, tests_dir)
    return rules_dir, tests_dir


def test_promtool_fails_a_unit_test_that_expects_the_wrong_alert(tmp_path: Path) -> None:
    _, tests_dir = copy_rules_and_tests(tmp_path)
    test_file = tests_dir / "driftgate-ci.test.yml"
    tests = yaml.safe_load(test_file.read_text())
    drift_checks = tests["tests"][0]["alert_rule_test"]
    # At 13 s the drift has lasted 3 s, less than the alert's 5 s: expecting it is wrong.
    drift_checks[1]["exp_alerts"] = drift_checks[2]["exp_alerts"]
    test_file.write_text(yaml.safe_dump(tests))

    result = promtool("test", "rules", test_file)

    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_unit_tests_catch_a_drift_threshold_set_too_high(tmp_path: Path, profile_name: str) -> None:
    rules_dir, tests_dir = copy_rules_and_tests(tmp_path)
    wrong = dataclasses.replace(generate_rules.PROFILES[profile_name], drift_share_max=0.5)
    generate_rules.rule_file_path(profile_name, rules_dir).write_text(generate_rules.render(wrong))

    result = promtool("test", "rules", tests_dir / f"driftgate-{profile_name}.test.yml")

    assert result.returncode != 0
    assert "FeatureDriftDetected" in result.stdout + result.stderr


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_every_required_alert_exists(profile_name: str) -> None:
    alerts = {rule["alert"] for rule in all_rules(profile_name) if "alert" in rule}

    assert alerts >= REQUIRED_ALERTS


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_every_alert_has_severity_summary_description_with_value_and_for(
    profile_name: str,
) -> None:
    alerts = [rule for rule in all_rules(profile_name) if "alert" in rule]

    for alert in alerts:
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert "$value" in alert["annotations"]["description"], alert["alert"]
        assert alert["for"], alert["alert"]


def test_ci_profile_alerts_within_a_short_run() -> None:
    ci = generate_rules.PROFILES["ci"]
    production = generate_rules.PROFILES["production"]

    assert ci.evaluation_interval == "1s"
    assert generate_rules.duration_s(ci.drift_for) <= 10
    assert generate_rules.duration_s(production.drift_for) >= 60
    for rule in all_rules("ci"):
        if "alert" in rule:
            assert generate_rules.duration_s(str(rule["for"])) <= 10, rule["alert"]


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_recording_rule_names_follow_level_metric_operations(profile_name: str) -> None:
    recorded = [rule["record"] for rule in all_rules(profile_name) if "record" in rule]

    for name in recorded:
        level, metric, operations = str(name).split(":")
        assert level and metric and operations, name


@pytest.mark.parametrize("profile_name", sorted(generate_rules.PROFILES))
def test_every_metric_a_rule_names_is_exported_or_recorded(profile_name: str) -> None:
    rules = all_rules(profile_name)
    recorded = {str(rule["record"]) for rule in rules if "record" in rule}
    # `up` is written by Prometheus itself for every scrape target.
    known = service_series_names() | recorded | {"up"}

    named = set().union(*(metric_names(str(rule["expr"])) for rule in rules))

    assert named - known == set()
    assert "dataset_drift_share" in named


def test_metric_names_reads_selectors_and_skips_functions_labels_and_durations() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, job) (rate(a_bucket{status=~"5.."}[5m]))) '
        "> bool 3e-2 and on (job) b:c:d offset 1m unless ignoring (x) c_total"
    )

    assert metric_names(expr) == {"a_bucket", "b:c:d", "c_total"}


NORMAL_PHASE_S = 15.0
DRIFT_PHASE_S = 20.0
BATCH_SIZE = 20
BATCH_PAUSE_S = 0.1
SHIFT_SD = 1.5
SHIFTED_FEATURES = ("chronic_diseases", "participation_incentive_log")


def drifted(records: list[dict[str, Any]], train: pd.DataFrame) -> list[dict[str, Any]]:
    """The records with a mean shift of ``SHIFT_SD`` training SDs in two numeric features."""
    shifted = []
    for record in records:
        copy = dict(record)
        for name in SHIFTED_FEATURES:
            copy[name] = record[name] + SHIFT_SD * float(train[name].std())
        shifted.append(copy)
    return shifted


def post_batches(client: httpx.Client, records: list[dict[str, Any]], duration_s: float) -> None:
    """Batches of ``BATCH_SIZE`` records, cycling through ``records``, for ``duration_s``."""
    end = time.monotonic() + duration_s
    start_index = 0
    while time.monotonic() < end:
        batch = [records[(start_index + offset) % len(records)] for offset in range(BATCH_SIZE)]
        client.post("/predict", json={"instances": batch}).raise_for_status()
        start_index += BATCH_SIZE
        time.sleep(BATCH_PAUSE_S)


def firing_times_s(prometheus_url: str, alert: str, start_s: float, end_s: float) -> list[float]:
    response = httpx.get(
        f"{prometheus_url}/api/v1/query_range",
        params={
            "query": f'ALERTS{{alertname="{alert}", alertstate="firing"}}',
            "start": start_s,
            "end": end_s,
            "step": "1s",
        },
        timeout=10.0,
    )
    response.raise_for_status()
    return [float(t) for series in response.json()["data"]["result"] for t, _ in series["values"]]


@pytest.mark.e2e
def test_ci_rules_fire_the_drift_alert_in_a_drift_phase_only(tmp_path: Path) -> None:
    split = load_split()
    records = [
        {
            spec.name: row[spec.name] if spec.kind == "categorical" else float(row[spec.name])
            for spec in FEATURES
        }
        # Shuffled: the source rows are grouped by plan, so any slice of them in order drifts.
        for row in split.holdout.sample(n=1000, random_state=np.random.default_rng(0)).to_dict(
            "records"
        )
    ]
    with scraped_service(tmp_path) as (service, prometheus):
        with httpx.Client(base_url=service.url, timeout=10.0) as client:
            normal_start_s = time.time()
            post_batches(client, records, NORMAL_PHASE_S)
            drift_start_s = time.time()
            post_batches(client, drifted(records, split.train), DRIFT_PHASE_S)
            drift_end_s = time.time()
        # Let the last evaluations land before reading the alert's history.
        time.sleep(2.0)
        fired_s = firing_times_s(
            prometheus.url, "FeatureDriftDetected", normal_start_s, drift_end_s
        )

    assert fired_s, "FeatureDriftDetected never fired during the drift phase"
    assert min(fired_s) >= drift_start_s, "FeatureDriftDetected fired during the normal phase"
