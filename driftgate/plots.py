"""The run report's figures: one PNG per question a reader asks of a run.

Every figure shares the time axis (seconds since the run started), shades the load phases,
and marks where drift was injected, so that a reader sees at a glance what happened when.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display here; and the report must not depend on one

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from driftgate.manifest import RunManifest
from driftgate.timeseries import SeriesTable

PHASE_COLOURS = ("#f2f2f2", "#e3ecf7")
DRIFT_COLOUR = "#fbe3d6"
THRESHOLD_COLOUR = "#cc0000"
X_MARGIN_S = 3.0
# A threshold far above every point would flatten the curves to the axis; past this factor
# it is written in the corner instead of drawn.
THRESHOLD_DRAW_FACTOR = 3.0


@dataclass(frozen=True)
class Threshold:
    """A horizontal line on a figure: an objective's threshold."""

    label: str
    value: float


@dataclass(frozen=True)
class Detection:
    """When drift was injected and when the monitoring noticed (None: it never did)."""

    injected_at_s: float
    detected_after_s: float | None


@dataclass(frozen=True)
class Figure:
    title: str
    png: bytes


def _is_drift(traffic: dict[str, object]) -> bool:
    return traffic.get("kind", "normal") != "normal"


def _shade_phases(axes: Axes, manifest: RunManifest, origin_s: float) -> None:
    # Every figure spans the same stretch of time, so they line up when read top to bottom.
    axes.set_xlim(-X_MARGIN_S, manifest.ended_s - origin_s + X_MARGIN_S)
    for index, phase in enumerate(manifest.phases):
        colour = DRIFT_COLOUR if _is_drift(phase.traffic) else PHASE_COLOURS[index % 2]
        axes.axvspan(phase.start_s - origin_s, phase.end_s - origin_s, color=colour, zorder=0)
        axes.text(
            phase.start_s - origin_s,
            1.0,
            f" {phase.name}",
            transform=axes.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="#555555",
        )


def _plot_table(axes: Axes, table: SeriesTable, origin_s: float, scale: float = 1.0) -> None:
    frame = table.frame
    if frame.empty:
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", color="#aa0000")
        return
    for column in frame.columns:
        axes.plot(frame.index - origin_s, frame[column] * scale, label=str(column), linewidth=1.4)


def _finish(figure: plt.Figure, axes_list: Sequence[Axes]) -> bytes:
    for axes in axes_list:
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes_list[-1].set_xlabel("seconds since the run started")
    return _png(figure)


def _png(figure: plt.Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _time_panels(
    tables: Sequence[SeriesTable],
    manifest: RunManifest,
    panels: Sequence[tuple[str, str, float]],
    title: str,
    height_in: float = 5.0,
) -> tuple[plt.Figure, list[Axes]]:
    """Stacked panels over the run's time axis, phases shaded: (series, y label, scale) each."""
    series = _by_name(tables)
    figure, axes_array = plt.subplots(len(panels), 1, figsize=(10, height_in), sharex=True)
    axes_list = list(axes_array)
    for axes, (name, label, scale) in zip(axes_list, panels, strict=True):
        _shade_phases(axes, manifest, manifest.started_s)
        _plot_table(axes, series[name], manifest.started_s, scale=scale)
        axes.set_ylabel(label)
    axes_list[0].set_title(title)
    return figure, axes_list


def _by_name(tables: Sequence[SeriesTable]) -> dict[str, SeriesTable]:
    return {table.name: table for table in tables}


def latency_figure(
    tables: Sequence[SeriesTable], manifest: RunManifest, thresholds: Sequence[Threshold]
) -> Figure:
    """p50/p95/p99 inference latency per model version, objectives drawn as dashed lines."""
    quantiles = ("p50", "p95", "p99")
    panels = [(f"latency_{quantile}_s", f"{quantile} (ms)", 1000.0) for quantile in quantiles]
    title = "Inference latency per model version (server side)"
    figure, axes_list = _time_panels(tables, manifest, panels, title, height_in=7.5)

    series = _by_name(tables)
    for axes, quantile in zip(axes_list, quantiles, strict=True):
        highest_ms = float(series[f"latency_{quantile}_s"].frame.max(axis=None) or 0.0) * 1000
        for threshold in thresholds:
            if f"({quantile})" in threshold.label:
                _draw_threshold(axes, threshold, highest_ms)
    return Figure("Latency", _finish(figure, axes_list))


def _draw_threshold(axes: Axes, threshold: Threshold, highest_ms: float) -> None:
    value_ms = threshold.value * 1000
    label = f"{threshold.label}: {value_ms:g} ms"
    if highest_ms > 0 and value_ms > THRESHOLD_DRAW_FACTOR * highest_ms:
        axes.text(
            0.99,
            0.95,
            f"{label} (far above the curves)",
            color=THRESHOLD_COLOUR,
            fontsize=8,
            ha="right",
            va="top",
            transform=axes.transAxes,
        )
        return
    axes.axhline(value_ms, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1)
    axes.text(
        0.99,
        value_ms,
        label,
        color=THRESHOLD_COLOUR,
        fontsize=8,
        ha="right",
        va="bottom",
        transform=axes.get_yaxis_transform(),
    )


def traffic_figure(tables: Sequence[SeriesTable], manifest: RunManifest) -> Figure:
    """Predictions per second per version, and the /predict error ratio."""
    panels = [("predictions_per_s", "predictions/s", 1.0), ("error_ratio", "errors (%)", 100.0)]
    figure, axes_list = _time_panels(tables, manifest, panels, "Throughput and errors")
    return Figure("Throughput and errors", _finish(figure, axes_list))


def drift_figure(
    tables: Sequence[SeriesTable], manifest: RunManifest, detection: Detection | None
) -> Figure:
    """Dataset drift share and per-feature scores, with injection and detection marked."""
    panels = [
        ("dataset_drift_share", "share of features drifted", 1.0),
        ("feature_drift_score", "drift score (higher: more drift)", 1.0),
    ]
    figure, axes_list = _time_panels(
        tables, manifest, panels, "Statistical health: drift", height_in=6.0
    )
    share_axes = axes_list[0]
    share_axes.set_ylim(-0.05, 1.05)
    if detection is not None:
        _mark_detection(share_axes, detection, manifest.started_s)
    return Figure("Drift", _finish(figure, axes_list))


def _mark_detection(axes: Axes, detection: Detection, origin_s: float) -> None:
    injected_x = detection.injected_at_s - origin_s
    axes.axvline(injected_x, color="#cc6600", linewidth=1.5, label="drift injected")
    if detection.detected_after_s is None:
        axes.text(injected_x, 0.5, "  not detected", color="#cc0000", fontsize=9)
        return
    detected_x = injected_x + detection.detected_after_s
    axes.axvline(detected_x, color="#007700", linewidth=1.5, label="drift detected")
    axes.text(
        detected_x,
        0.9,
        f"  detected {detection.detected_after_s:.1f} s after injection",
        fontsize=9,
        color="#007700",
        va="center",
    )


def model_figure(tables: Sequence[SeriesTable], manifest: RunManifest) -> Figure:
    """Rolling accuracy (from feedback) and median confidence per model version."""
    panels = [
        ("model_accuracy", "accuracy", 1.0),
        ("confidence_median", "median confidence", 1.0),
    ]
    title = "Model health: champion against challenger"
    figure, axes_list = _time_panels(tables, manifest, panels, title)
    return Figure("Model health", _finish(figure, axes_list))


def champion_challenger_figure(tables: Sequence[SeriesTable]) -> Figure:
    """Whole-run averages side by side per model version: p95 latency, accuracy, confidence."""
    series = _by_name(tables)
    panels = (
        ("p95 latency (ms)", series["latency_p95_s"].frame * 1000),
        ("accuracy", series["model_accuracy"].frame),
        ("median confidence", series["confidence_median"].frame),
    )
    figure, axes_list = plt.subplots(1, 3, figsize=(10, 3))
    for axes, (label, frame) in zip(axes_list, panels, strict=True):
        means = frame.mean(numeric_only=True) if not frame.empty else pd.Series(dtype=float)
        axes.bar([str(name) for name in means.index], means.to_numpy(), color="#4a7ab5")
        axes.set_title(label, fontsize=10)
        for x, value in enumerate(means.to_numpy()):
            axes.text(x, value, f"{value:.3g}", ha="center", va="bottom", fontsize=8)
    figure.suptitle("Champion against challenger (mean over the run)")
    return Figure("Champion against challenger", _png(figure))
