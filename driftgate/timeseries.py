"""The time series a run report plots, fetched from Prometheus as tables and saved as CSV.

Rates use a 5 s window: with the run's 1 s scrape interval that spans at least four
samples, the fewest for which ``rate`` is reliably defined; curves are therefore smoothed
over about 5 s, and a spike shorter than that shows lower than it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sla.errors import PrometheusAccessError
from sla.prometheus import PrometheusClient, Series, step_for_range_s

logger = logging.getLogger(__name__)

RATE_WINDOW = "5s"

# Each series: a name (also the CSV file name), the PromQL, the label that tells the curves
# apart, and the unit of its values.
SERIES: dict[str, tuple[str, str | None]] = {
    "latency_p50_s": (
        f"histogram_quantile(0.50, sum by (le, model_version) "
        f"(rate(inference_latency_seconds_bucket[{RATE_WINDOW}])))",
        "model_version",
    ),
    "latency_p95_s": (
        f"histogram_quantile(0.95, sum by (le, model_version) "
        f"(rate(inference_latency_seconds_bucket[{RATE_WINDOW}])))",
        "model_version",
    ),
    "latency_p99_s": (
        f"histogram_quantile(0.99, sum by (le, model_version) "
        f"(rate(inference_latency_seconds_bucket[{RATE_WINDOW}])))",
        "model_version",
    ),
    "predictions_per_s": (
        f"sum by (model_version) (rate(prediction_count_total[{RATE_WINDOW}]))",
        "model_version",
    ),
    "error_ratio": (
        f'(sum(rate(http_request_duration_seconds_count{{route="/predict",status=~"5.."}}'
        f"[{RATE_WINDOW}])) or vector(0)) / "
        f'sum(rate(http_request_duration_seconds_count{{route="/predict"}}[{RATE_WINDOW}]))',
        None,
    ),
    "dataset_drift_share": ("max(dataset_drift_share)", None),
    "feature_drift_score": ("max by (feature) (feature_drift_score)", "feature"),
    "model_accuracy": ("max by (model_version) (model_accuracy)", "model_version"),
    "confidence_median": (
        f"histogram_quantile(0.5, sum by (le, model_version) "
        f"(rate(prediction_confidence_bucket[{RATE_WINDOW}])))",
        "model_version",
    ),
}


@dataclass(frozen=True)
class SeriesTable:
    """One named series as a wide table: a ``time_s`` column and one column per curve."""

    name: str
    promql: str
    frame: pd.DataFrame


def series_to_frame(
    result: list[Series], curve_label: str | None, single_name: str = "value"
) -> pd.DataFrame:
    """A range query's series as a wide table indexed by UTC epoch seconds.

    Curves are named by their ``curve_label`` value; a series without one is ``single_name``.
    """
    columns: dict[str, pd.Series] = {}
    for series in result:
        name = series.labels.get(curve_label, single_name) if curve_label else single_name
        times = [point[0] for point in series.points]
        values = [point[1] for point in series.points]
        columns[name] = pd.Series(values, index=times, dtype=float)
    frame = pd.DataFrame(columns, dtype=float).sort_index()
    frame.index.name = "time_s"
    return frame


def fetch_series(
    client: PrometheusClient, start_s: float, end_s: float, resolution_s: float = 1.0
) -> list[SeriesTable]:
    """Every report series over ``[start_s, end_s]``, one point per ``resolution_s``
    (coarser on long runs, to stay within Prometheus's points-per-series limit).

    A query that fails is logged and yields an empty table, which the figure shows as
    "no data": a report with a gap is more use than no report.
    """
    step_s = step_for_range_s(end_s - start_s, resolution_s)
    tables = []
    for name, (promql, curve_label) in SERIES.items():
        try:
            result = client.range(promql, start_s, end_s, step_s)
        except PrometheusAccessError as error:
            logger.warning("series=%s not fetched: %s", name, error)
            result = []
        frame = series_to_frame(result, curve_label, single_name=name.replace("_", " "))
        tables.append(SeriesTable(name, promql, frame))
    return tables


def save_csv(tables: list[SeriesTable], out_dir: Path) -> None:
    """One CSV per series in ``out_dir``, so the figures can be re-plotted elsewhere."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for table in tables:
        table.frame.to_csv(out_dir / f"{table.name}.csv")
