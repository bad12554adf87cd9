"""The live progress panel of ``driftgate run``: phase, time left, load and drift, every second."""

from __future__ import annotations

import math

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from loadtests.runner import LoadProgress


def query_drift_share(prometheus_url: str) -> float | None:
    """The live ``dataset_drift_share``, or None when Prometheus has no value yet."""
    try:
        response = httpx.get(
            f"{prometheus_url}/api/v1/query",
            params={"query": "max(dataset_drift_share)"},
            timeout=0.5,
        )
        result = response.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


class ProgressPanel:
    """A table redrawn in place on a terminal; plain lines every few seconds elsewhere."""

    def __init__(self, console: Console, prometheus_url: str) -> None:
        self._console = console
        self._prometheus_url = prometheus_url
        self._live = Live(console=console, auto_refresh=False, transient=False)
        self._reports_seen = 0

    def __enter__(self) -> ProgressPanel:
        if self._console.is_terminal:
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._console.is_terminal:
            self._live.stop()

    def update(self, progress: LoadProgress) -> None:
        drift_share = query_drift_share(self._prometheus_url)
        self._reports_seen += 1
        if self._console.is_terminal:
            self._live.update(_table(progress, drift_share), refresh=True)
        elif self._reports_seen % 5 == 1:
            # Logs and CI consoles get a line every ~5 s instead of a redrawn table.
            self._console.print(_line(progress, drift_share))


def _fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _fmt_share(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _table(progress: LoadProgress, drift_share: float | None) -> Table:
    table = Table(title="driftgate run", title_justify="left", show_header=True)
    for column in ("phase", "phase left", "run left", "users", "req/s", "p95", "errors", "drift"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    table.add_row(
        progress.phase,
        f"{progress.phase_left_s:.0f} s",
        f"{progress.run_left_s:.0f} s",
        str(progress.users),
        f"{progress.requests_per_s:.0f}",
        _fmt_ms(progress.p95_s),
        f"{progress.error_ratio:.1%}",
        _fmt_share(drift_share),
    )
    return table


def _line(progress: LoadProgress, drift_share: float | None) -> str:
    return (
        f"phase={progress.phase} phase_left={progress.phase_left_s:.0f}s "
        f"run_left={progress.run_left_s:.0f}s users={progress.users} "
        f"rps={progress.requests_per_s:.0f} p95={_fmt_ms(progress.p95_s)} "
        f"errors={progress.error_ratio:.1%} drift_share={_fmt_share(drift_share)}"
    )
