"""Report renderings: JUnit XML parses, Markdown escapes, the table prints, JSON round-trips."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from rich.console import Console

from sla.errors import BaselineError
from sla.report import CheckReport, count_verdicts, junit_xml, markdown, render_table, write_outputs
from sla.verdicts import ObjectiveResult, Verdict, exit_code_for, overall_verdict

AWKWARD = 'p95 <= 250 ms & "quoted" | piped'


def result(name: str, verdict: Verdict, severity: str = "fail") -> ObjectiveResult:
    return ObjectiveResult(
        name=name,
        kind="latency",
        severity=severity,
        verdict=verdict,
        value=0.3 if verdict != Verdict.INCONCLUSIVE else None,
        unit="s",
        threshold="<= 250.0 ms",
        max=0.25,
        reason=AWKWARD,
        queries=['histogram_quantile(0.95, sum by (le) (increase(x_bucket{a="b"}[60s])))'],
    )


def report() -> CheckReport:
    results = [
        result("passes", Verdict.PASS),
        result("warns", Verdict.WARN, "warn"),
        result("fails", Verdict.FAIL),
        result("unknown", Verdict.INCONCLUSIVE),
    ]
    verdict = overall_verdict(results)
    return CheckReport(
        generated_at_s=0.0,
        prometheus_url="http://127.0.0.1:9090",
        sla_source="sla.yaml",
        verdict=verdict,
        exit_code=exit_code_for(verdict),
        counts=count_verdicts(results),
        objectives=results,
    )


def test_junit_has_one_case_per_objective_and_escapes_text() -> None:
    root = ElementTree.fromstring(junit_xml(report()))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failure = cases["fails"].find("failure")
    assert failure is not None and failure.get("message") == AWKWARD
    assert 'x_bucket{a="b"}' in (failure.text or "")
    assert cases["unknown"].find("error") is not None
    note = cases["warns"].find("system-out")
    assert note is not None and (note.text or "").startswith("WARN")
    assert len(cases["passes"]) == 1 and cases["passes"][0].tag == "system-out"


def test_markdown_escapes_pipes_and_lists_the_queries() -> None:
    text = markdown(report())
    assert "**FAIL** (1 pass, 1 warn, 1 fail, 1 inconclusive)" in text
    assert 'p95 <= 250 ms & "quoted" \\| piped' in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 4
    assert "histogram_quantile" in text


def test_table_lists_every_objective() -> None:
    out = io.StringIO()
    render_table(report(), Console(file=out, width=250))
    printed = out.getvalue()
    for name in ("passes", "warns", "fails", "unknown"):
        assert name in printed
    assert "SLA check: FAIL" in printed and "300.0 ms" in printed


def test_json_round_trips_and_other_schemas_are_refused(tmp_path: Path) -> None:
    paths = write_outputs(report(), tmp_path)
    loaded = CheckReport.load(paths["json"])
    assert loaded == report().model_copy(update={"generated_at_s": loaded.generated_at_s})
    assert loaded.values_by_name()["fails"] == pytest.approx(0.3)

    future = report().model_copy(update={"schema_version": 99})
    (tmp_path / "future.json").write_text(future.model_dump_json())
    with pytest.raises(BaselineError, match="schema_version 99 is not supported; supported: 1"):
        CheckReport.load(tmp_path / "future.json")
    with pytest.raises(BaselineError, match="cannot read"):
        CheckReport.load(tmp_path / "absent.json")
