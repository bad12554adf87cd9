"""report.html: one self-contained page (figures embedded as PNG data) for a person to read.

The verdicts come first, then the figures, then how long each stage took. Nothing on the
page is fetched from the network, so it opens the same from a CI artefact store or a laptop.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from driftgate.plots import Figure

VERDICT_COLOURS = {
    "pass": "#1a7f37",
    "warn": "#9a6700",
    "fail": "#cf222e",
    "inconclusive": "#6e40c9",
}

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em;
       color: #1f2328; max-width: 1100px; }
h1 { margin-bottom: 0.2em; }
.summary { font-size: 1.2em; margin: 0.5em 0 1.5em 0; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.35em 0.7em; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
.verdict { font-weight: bold; text-transform: uppercase; }
code { font-size: 0.85em; background: #f6f8fa; padding: 0.1em 0.3em; }
details summary { cursor: pointer; color: #0969da; }
img { max-width: 100%; border: 1px solid #d0d7de; margin: 0.5em 0 1.5em 0; }
.note { color: #57606a; font-size: 0.9em; }
"""


@dataclass(frozen=True)
class VerdictRow:
    """One objective's outcome as the page shows it."""

    name: str
    verdict: str
    measured: str
    threshold: str
    reason: str
    promql: str


def _verdict_cell(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#1f2328")
    return f'<td class="verdict" style="color:{colour}">{escape(verdict)}</td>'


def _verdicts_table(rows: Sequence[VerdictRow]) -> str:
    if not rows:
        return "<p>No objectives were evaluated.</p>"
    body = []
    for row in rows:
        body.append(
            "<tr>"
            f"<td>{escape(row.name)}</td>{_verdict_cell(row.verdict)}"
            f"<td>{escape(row.measured)}</td><td>{escape(row.threshold)}</td>"
            f"<td>{escape(row.reason)}"
            f"<details><summary>PromQL</summary><code>{escape(row.promql)}</code></details></td>"
            "</tr>"
        )
    header = "<tr><th>objective</th><th>verdict</th><th>measured</th><th>threshold</th>"
    header += "<th>why</th></tr>"
    return f"<table>{header}{''.join(body)}</table>"


@dataclass(frozen=True)
class CrossCheckLine:
    """Client-side (Locust) against server-side (Prometheus) latency of one route."""

    route: str
    requests: int
    client_ms: tuple[float | None, float | None, float | None]
    server_ms: tuple[float | None, float | None, float | None]
    note: str | None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cross_check_table(lines: Sequence[CrossCheckLine]) -> str:
    if not lines:
        return ""
    header = (
        "<tr><th>route</th><th>requests</th><th>p50 client / server (ms)</th>"
        "<th>p95 client / server (ms)</th><th>p99 client / server (ms)</th><th>note</th></tr>"
    )
    body = "".join(
        f"<tr><td>{escape(line.route)}</td><td>{line.requests}</td>"
        + "".join(
            f"<td>{_ms(client)} / {_ms(server)}</td>"
            for client, server in zip(line.client_ms, line.server_ms, strict=True)
        )
        + f"<td>{escape(line.note or '')}</td></tr>"
        for line in lines
    )
    return (
        "<h2>Client against server latency</h2><p class='note'>Locust's client-side "
        "percentiles (rounded by Locust, and including the network and the load generator's "
        "own delays) beside Prometheus's server-side histograms; only the server side gates."
        f"</p><table>{header}{body}</table>"
    )


def _figure_html(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    title = escape(figure.title)
    return f'<h2>{title}</h2><img alt="{title}" src="data:image/png;base64,{data}">'


def _stages_table(stage_durations_s: dict[str, float]) -> str:
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{seconds:.1f}</td></tr>"
        for name, seconds in stage_durations_s.items()
    )
    total = sum(stage_durations_s.values())
    return (
        f"<table><tr><th>stage</th><th>seconds</th></tr>{rows}"
        f"<tr><th>total</th><th>{total:.1f}</th></tr></table>"
    )


def render_report(
    title: str,
    overall_verdict: str,
    rows: Sequence[VerdictRow],
    figures: Sequence[Figure],
    notes: Sequence[str],
    stage_durations_s: dict[str, float],
    cross_check: Sequence[CrossCheckLine] = (),
) -> str:
    """The whole page as one HTML string."""
    colour = VERDICT_COLOURS.get(overall_verdict, "#1f2328")
    notes_html = "".join(f'<p class="note">{escape(note)}</p>' for note in notes)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="summary">Gate: <span class="verdict" style="color:{colour}">'
        f"{escape(overall_verdict)}</span></p>"
        f"<h2>Verdicts</h2>{_verdicts_table(rows)}{notes_html}"
        f"{''.join(_figure_html(figure) for figure in figures)}"
        f"{_cross_check_table(cross_check)}"
        f"<h2>Time per stage</h2>{_stages_table(stage_durations_s)}"
        "</body></html>"
    )


def write_report(path: Path, html_text: str) -> None:
    path.write_text(html_text, encoding="utf-8")
