"""Write driftgate's Prometheus rule files, one per profile, from a single table.

Two profiles share every expression and differ only in numbers: ``ci`` for short runs
(scrape and evaluate every second, alerts after seconds) and ``production`` (the usual
15 s evaluation, alerts after minutes). The numbers live in :data:`PROFILES` and nowhere
else; the committed files ``prometheus/rules/driftgate-<profile>.yml`` are this module's
output, which ``tests/test_prometheus_rules.py`` checks. After editing the table run::

    python -m prometheus.generate_rules

Recording rules follow Prometheus's ``level:metric:operations`` naming. Both profiles record
the ``_1m`` windows that the dashboards read; each also records the window its alerts use.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

RULES_DIR = Path(__file__).parent / "rules"
DASHBOARD_WINDOW = "1m"
LATENCY_QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
SERVICE_JOB = "target_service"


@dataclass(frozen=True)
class RuleProfile:
    """The numbers that differ between a short CI run and production.

    Durations are Prometheus duration strings. ``alert_window`` is the range of the
    ``rate()`` behind the rate-based alerts; it must be at least a few scrape intervals.
    """

    name: str
    evaluation_interval: str | None
    alert_window: str
    drift_share_max: float
    drift_for: str
    p99_latency_objective_s: float
    latency_for: str
    error_ratio_max: float
    error_for: str
    accuracy_min: float
    min_feedback_count: int
    accuracy_for: str
    confidence_mean_min: float
    confidence_for: str
    no_traffic_for: str
    target_down_for: str


PROFILES: dict[str, RuleProfile] = {
    "ci": RuleProfile(
        name="ci",
        evaluation_interval="1s",
        alert_window="15s",
        drift_share_max=0.25,
        drift_for="5s",
        p99_latency_objective_s=0.25,
        latency_for="5s",
        error_ratio_max=0.05,
        error_for="5s",
        accuracy_min=0.6,
        min_feedback_count=20,
        accuracy_for="5s",
        confidence_mean_min=0.55,
        confidence_for="5s",
        no_traffic_for="10s",
        target_down_for="3s",
    ),
    "production": RuleProfile(
        name="production",
        evaluation_interval=None,
        alert_window="5m",
        drift_share_max=0.25,
        drift_for="5m",
        p99_latency_objective_s=0.25,
        latency_for="5m",
        error_ratio_max=0.05,
        error_for="5m",
        accuracy_min=0.6,
        min_feedback_count=100,
        accuracy_for="10m",
        confidence_mean_min=0.55,
        confidence_for="10m",
        no_traffic_for="10m",
        target_down_for="1m",
    ),
}


def rule_file_path(profile_name: str, rules_dir: Path = RULES_DIR) -> Path:
    """Where the rule file of a profile is written."""
    return rules_dir / f"driftgate-{profile_name}.yml"


def recording_rules(window: str) -> list[dict[str, str]]:
    """Latency quantiles, throughput, error ratio, confidence and accuracy over ``window``."""
    rules = [
        {
            "record": f"model_version:inference_latency_seconds:{label}_{window}",
            "expr": (
                f"histogram_quantile({quantile}, sum by (model_version, le) "
                f"(rate(inference_latency_seconds_bucket[{window}])))"
            ),
        }
        for label, quantile in LATENCY_QUANTILES
    ]
    rules += [
        {
            "record": f"route:http_request_duration_seconds:p99_{window}",
            "expr": (
                "histogram_quantile(0.99, sum by (route, le) "
                f"(rate(http_request_duration_seconds_bucket[{window}])))"
            ),
        },
        {
            "record": f"model_version:prediction_count:rate_{window}",
            "expr": f"sum by (model_version) (rate(prediction_count_total[{window}]))",
        },
        {
            "record": f"model_version_predicted_class:prediction_count:rate_{window}",
            "expr": (
                f"sum by (model_version, predicted_class) (rate(prediction_count_total[{window}]))"
            ),
        },
        {
            "record": f"route_status:http_requests:rate_{window}",
            "expr": (
                f"sum by (route, status) (rate(http_request_duration_seconds_count[{window}]))"
            ),
        },
        {
            # A status series exists only once seen; "or ... * 0" makes "no 5xx yet" a 0.
            "record": f"job:http_request_errors:ratio_rate_{window}",
            "expr": (
                "(sum by (job) "
                f'(rate(http_request_duration_seconds_count{{status=~"5.."}}[{window}])) '
                f"or sum by (job) (rate(http_request_duration_seconds_count[{window}])) * 0) "
                f"/ sum by (job) (rate(http_request_duration_seconds_count[{window}]))"
            ),
        },
        {
            "record": f"model_version:prediction_confidence:mean_{window}",
            "expr": (
                f"sum by (model_version) (rate(prediction_confidence_sum[{window}])) "
                f"/ sum by (model_version) (rate(prediction_confidence_count[{window}]))"
            ),
        },
        {
            "record": f"model_version:feedback_accuracy:ratio_rate_{window}",
            "expr": (
                f"sum by (model_version) (rate(feedback_correct_total[{window}])) "
                f"/ sum by (model_version) (rate(feedback_count_total[{window}]))"
            ),
        },
    ]
    return rules


def drift_recording_rules() -> list[dict[str, str]]:
    """The drift monitor's gauges, one series per job or feature whatever the worker count."""
    return [
        {"record": "job:dataset_drift_share:max", "expr": "max by (job) (dataset_drift_share)"},
        {
            "record": "feature:feature_drift_score:max",
            "expr": "max by (feature) (feature_drift_score)",
        },
        {
            "record": "feature:feature_drift_pvalue:min",
            "expr": "min by (feature) (feature_drift_pvalue)",
        },
    ]


def _alert(
    name: str, expr: str, for_: str, severity: str, summary: str, description: str
) -> dict[str, object]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def alerting_rules(profile: RuleProfile) -> list[dict[str, object]]:
    """The alerts; each names its threshold and shows the current value in its description."""
    window = profile.alert_window
    return [
        _alert(
            "FeatureDriftDetected",
            f"max by (job) (dataset_drift_share) > {profile.drift_share_max}",
            profile.drift_for,
            "warning",
            "Input feature drift on {{ $labels.job }}",
            "{{ $value | humanizePercentage }} of the features drifted from the training data "
            f"(alert above {profile.drift_share_max:.0%} for {profile.drift_for}).",
        ),
        _alert(
            "SingleFeatureDrift",
            "max by (feature) (feature_drift_score) "
            "and on (feature) max by (feature) (feature_drift_detected) == 1",
            profile.drift_for,
            "info",
            "Feature {{ $labels.feature }} drifted",
            'The drift test of {{ $labels.feature }} fires (score {{ $value | printf "%.3f" }}); '
            "FeatureDriftDetected follows once enough features drift together.",
        ),
        _alert(
            "InferenceLatencySLOBreach",
            f"model_version:inference_latency_seconds:p99_{window} "
            f"> {profile.p99_latency_objective_s}",
            profile.latency_for,
            "critical",
            "p99 inference latency of {{ $labels.model_version }} above its objective",
            "p99 inference latency over "
            f"{window} is {{{{ $value | humanizeDuration }}}} "
            f"(objective {profile.p99_latency_objective_s} s).",
        ),
        _alert(
            "HighErrorRatio",
            f"job:http_request_errors:ratio_rate_{window} > {profile.error_ratio_max}",
            profile.error_for,
            "critical",
            "HTTP 5xx answers on {{ $labels.job }}",
            "{{ $value | humanizePercentage }} of requests over "
            f"{window} failed with 5xx (alert above {profile.error_ratio_max:.0%}).",
        ),
        _alert(
            "ModelAccuracyDrop",
            f"model_version:feedback_accuracy:ratio_rate_{window} < {profile.accuracy_min} "
            "and on (model_version) "
            f"sum by (model_version) (increase(feedback_count_total[{window}])) "
            f">= {profile.min_feedback_count}",
            profile.accuracy_for,
            "critical",
            "Accuracy of {{ $labels.model_version }} dropped",
            "Accuracy on the feedback of the last "
            f"{window} is {{{{ $value | humanizePercentage }}}} "
            f"(alert below {profile.accuracy_min:.0%}, given at least "
            f"{profile.min_feedback_count} feedbacks).",
        ),
        _alert(
            "ConfidenceCollapse",
            f"model_version:prediction_confidence:mean_{window} < {profile.confidence_mean_min}",
            profile.confidence_for,
            "warning",
            "Predictions of {{ $labels.model_version }} near a coin flip",
            f'Mean confidence over {window} is {{{{ $value | printf "%.3f" }}}} '
            f"(alert below {profile.confidence_mean_min}; 0.5 means no preference).",
        ),
        _alert(
            "NoTraffic",
            f"sum by (job) (rate(prediction_count_total[{window}])) == 0 "
            f'or sum by (job) (up{{job="{SERVICE_JOB}"}} == 1) * 0 '
            "unless on (job) sum by (job) (prediction_count_total)",
            profile.no_traffic_for,
            "warning",
            "No predictions served by {{ $labels.job }}",
            f"Predictions per second over {window}: {{{{ $value }}}}; the service is up but "
            "nothing reaches the model.",
        ),
        _alert(
            "TargetDown",
            "up == 0",
            profile.target_down_for,
            "critical",
            "{{ $labels.job }} target {{ $labels.instance }} is down",
            "Prometheus cannot scrape {{ $labels.instance }} (up = {{ $value }}) for "
            f"{profile.target_down_for}.",
        ),
    ]


def rule_groups(profile: RuleProfile) -> dict[str, list[dict[str, Any]]]:
    """The whole rule file of a profile, as the mapping Prometheus reads."""
    windows = sorted({DASHBOARD_WINDOW, profile.alert_window}, key=duration_s)
    recording = [rule for window in windows for rule in recording_rules(window)]
    # Without an interval of its own a group follows the server's evaluation_interval.
    interval = {"interval": profile.evaluation_interval} if profile.evaluation_interval else {}
    groups = [
        {"name": "driftgate-recording", **interval, "rules": recording + drift_recording_rules()},
        {"name": "driftgate-alerts", **interval, "rules": alerting_rules(profile)},
    ]
    return {"groups": groups}


def render(profile: RuleProfile) -> str:
    """The text of a profile's rule file, with a header naming its source."""
    header = (
        f"# Prometheus rules of driftgate, profile {profile.name!r}.\n"
        "# Generated by prometheus/generate_rules.py: edit its PROFILES table, then run\n"
        "#   python -m prometheus.generate_rules\n"
    )
    body = yaml.safe_dump(rule_groups(profile), sort_keys=False, width=100)
    return header + body


def write_all(rules_dir: Path = RULES_DIR) -> list[Path]:
    """Write every profile's rule file; return the paths written."""
    rules_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for profile in PROFILES.values():
        path = rule_file_path(profile.name, rules_dir)
        path.write_text(render(profile))
        logger.info("wrote profile=%s path=%s", profile.name, path)
        written.append(path)
    return written


def duration_s(duration: str) -> float:
    """Seconds in a Prometheus duration with one unit (``"5s"``, ``"5m"``, ``"1h"``)."""
    units_s = {"s": 1.0, "m": 60.0, "h": 3600.0}
    return float(duration[:-1]) * units_s[duration[-1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules-dir", type=Path, default=RULES_DIR)
    arguments = parser.parse_args()
    for path in write_all(arguments.rules_dir):
        print(path)


if __name__ == "__main__":
    main()
