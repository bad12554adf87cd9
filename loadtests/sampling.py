"""Requests with their true labels: held-out rows, drifted for the phase, encoded once.

The hot loop of a Locust user must be cheap, so rows are drawn, drifted and encoded as JSON
in blocks (numpy for the drift, orjson for the bodies) and handed out one by one. A block is
refreshed when the phase changes, when it is used up, and, for drifts that change within a
phase (gradual, recurring), when it is older than ``max_block_age_s`` of phase time, so the
drift a request carries lags the schedule by at most that much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from driftgate.scenario import DriftBase
from loadtests.drift import PhaseProgress, ReferenceStats, Rows, apply_traffic, is_time_varying
from loadtests.schedule import ScheduledPhase
from target_service.dataset import FEATURE_NAMES, load_split

DEFAULT_BLOCK_SIZE = 256
DEFAULT_MAX_BLOCK_AGE_S = 0.5


@dataclass(frozen=True)
class Sample:
    """One request body and the true label of its record."""

    body: bytes
    true_label: str


class HoldoutPool:
    """The held-out rows the load replays (never used in training)."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    @classmethod
    def from_dataset(cls) -> HoldoutPool:
        return cls(Rows.from_frame(load_split().holdout))

    def draw(self, rng: np.random.Generator, count: int) -> Rows:
        """``count`` rows drawn uniformly with replacement."""
        return self.rows.take(rng.integers(0, len(self.rows), count))


def encode_records(rows: Rows) -> list[bytes]:
    """One JSON body per row, with all features of the API and nothing else."""
    columns = [rows.columns[name].tolist() for name in FEATURE_NAMES]
    return [
        orjson.dumps(dict(zip(FEATURE_NAMES, values, strict=True)))
        for values in zip(*columns, strict=True)
    ]


class TrafficSource:
    """Per Locust process: hands out samples of the traffic the current phase asks for."""

    def __init__(
        self,
        pool: HoldoutPool,
        reference: ReferenceStats,
        rng: np.random.Generator,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_block_age_s: float = DEFAULT_MAX_BLOCK_AGE_S,
    ) -> None:
        self._pool = pool
        self._reference = reference
        self._rng = rng
        self._block_size = block_size
        self._max_block_age_s = max_block_age_s
        self._bodies: list[bytes] = []
        self._labels: list[str] = []
        self._next = 0
        self._phase_index = -1
        self._made_at_s = 0.0

    def sample(self, scheduled: ScheduledPhase, elapsed_in_phase_s: float) -> Sample:
        """The next request for ``scheduled``, ``elapsed_in_phase_s`` into the phase."""
        if self._stale(scheduled, elapsed_in_phase_s):
            self._refill(scheduled, elapsed_in_phase_s)

        index = self._next
        self._next += 1
        return Sample(self._bodies[index], self._labels[index])

    def _stale(self, scheduled: ScheduledPhase, elapsed_in_phase_s: float) -> bool:
        if scheduled.index != self._phase_index or self._next >= len(self._bodies):
            return True
        spec: DriftBase = scheduled.phase.traffic
        too_old = abs(elapsed_in_phase_s - self._made_at_s) > self._max_block_age_s
        return too_old and is_time_varying(spec)

    def _refill(self, scheduled: ScheduledPhase, elapsed_in_phase_s: float) -> None:
        rows = self._pool.draw(self._rng, self._block_size)
        progress = PhaseProgress(elapsed_in_phase_s, scheduled.phase.duration)
        drifted = apply_traffic(rows, scheduled.phase.traffic, self._reference, self._rng, progress)

        self._bodies = encode_records(drifted)
        self._labels = drifted.labels.tolist()
        self._next = 0
        self._phase_index = scheduled.index
        self._made_at_s = elapsed_in_phase_s
