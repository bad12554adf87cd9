"""Every verdict path of the evaluator against a real Prometheus over backfilled histories.

Expected values are computed here from the raw observations behind the history (NumPy), never
copied from the checker's output. Each gate has a twin that must fail, and does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from sla_backfill import (
    ACCURACY_GAUGE,
    ALERT_ON_OFFSET_S,
    DRIFT_ON_OFFSET_S,
    RESET_OFFSET_S,
    Backfilled,
    backfill,
    build_cases,
    history_start_s,
)

from driftgate.manifest import PhaseRecord, RunManifest
from driftgate.processes import free_loopback_port
from driftgate.prometheus_server import PrometheusServer
from sla.check import run_check
from sla.errors import WindowError
from sla.evaluate import format_result_value, format_value
from sla.objectives import parse_sla
from sla.prometheus import PrometheusClient, PrometheusSettings
from sla.report import CheckReport
from sla.verdicts import ObjectiveResult, Verdict
from target_service.metrics import latency_buckets_s

QUANTILE_TOLERANCE = 0.10
LOADED_ALERTS = ("DatasetDrift", "LatencyHigh")
LAT = {"job": "lat"}


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    t0_s = history_start_s(time.time())
    history, cases = build_cases(t0_s, np.random.default_rng(20261204))
    data_dir = tmp_path_factory.mktemp("sla-evaluate") / "data"
    backfill(history, data_dir)
    server = PrometheusServer(data_dir, rule_files=[_alert_rules(data_dir.parent)])
    server.start()
    try:
        yield Backfilled(server.url, cases)
    finally:
        server.stop()


def _alert_rules(directory: Path) -> Path:
    """The alerting rules of the backfilled ALERTS series: loaded, never firing now."""
    rules = [{"alert": name, "expr": "vector(1) == 0"} for name in LOADED_ALERTS]
    path = directory / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "sla-tests", "rules": rules}]}))
    return path


def check(
    env: Backfilled,
    job: str,
    objectives: list[dict[str, Any]],
    window_s: tuple[float, float] = (100, 400),
    manifest: RunManifest | None = None,
    **defaults: Any,
) -> CheckReport:
    start_s, end_s = env.t0_s + window_s[0], env.t0_s + window_s[1]
    sla = parse_sla(
        {
            "defaults": {
                "scrape_job": job,
                "window": {"start": start_s, "end": end_s},
                **defaults,
            },
            "objectives": objectives,
        }
    )
    return run_check(sla, PrometheusSettings(url=env.url, retries=0), manifest=manifest)


def only(report: CheckReport) -> ObjectiveResult:
    assert len(report.objectives) == 1
    return report.objectives[0]


def latency(name: str, quantile: float, **fields: Any) -> dict[str, Any]:
    return {"name": name, "kind": "latency", "quantile": quantile, "labels": LAT, **fields}


def window_values(env: Backfilled, observations: Any, window_s=(100, 400)) -> np.ndarray:
    return observations.between(env.t0_s + window_s[0], env.t0_s + window_s[1])


# --- latency ---


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_window_quantiles_are_within_ten_percent_of_the_raw_samples(
    backfilled: Backfilled, version: str
) -> None:
    raw = window_values(backfilled, backfilled.cases.latency[version])
    quantiles = (0.5, 0.95, 0.99)
    report = check(
        backfilled,
        "lat",
        [latency(f"p{q}", q, model_version=version, max="2s") for q in quantiles],
    )
    for quantile, result in zip(quantiles, report.objectives, strict=True):
        exact = float(np.quantile(raw, quantile))
        assert result.verdict == Verdict.PASS, result.reason
        assert result.value == pytest.approx(exact, rel=QUANTILE_TOLERANCE)
        assert result.details["observations"] == pytest.approx(len(raw), abs=0.5)
        assert "histogram_quantile" in result.queries[-1] and "le" in result.queries[-1]


def test_overall_latency_sums_both_versions(backfilled: Backfilled) -> None:
    cases = backfilled.cases
    raw = np.concatenate([window_values(backfilled, cases.latency[v]) for v in ("v1", "v2")])
    result = only(check(backfilled, "lat", [latency("p95", 0.95, max="2s")]))
    assert result.value == pytest.approx(float(np.quantile(raw, 0.95)), rel=QUANTILE_TOLERANCE)


def test_http_latency_is_read_per_route(backfilled: Backfilled) -> None:
    cases = backfilled.cases
    assert cases.http_ok is not None and cases.http_error is not None
    raw = np.concatenate(
        [window_values(backfilled, cases.http_ok), window_values(backfilled, cases.http_error)]
    )
    objective = latency("http", 0.95, metric="http_request_duration_seconds", max="2s")
    result = only(check(backfilled, "lat", [objective]))
    assert 'route="/predict"' in result.queries[-1]
    assert result.value == pytest.approx(float(np.quantile(raw, 0.95)), rel=QUANTILE_TOLERANCE)


def test_latency_gate_fails_below_the_known_p95_and_passes_above(backfilled: Backfilled) -> None:
    exact = float(np.quantile(window_values(backfilled, backfilled.cases.latency["v1"]), 0.95))
    report = check(
        backfilled,
        "lat",
        [
            latency("tight", 0.95, model_version="v1", max=exact * 0.8),
            latency("loose", 0.95, model_version="v1", max=exact * 1.25),
            latency("tight-warn", 0.95, model_version="v1", max=exact * 0.8, severity="warn"),
        ],
    )
    tight, loose, warned = report.objectives
    assert tight.verdict == Verdict.FAIL and "outside" in tight.reason
    assert loose.verdict == Verdict.PASS
    assert warned.verdict == Verdict.WARN
    assert tight.max == pytest.approx(exact * 0.8)


def test_worst_minute_takes_the_slowest_one_minute_window(backfilled: Backfilled) -> None:
    observations = backfilled.cases.latency["v2"]
    t0_s = backfilled.t0_s
    # The subquery evaluates every second over (end - 240 s, end]; each 1-minute window inside.
    ends_s = np.arange(t0_s + 400 - 239, t0_s + 400 + 0.5, 1.0)
    worst = max(float(np.quantile(observations.between(e - 60, e), 0.95)) for e in ends_s)
    whole = float(np.quantile(window_values(backfilled, observations), 0.95))

    report = check(
        backfilled,
        "lat",
        [latency("worst", 0.95, model_version="v2", max="2s", statistic="worst_1m")],
    )
    result = only(report)
    assert "max_over_time" in result.queries[-1] and "[240s:1s]" in result.queries[-1]
    assert result.value == pytest.approx(worst, rel=QUANTILE_TOLERANCE)
    assert result.value >= whole * (1 - QUANTILE_TOLERANCE)


def test_increase_handles_a_counter_reset(backfilled: Backfilled) -> None:
    cases = backfilled.cases
    assert cases.reset_visible is not None and cases.reset_latency is not None
    window_s = (RESET_OFFSET_S - 200.5, RESET_OFFSET_S + 199.5)
    raw = window_values(backfilled, cases.reset_visible, window_s)
    report = check(
        backfilled,
        "reset",
        [
            {"name": q, "kind": "latency", "quantile": q, "labels": {"job": "reset"}, "max": "2s"}
            for q in ("p95", "p99")
        ],
        window_s=window_s,
    )
    for quantile, result in zip((0.95, 0.99), report.objectives, strict=True):
        assert result.value == pytest.approx(float(np.quantile(raw, quantile)), rel=0.10)
        # A naive last-minus-first would count only what came after the restart.
        assert result.details["observations"] == pytest.approx(len(raw), abs=0.5)


# --- error ratio, throughput, accuracy, confidence ---


def test_error_ratio_matches_the_raw_counts_and_has_a_failing_twin(backfilled: Backfilled) -> None:
    cases = backfilled.cases
    assert cases.http_ok is not None and cases.http_error is not None
    errors = len(window_values(backfilled, cases.http_error))
    total = errors + len(window_values(backfilled, cases.http_ok))
    expected = errors / total

    report = check(
        backfilled,
        "lat",
        [
            {"name": "strict", "kind": "error_ratio", "labels": LAT, "max": expected / 2},
            {"name": "lenient", "kind": "error_ratio", "labels": LAT, "max": expected * 2},
        ],
    )
    strict, lenient = report.objectives
    assert strict.value == pytest.approx(expected, rel=1e-6)
    assert strict.verdict == Verdict.FAIL
    assert lenient.verdict == Verdict.PASS
    assert 'status=~"5.."' in strict.queries[-1]


def test_throughput_min_and_max(backfilled: Backfilled) -> None:
    cases = backfilled.cases
    assert cases.http_ok is not None and cases.http_error is not None
    requests = len(window_values(backfilled, cases.http_ok)) + len(
        window_values(backfilled, cases.http_error)
    )
    rate = requests / 300.0
    v1_rate = len(window_values(backfilled, cases.latency["v1"])) / 300.0

    report = check(
        backfilled,
        "lat",
        [
            {"name": "enough", "kind": "throughput", "labels": LAT, "min": rate * 0.9},
            {"name": "too-few", "kind": "throughput", "labels": LAT, "min": rate * 1.1},
            {"name": "too-many", "kind": "throughput", "labels": LAT, "max": rate * 0.9},
            {"name": "v1", "kind": "throughput", "labels": LAT, "model_version": "v1", "min": 1},
        ],
    )
    enough, too_few, too_many, v1 = report.objectives
    assert enough.value == pytest.approx(rate, rel=1e-6)
    assert (enough.verdict, too_few.verdict, too_many.verdict) == (
        Verdict.PASS,
        Verdict.FAIL,
        Verdict.FAIL,
    )
    assert v1.value == pytest.approx(v1_rate, rel=1e-6) and v1.unit == "pred/s"


def test_accuracy_from_feedback_and_from_the_gauge(backfilled: Backfilled) -> None:
    correct = window_values(backfilled, backfilled.cases.feedback_correct["v1"])
    expected = float(correct.mean())
    accuracy = {"kind": "accuracy", "labels": LAT, "model_version": "v1"}
    gauge = {"kind": "accuracy", "labels": LAT, "model_version": "v2", "source": "gauge"}
    report = check(
        backfilled,
        "lat",
        [
            {"name": "ok", **accuracy, "min": expected - 0.05},
            {"name": "low", **accuracy, "min": expected + 0.05},
            {"name": "gauge-ok", **gauge, "min": ACCURACY_GAUGE["v2"] - 0.05},
            {"name": "gauge-low", **gauge, "min": ACCURACY_GAUGE["v2"] + 0.05},
        ],
    )
    ok, low, gauge_ok, gauge_low = report.objectives
    assert ok.value == pytest.approx(expected, rel=1e-6)
    assert (ok.verdict, low.verdict) == (Verdict.PASS, Verdict.FAIL)
    assert gauge_ok.value == pytest.approx(ACCURACY_GAUGE["v2"])
    assert (gauge_ok.verdict, gauge_low.verdict) == (Verdict.PASS, Verdict.FAIL)


def test_median_confidence_above_a_floor(backfilled: Backfilled) -> None:
    raw = window_values(backfilled, backfilled.cases.confidence["v1"])
    median = float(np.median(raw))
    confidence = {"kind": "confidence", "labels": LAT, "model_version": "v1"}
    report = check(
        backfilled,
        "lat",
        [
            {"name": "floor-ok", **confidence, "min": median - 0.05},
            {"name": "floor-high", **confidence, "min": median + 0.05},
        ],
    )
    ok, high = report.objectives
    assert ok.value == pytest.approx(median, rel=QUANTILE_TOLERANCE)
    assert (ok.verdict, high.verdict) == (Verdict.PASS, Verdict.FAIL)


# --- comparison ---


def test_challenger_latency_and_accuracy_against_the_champion(backfilled: Backfilled) -> None:
    cases = backfilled.cases
    p95 = {
        v: float(np.quantile(window_values(backfilled, cases.latency[v]), 0.95))
        for v in cases.latency
    }

    def side(kind: str, version: str) -> dict[str, Any]:
        extra = {"quantile": "p95"} if kind == "latency" else {}
        return {"kind": kind, "model_version": version, "labels": LAT, **extra}

    report = check(
        backfilled,
        "lat",
        [
            {
                "name": "challenger-p95",
                "kind": "comparison",
                "left": side("latency", "v2"),
                "op": "<=",
                "right": side("latency", "v1"),
                "factor": 1.1,
            },
            {
                "name": "champion-p95",
                "kind": "comparison",
                "left": side("latency", "v1"),
                "op": "<=",
                "right": side("latency", "v2"),
                "factor": 1.1,
            },
            {
                "name": "challenger-accuracy",
                "kind": "comparison",
                "left": side("accuracy", "v2"),
                "op": ">=",
                "right": side("accuracy", "v1"),
                "offset": "-2%",
            },
            {
                "name": "champion-accuracy",
                "kind": "comparison",
                "left": side("accuracy", "v1"),
                "op": ">=",
                "right": side("accuracy", "v2"),
                "offset": "-2%",
            },
        ],
    )
    slow, fast, worse, better = report.objectives
    # v2 is about twice as slow and 20 points less accurate: the challenger loses both.
    assert p95["v2"] > 1.1 * p95["v1"]
    assert slow.verdict == Verdict.FAIL
    assert slow.max == pytest.approx(1.1 * p95["v1"], rel=QUANTILE_TOLERANCE)
    assert fast.verdict == Verdict.PASS
    assert worse.verdict == Verdict.FAIL
    assert better.verdict == Verdict.PASS


# --- inconclusive causes, each with a twin that is measured ---


def test_no_series_is_inconclusive(backfilled: Backfilled) -> None:
    result = only(check(backfilled, "lat", [latency("v9", 0.95, model_version="v9", max="1s")]))
    assert result.verdict == Verdict.INCONCLUSIVE
    assert "no series match inference_latency_seconds_bucket{" in result.reason
    assert 'model_version="v9"' in result.reason
    assert result.value is None


def test_nan_and_infinity_are_inconclusive(backfilled: Backfilled) -> None:
    report = check(
        backfilled,
        "lat",
        [
            {"name": "nan", "kind": "promql", "query": "vector(0) / vector(0)", "max": 1},
            {"name": "inf", "kind": "promql", "query": "vector(1) / vector(0)", "min": 0},
            {"name": "two", "kind": "promql", "query": 'up{job=~"lat|reset"}', "min": 0},
            {"name": "one", "kind": "promql", "query": "vector(0.5)", "max": 1},
        ],
    )
    nan, inf, two, one = report.objectives
    assert nan.verdict == Verdict.INCONCLUSIVE and "nan" in nan.reason
    assert inf.verdict == Verdict.INCONCLUSIVE and "inf" in inf.reason
    assert two.verdict == Verdict.INCONCLUSIVE and "2 series" in two.reason
    assert one.verdict == Verdict.PASS and one.value == pytest.approx(0.5)


def test_a_quantile_in_the_inf_bucket_is_inconclusive(backfilled: Backfilled) -> None:
    job = {"job": "inf"}
    report = check(
        backfilled,
        "inf",
        [
            {"name": "p99", "kind": "latency", "quantile": "p99", "labels": job, "max": "10s"},
            {"name": "p10", "kind": "latency", "quantile": "p10", "labels": job, "max": "10s"},
        ],
    )
    tail, head = report.objectives
    # Prometheus 2.42 answers the highest finite bound (2 s) for such a quantile.
    assert tail.verdict == Verdict.INCONCLUSIVE
    assert "+Inf bucket" in tail.reason and tail.details["highest_finite_bucket"] == 2.0
    assert head.verdict == Verdict.PASS


def test_a_quantile_in_the_inf_bucket_decides_thresholds_below_the_top_bound(
    backfilled: Backfilled,
) -> None:
    job = {"job": "inf"}
    p99 = {"kind": "latency", "quantile": "p99", "labels": job}
    report = check(
        backfilled,
        "inf",
        [
            {"name": "max-below", **p99, "max": "50ms"},
            {"name": "max-at", **p99, "max": "2s"},
            {"name": "max-above", **p99, "max": "3s"},
            {"name": "min-below", **p99, "min": "1s"},
            {"name": "min-above", **p99, "min": "3s"},
        ],
    )
    max_below, max_at, max_above, min_below, min_above = report.objectives
    # 70 % of this job's observations lie in 2.5-4 s, beyond the top finite bound of 2 s.
    assert max_below.verdict == Verdict.FAIL
    assert max_below.value == 2.0 and max_below.details["value_bound"] == "above"
    assert "true value is above the highest finite bound 2" in max_below.reason
    assert "> 2" in max_below.reason
    assert max_at.verdict == Verdict.FAIL
    assert max_above.verdict == Verdict.INCONCLUSIVE
    assert "cannot tell" in max_above.reason
    assert min_below.verdict == Verdict.PASS
    assert min_above.verdict == Verdict.INCONCLUSIVE


def test_a_comparison_with_a_side_in_the_inf_bucket(backfilled: Backfilled) -> None:
    job = {"job": "inf"}
    tail = {"kind": "latency", "quantile": "p99", "labels": job}
    head = {"kind": "latency", "quantile": "p10", "labels": job}

    def compare(name: str, left: dict, right: dict, **fields: Any) -> dict[str, Any]:
        comparison = {"name": name, "kind": "comparison", "op": "<=", **fields}
        return {**comparison, "left": left, "right": right}

    report = check(
        backfilled,
        "inf",
        [
            compare("tail-below-head", tail, head, factor=1.1),
            compare("head-below-tail", head, tail, factor=1.1),
            compare("tail-below-tail", tail, tail, factor=2),
            compare("tail-below-head-plus-10s", tail, head, offset="10s"),
            {**compare("head-above-tail", head, tail), "op": ">"},
        ],
    )
    tail_head, head_tail, tail_tail, offset, head_above = report.objectives
    head_s = float(np.quantile(window_values(backfilled, backfilled.cases.simple["inf"]), 0.10))
    # p99 > 2 s while 1.1 x p10 is far below 2 s: the breach is proven.
    assert 1.1 * head_s < 2.0
    assert tail_head.verdict == Verdict.FAIL and tail_head.value == 2.0
    assert head_tail.verdict == Verdict.PASS
    assert head_tail.value == pytest.approx(head_s, rel=QUANTILE_TOLERANCE)
    assert tail_tail.verdict == Verdict.INCONCLUSIVE and "cannot be decided" in tail_tail.reason
    assert offset.verdict == Verdict.INCONCLUSIVE
    assert head_above.verdict == Verdict.FAIL


def test_too_few_requests_is_inconclusive(backfilled: Backfilled) -> None:
    job = {"job": "few"}
    objective = {"kind": "latency", "quantile": "p95", "labels": job, "max": "10s"}
    report = check(
        backfilled,
        "few",
        [{"name": "default", **objective}, {"name": "lowered", **objective, "min_requests": 1}],
        window_s=(0, 600),
    )
    default, lowered = report.objectives
    assert default.verdict == Verdict.INCONCLUSIVE and "min_requests=20" in default.reason
    assert lowered.verdict == Verdict.PASS


def test_a_scrape_gap_is_inconclusive(backfilled: Backfilled) -> None:
    objective = {"kind": "latency", "quantile": "p95", "labels": {"job": "gap"}, "max": "10s"}
    across = only(check(backfilled, "gap", [{"name": "across", **objective}]))
    before = only(check(backfilled, "gap", [{"name": "before", **objective}], window_s=(0, 190)))
    assert across.verdict == Verdict.INCONCLUSIVE and "scrape gap" in across.reason
    assert before.verdict == Verdict.PASS


def test_a_failed_scrape_is_inconclusive(backfilled: Backfilled) -> None:
    objective = {"kind": "latency", "quantile": "p95", "labels": {"job": "down"}, "max": "10s"}
    across = only(check(backfilled, "down", [{"name": "across", **objective}]))
    after = only(check(backfilled, "down", [{"name": "after", **objective}], window_s=(300, 600)))
    assert across.verdict == Verdict.INCONCLUSIVE and "up=0" in across.reason
    assert after.verdict == Verdict.PASS


def test_a_window_under_four_scrape_intervals_is_refused(backfilled: Backfilled) -> None:
    objective = {
        "name": "short",
        "kind": "latency",
        "quantile": "p95",
        "labels": {"job": "slowscrape"},
        "max": "10s",
    }
    with pytest.raises(WindowError, match=r"shorter than 4 scrape intervals of 5s = 20s"):
        check(backfilled, "slowscrape", [objective], window_s=(100, 115))
    # The interval (5 s) is inferred from the spacing of the `up` samples.
    assert only(check(backfilled, "slowscrape", [objective])).verdict == Verdict.PASS


# --- drift and alerts ---


def phase(name: str, start_s: float, end_s: float) -> PhaseRecord:
    return PhaseRecord(
        name=name,
        start_s=start_s,
        end_s=end_s,
        users=1,
        spawn_rate=1.0,
        traffic={"kind": name},
    )


def drift_manifest(t0_s: float, drift_start_offset_s: float = 120) -> RunManifest:
    drift_start_s = t0_s + drift_start_offset_s
    return RunManifest(
        scenario="drift-test",
        target_url="http://127.0.0.1:8000",
        started_s=t0_s,
        ended_s=t0_s + 300,
        phases=[phase("normal", t0_s, drift_start_s), phase("drift", drift_start_s, t0_s + 300)],
    )


def test_drift_already_on_at_the_phase_start_is_inconclusive(backfilled: Backfilled) -> None:
    # The twin of the in-time case below: here the "drift" phase begins 30 s after the signal
    # came on, so nothing proves this phase's drift was detected.
    manifest = drift_manifest(backfilled.t0_s, drift_start_offset_s=DRIFT_ON_OFFSET_S + 30)
    signal = {"above": 0.3, "labels": {"job": "drift"}}

    report = check(
        backfilled,
        "drift",
        [
            {
                "name": "late",
                "kind": "drift_detected",
                "phase": "drift",
                "signal": signal,
                "within": "60s",
            }
        ],
        manifest=manifest,
    )

    (late,) = report.objectives
    assert late.verdict == Verdict.INCONCLUSIVE
    assert "already true when phase drift started" in late.reason


def test_drift_detection_delay_is_measured(backfilled: Backfilled) -> None:
    manifest = drift_manifest(backfilled.t0_s)
    signal = {"above": 0.3, "labels": {"job": "drift"}}
    alert = {"alert": "DatasetDrift", "labels": {"job": "drift"}}
    drift = {"kind": "drift_detected", "phase": "drift"}
    report = check(
        backfilled,
        "drift",
        [
            {"name": "in-time", **drift, "signal": signal, "within": "60s"},
            {"name": "too-slow", **drift, "signal": signal, "within": "10s"},
            {"name": "by-alert", **drift, "signal": alert, "within": "60s"},
            {"name": "never", **drift, "signal": {**signal, "above": 0.9}, "within": "60s"},
            {
                "name": "no-data",
                **drift,
                "signal": {**signal, "metric": "absent_metric"},
                "within": "60s",
            },
        ],
        manifest=manifest,
    )
    in_time, too_slow, by_alert, never, no_data = report.objectives
    expected_s = DRIFT_ON_OFFSET_S - 120
    assert in_time.verdict == Verdict.PASS
    assert in_time.value == pytest.approx(expected_s, abs=1.0)
    assert too_slow.verdict == Verdict.FAIL and too_slow.value == in_time.value
    assert by_alert.value == pytest.approx(ALERT_ON_OFFSET_S - 120, abs=1.0)
    assert never.verdict == Verdict.FAIL and never.value is None
    assert "never became true" in never.reason
    assert no_data.verdict == Verdict.INCONCLUSIVE


def test_no_false_alarm_in_the_normal_phase_only(backfilled: Backfilled) -> None:
    manifest = drift_manifest(backfilled.t0_s)
    signal = {"above": 0.3, "labels": {"job": "drift"}}
    alert = {"alert": "DatasetDrift", "labels": {"job": "drift"}}
    report = check(
        backfilled,
        "drift",
        [
            {"name": "quiet", "kind": "no_false_alarm", "signal": signal, "phases": ["normal"]},
            {"name": "noisy", "kind": "no_false_alarm", "signal": signal, "phases": ["drift"]},
            {
                "name": "alert-quiet",
                "kind": "no_false_alarm",
                "signal": alert,
                "phases": ["normal"],
            },
            {"name": "alert-noisy", "kind": "no_false_alarm", "signal": alert, "phases": ["drift"]},
        ],
        manifest=manifest,
    )
    quiet, noisy, alert_quiet, alert_noisy = report.objectives
    assert quiet.verdict == Verdict.PASS and quiet.value == pytest.approx(0.05)
    assert noisy.verdict == Verdict.FAIL and noisy.value == pytest.approx(0.5)
    assert alert_quiet.verdict == Verdict.PASS
    assert alert_noisy.verdict == Verdict.FAIL


def test_alert_fired_and_not_fired(backfilled: Backfilled) -> None:
    manifest = drift_manifest(backfilled.t0_s)
    alert = {"kind": "alert", "alert": "DatasetDrift", "labels": {"job": "drift"}}
    report = check(
        backfilled,
        "drift",
        [
            {"name": "fired", **alert, "expect": "fired", "window": "phase:drift"},
            {"name": "silent", **alert, "expect": "not_fired", "window": "phase:normal"},
            {"name": "wrongly-silent", **alert, "expect": "not_fired", "window": "phase:drift"},
            {"name": "wrongly-fired", **alert, "expect": "fired", "window": "phase:normal"},
        ],
        manifest=manifest,
    )
    verdicts = [result.verdict for result in report.objectives]
    assert verdicts == [Verdict.PASS, Verdict.PASS, Verdict.FAIL, Verdict.FAIL]


def test_an_alert_whose_rule_is_not_loaded_is_inconclusive(backfilled: Backfilled) -> None:
    manifest = drift_manifest(backfilled.t0_s)
    job = {"job": "drift"}
    alert = {"kind": "alert", "labels": job, "window": "phase:normal"}
    quiet = {"kind": "no_false_alarm", "phases": ["normal"]}
    drift = {"kind": "drift_detected", "phase": "drift", "within": "60s"}
    report = check(
        backfilled,
        "drift",
        [
            {"name": "typo", **alert, "alert": "DatasetDrfit", "expect": "not_fired"},
            {"name": "loaded", **alert, "alert": "DatasetDrift", "expect": "not_fired"},
            {"name": "typo-fired", **alert, "alert": "DatasetDrfit", "expect": "fired"},
            {"name": "quiet-typo", **quiet, "signal": {"alert": "DatasetDrfit", "labels": job}},
            {"name": "quiet-loaded", **quiet, "signal": {"alert": "DatasetDrift", "labels": job}},
            {"name": "drift-typo", **drift, "signal": {"alert": "DatasetDrfit", "labels": job}},
        ],
        manifest=manifest,
    )
    typo, loaded, typo_fired, quiet_typo, quiet_loaded, drift_typo = report.objectives
    for result in (typo, typo_fired, quiet_typo, drift_typo):
        assert result.verdict == Verdict.INCONCLUSIVE, result.name
        assert "no alerting rule named DatasetDrfit is loaded" in result.reason
        assert "loaded alerts: DatasetDrift, LatencyHigh" in result.reason
    assert loaded.verdict == Verdict.PASS and quiet_loaded.verdict == Verdict.PASS


def test_an_unknown_phase_lists_the_phases(backfilled: Backfilled) -> None:
    manifest = drift_manifest(backfilled.t0_s)
    objective = {
        "name": "x",
        "kind": "alert",
        "alert": "A",
        "expect": "fired",
        "window": "phase:drfit",
    }
    with pytest.raises(WindowError, match="no phase 'drfit'; phases: normal, drift"):
        check(backfilled, "drift", [objective], manifest=manifest)


# --- formatting ---


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.0029, "s", "2.9 ms"),
        (0.25, "s", "250.0 ms"),
        (0.9994, "s", "999.4 ms"),
        (1.0, "s", "1.0 s"),
        (2.0, "s", "2.0 s"),
        (9.94, "s", "9.9 s"),
        (20.0, "s", "20 s"),
        (0.015, "ratio", "1.50%"),
        (None, "s", "-"),
    ],
)
def test_seconds_print_as_seconds_from_one_second_on(
    value: float | None, unit: str, text: str
) -> None:
    assert format_value(value, unit) == text


def test_a_drift_delay_and_its_limit_print_in_seconds(backfilled: Backfilled) -> None:
    manifest = drift_manifest(backfilled.t0_s)
    signal = {"above": 0.3, "labels": {"job": "drift"}}
    drift = {"kind": "drift_detected", "phase": "drift", "signal": signal}
    report = check(
        backfilled,
        "drift",
        [{"name": "slow", **drift, "within": "20s"}, {"name": "fast", **drift, "within": "50s"}],
        manifest=manifest,
    )
    slow, fast = report.objectives
    assert (slow.verdict, fast.verdict) == (Verdict.FAIL, Verdict.PASS)
    assert slow.threshold == "<= 20 s" and fast.threshold == "<= 50 s"
    assert format_result_value(slow) == f"{slow.value:.0f} s"


# --- live: a real exporter scraped by a real Prometheus ---


def _wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")


def test_live_quantiles_from_a_scraped_exporter_match_the_raw_samples(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    histogram = Histogram(
        "inference_latency_seconds",
        "Model call latency (test exporter).",
        ["model_version"],
        buckets=latency_buckets_s(),
        registry=registry,
    )
    child = histogram.labels(model_version="v1")
    samples_s = np.random.default_rng(42).lognormal(np.log(0.03), 0.6, 4000)
    port = free_loopback_port()
    exporter, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with PrometheusServer(
            tmp_path / "data", scrape_targets=[f"127.0.0.1:{port}"], scrape_interval_s=1.0
        ) as prometheus:
            client = PrometheusClient(PrometheusSettings(url=prometheus.url))
            scraped = 'count_over_time(up{job="target_service"}[1m])'
            _wait_for(
                lambda: any(s.value >= 3 for s in client.instant(scraped, time.time())),
                30,
                "three scrapes",
            )
            start_s = time.time() - 2.5
            for value in samples_s:
                child.observe(float(value))
            total = "sum(inference_latency_seconds_count)"
            _wait_for(
                lambda: any(s.value == len(samples_s) for s in client.instant(total, time.time())),
                30,
                "a scrape after the observations",
            )
            # A few more scrapes, so the window holds samples on both sides of the jump.
            time.sleep(3.0)
            end_s = time.time()
            exact_p95 = float(np.quantile(samples_s, 0.95))
            objectives = [
                {"name": "p95", "kind": "latency", "quantile": "p95", "max": "2s"},
                {"name": "p99", "kind": "latency", "quantile": "p99", "max": "2s"},
                {"name": "p95-tight", "kind": "latency", "quantile": "p95", "max": exact_p95 * 0.8},
            ]
            sla = parse_sla(
                {"defaults": {"window": {"start": start_s, "end": end_s}}, "objectives": objectives}
            )
            report = run_check(sla, PrometheusSettings(url=prometheus.url))
            client.close()
    finally:
        exporter.shutdown()
        thread.join(timeout=5)

    p95, p99, tight = report.objectives
    assert p95.verdict == Verdict.PASS, p95.reason
    assert p95.value == pytest.approx(exact_p95, rel=QUANTILE_TOLERANCE)
    assert p99.value == pytest.approx(float(np.quantile(samples_s, 0.99)), rel=QUANTILE_TOLERANCE)
    assert tight.verdict == Verdict.FAIL
