"""The check's report: the model behind report.json, and its renderings.

Four renderings of one ``CheckReport``: a terminal table (rich), ``report.json`` (this
model, versioned by ``schema_version``; documented in docs/sla.md), ``junit.xml`` (one
testcase per objective: fail -> <failure>, inconclusive -> <error>, warn -> a passing case
with a <system-out> note) and ``report.md`` (for a pull-request comment).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.table import Table

from sla.errors import BaselineError
from sla.evaluate import format_result_value, format_value
from sla.verdicts import ObjectiveResult, Verdict

REPORT_SCHEMA_VERSION = 1
REPORT_JSON = "report.json"
JUNIT_XML = "junit.xml"
REPORT_MD = "report.md"
JUNIT_SUITE = "driftgate-sla"
# The full explanation of a client/server gap is long; tables point to it in the notes.
GAP_MARK = "large gap: see note"

VERDICT_STYLES: dict[Verdict, str] = {
    Verdict.PASS: "green",
    Verdict.WARN: "yellow",
    Verdict.FAIL: "bold red",
    Verdict.INCONCLUSIVE: "magenta",
}


class RunInfo(BaseModel):
    """The load run the check looked at, from its manifest."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    started_s: float
    ended_s: float
    completed: bool


class CrossCheckRow(BaseModel):
    """Client-side (Locust) against server-side (Prometheus) latency for one route."""

    model_config = ConfigDict(extra="forbid")

    route: str
    method: str
    requests: int
    client_p50_s: float | None
    client_p95_s: float | None
    client_p99_s: float | None
    server_p50_s: float | None
    server_p95_s: float | None
    server_p99_s: float | None
    note: str | None = Field(None, description="why the two sides disagree, when they do")
    queries: list[str] = Field(default_factory=list)


class CheckReport(BaseModel):
    """Everything one ``driftgate check`` found; serialised as report.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = REPORT_SCHEMA_VERSION
    generated_at_s: float = Field(description="UTC epoch seconds when the check ran")
    prometheus_url: str
    sla_source: str | None = Field(description="the SLA file, or null for objectives in code")
    run: RunInfo | None = None
    baseline_report: str | None = None
    verdict: Verdict
    exit_code: int
    counts: dict[str, int] = Field(description="objectives per verdict")
    objectives: list[ObjectiveResult]
    cross_check: list[CrossCheckRow] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> CheckReport:
        """Read a report.json (e.g. a baseline); BaselineError if it is not one of ours."""
        try:
            text = path.read_text()
        except OSError as error:
            raise BaselineError(
                f"{path}: cannot read the baseline report: {error.strerror}"
            ) from None
        try:
            report = cls.model_validate_json(text)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(top level)"
            raise BaselineError(
                f"{path}: not a driftgate report.json: {where}: {first['msg']}"
            ) from None
        if report.schema_version != REPORT_SCHEMA_VERSION:
            raise BaselineError(
                f"{path}: report schema_version {report.schema_version} is not supported; "
                f"supported: {REPORT_SCHEMA_VERSION}"
            )
        return report

    def values_by_name(self) -> dict[str, float | None]:
        return {result.name: result.value for result in self.objectives}

    def results_by_name(self) -> dict[str, ObjectiveResult]:
        return {result.name: result for result in self.objectives}


def count_verdicts(results: list[ObjectiveResult]) -> dict[str, int]:
    return {verdict.value: sum(r.verdict == verdict for r in results) for verdict in Verdict}


# --- terminal ---


def render_table(report: CheckReport, console: Console) -> None:
    """Print the objectives (and the client/server cross-check) as tables."""
    table = Table(title=f"SLA check: {report.verdict.value.upper()}", title_justify="left")
    for column in ("objective", "kind", "verdict", "value", "threshold", "reason"):
        table.add_column(column, overflow="fold")
    for result in report.objectives:
        style = VERDICT_STYLES[result.verdict]
        table.add_row(
            result.name,
            result.kind,
            f"[{style}]{result.verdict.value}[/]",
            format_result_value(result),
            result.threshold,
            result.reason,
        )
    console.print(table)

    if report.cross_check:
        console.print(_cross_check_table(report.cross_check))
    for note in report.notes:
        console.print(f"note: {note}", markup=False)


def _cross_check_table(rows: list[CrossCheckRow]) -> Table:
    table = Table(title="client (Locust) vs server (Prometheus) latency", title_justify="left")
    for column in ("route", "requests", "p50 c/s", "p95 c/s", "p99 c/s", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            f"{row.method} {row.route}",
            str(row.requests),
            _pair(row.client_p50_s, row.server_p50_s),
            _pair(row.client_p95_s, row.server_p95_s),
            _pair(row.client_p99_s, row.server_p99_s),
            GAP_MARK if row.note else "",
        )
    return table


def _pair(client_s: float | None, server_s: float | None) -> str:
    return f"{format_value(client_s, 's')} / {format_value(server_s, 's')}"


# --- JUnit XML ---


def junit_xml(report: CheckReport) -> str:
    """One testcase per objective: fail -> failure, inconclusive -> error, warn -> a note."""
    failures = sum(result.verdict == Verdict.FAIL for result in report.objectives)
    errors = sum(result.verdict == Verdict.INCONCLUSIVE for result in report.objectives)
    suites = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        {
            "name": JUNIT_SUITE,
            "tests": str(len(report.objectives)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": "0",
        },
    )
    for result in report.objectives:
        _junit_case(suite, result)
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _junit_case(suite: ElementTree.Element, result: ObjectiveResult) -> None:
    case = ElementTree.SubElement(
        suite, "testcase", {"classname": f"{JUNIT_SUITE}.{result.kind}", "name": result.name}
    )
    body = "\n".join(
        [
            f"value: {format_result_value(result)}",
            f"threshold: {result.threshold}",
            *(f"query: {query}" for query in result.queries),
        ]
    )
    if result.verdict == Verdict.FAIL:
        failure = ElementTree.SubElement(
            case, "failure", {"message": result.reason, "type": "fail"}
        )
        failure.text = body
    elif result.verdict == Verdict.INCONCLUSIVE:
        error = ElementTree.SubElement(
            case, "error", {"message": result.reason, "type": "inconclusive"}
        )
        error.text = body
    else:
        out = ElementTree.SubElement(case, "system-out")
        prefix = "WARN (severity warn, not gating): " if result.verdict == Verdict.WARN else ""
        out.text = f"{prefix}{result.reason}\n{body}"


# --- Markdown ---


def markdown(report: CheckReport) -> str:
    """A pull-request comment: verdict, one row per objective, cross-check, queries."""
    counts = ", ".join(f"{count} {verdict}" for verdict, count in report.counts.items() if count)
    lines = [
        f"### driftgate SLA check: **{report.verdict.value.upper()}** ({counts})",
        "",
    ]
    if report.run is not None:
        lines += [f"Scenario `{report.run.scenario}`; Prometheus `{report.prometheus_url}`.", ""]
    lines += [
        "| objective | verdict | value | threshold | reason |",
        "|---|---|---|---|---|",
    ]
    for result in report.objectives:
        cells = [
            result.name,
            f"**{result.verdict.value}**",
            format_result_value(result),
            result.threshold,
            result.reason,
        ]
        lines.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")

    if report.cross_check:
        lines += [
            "",
            "Client (Locust) vs server (Prometheus) latency:",
            "",
            "| route | p50 client / server | p95 client / server | p99 client / server | note |",
            "|---|---|---|---|---|",
        ]
        for row in report.cross_check:
            cells = [
                f"{row.method} {row.route}",
                _pair(row.client_p50_s, row.server_p50_s),
                _pair(row.client_p95_s, row.server_p95_s),
                _pair(row.client_p99_s, row.server_p99_s),
                GAP_MARK if row.note else "",
            ]
            lines.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")

    if report.notes:
        lines += ["", *(f"- {note}" for note in report.notes)]
    lines += ["", "<details><summary>PromQL</summary>", ""]
    for result in report.objectives:
        lines.append(f"- `{result.name}`:")
        lines += [f"  - `{query}`" for query in result.queries]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- files ---


def write_outputs(report: CheckReport, out_dir: Path) -> dict[str, Path]:
    """Write report.json, junit.xml and report.md into ``out_dir``; their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / REPORT_JSON,
        "junit": out_dir / JUNIT_XML,
        "markdown": out_dir / REPORT_MD,
    }
    paths["json"].write_text(report.model_dump_json(indent=2) + "\n")
    paths["junit"].write_text(junit_xml(report))
    paths["markdown"].write_text(markdown(report))
    return paths
