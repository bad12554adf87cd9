"""Objective models: units, shorthands, and one-line errors that name field, value and choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sla.errors import ObjectiveError
from sla.objectives import (
    OBJECTIVE_KINDS,
    LatencyObjective,
    load_sla_file,
    parse_duration_s,
    parse_quantile,
    parse_ratio,
    parse_sla,
    parse_timestamp_s,
)


def _one(objective: dict) -> object:
    return parse_sla({"objectives": [objective]}, "sla.yaml").objectives[0]


def _one_of(objectives: list[dict]) -> list:
    return list(parse_sla({"objectives": objectives}, "sla.yaml").objectives)


def _error(data: dict) -> str:
    with pytest.raises(ObjectiveError) as caught:
        parse_sla(data, "sla.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("0.25s", 0.25),
        ("2m", 120.0),
        ("1h", 3600.0),
        (1.5, 1.5),
        (".5s", 0.5),
        # As scenario files write them: parts, largest first (1 * 60 + 30 s).
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
    ],
)
def test_durations_are_stored_in_seconds(text: object, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["250 parsecs", "-1s", "fast", True, "1m1m"])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(text)


def test_ratios_and_quantiles_accept_percent_and_p_notation() -> None:
    assert parse_ratio("1%") == pytest.approx(0.01)
    assert parse_ratio(0.02) == pytest.approx(0.02)
    assert parse_quantile("p95") == pytest.approx(0.95)
    assert parse_quantile("p99.9") == pytest.approx(0.999)
    assert parse_quantile(0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        parse_quantile("p100")


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("accuracy", "min", 60),
        ("accuracy", "max", "101%"),
        ("error_ratio", "max", "150%"),
        ("error_ratio", "min", 1.5),
        ("confidence", "min", 2),
    ],
)
def test_ratios_above_one_are_refused_naming_field_and_value(
    kind: str, field: str, value: object
) -> None:
    message = _error({"objectives": [{"name": "x", "kind": kind, field: value}]})
    assert message == (
        f"sla.yaml: objectives[0].{field}: expected a ratio between 0 and 1 (or 0%..100%), "
        f"got {value!r}"
    )


@pytest.mark.parametrize(
    ("kind", "field", "value", "stored"),
    [
        ("accuracy", "min", 0.6, 0.6),
        ("accuracy", "max", "100%", 1.0),
        ("error_ratio", "max", "1.5%", 0.015),
        ("confidence", "min", 0, 0.0),
    ],
)
def test_ratios_from_zero_to_one_are_accepted(
    kind: str, field: str, value: object, stored: float
) -> None:
    objective = _one({"name": "x", "kind": kind, field: value})
    assert getattr(objective, field) == pytest.approx(stored)


def test_a_baseline_regression_may_exceed_100_percent_only_when_higher_is_worse() -> None:
    latency = {"name": "p99", "kind": "latency", "quantile": "p99", "max": "1s"}
    accuracy = {"name": "acc", "kind": "accuracy", "min": 0.5}
    doubled = {"name": "b", "kind": "baseline", "objective": "p99", "max_regression": "150%"}
    assert _one_of([latency, doubled])[1].max_regression == pytest.approx(1.5)
    message = _error(
        {"objectives": [accuracy, {**doubled, "objective": "acc", "max_regression": "100%"}]}
    )
    assert "max_regression: a drop of 100% or more always passes" in message


def test_iso_times_need_a_zone() -> None:
    assert parse_timestamp_s("1970-01-01T00:01:40Z") == pytest.approx(100.0)
    with pytest.raises(ValueError, match="zone"):
        parse_timestamp_s("2026-12-04T15:00:00")


def test_latency_objective_reads_units_and_window_shorthands() -> None:
    objective = _one(
        {"name": "p95", "kind": "latency", "quantile": "p95", "max": "250ms", "window": "5m"}
    )
    assert isinstance(objective, LatencyObjective)
    assert objective.max == pytest.approx(0.25)
    assert objective.quantile == pytest.approx(0.95)
    assert objective.window is not None and objective.window.duration_s == pytest.approx(300.0)
    assert objective.severity == "fail"

    phase = _one(
        {"name": "p", "kind": "latency", "quantile": 0.5, "max": 1, "window": "phase:drift"}
    )
    assert phase.window is not None and phase.window.phase == "drift"


def test_a_kind_typo_lists_every_kind() -> None:
    message = _error({"objectives": [{"name": "x", "kind": "latancy", "max": "1s"}]})
    assert "'latancy'" in message
    for kind in OBJECTIVE_KINDS:
        assert f"'{kind}'" in message


def test_an_unknown_field_lists_the_valid_ones() -> None:
    message = _error(
        {"objectives": [{"name": "x", "kind": "latency", "quantile": "p95", "maxx": "1s"}]}
    )
    assert message.startswith("sla.yaml: objectives[0]: unknown field 'maxx'")
    assert "valid fields:" in message and "max" in message and "quantile" in message


def test_a_bad_severity_names_field_value_and_choices() -> None:
    message = _error(
        {
            "objectives": [
                {"name": "x", "kind": "latency", "quantile": "p95", "max": "1s", "severity": "bad"}
            ]
        }
    )
    assert "objectives[0].severity" in message
    assert "'fail' or 'warn'" in message and "'bad'" in message


def test_an_objective_without_threshold_is_refused() -> None:
    message = _error({"objectives": [{"name": "x", "kind": "latency", "quantile": "p95"}]})
    assert "give a threshold: 'min', 'max' or both" in message


def test_http_latency_has_no_model_version() -> None:
    message = _error(
        {
            "objectives": [
                {
                    "name": "x",
                    "kind": "latency",
                    "metric": "http_request_duration_seconds",
                    "model_version": "v2",
                    "quantile": "p95",
                    "max": "1s",
                }
            ]
        }
    )
    assert "model_version" in message and "inference_latency_seconds" in message


def test_comparison_reads_sides_factor_and_offset() -> None:
    objective = _one(
        {
            "name": "challenger-accuracy",
            "kind": "comparison",
            "left": {"kind": "accuracy", "model_version": "v2"},
            "op": ">=",
            "right": {"kind": "accuracy", "model_version": "v1"},
            "offset": "-2%",
        }
    )
    assert objective.offset == pytest.approx(-0.02)
    assert objective.left.model_version == "v2"

    latency = _one(
        {
            "name": "challenger-p95",
            "kind": "comparison",
            "left": {"kind": "latency", "quantile": "p95", "model_version": "v2"},
            "op": "<=",
            "right": {"kind": "latency", "quantile": "p95", "model_version": "v1"},
            "factor": 1.1,
            "offset": "5ms",
        }
    )
    assert latency.factor == pytest.approx(1.1)
    assert latency.offset == pytest.approx(0.005)


def test_drift_signal_defaults_to_dataset_drift_share() -> None:
    objective = _one(
        {
            "name": "drift",
            "kind": "drift_detected",
            "signal": {"above": 0.3},
            "phase": "drift",
            "within": "60s",
        }
    )
    assert objective.signal.metric == "dataset_drift_share"
    assert objective.within == pytest.approx(60.0)

    message = _error(
        {
            "objectives": [
                {
                    "name": "drift",
                    "kind": "drift_detected",
                    "signal": {"alert": "A", "above": 0.3},
                    "phase": "drift",
                    "within": "60s",
                }
            ]
        }
    )
    assert "either 'alert: NAME' or 'metric' with 'above'" in message


def test_duplicate_names_and_dangling_baselines_are_refused() -> None:
    latency = {"name": "p99", "kind": "latency", "quantile": "p99", "max": "1s"}
    assert "used twice" in _error({"objectives": [latency, latency]})

    dangling = {"name": "b", "kind": "baseline", "objective": "p98", "max_regression": "10%"}
    message = _error({"objectives": [latency, dangling]})
    assert "no objective named 'p98'" in message and "objectives: p99" in message

    alert = {"name": "a", "kind": "alert", "alert": "X", "expect": "fired"}
    on_alert = {"name": "b", "kind": "baseline", "objective": "a", "max_regression": "10%"}
    assert "a baseline compares one of" in _error({"objectives": [alert, on_alert]})


def test_window_forms_are_exclusive() -> None:
    objective = {"name": "x", "kind": "latency", "quantile": "p95", "max": "1s"}
    message = _error({"objectives": [{**objective, "window": {"phase": "a", "duration": "5m"}}]})
    assert "exactly one of" in message
    message = _error({"objectives": [{**objective, "window": {"durration": "5m"}}]})
    assert "unknown field 'durration'; valid fields: phase, duration, start, end" in message


def test_load_sla_file_reads_yaml_and_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(
        "defaults:\n  min_requests: 50\nobjectives:\n"
        "  - {name: p99, kind: latency, quantile: p99, max: 300ms}\n"
    )
    sla = load_sla_file(path)
    assert sla.defaults.min_requests == 50
    assert sla.objectives[0].max == pytest.approx(0.3)

    path.write_text("objectives: [{name: p99, kind: latency}]\n")
    with pytest.raises(ObjectiveError, match=str(path)):
        load_sla_file(path)
    with pytest.raises(ObjectiveError, match="cannot read"):
        load_sla_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_an_empty_sla_file_says_so(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(text)
    with pytest.raises(ObjectiveError) as caught:
        load_sla_file(path)
    assert str(caught.value).startswith(f"{path}: the file is empty; expected a mapping")
    assert "NoneType" not in str(caught.value)


def test_a_binary_sla_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_bytes(b"objectives: []\n\xff\xfe\x00\x81binary")
    with pytest.raises(ObjectiveError) as caught:
        load_sla_file(path)
    assert str(caught.value) == (
        f"{path}: not a text file (byte 15 is not UTF-8); an SLA file is YAML or JSON"
    )


SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[path.name for path in SCENARIOS])
def test_a_scenario_file_yields_its_objectives(scenario: Path) -> None:
    raw = yaml.safe_load(scenario.read_text())
    sla = load_sla_file(scenario)
    assert [objective.name for objective in sla.objectives] == [
        objective["name"] for objective in raw["objectives"]
    ]
    assert sla.defaults.min_requests == 20


def test_only_a_mapping_with_load_or_target_is_read_as_a_scenario(tmp_path: Path) -> None:
    objective = {"name": "p99", "kind": "latency", "quantile": "p99", "max": "1s"}
    path = tmp_path / "file.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "load": {}, "objectives": [objective]}))
    assert load_sla_file(path).objectives[0].name == "p99"

    path.write_text(yaml.safe_dump({"name": "mine", "objectives": [objective]}))
    with pytest.raises(ObjectiveError, match="unknown field 'name'"):
        load_sla_file(path)
    path.write_text(yaml.safe_dump({"name": "mine", "target": {}}))
    with pytest.raises(ObjectiveError, match="the scenario file has no 'objectives' to check"):
        load_sla_file(path)


def test_the_example_in_docs_parses() -> None:
    text = (Path(__file__).parent.parent / "docs" / "sla.md").read_text()
    start = text.index("```yaml\n") + len("```yaml\n")
    example = yaml.safe_load(text[start : text.index("```", start)])
    sla = parse_sla(example, "docs/sla.md")
    kinds = {objective.kind for objective in sla.objectives}
    assert {"latency", "error_ratio", "drift_detected", "comparison", "baseline"} <= kinds
