"""The HTML report: built from Prometheus-shaped data, self-contained, and readable in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftgate.html_report import CrossCheckLine, VerdictRow, render_report, write_report
from driftgate.manifest import PhaseRecord, RunManifest
from driftgate.plots import (
    Detection,
    Threshold,
    champion_challenger_figure,
    drift_figure,
    latency_figure,
    model_figure,
    traffic_figure,
)
from driftgate.timeseries import SERIES, SeriesTable, series_to_frame
from sla.prometheus import Series

RUN_START_S = 1_800_000_000.0


def _matrix(label: str | None, curves: dict[str, list[float]]) -> list[Series]:
    """A range query's result with one series per curve, 1 s apart."""
    return [
        Series(
            labels={label: name} if label else {},
            points=[(RUN_START_S + i, v) for i, v in enumerate(values)],
        )
        for name, values in curves.items()
    ]


def _tables() -> list[SeriesTable]:
    rng = np.random.default_rng(7)
    seconds = 60
    curves_by_series = {
        "latency_p50_s": {"v1": 0.002, "v2": 0.004},
        "latency_p95_s": {"v1": 0.004, "v2": 0.008},
        "latency_p99_s": {"v1": 0.006, "v2": 0.012},
        "predictions_per_s": {"v1": 90.0, "v2": 10.0},
        "error_ratio": {"value": 0.0},
        "dataset_drift_share": {"value": 0.0},
        "feature_drift_score": {"chronic_diseases": 0.05, "self_rated_health": 0.03},
        "model_accuracy": {"v1": 0.7, "v2": 0.68},
        "confidence_median": {"v1": 0.72, "v2": 0.75},
    }
    tables = []
    for name, curves in curves_by_series.items():
        promql, label = SERIES[name]
        values = {
            curve: list(level * (1 + 0.05 * rng.standard_normal(seconds)))
            for curve, level in curves.items()
        }
        if name == "dataset_drift_share":
            values["value"] = [0.0] * 35 + [3 / 7] * 25
        tables.append(SeriesTable(name, promql, series_to_frame(_matrix(label, values), label)))
    return tables


def _manifest() -> RunManifest:
    phases = [
        PhaseRecord(
            name="warm-up",
            start_s=RUN_START_S,
            end_s=RUN_START_S + 30,
            users=5,
            spawn_rate=5,
            traffic={"kind": "normal"},
        ),
        PhaseRecord(
            name="drift",
            start_s=RUN_START_S + 30,
            end_s=RUN_START_S + 60,
            users=5,
            spawn_rate=5,
            traffic={"kind": "mean_shift", "size": 1.0},
        ),
    ]
    return RunManifest(
        scenario="demo",
        target_url="http://127.0.0.1:1",
        started_s=RUN_START_S,
        ended_s=RUN_START_S + 60,
        phases=phases,
    )


def test_series_to_frame_keeps_every_curve_and_point() -> None:
    result = _matrix("model_version", {"v1": [1.0, 2.0], "v2": [3.0, float("nan")]})

    frame = series_to_frame(result, "model_version")

    assert list(frame.columns) == ["v1", "v2"]
    assert frame.index.tolist() == [RUN_START_S, RUN_START_S + 1]
    assert frame["v1"].tolist() == [1.0, 2.0]
    assert np.isnan(frame.loc[RUN_START_S + 1, "v2"])


def _build_report(path: Path) -> str:
    tables = _tables()
    manifest = _manifest()
    figures = [
        latency_figure(tables, manifest, [Threshold("v2 latency (p95)", 0.01)]),
        traffic_figure(tables, manifest),
        drift_figure(tables, manifest, Detection(RUN_START_S + 30, 5.0)),
        model_figure(tables, manifest),
        champion_challenger_figure(tables),
    ]
    rows = [
        VerdictRow(
            "drift detected",
            "pass",
            "5.0 s",
            "<= 30 s",
            "detected 5.0 s after start",
            "max(dataset_drift_share) > 0",
        ),
        VerdictRow(
            "v2 p95 latency",
            "fail",
            "11 ms",
            "<= 10 ms",
            "p95 above its objective",
            "histogram_quantile(...)",
        ),
    ]
    cross_check = [
        CrossCheckLine("POST /predict", 700, (4.0, 12.0, 17.0), (1.5, 7.0, 10.9), None),
    ]
    cross_check = [
        CrossCheckLine("POST /predict", 700, (4.0, 12.0, 17.0), (1.5, 7.0, 10.9), None),
    ]
    html_text = render_report(
        "driftgate run: demo",
        "fail",
        rows,
        figures,
        ["a note"],
        {"load": 60.0, "check": 1.0},
        cross_check,
    )
    write_report(path, html_text)
    return html_text


def test_report_is_self_contained(tmp_path: Path) -> None:
    html_text = _build_report(tmp_path / "report.html")

    # Nothing may be fetched when the page opens: no external URL in any src or href.
    assert not re.search(r"""(src|href)=["']?https?://""", html_text)
    assert html_text.count("data:image/png;base64,") == 5
    assert "drift detected" in html_text
    assert "<td>4.0 / 1.5</td>" in html_text, "client p50 beside server p50, in ms"


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed; run scripts/setup.sh --with-browser")
    report = tmp_path / "report.html"
    _build_report(report)
    screenshot = tmp_path / "report.png"

    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1200,2400",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )

    image = Image.open(screenshot).convert("RGB")
    assert image.size == (1200, 2400)
    # A blank or failed page is one or two colours; the verdict colours and plots are many.
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 200
    red_pixels = sum(count for count, (r, g, b) in colours if r > 180 and g < 80 and b < 80)
    assert red_pixels > 0, "the failed verdict is drawn in red"
