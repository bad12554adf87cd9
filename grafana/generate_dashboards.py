"""Write driftgate's Grafana dashboards as JSON, built with grafana-foundation-sdk.

Four dashboards, one per question an operator asks: is the service healthy (System
Health), is the model behaving (Model Health), has the input moved (Statistical Health),
and is the challenger better than the champion (Champion vs Challenger). Every panel reads
the Prometheus datasource with the fixed uid :data:`DATASOURCE_UID`; dashboards have stable
uids and no numeric ``id``, so Grafana's file provisioning can load them anywhere.

The committed files ``grafana/dashboards/*.json`` are this module's output, which
``tests/test_grafana_dashboards.py`` checks. After editing, run::

    python -m grafana.generate_dashboards

Panels read the ``_1m`` recording rules that both rule profiles record (see
``prometheus/generate_rules.py``), and draw the production profile's alert thresholds.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common, dashboard, heatmap, stat, timeseries
from grafana_foundation_sdk.builders import prometheus as prometheus_query
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    HeatmapCellLayout,
    LegendDisplayMode,
    ScaleDistribution,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode, HeatmapColorScale
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from prometheus.generate_rules import DASHBOARD_WINDOW, PROFILES
from target_service.config import MODEL_VERSIONS

logger = logging.getLogger(__name__)

DASHBOARDS_DIR = Path(__file__).parent / "dashboards"
DATASOURCE_UID = "driftgate-prometheus"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAGS = ["driftgate"]
THRESHOLDS = PROFILES["production"]
WINDOW = DASHBOARD_WINDOW
VERSION_FILTER = '{model_version=~"$model_version"}'
DRIFT_ALERT_EXPR = 'ALERTS{alertname="FeatureDriftDetected", alertstate="firing"}'


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and how its series are named in the legend."""

    expr: str
    legend: str = ""


def _targets(
    queries: list[Query], query_format: PromQueryFormat = PromQueryFormat.TIME_SERIES
) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for index, query in enumerate(queries):
        target = (
            prometheus_query.Dataquery()
            .expr(query.expr)
            .ref_id(chr(ord("A") + index))
            .format(query_format)
        )
        if query.legend:
            target = target.legend_format(query.legend)
        targets.append(target.datasource(DATASOURCE))
    return targets


def _red_above(limit: float) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color="green"), Threshold(value=limit, color="red")])
    )


def _red_below(limit: float) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color="red"), Threshold(value=limit, color="green")])
    )


def graph(
    title: str,
    queries: list[Query],
    unit: str,
    description: str,
    width: int = 12,
    stacked: bool = False,
    log_scale: bool = False,
) -> timeseries.Panel:
    """A time series panel; ``unit`` is a Grafana unit id ("s", "percentunit", "reqps")."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .legend(common.VizLegendOptions().display_mode(LegendDisplayMode.LIST).show_legend(True))
        .targets(_targets(queries))
    )
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    if log_scale:
        panel = panel.scale_distribution(
            common.ScaleDistributionConfig().type(ScaleDistribution.LOG).log(10)
        )
    return panel


def single_value(
    title: str, query: Query, unit: str, description: str, thresholds: dashboard.ThresholdsConfig
) -> stat.Panel:
    """A stat panel with the last value, coloured by ``thresholds``."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(5)
        .thresholds(thresholds)
        .targets(_targets([query]))
    )


def _dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("5s")
        .time("now-15m", "now")
        .timezone("utc")
        .annotation(
            dashboard.AnnotationQuery()
            .name("FeatureDriftDetected")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("red")
            .expr(DRIFT_ALERT_EXPR)
        )
    )


def _version_variable() -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("model_version")
        .label("Model version")
        .datasource(DATASOURCE)
        .query("label_values(prediction_count_total, model_version)")
        .multi(True)
        .include_all(True)
    )


def system_health() -> dashboard.Dashboard:
    """Latency quantiles, throughput, errors, CPU and memory of the service."""
    objective_s = THRESHOLDS.p99_latency_objective_s
    return (
        _dashboard(
            "driftgate-system-health",
            "driftgate / System Health",
            "Latency, throughput, errors, CPU and memory of the reference service.",
        )
        .with_variable(_version_variable())
        .with_row(dashboard.Row("Latency"))
        .with_panel(
            graph(
                "Inference latency quantiles",
                [
                    Query(
                        f"model_version:inference_latency_seconds:{quantile}_{WINDOW}"
                        + VERSION_FILTER,
                        f"{{{{model_version}}}} {quantile}",
                    )
                    for quantile in ("p50", "p95", "p99")
                ],
                "s",
                f"Model call alone, over {WINDOW}; the p99 objective is {objective_s} s.",
            ).thresholds(_red_above(objective_s))
        )
        .with_panel(
            graph(
                "HTTP p99 latency by route",
                [Query(f"route:http_request_duration_seconds:p99_{WINDOW}", "{{route}}")],
                "s",
                f"Whole request, arrival to response, over {WINDOW}.",
            )
        )
        .with_row(dashboard.Row("Throughput and errors"))
        .with_panel(
            graph(
                "Predictions per second by model version",
                [
                    Query(
                        f"model_version:prediction_count:rate_{WINDOW}" + VERSION_FILTER,
                        "{{model_version}}",
                    )
                ],
                "reqps",
                "Records scored per second (a batch of n records counts n).",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "HTTP requests per second by route and status",
                [Query(f"route_status:http_requests:rate_{WINDOW}", "{{route}} {{status}}")],
                "reqps",
                "Every answered request except /metrics.",
            )
        )
        .with_panel(
            graph(
                "5xx error ratio",
                [Query(f"job:http_request_errors:ratio_rate_{WINDOW}", "{{job}}")],
                "percentunit",
                f"Share of requests answered 5xx; alert above {THRESHOLDS.error_ratio_max:.0%}.",
            ).thresholds(_red_above(THRESHOLDS.error_ratio_max))
        )
        .with_panel(
            graph(
                "Rejected requests per second by reason",
                [
                    Query(
                        "sum by (reason) (rate(rejected_requests_total[$__rate_interval]))",
                        "{{reason}}",
                    )
                ],
                "reqps",
                "4xx answers: malformed or out-of-range input, unknown model version, ...",
                stacked=True,
            )
        )
        .with_panel(
            single_value(
                "Scrape target up",
                Query('min(up{job="target_service"})'),
                "none",
                "1 while Prometheus can scrape the service, 0 when it cannot.",
                _red_below(1),
            )
        )
        .with_row(dashboard.Row("Resources"))
        .with_panel(
            graph(
                "Service CPU (cores)",
                [
                    Query(
                        "rate(service_process_cpu_seconds_total[$__rate_interval])",
                        "{{instance}}",
                    )
                ],
                "short",
                "CPU of the whole service (supervisor and all workers) in cores: 1 is one "
                "core fully busy.",
            )
        )
        .with_panel(
            graph(
                "Service memory (RSS)",
                [Query("service_process_resident_memory_bytes", "{{instance}}")],
                "bytes",
                "Resident memory summed over the service's processes; pages shared between "
                "workers count once per worker, so this is an upper bound.",
            )
        )
    )


def model_health() -> dashboard.Dashboard:
    """Confidence, predicted classes and accuracy per model version."""
    confidence_min = THRESHOLDS.confidence_mean_min
    accuracy_min = THRESHOLDS.accuracy_min
    return (
        _dashboard(
            "driftgate-model-health",
            "driftgate / Model Health",
            "What the models answer: confidence, predicted classes and accuracy on feedback.",
        )
        .with_variable(_version_variable())
        .with_panel(
            heatmap.Panel()
            .title("Confidence distribution")
            .description("Predictions per confidence bucket (0.5: a coin flip, 1: certain).")
            .datasource(DATASOURCE)
            .span(12)
            .height(8)
            # The buckets come from Prometheus as they are: Grafana must not re-bucket them.
            .calculate(False)
            .color(
                heatmap.HeatmapColorOptions()
                .mode(HeatmapColorMode.SCHEME)
                .scheme("Oranges")
                .fill("dark-orange")
                .scale(HeatmapColorScale.EXPONENTIAL)
                .exponent(0.5)
                .steps(64)
            )
            .rows_frame(heatmap.RowsHeatmapOptions().layout(HeatmapCellLayout.LE))
            .y_axis(heatmap.YAxisConfig().unit("percentunit").decimals(2))
            .show_legend()
            .show_tooltip()
            .targets(
                _targets(
                    [
                        Query(
                            "sum by (le) (rate(prediction_confidence_bucket"
                            f"{VERSION_FILTER}[$__rate_interval]))",
                            "{{le}}",
                        )
                    ],
                    PromQueryFormat.HEATMAP,
                )
            )
        )
        .with_panel(
            graph(
                "Mean confidence by model version",
                [
                    Query(
                        f"model_version:prediction_confidence:mean_{WINDOW}" + VERSION_FILTER,
                        "{{model_version}}",
                    )
                ],
                "percentunit",
                f"Alert (ConfidenceCollapse) below {confidence_min}.",
            ).thresholds(_red_below(confidence_min))
        )
        .with_panel(
            graph(
                "Predicted classes per second",
                [
                    Query(
                        f"model_version_predicted_class:prediction_count:rate_{WINDOW}"
                        + VERSION_FILTER,
                        "{{model_version}} {{predicted_class}}",
                    )
                ],
                "reqps",
                "A class share that moves without a change in traffic is a model problem.",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Accuracy by model version",
                [
                    Query("model_accuracy" + VERSION_FILTER, "{{model_version}} (service window)"),
                    Query(
                        f"model_version:feedback_accuracy:ratio_rate_{WINDOW}" + VERSION_FILTER,
                        f"{{{{model_version}}}} (feedback over {WINDOW})",
                    ),
                ],
                "percentunit",
                f"Share of correct predictions among feedbacks; alert below {accuracy_min:.0%}.",
            ).thresholds(_red_below(accuracy_min))
        )
        .with_panel(
            graph(
                "Feedback per second",
                [
                    Query(
                        "sum by (model_version) (rate(feedback_count_total"
                        f"{VERSION_FILTER}[$__rate_interval]))",
                        "{{model_version}}",
                    )
                ],
                "reqps",
                "True labels received; accuracy means little while this is near zero.",
            )
        )
    )


def statistical_health() -> dashboard.Dashboard:
    """Drift share, per-feature scores and p-values, and the drift alert."""
    share_max = THRESHOLDS.drift_share_max
    return (
        _dashboard(
            "driftgate-statistical-health",
            "driftgate / Statistical Health",
            "Has the input moved away from the training data? Red marks: FeatureDriftDetected.",
        )
        .with_panel(
            single_value(
                "Dataset drift share",
                Query("job:dataset_drift_share:max"),
                "percentunit",
                f"Share of features flagged; FeatureDriftDetected above {share_max:.0%}.",
                _red_above(share_max),
            )
        )
        .with_panel(
            single_value(
                "Drift window size",
                Query("max(drift_window_size)"),
                "none",
                "Records in the current drift window.",
                _red_below(1),
            )
        )
        .with_panel(
            single_value(
                "Seconds since last drift evaluation",
                Query("time() - max(drift_last_evaluation_timestamp_seconds)"),
                "s",
                "Large values mean the monitor is not running or receives no traffic.",
                _red_above(60),
            )
        )
        .with_panel(
            single_value(
                "Drift alert firing",
                Query(f"count({DRIFT_ALERT_EXPR}) or vector(0)"),
                "none",
                "FeatureDriftDetected alerts firing now.",
                _red_above(1),
            )
        )
        .with_panel(
            graph(
                "Dataset drift share",
                [Query("dataset_drift_share", "drift share")],
                "percentunit",
                f"FeatureDriftDetected fires above {share_max:.0%} for {THRESHOLDS.drift_for} "
                "(production profile).",
                width=24,
            ).thresholds(_red_above(share_max))
        )
        .with_panel(
            graph(
                "Drift score per feature",
                [Query("feature_drift_score", "{{feature}}")],
                "none",
                "KS distance or PSI (numeric), chi-square based (categorical); higher: more drift.",
            )
        )
        .with_panel(
            graph(
                "Drift p-value per feature",
                [Query("feature_drift_pvalue", "{{feature}}")],
                "none",
                "Small means drift; log scale.",
                log_scale=True,
            )
        )
        .with_panel(
            graph(
                "Features flagged as drifted",
                [Query("feature_drift_detected", "{{feature}}")],
                "none",
                "1 while the feature's test fires at the corrected significance level.",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Missing or unseen share (categorical features)",
                [Query("feature_missing_share", "{{feature}}")],
                "percentunit",
                "Nulls and categories the model never saw in training.",
            )
        )
    )


def _side(version_variable: str) -> list[tuple[str, Query, str]]:
    selector = f'{{model_version="${version_variable}"}}'
    return [
        (
            "p99 inference latency",
            Query(f"model_version:inference_latency_seconds:p99_{WINDOW}{selector}", "p99"),
            "s",
        ),
        (
            "Predictions per second",
            Query(f"model_version:prediction_count:rate_{WINDOW}{selector}", "predictions"),
            "reqps",
        ),
        (
            "Mean confidence",
            Query(f"model_version:prediction_confidence:mean_{WINDOW}{selector}", "confidence"),
            "percentunit",
        ),
        (
            "Accuracy",
            Query(f"model_accuracy{selector}", "accuracy"),
            "percentunit",
        ),
    ]


def champion_challenger() -> dashboard.Dashboard:
    """The same four panels for two model versions, side by side."""
    builder = (
        _dashboard(
            "driftgate-champion-challenger",
            "driftgate / Champion vs Challenger",
            "The champion (left) and the challenger (right), panel by panel.",
        )
        .with_variable(
            dashboard.CustomVariable("champion").label("Champion").values(",".join(MODEL_VERSIONS))
        )
        .with_variable(
            dashboard.CustomVariable("challenger")
            .label("Challenger")
            .values(",".join(reversed(MODEL_VERSIONS)))
        )
    )
    for (title, champion, unit), (_, challenger, _) in zip(
        _side("champion"), _side("challenger"), strict=True
    ):
        builder = builder.with_panel(
            graph(f"Champion ($champion): {title}", [champion], unit, title, width=12)
        ).with_panel(
            graph(f"Challenger ($challenger): {title}", [challenger], unit, title, width=12)
        )
    return builder.with_panel(
        graph(
            "Accuracy, challenger minus champion",
            [
                Query(
                    'max(model_accuracy{model_version="$challenger"}) '
                    '- max(model_accuracy{model_version="$champion"})',
                    "difference",
                )
            ],
            "percentunit",
            "Above zero: the challenger is the better model on the feedback so far.",
            width=24,
        )
    )


DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "system-health": system_health,
    "model-health": model_health,
    "statistical-health": statistical_health,
    "champion-challenger": champion_challenger,
}


def _without_nulls(value: Any) -> Any:
    # The SDK writes unset options as null; Grafana expects such keys to be absent. A
    # threshold's base step is the exception: its value is null (minus infinity) by design.
    if isinstance(value, dict):
        return {
            key: _without_nulls(item)
            for key, item in value.items()
            if item is not None or key == "value"
        }
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def dashboard_model(builder: dashboard.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, with panel ids 1, 2, ... in layout order."""
    model = _without_nulls(json.loads(JSONEncoder().encode(builder.build())))
    model.setdefault("templating", {}).setdefault("list", [])
    for panel_id, panel in enumerate(model["panels"], start=1):
        panel["id"] = panel_id
    return model


def render(builder: dashboard.Dashboard) -> str:
    """The text of a dashboard file: sorted keys, two-space indent, final newline."""
    return json.dumps(dashboard_model(builder), indent=2, sort_keys=True) + "\n"


def dashboard_path(name: str, dashboards_dir: Path = DASHBOARDS_DIR) -> Path:
    return dashboards_dir / f"driftgate-{name}.json"


def write_all(dashboards_dir: Path = DASHBOARDS_DIR) -> list[Path]:
    """Write every dashboard; return the paths written."""
    dashboards_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in DASHBOARDS.items():
        path = dashboard_path(name, dashboards_dir)
        path.write_text(render(build()))
        logger.info("wrote dashboard=%s path=%s", name, path)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboards-dir", type=Path, default=DASHBOARDS_DIR)
    arguments = parser.parse_args()
    for path in write_all(arguments.dashboards_dir):
        print(path)


if __name__ == "__main__":
    main()
