"""Scenario files: the shipped ones are valid, bad ones fail in one line naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from driftgate.errors import ScenarioError
from driftgate.scenario import (
    Scenario,
    load_scenario,
    main,
    parse_scenario,
    render_schema,
    scenario_json_schema,
)
from target_service.config import ServiceSettings

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))
REQUIRED = {
    "smoke",
    "baseline",
    "drift-sudden",
    "drift-gradual",
    "concept-drift",
    "latency-regression",
    "champion-challenger",
    "spike",
}

MINIMAL = """\
name: t
description: a test scenario
target: {url: "http://127.0.0.1:8000"}
load:
  phases:
    - {name: warmup, duration: 10s, users: 2, spawn_rate: 2, traffic: normal}
    - name: drift
      duration: 1m30s
      users: 2
      spawn_rate: 2
      traffic: {kind: mean_shift, size: 1.5, features: [chronic_diseases]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_all_required_scenarios_ship():
    assert {path.stem for path in SHIPPED} >= REQUIRED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_is_valid_and_documented(path: Path):
    scenario = load_scenario(path)
    text = path.read_text()

    assert scenario.name == path.stem
    assert text.startswith("# yaml-language-server: $schema=scenario.schema.json\n")
    assert "# What it proves:" in text
    assert "# Expected result:" in text
    assert "# Load:" in text
    assert all(phase.users <= 30 for phase in scenario.load.phases)


def test_smoke_is_ci_sized_and_normal_only():
    smoke = load_scenario(SCENARIOS / "smoke.yaml")
    assert smoke.duration_s <= 20
    assert {phase.traffic.kind for phase in smoke.load.phases} == {"normal"}


def test_latency_regression_slows_v2_and_sends_it_traffic():
    scenario = load_scenario(SCENARIOS / "latency-regression.yaml")
    service = scenario.target.service
    assert service is not None
    assert service.faults["v2"].extra_latency_s > 0
    assert service.model_weights.get("v2", 0) > 0


def test_minimal_scenario_reads_durations_and_defaults(tmp_path: Path):
    scenario = load_scenario(write(tmp_path, MINIMAL))

    assert [phase.duration for phase in scenario.load.phases] == [10.0, 90.0]
    assert scenario.duration_s == 100.0
    assert scenario.load.phases[0].traffic.kind == "normal"
    assert scenario.feedback.share == 0.5
    assert scenario.source_path == tmp_path / "x.yaml"


def test_service_settings_come_from_the_file_only(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DRIFTGATE_WORKERS", "7")
    text = MINIMAL.replace('target: {url: "http://127.0.0.1:8000"}', "target: {service: {seed: 3}}")
    scenario = load_scenario(write(tmp_path, text))

    service = scenario.target.service
    assert isinstance(service, ServiceSettings)
    assert service.seed == 3
    assert service.workers == 1


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "duration: 10s",
            'duration: "3O s"',
            'load.phases[0].duration: expected a duration like 30s, got "3O s"',
        ),
        ("duration: 10s", "duration: 0s", "load.phases[0].duration: expected a phase duration > 0"),
        (
            "chronic_diseases]",
            "chronic_disease]",
            "load.phases[1].traffic.features: unknown feature 'chronic_disease'; "
            "numeric features: participation_incentive_log",
        ),
        (
            "chronic_diseases]",
            "self_rated_health]",
            "load.phases[1].traffic.features: 'self_rated_health' is a categorical feature; "
            "this drift needs numeric features",
        ),
        ("size: 1.5", "size: -1", "load.phases[1].traffic.size: expected a number >= 0"),
        (
            "kind: mean_shift",
            "kind: shift",
            "load.phases[1].traffic: expected kind: one of normal, mean_shift",
        ),
        ("name: drift", "name: warmup", "load.phases: phase names must be unique"),
        (
            "users: 2, spawn",
            "users: 0, spawn",
            "load.phases[0].users: expected a number >= 1, got 0",
        ),
        (
            "traffic: normal",
            "traffic: normale",
            'load.phases[0].traffic: expected "normal" or a mapping',
        ),
        (
            "users: 2, spawn",
            "user: 2, spawn",
            "load.phases[0].user: unknown field; "
            "expected one of: name, duration, users, spawn_rate, traffic",
        ),
        ('{url: "http://127.0.0.1:8000"}', "{}", "target: expected exactly one of service"),
        (
            '{url: "http://127.0.0.1:8000"}',
            "{service: {wrkers: 2}}",
            "target.service.wrkers: unknown field; expected one of: host, port, workers",
        ),
        (
            '{url: "http://127.0.0.1:8000"}',
            "{service: {model_weights: {v9: 1}}}",
            "target.service: model_weights: unknown model version 'v9'; known: v1, v2",
        ),
        (
            "features: [chronic_diseases]",
            "features: {random: 9}",
            "load.phases[1].traffic.features: random: 9 is more than the 4 numeric features",
        ),
    ],
)
def test_bad_scenario_is_one_line_naming_the_field(
    tmp_path: Path, old: str, new: str, expected: str
):
    assert old in MINIMAL
    assert error_for(tmp_path, MINIMAL.replace(old, new, 1)).startswith(expected)


OBJECTIVES = """\
objectives:
  - {name: fast, kind: latency, quantile: p95, max: 50ms, window: "phase:warmup"}
  - name: caught
    kind: drift_detected
    signal: {metric: feature_drift_detected, above: 0, labels: {feature: chronic_diseases}}
    phase: drift
    within: 30s
"""


def test_objectives_are_the_sla_checkers_models(tmp_path: Path):
    from sla.objectives import DriftDetectedObjective, LatencyObjective

    scenario = load_scenario(write(tmp_path, MINIMAL + OBJECTIVES))

    latency, drift = scenario.objectives
    assert isinstance(latency, LatencyObjective)
    assert latency.max == pytest.approx(0.05)
    assert isinstance(drift, DriftDetectedObjective)


def test_objectives_must_name_phases_of_the_scenario(tmp_path: Path):
    text = MINIMAL + OBJECTIVES.replace("phase: drift", "phase: drfit")
    assert error_for(tmp_path, text) == (
        "objectives[1].phase: no phase 'drfit' in load.phases; phases: warmup, drift"
    )
    text = MINIMAL + OBJECTIVES.replace("max: 50ms", "max: fast")
    assert error_for(tmp_path, text).startswith("objectives[0].max: expected a duration")
    text = MINIMAL + OBJECTIVES.replace("name: caught", "name: fast")
    assert "used twice" in error_for(tmp_path, text)


def test_categorical_drift_refuses_a_numeric_feature(tmp_path: Path):
    text = MINIMAL.replace(
        "{kind: mean_shift, size: 1.5, features: [chronic_diseases]}",
        "{kind: category_shift, size: 0.5, category: poor, features: [chronic_diseases]}",
    )
    message = error_for(tmp_path, text)
    assert message.startswith("load.phases[1].traffic.features: 'chronic_diseases' is a numeric")
    assert "self_rated_health" in message


def test_not_yaml_and_not_a_mapping_and_missing_file(tmp_path: Path):
    assert error_for(tmp_path, "name: [unclosed\n").startswith("line ")
    assert error_for(tmp_path, "- a list\n").startswith("expected a mapping of scenario fields")
    with pytest.raises(ScenarioError, match="cannot read the scenario file"):
        load_scenario(tmp_path / "absent.yaml")


def test_more_problems_are_counted_on_the_same_line(tmp_path: Path):
    text = MINIMAL.replace("duration: 10s", "duration: -1s").replace("size: 1.5", "size: -1")
    assert "(and 1 more problem)" in error_for(tmp_path, text)


def test_schema_file_is_up_to_date():
    written = (SCENARIOS / "scenario.schema.json").read_text()
    assert written == render_schema(), "run: python -m driftgate.scenario --write-schema scenarios"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_satisfy_the_json_schema(path: Path):
    validator = jsonschema.Draft202012Validator(scenario_json_schema())
    assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == []


def test_json_schema_rejects_what_the_model_rejects():
    validator = jsonschema.Draft202012Validator(scenario_json_schema())
    data = yaml.safe_load(MINIMAL)
    data["load"]["phases"][0]["duration"] = "3O s"
    assert not validator.is_valid(data)
    data = yaml.safe_load(MINIMAL)
    data["load"]["phases"][1]["traffic"]["kind"] = "shift"
    assert not validator.is_valid(data)


def test_described_traffic_resolves_random_features():
    scenario = parse_scenario(
        yaml.safe_load(
            MINIMAL.replace("features: [chronic_diseases]", "features: {random: 2, seed: 4}")
        )
    )
    described = scenario.load.phases[1].traffic.describe()
    assert described["kind"] == "mean_shift"
    assert len(described["resolved_features"]) == 2
    json.dumps(described)


def test_command_line_writes_the_schema(tmp_path: Path):
    assert main(["--write-schema", str(tmp_path)]) == 0
    assert (
        json.loads((tmp_path / "scenario.schema.json").read_text())["title"]
        == (Scenario.model_config["title"])
    )
