"""PromQL builders: every query the checker runs is written here, as text the report quotes.

Quantiles over a window are computed from the bucket increases over the whole window,
``histogram_quantile(q, sum by (le) (increase(X_bucket{...}[W])))`` evaluated at the window end:
the quantile of all requests in the window, not the worst of short rate windows. ``le`` is
kept in every aggregation (dropping it destroys the histogram). ``increase`` handles counter
resets (a restarted service) by treating a drop as a restart from zero.

Label values are escaped, so a route or version cannot break out of its matcher.
"""

from __future__ import annotations

from collections.abc import Mapping

from sla.windows import WORST_WINDOW_S, promql_duration

SERVER_ERROR_STATUS_RE = "5.."


def escape_label_value(value: str) -> str:
    """A label value as a PromQL double-quoted string body."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(
    metric: str, labels: Mapping[str, str], regex_labels: Mapping[str, str] | None = None
) -> str:
    """``metric{a="x",b=~"y"}``, matchers sorted by label name for a stable text."""
    matchers = [f'{name}="{escape_label_value(value)}"' for name, value in sorted(labels.items())]
    matchers += [
        f'{name}=~"{escape_label_value(value)}"'
        for name, value in sorted((regex_labels or {}).items())
    ]
    return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def bucket_increases(metric: str, labels: Mapping[str, str], window_s: float) -> str:
    """The cumulative histogram of the window: one sample per ``le``."""
    bucket = selector(f"{metric}_bucket", labels)
    return f"sum by (le) (increase({bucket}[{promql_duration(window_s)}]))"


def window_quantile(
    quantile: float, metric: str, labels: Mapping[str, str], window_s: float
) -> str:
    """The ``quantile`` of all observations in the window."""
    return f"histogram_quantile({quantile:g}, {bucket_increases(metric, labels, window_s)})"


def worst_minute_quantile(
    quantile: float, metric: str, labels: Mapping[str, str], window_s: float, step_s: float
) -> str:
    """The highest 1-minute ``quantile`` among sub-windows lying wholly inside the window.

    The subquery runs every ``step_s`` (the scrape interval) over ``window_s - 60s``, so the
    earliest 1-minute rate starts at the window start.
    """
    bucket = selector(f"{metric}_bucket", labels)
    minute = promql_duration(WORST_WINDOW_S)
    inner = f"histogram_quantile({quantile:g}, sum by (le) (rate({bucket}[{minute}])))"
    span = promql_duration(window_s - WORST_WINDOW_S)
    return f"max_over_time({inner}[{span}:{promql_duration(step_s)}])"


def counter_increase(metric: str, labels: Mapping[str, str], window_s: float) -> str:
    """Total increase of a counter over the window, summed over its series."""
    return f"sum(increase({selector(metric, labels)}[{promql_duration(window_s)}]))"


def server_error_increase(metric: str, labels: Mapping[str, str], window_s: float) -> str:
    """Increase of the 5xx answers of a request counter over the window."""
    series = selector(metric, labels, {"status": SERVER_ERROR_STATUS_RE})
    return f"sum(increase({series}[{promql_duration(window_s)}]))"


def counter_rate(metric: str, labels: Mapping[str, str], window_s: float) -> str:
    """Average per-second rate of a counter over the window, summed over its series."""
    return f"sum(rate({selector(metric, labels)}[{promql_duration(window_s)}]))"


def gauge_last(metric: str, labels: Mapping[str, str], window_s: float) -> str:
    """The latest value of a gauge within the window (one per series)."""
    return f"last_over_time({selector(metric, labels)}[{promql_duration(window_s)}])"


def gauge_max(metric: str, labels: Mapping[str, str], window_s: float) -> str:
    """The highest value of a gauge over the raw samples of the window."""
    return f"max(max_over_time({selector(metric, labels)}[{promql_duration(window_s)}]))"


def gauge_now(metric: str, labels: Mapping[str, str]) -> str:
    """The gauge's highest value across series, for a range query."""
    return f"max({selector(metric, labels)})"


def firing_alert(alert: str, labels: Mapping[str, str]) -> str:
    """The ALERTS series of ``alert`` while it fires (absent otherwise)."""
    return selector("ALERTS", {**labels, "alertname": alert, "alertstate": "firing"})


def alert_fired_in_window(alert: str, labels: Mapping[str, str], window_s: float) -> str:
    """1 if ``alert`` fired at any evaluation in the window; no result if it never did."""
    return f"max(max_over_time({firing_alert(alert, labels)}[{promql_duration(window_s)}]))"


def scrape_samples(job: str, window_s: float) -> str:
    """How many scrapes of each target of ``job`` the window holds."""
    return f"count_over_time({selector('up', {'job': job})}[{promql_duration(window_s)}])"


def scrape_lowest_up(job: str, window_s: float) -> str:
    """The lowest ``up`` of each target of ``job`` in the window (0: a failed scrape)."""
    return f"min_over_time({selector('up', {'job': job})}[{promql_duration(window_s)}])"


def scrape_raw(job: str, window_s: float) -> str:
    """Raw ``up`` samples of ``job``, to infer the scrape interval from their spacing."""
    return f"{selector('up', {'job': job})}[{promql_duration(window_s)}]"


def substitute_window(query: str, window_s: float) -> str:
    """A user's PromQL with ``$window`` replaced by the window length."""
    return query.replace("$window", promql_duration(window_s))
