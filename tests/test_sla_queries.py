"""PromQL text: whole-window quantiles keep `le`, label values are escaped."""

from __future__ import annotations

from sla.queries import (
    counter_increase,
    selector,
    server_error_increase,
    substitute_window,
    window_quantile,
    worst_minute_quantile,
)


def test_window_quantile_aggregates_bucket_increases_by_le() -> None:
    query = window_quantile(0.95, "inference_latency_seconds", {"model_version": "v1"}, 300.0)
    assert query == (
        "histogram_quantile(0.95, sum by (le) "
        '(increase(inference_latency_seconds_bucket{model_version="v1"}[300s])))'
    )


def test_worst_minute_uses_one_minute_rates_inside_the_window() -> None:
    query = worst_minute_quantile(0.99, "inference_latency_seconds", {}, 600.0, 15.0)
    assert query == (
        "max_over_time(histogram_quantile(0.99, sum by (le) "
        "(rate(inference_latency_seconds_bucket[60s])))[540s:15s])"
    )


def test_label_values_cannot_break_out_of_their_matcher() -> None:
    assert selector("m", {"route": 'a"}or vector(1)#'}) == 'm{route="a\\"}or vector(1)#"}'
    assert selector("m", {}) == "m"


def test_error_and_total_counts() -> None:
    labels = {"route": "/predict"}
    assert (
        counter_increase("x_count", labels, 60.0) == 'sum(increase(x_count{route="/predict"}[60s]))'
    )
    assert server_error_increase("x_count", labels, 60.0) == (
        'sum(increase(x_count{route="/predict",status=~"5.."}[60s]))'
    )


def test_window_placeholder() -> None:
    assert substitute_window("rate(x[$window])", 90.5) == "rate(x[90500ms])"
