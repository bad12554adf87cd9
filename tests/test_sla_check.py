"""The check entry point: exit codes, usage errors, outputs, baselines and the client cross-check.

Runs against a real Prometheus over the backfilled histories of ``sla_backfill``; expected
values come from the raw observations.
"""

from __future__ import annotations

import io
import json
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from rich.console import Console
from sla_backfill import Backfilled, backfill, build_cases, history_start_s
from sla_fake_prometheus import FakePrometheus, vector_body

from driftgate.manifest import ClientStats, PhaseRecord, RequestStats, RunManifest
from driftgate.processes import free_loopback_port
from driftgate.prometheus_server import PrometheusServer
from driftgate.service_process import ReferenceServiceProcess
from sla.check import check_command, exit_code, run_check
from sla.objectives import parse_sla
from sla.prometheus import QUERY_PATH, PrometheusClient, PrometheusSettings
from sla.report import CheckReport
from sla.verdicts import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_USAGE,
    Verdict,
)
from target_service.config import ServiceSettings, VersionFaults
from target_service.dataset import example_record

LAT = {"job": "lat"}


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    history, cases = build_cases(history_start_s(time.time()), np.random.default_rng(7))
    data_dir = tmp_path_factory.mktemp("sla-check") / "data"
    backfill(history, data_dir)
    server = PrometheusServer(data_dir)
    server.start()
    try:
        yield Backfilled(server.url, cases)
    finally:
        server.stop()


def sla_data(env: Backfilled, objectives: list[dict[str, Any]], job: str = "lat") -> dict:
    window = {"start": env.t0_s + 100, "end": env.t0_s + 400}
    return {"defaults": {"scrape_job": job, "window": window}, "objectives": objectives}


def write_sla(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def p95(name: str, max_latency: Any, version: str = "v1", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "latency",
        "quantile": "p95",
        "model_version": version,
        "labels": LAT,
        "max": max_latency,
        **fields,
    }


MISSING = p95("missing", "1s", version="v9")


def run_command(tmp_path: Path, url: str, sla: dict, **options: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_command(
        write_sla(tmp_path, sla),
        prometheus_url=url,
        console=Console(file=out, width=200),
        error_console=Console(file=err, width=200),
        **options,
    )
    return code, out.getvalue(), err.getvalue()


# --- exit codes ---


@pytest.mark.parametrize(
    ("objectives", "expected"),
    [
        ([p95("ok", "2s")], EXIT_OK),
        ([p95("ok", "2s"), p95("warned", "1ms", severity="warn")], EXIT_OK),
        ([p95("ok", "2s"), p95("broken", "1ms")], EXIT_FAIL),
        ([p95("ok", "2s"), MISSING], EXIT_INCONCLUSIVE),
        # A measured regression outranks an objective that could not be measured.
        ([p95("broken", "1ms"), MISSING], EXIT_FAIL),
    ],
)
def test_exit_codes_follow_the_verdicts(
    backfilled: Backfilled, tmp_path: Path, objectives: list[dict], expected: int
) -> None:
    code, out, err = run_command(tmp_path, backfilled.url, sla_data(backfilled, objectives))
    assert code == expected, out + err
    assert err == ""
    for objective in objectives:
        assert objective["name"] in out


def test_a_warn_only_check_reports_warn_and_exits_zero(backfilled: Backfilled) -> None:
    sla = parse_sla(sla_data(backfilled, [p95("warned", "1ms", severity="warn")]))
    report = run_check(sla, PrometheusSettings(url=backfilled.url))
    assert report.verdict == Verdict.WARN
    assert exit_code(report) == EXIT_OK


@pytest.mark.parametrize(
    ("sla", "message"),
    [
        ({"objectives": [{"name": "x", "kind": "latancy"}]}, "expected tags: 'latency'"),
        ({"objectives": [p95("x", "1s") | {"window": "phase:drift"}]}, "needs a run manifest"),
        (
            {
                "defaults": {"scrape_job": "lat", "scrape_interval_s": "1s"},
                "objectives": [p95("x", "1s") | {"window": "2s"}],
            },
            "shorter than 4 scrape intervals",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    backfilled: Backfilled, tmp_path: Path, sla: dict, message: str
) -> None:
    code, out, err = run_command(tmp_path, backfilled.url, sla)
    assert code == EXIT_USAGE
    assert message in err
    assert err.strip().count("\n") == 0 and err.startswith("error: ")
    assert out == ""


def test_check_reads_the_objectives_of_a_scenario_file(
    backfilled: Backfilled, tmp_path: Path
) -> None:
    window = {"start": backfilled.t0_s + 100, "end": backfilled.t0_s + 400}
    objectives = [p95("ok", "2s", window=window), p95("broken", "1ms", window=window)]
    scenario = yaml.safe_load(
        (Path(__file__).parent.parent / "scenarios" / "smoke.yaml").read_text()
    )
    scenario["objectives"] = objectives
    code, out, err = run_command(tmp_path, backfilled.url, scenario, out_dir=tmp_path / "out")
    assert code == EXIT_FAIL and err == "", out + err
    report = CheckReport.load(tmp_path / "out" / "report.json")
    verdicts = {result.name: result.verdict for result in report.objectives}
    assert verdicts == {"ok": Verdict.PASS, "broken": Verdict.FAIL}

    # The same mapping without the scenario's own sections is an SLA file with a stray key.
    code, _, err = run_command(tmp_path, backfilled.url, {"name": "x", "objectives": objectives})
    assert code == EXIT_USAGE and "unknown field 'name'" in err


def test_a_missing_url_is_a_usage_error(tmp_path: Path) -> None:
    code = check_command(
        write_sla(tmp_path, {"objectives": [p95("x", "1s")]}),
        error_console=Console(file=io.StringIO()),
    )
    assert code == EXIT_USAGE


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://[::1", {}, "url: expected http://HOST:PORT or https://HOST[:PORT][/PATH] "
         "(Invalid IPv6 URL), got 'http://[::1'"),
        ("http://127.0.0.1:99999", {}, "(Port out of range 0-65535), got 'http://127.0.0.1:99999'"),
        ("http://127.0.0.1:0", {}, "the port must be 1-65535, got 'http://127.0.0.1:0'"),
        ("http://:9090", {}, "the host is missing, got 'http://:9090'"),
        ("127.0.0.1:9090", {}, "the scheme must be http or https, got '127.0.0.1:9090'"),
        ("http://127.0.0.1:9090", {"timeout_s": float("nan")},
         "prometheus settings: timeout_s: must be a finite number of seconds"),
        ("http://127.0.0.1:9090", {"ca_file": Path("/nonexistent/ca.pem")},
         "prometheus settings: ca_file: no such file '/nonexistent/ca.pem'"),
    ],
)  # fmt: skip
def test_a_bad_prometheus_setting_is_a_usage_error_naming_the_value(
    tmp_path: Path, url: str, options: dict[str, Any], message: str
) -> None:
    code, out, err = run_command(tmp_path, url, {"objectives": [p95("x", "1s")]}, **options)
    assert code == EXIT_USAGE and out == ""
    assert message in err
    assert err.strip().count("\n") == 0 and err.startswith("error: prometheus settings: ")
    # The field is named once: no "url: url:" or "prometheus: ca_file:".
    assert ": url: url:" not in err and "prometheus: " not in err.removeprefix("error: ")


def test_an_ipv6_loopback_url_with_a_path_is_accepted(tmp_path: Path) -> None:
    url = f"http://[::1]:{free_loopback_port()}/prometheus/"
    code, out, err = run_command(
        tmp_path, url, {"objectives": [p95("x", "1s")], "defaults": {"window": "5m"}}, retries=0
    )
    # Nobody listens there: inconclusive, not a usage error.
    assert code == EXIT_INCONCLUSIVE and err == "", err
    assert "cannot reach Prometheus at http://[::1]" in out


def test_unreachable_prometheus_makes_every_objective_inconclusive(
    backfilled: Backfilled, tmp_path: Path
) -> None:
    nobody = f"http://127.0.0.1:{free_loopback_port()}"
    code, _, _ = run_command(
        tmp_path,
        nobody,
        sla_data(backfilled, [p95("a", "2s"), p95("b", "1ms")]),
        retries=0,
        timeout_s=2.0,
        out_dir=tmp_path / "out",
    )
    assert code == EXIT_INCONCLUSIVE
    report = CheckReport.load(tmp_path / "out" / "report.json")
    for result in report.objectives:
        assert result.verdict == Verdict.INCONCLUSIVE
        assert "cannot reach Prometheus" in result.reason
        assert result.threshold.startswith("<= ") and result.unit == "s"


def test_malformed_answers_and_a_missing_rules_api_are_inconclusive(tmp_path: Path) -> None:
    def promql(name: str, query: str) -> dict[str, Any]:
        return {"name": name, "kind": "promql", "query": query, "max": 1}

    with FakePrometheus() as fake:
        fake.answer(QUERY_PATH, vector_body("1"), query="vector(1)")
        fake.answer(QUERY_PATH, vector_body("0.5"), query="good")
        string = {"resultType": "string", "result": [1, "hello"]}
        fake.answer(QUERY_PATH, {"status": "success", "data": string}, query='"hello"')
        null = {"resultType": "vector", "result": None}
        fake.answer(QUERY_PATH, {"status": "success", "data": null}, query="null_result")
        bad_time = {"resultType": "vector", "result": [{"metric": {}, "value": ["x", "1"]}]}
        fake.answer(QUERY_PATH, {"status": "success", "data": bad_time}, query="bad_time")
        # Every other query (ALERTS) finds nothing.
        fake.answer(
            QUERY_PATH, {"status": "success", "data": {"resultType": "vector", "result": []}}
        )
        sla = {
            "defaults": {"scrape_job": None, "window": {"start": 1000, "end": 1600}},
            "objectives": [
                promql("hello", '"hello"'),
                promql("null", "null_result"),
                promql("bad-time", "bad_time"),
                promql("good", "good"),
                {"name": "quiet", "kind": "alert", "alert": "DriftAlert", "expect": "not_fired"},
            ],
        }
        code, out, err = run_command(tmp_path, fake.url, sla, out_dir=tmp_path / "out")

    assert code == EXIT_INCONCLUSIVE and err == "", out
    report = CheckReport.load(tmp_path / "out" / "report.json")
    hello, null_result, bad_time, good, quiet = report.objectives
    assert "returned a string result, not a vector or scalar" in hello.reason
    assert "expected a list, got null" in null_result.reason
    assert 'time "x" is not a number' in bad_time.reason
    for result in (hello, null_result, bad_time):
        assert result.verdict == Verdict.INCONCLUSIVE and "malformed result" in result.reason
    assert good.verdict == Verdict.PASS and good.value == 0.5
    assert quiet.verdict == Verdict.INCONCLUSIVE
    assert "cannot verify that an alerting rule DriftAlert is loaded" in quiet.reason
    assert "no rules API (HTTP 404" in quiet.reason


# --- outputs ---


def test_outputs_json_junit_and_markdown(backfilled: Backfilled, tmp_path: Path) -> None:
    objectives = [
        p95("ok", "2s"),
        p95("warned", "1ms", severity="warn"),
        p95("broken", "1ms"),
        MISSING,
    ]
    out_dir = tmp_path / "out"
    code, _, _ = run_command(
        tmp_path, backfilled.url, sla_data(backfilled, objectives), out_dir=out_dir
    )
    assert code == EXIT_FAIL

    report = CheckReport.load(out_dir / "report.json")
    raw = json.loads((out_dir / "report.json").read_text())
    assert raw["schema_version"] == 1 and raw["exit_code"] == EXIT_FAIL
    assert report.counts == {"pass": 1, "warn": 1, "fail": 1, "inconclusive": 1}
    assert report.sla_source is not None and report.sla_source.endswith("sla.yaml")
    broken = next(result for result in report.objectives if result.name == "broken")
    assert broken.queries and broken.threshold == "<= 1.0 ms"

    suite = ElementTree.parse(out_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"ok", "warned", "broken", "missing"}
    assert cases["broken"].find("failure") is not None
    assert cases["missing"].find("error") is not None
    assert cases["ok"].find("failure") is None and cases["ok"].find("error") is None
    warned_out = cases["warned"].find("system-out")
    assert warned_out is not None and (warned_out.text or "").startswith("WARN")
    assert cases["warned"].find("failure") is None

    markdown = (out_dir / "report.md").read_text()
    assert "**FAIL**" in markdown
    for name in ("ok", "warned", "broken", "missing"):
        assert f"| {name} |" in markdown


# --- baseline ---


def test_baseline_comparison_passes_on_the_same_run_and_fails_on_a_slower_one(
    backfilled: Backfilled, tmp_path: Path
) -> None:
    cases = backfilled.cases
    settings = PrometheusSettings(url=backfilled.url)
    baseline_dir = tmp_path / "baseline"
    run_check(parse_sla(sla_data(backfilled, [p95("p95", "2s")])), settings, out_dir=baseline_dir)
    baseline = baseline_dir / "report.json"

    regression = {"name": "p95-vs-baseline", "kind": "baseline", "objective": "p95"}
    regression["max_regression"] = "10%"
    same = run_check(
        parse_sla(sla_data(backfilled, [p95("p95", "2s"), regression])),
        settings,
        baseline_report=baseline,
    )
    # The "new" run measures the slower version under the same objective name.
    slower = run_check(
        parse_sla(sla_data(backfilled, [p95("p95", "2s", version="v2"), regression])),
        settings,
        baseline_report=baseline,
    )
    missing = run_check(parse_sla(sla_data(backfilled, [p95("p95", "2s"), regression])), settings)

    window = (backfilled.t0_s + 100, backfilled.t0_s + 400)
    exact = {v: float(np.quantile(cases.latency[v].between(*window), 0.95)) for v in ("v1", "v2")}
    assert exact["v2"] > 1.1 * exact["v1"]

    assert same.objectives[1].verdict == Verdict.PASS
    assert same.objectives[1].details["baseline"] == pytest.approx(same.objectives[0].value)
    assert slower.objectives[1].verdict == Verdict.FAIL
    assert slower.objectives[1].max == pytest.approx(1.1 * exact["v1"], rel=0.1)
    assert exit_code(slower) == EXIT_FAIL
    assert missing.objectives[1].verdict == Verdict.INCONCLUSIVE
    assert "no baseline report" in missing.objectives[1].reason


REGRESSION = {
    "name": "vs-baseline",
    "kind": "baseline",
    "objective": "p95",
    "max_regression": "10%",
}


def _baseline_with(tmp_path: Path, backfilled: Backfilled, **changes: Any) -> Path:
    """A real baseline report whose objective ``p95`` has ``changes`` applied."""
    settings = PrometheusSettings(url=backfilled.url)
    out_dir = tmp_path / "baseline"
    run_check(parse_sla(sla_data(backfilled, [p95("p95", "2s")])), settings, out_dir=out_dir)
    path = out_dir / "report.json"
    raw = json.loads(path.read_text())
    raw["objectives"][0].update(changes)
    # NaN and infinities are written the way Python's json module writes them.
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "objective 'p95' has value nan; a baseline value must be a finite"),
        (float("inf"), "objective 'p95' has value inf; a baseline value must be a finite"),
        (-0.5, "objective 'p95' has value -0.5; a latency value cannot be negative"),
    ],
)
def test_an_impossible_baseline_value_is_a_usage_error(
    backfilled: Backfilled, tmp_path: Path, value: float, message: str
) -> None:
    baseline = _baseline_with(tmp_path, backfilled, value=value)
    code, out, err = run_command(
        tmp_path,
        backfilled.url,
        sla_data(backfilled, [p95("p95", "2s"), REGRESSION]),
        baseline_path=baseline,
    )
    assert code == EXIT_USAGE, out
    assert message in err and str(baseline) in err
    assert err.strip().count("\n") == 0


def test_a_negative_promql_baseline_value_is_accepted(
    backfilled: Backfilled, tmp_path: Path
) -> None:
    baseline = _baseline_with(tmp_path, backfilled, value=-0.5, kind="promql")
    code, out, err = run_command(
        tmp_path,
        backfilled.url,
        sla_data(backfilled, [p95("p95", "2s"), REGRESSION]),
        baseline_path=baseline,
    )
    assert code == EXIT_FAIL and err == "", out


def test_an_inconclusive_or_failed_baseline_objective(
    backfilled: Backfilled, tmp_path: Path
) -> None:
    settings = PrometheusSettings(url=backfilled.url)
    sla = parse_sla(sla_data(backfilled, [p95("p95", "2s"), REGRESSION]))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    unusable = _baseline_with(tmp_path / "a", backfilled, verdict="inconclusive", reason="gap")
    failed = _baseline_with(tmp_path / "b", backfilled, verdict="fail")
    usable = _baseline_with(tmp_path / "c", backfilled)

    inconclusive = run_check(sla, settings, baseline_report=unusable).objectives[1]
    after_fail = run_check(sla, settings, baseline_report=failed).objectives[1]
    clean = run_check(sla, settings, baseline_report=usable).objectives[1]

    assert inconclusive.verdict == Verdict.INCONCLUSIVE
    assert "no usable baseline value for objective p95" in inconclusive.reason
    assert "inconclusive in the baseline run (gap)" in inconclusive.reason
    assert after_fail.verdict == Verdict.PASS
    assert after_fail.reason.endswith("; baseline run failed this objective")
    assert clean.verdict == Verdict.PASS and "baseline run failed" not in clean.reason
    # The limit is shown in the objective's unit, like the values beside it.
    earlier_s = clean.details["baseline"]
    assert isinstance(earlier_s, float) and earlier_s < 0.9
    assert clean.threshold == f"<= {earlier_s * 1.1 * 1000:.1f} ms (baseline + 10%)"


def test_a_bad_baseline_file_is_a_usage_error(backfilled: Backfilled, tmp_path: Path) -> None:
    (tmp_path / "not-a-report.json").write_text('{"hello": 1}')
    code, _, err = run_command(
        tmp_path,
        backfilled.url,
        sla_data(backfilled, [p95("p95", "2s")]),
        baseline_path=tmp_path / "not-a-report.json",
    )
    assert code == EXIT_USAGE and "not a driftgate report.json" in err


# --- client/server cross-check ---


def test_client_percentiles_are_shown_beside_the_server_ones(backfilled: Backfilled) -> None:
    cases = backfilled.cases
    assert cases.http_ok is not None and cases.http_error is not None
    start_s, end_s = backfilled.t0_s + 100, backfilled.t0_s + 400
    server = np.concatenate(
        [cases.http_ok.between(start_s, end_s), cases.http_error.between(start_s, end_s)]
    )
    server_p95 = float(np.quantile(server, 0.95))

    def row(name: str, client_p95_s: float) -> RequestStats:
        return RequestStats(
            name=name,
            method="POST",
            requests=len(server),
            failures=0,
            requests_per_s=10.0,
            p50_s=float(np.median(server)),
            p95_s=client_p95_s,
            p99_s=client_p95_s * 1.5,
        )

    manifest = RunManifest(
        scenario="cross-check",
        target_url="http://127.0.0.1:8000",
        started_s=start_s,
        ended_s=end_s,
        phases=[
            PhaseRecord(
                name="steady",
                start_s=start_s,
                end_s=end_s,
                users=1,
                spawn_rate=1.0,
                traffic={"kind": "normal"},
            )
        ],
        client_stats=ClientStats(
            total_requests=len(server),
            total_failures=0,
            # Same route twice: once as measured, once as a loaded client would see it.
            requests=[row("/predict", server_p95 * 1.05), row("/predict", server_p95 * 3 + 0.01)],
        ),
    )
    report = run_check(
        parse_sla(sla_data(backfilled, [p95("p95", "2s")])),
        PrometheusSettings(url=backfilled.url),
        manifest=manifest,
    )
    close, far = report.cross_check
    assert close.server_p95_s == pytest.approx(server_p95, rel=0.1)
    assert close.note is None
    assert far.note is not None and "queueing" in far.note
    assert far.note in report.notes


# --- the real service with injected latency ---


def _drive(url: str, version: str, requests: int) -> None:
    record = example_record()
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for _ in range(requests):
            answer = client.post("/predict", json=record, headers={"X-Model-Version": version})
            answer.raise_for_status()


def _wait_for_scrapes(url: str, scrapes: int, timeout_s: float = 30.0) -> None:
    """Prometheus applies new targets on a 5-second tick: wait until they are scraped."""
    client = PrometheusClient(PrometheusSettings(url=url))
    query = 'count_over_time(up{job="target_service"}[1m])'
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if any(sample.value >= scrapes for sample in client.instant(query, time.time())):
                return
            time.sleep(0.2)
    finally:
        client.close()
    raise AssertionError(f"Prometheus did not scrape the service {scrapes} times in {timeout_s}s")


@pytest.mark.e2e
def test_injected_latency_on_the_real_service_fails_the_latency_gate(tmp_path: Path) -> None:
    extra_latency_s = 0.3
    settings = ServiceSettings(faults={"v2": VersionFaults(extra_latency_s=extra_latency_s)})
    service = ReferenceServiceProcess(settings, tmp_path)
    service.start()
    try:
        target = service.url.removeprefix("http://")
        with PrometheusServer(tmp_path / "prometheus" / "data", scrape_targets=[target]) as prom:
            _wait_for_scrapes(prom.url, 3)
            start_s = time.time() - 2.0
            drivers = [
                threading.Thread(target=_drive, args=(service.url, version, 25))
                for version in ("v1", "v2")
            ]
            for driver in drivers:
                driver.start()
            for driver in drivers:
                driver.join(timeout=60)
            time.sleep(3.0)
            end_s = time.time()

            objectives = [
                {"name": "p95-v1", "kind": "latency", "quantile": "p95", "model_version": "v1"},
                {"name": "p95-v2", "kind": "latency", "quantile": "p95", "model_version": "v2"},
            ]
            for objective in objectives:
                objective["max"] = "250ms"
            objectives.append(
                {
                    "name": "challenger-p95",
                    "kind": "comparison",
                    "left": {"kind": "latency", "quantile": "p95", "model_version": "v2"},
                    "op": "<=",
                    "right": {"kind": "latency", "quantile": "p95", "model_version": "v1"},
                    "factor": 1.1,
                }
            )
            sla = parse_sla(
                {"defaults": {"window": {"start": start_s, "end": end_s}}, "objectives": objectives}
            )
            report = run_check(sla, PrometheusSettings(url=prom.url))
    finally:
        service.stop()

    v1, v2, challenger = report.objectives
    assert v1.verdict == Verdict.PASS, v1.reason
    assert v2.verdict == Verdict.FAIL, v2.reason
    assert v2.value is not None and v2.value >= extra_latency_s * 0.9
    assert challenger.verdict == Verdict.FAIL
    assert exit_code(report) == EXIT_FAIL
