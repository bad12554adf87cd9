"""Time spent in each stage of a run, printed at the end so slow stages are visible."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

logger = logging.getLogger(__name__)


@dataclass
class StageTimer:
    """Records the wall time of named stages in the order they ran."""

    durations_s: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed_s = time.perf_counter() - started
            self.durations_s[name] = elapsed_s
            logger.info("stage=%s elapsed_s=%.2f", name, elapsed_s)

    @property
    def total_s(self) -> float:
        return sum(self.durations_s.values())

    def print(self, console: Console) -> None:
        table = Table(title="Time per stage", title_justify="left")
        table.add_column("stage")
        table.add_column("seconds", justify="right")
        for name, elapsed_s in self.durations_s.items():
            table.add_row(name, f"{elapsed_s:.1f}")
        table.add_row("total", f"{self.total_s:.1f}", style="bold")
        console.print(table)
