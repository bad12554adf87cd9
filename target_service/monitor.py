"""Runtime drift and accuracy monitoring, off the request path and across worker processes.

The request handler only appends encoded rows to a ring buffer (microseconds). Each worker
process owns two rings, memory-mapped files in a directory all workers share: one for
accepted input rows, one for feedback outcomes. Every ``evaluation_interval_s`` each worker
tries to take an exclusive ``fcntl`` lock on ``leader.lock``; the one holding it (the
leader) reads the new entries of every worker's rings, feeds the drift detector, computes
rolling accuracy per model version, and alone sets the drift and accuracy gauges. When the
leader dies the kernel drops its lock and another worker takes over at its next tick,
rebuilding its window from what the rings still hold.

Known approximations, all small against a window of hundreds of rows: rows of different
workers enter the window in the order the leader reads them, not in arrival order; a
worker that writes more than a ring's capacity between two reads loses the oldest of
those rows; and a row may be read while its writer overwrites it a lap later.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import mmap
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from prometheus_client import multiprocess

from target_service.config import DriftSettings
from target_service.dataset import FeatureSpec
from target_service.metrics import ServiceMetrics
from target_service.models import UNSEEN_CODE

logger = logging.getLogger(__name__)

HEADER_SLOTS = 8
COUNT_SLOT = 0
WIDTH_SLOT = 1
CAPACITY_SLOT = 2
HEADER_BYTES = HEADER_SLOTS * 8
ROWS_PREFIX = "rows-"
FEEDBACK_PREFIX = "feedback-"
RING_SUFFIX = ".ring"
LEADER_LOCK = "leader.lock"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
MIN_RING_CAPACITY = 1024
UNSEEN_CATEGORY = "<unseen>"


class RowRing:
    """A fixed-size ring of float64 rows in a memory-mapped file: one writer, many readers.

    The header's count is the number of rows ever appended; row ``i`` lives in slot
    ``i % capacity``. A writer fills the slots, then publishes the new count.
    """

    def __init__(self, path: Path, width: int, capacity: int, *, create: bool) -> None:
        self.path = path
        size = HEADER_BYTES + width * capacity * 8
        if create:
            with open(path, "wb") as handle:
                handle.truncate(size)
        with open(path, "r+b" if create else "rb") as handle:
            access = mmap.ACCESS_WRITE if create else mmap.ACCESS_READ
            self._map = mmap.mmap(handle.fileno(), 0, access=access)
        self._header = np.frombuffer(self._map, dtype=np.int64, count=HEADER_SLOTS)
        if create:
            self._header[WIDTH_SLOT] = width
            self._header[CAPACITY_SLOT] = capacity
        self.width = int(self._header[WIDTH_SLOT])
        self.capacity = int(self._header[CAPACITY_SLOT])
        self._rows = np.frombuffer(
            self._map, dtype=np.float64, offset=HEADER_BYTES, count=self.width * self.capacity
        ).reshape(self.capacity, self.width)

    @classmethod
    def open_for_reading(cls, path: Path) -> RowRing:
        return cls(path, 0, 0, create=False)

    @property
    def count(self) -> int:
        return int(self._header[COUNT_SLOT])

    def append(self, rows: np.ndarray) -> None:
        """Append rows of shape (n, width); only the last ``capacity`` of a huge batch stay."""
        count = int(self._header[COUNT_SLOT])
        if rows.shape[0] == 1:
            # The common case, a single record: skip the index arithmetic.
            self._rows[count % self.capacity] = rows[0]
            self._header[COUNT_SLOT] = count + 1
            return
        kept = rows[-self.capacity :]
        first = count + rows.shape[0] - kept.shape[0]
        self._rows[(first + np.arange(kept.shape[0])) % self.capacity] = kept
        self._header[COUNT_SLOT] = count + rows.shape[0]

    def read_since(self, cursor: int) -> tuple[np.ndarray, int]:
        """Rows appended since ``cursor`` (at most ``capacity``, the newest), and the new cursor."""
        count = int(self._header[COUNT_SLOT])
        start = max(cursor, count - self.capacity)
        slots = np.arange(start, count) % self.capacity
        return self._rows[slots].copy(), count

    def close(self) -> None:
        # The numpy views hold exported buffers; drop them before closing the map.
        del self._rows, self._header
        with contextlib.suppress(BufferError):
            self._map.close()


class DriftDetectorLike(Protocol):
    """What the monitor needs from ``target_service.drift.DriftDetector``."""

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray: ...

    def observe(self, rows: np.ndarray) -> None: ...

    def evaluate(self) -> Any: ...


DetectorFactory = Callable[[], DriftDetectorLike]


def default_detector_factory(
    reference: pd.DataFrame,
    features: Sequence[FeatureSpec],
    settings: DriftSettings,
    rng: np.random.Generator,
) -> DetectorFactory:
    """A factory of the project's DriftDetector on ``reference``; built only by the leader."""

    def build() -> DriftDetectorLike:
        from target_service.drift import DriftDetector

        return DriftDetector(reference, tuple(features), settings, rng)

    return build


class MonitoringService:
    """Feeds drift and accuracy monitoring from request rows, and publishes gauges as leader.

    ``record_rows`` and ``record_feedback`` are the only calls on the request path.
    ``start()``/``stop()`` run the periodic leader task inside the event loop; ``tick()``
    does one round synchronously (tests call it directly).
    """

    def __init__(
        self,
        *,
        shared_dir: Path,
        features: Sequence[FeatureSpec],
        versions: Sequence[str],
        metrics: ServiceMetrics,
        drift: DriftSettings,
        detector_factory: DetectorFactory | None,
        feedback_window: int,
        process_tag: str | None = None,
    ) -> None:
        self.features = tuple(features)
        self.versions = tuple(versions)
        self.metrics = metrics
        self.drift = drift
        self.feedback_window = feedback_window
        self._shared_dir = shared_dir
        self._detector_factory = detector_factory if drift.enabled else None
        self._detector: DriftDetectorLike | None = None
        self._raw_rows_match = False
        self._rows_ring: RowRing | None = None
        self._feedback_ring: RowRing | None = None
        self._lock_descriptor: int | None = None
        self._readers: dict[Path, RowRing] = {}
        self._dead_pids: set[int] = set()
        self._cursors: dict[Path, int] = {}
        self._outcomes: dict[str, deque[float]] = {
            version: deque(maxlen=feedback_window) for version in self.versions
        }
        self._task: asyncio.Task[None] | None = None
        # Names this process's rings; the pid unless a test runs several monitors in one process.
        self._process_tag = process_tag

    @property
    def rows_recorded(self) -> int:
        """Rows this process has queued for the drift window since it started."""
        return 0 if self._rows_ring is None else self._rows_ring.count

    @property
    def is_leader(self) -> bool:
        return self._lock_descriptor is not None

    def open(self) -> None:
        """Create this process's rings (call in the worker process, after any fork)."""
        self._shared_dir.mkdir(parents=True, exist_ok=True)
        tag = self._process_tag or str(os.getpid())
        capacity = max(MIN_RING_CAPACITY, 2 * self.drift.window_size)
        if self._detector_factory is not None:
            path = self._shared_dir / f"{ROWS_PREFIX}{tag}{RING_SUFFIX}"
            self._rows_ring = RowRing(path, len(self.features), capacity, create=True)
        path = self._shared_dir / f"{FEEDBACK_PREFIX}{tag}{RING_SUFFIX}"
        self._feedback_ring = RowRing(path, 3, max(capacity, 2 * self.feedback_window), create=True)

    def record_rows(self, raw: np.ndarray) -> None:
        """Queue accepted raw rows for the drift window (request path: a memory copy)."""
        if self._rows_ring is not None:
            self._rows_ring.append(raw)

    def record_feedback(self, version: str, correct: bool) -> None:
        """Queue one feedback outcome for the rolling accuracy (request path)."""
        if self._feedback_ring is not None:
            entry = np.array([[time.time(), self.versions.index(version), float(correct)]])
            self._feedback_ring.append(entry)

    def start(self) -> None:
        """Open the rings and start the periodic task in the running event loop."""
        self.open()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the periodic task, release leadership and unmap the rings."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lock_descriptor is not None:
            os.close(self._lock_descriptor)
            self._lock_descriptor = None
        for ring in (self._rows_ring, self._feedback_ring, *self._readers.values()):
            if ring is not None:
                ring.close()
        self._rows_ring = self._feedback_ring = None
        self._readers.clear()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.drift.evaluation_interval_s)
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                # The monitor must never take the service down; the next tick tries again.
                logger.exception(
                    "monitor tick failed; retrying in %ss", self.drift.evaluation_interval_s
                )

    def tick(self) -> bool:
        """One round: take leadership if free; as leader, read all rings and publish gauges."""
        if not self.is_leader and not self._try_lead():
            return False
        self._forget_dead_workers()
        self._update_accuracy()
        if self._detector_factory is not None:
            self._update_drift()
        return True

    def _try_lead(self) -> bool:
        descriptor = os.open(self._shared_dir / LEADER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._lock_descriptor = descriptor
        logger.info("monitor leader pid=%s", os.getpid())
        return True

    def _forget_dead_workers(self) -> None:
        # A worker that crashed never called mark_process_dead, so its last "live" gauge
        # values (a crashed leader's drift gauges) would linger; its ring names its pid.
        if not os.environ.get(MULTIPROCESS_ENV):
            return
        for path in self._shared_dir.glob(f"{FEEDBACK_PREFIX}*{RING_SUFFIX}"):
            tag = path.name.removeprefix(FEEDBACK_PREFIX).removesuffix(RING_SUFFIX)
            if not tag.isdigit() or int(tag) in self._dead_pids or _is_alive(int(tag)):
                continue
            multiprocess.mark_process_dead(int(tag))
            self._dead_pids.add(int(tag))

    def _read_new(self, prefix: str) -> list[np.ndarray]:
        batches = []
        for path in sorted(self._shared_dir.glob(f"{prefix}*{RING_SUFFIX}")):
            ring = self._readers.get(path)
            if ring is None:
                ring = self._readers[path] = RowRing.open_for_reading(path)
            rows, self._cursors[path] = ring.read_since(self._cursors.get(path, 0))
            if rows.shape[0]:
                batches.append(rows)
        return batches

    def _update_accuracy(self) -> None:
        batches = self._read_new(FEEDBACK_PREFIX)
        if not batches:
            return
        entries = np.concatenate(batches)
        for _, version_index, correct in entries[np.argsort(entries[:, 0], kind="stable")]:
            self._outcomes[self.versions[int(version_index)]].append(correct)
        for version, outcomes in self._outcomes.items():
            if outcomes:
                self.metrics.accuracy_gauge.labels(version).set(sum(outcomes) / len(outcomes))

    def _update_drift(self) -> None:
        if self._detector is None and self._detector_factory is not None:
            self._detector = self._detector_factory()
            self._raw_rows_match = self._encodings_agree(self._detector)
        detector = self._detector
        if detector is None:
            return
        batches = self._read_new(ROWS_PREFIX)
        if batches:
            raw = np.concatenate(batches)
            rows = raw if self._raw_rows_match else detector.encode(self.decode(raw))
            detector.observe(rows)
        report = detector.evaluate()
        self._publish(report)

    def _encodings_agree(self, detector: DriftDetectorLike) -> bool:
        """Whether the detector encodes records exactly as raw rows are (then no round trip).

        Decoding rows into records and encoding them again costs about 10 us a row; when a
        probe with every category, an unseen one and a null comes back unchanged, the raw
        rows are fed to the detector as they are.
        """
        width = max([len(spec.categories) for spec in self.features] + [1]) + 2
        probe = np.zeros((width, len(self.features)))
        for column, spec in enumerate(self.features):
            if spec.kind == "numeric":
                probe[:, column] = np.linspace(-1.5, 2.5, width)
                continue
            codes = [*range(len(spec.categories)), UNSEEN_CODE, math.nan]
            probe[:, column] = [codes[row % len(codes)] for row in range(width)]
        encoded = detector.encode(self.decode(probe))
        agree = encoded.shape == probe.shape and np.array_equal(encoded, probe, equal_nan=True)
        logger.info("monitor feeds raw rows to the detector directly: %s", agree)
        return agree

    def decode(self, raw: np.ndarray) -> list[dict[str, float | str | None]]:
        """Records back from raw rows: null stays None, an unseen category becomes
        ``UNSEEN_CATEGORY`` (the original string is not kept: it must not reach any label)."""
        columns: list[list[float | str | None]] = []
        for column, spec in enumerate(self.features):
            values = raw[:, column]
            if spec.kind == "numeric":
                columns.append(values.tolist())
                continue
            # Index -1 (unseen) picks the last entry.
            lookup = [*spec.categories, UNSEEN_CATEGORY]
            columns.append([None if math.isnan(code) else lookup[int(code)] for code in values])
        names = [spec.name for spec in self.features]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def _publish(self, report: Any) -> None:
        metrics = self.metrics
        categorical = {spec.name for spec in self.features if spec.kind == "categorical"}
        for drift in report.features:
            metrics.drift_score.labels(drift.feature).set(drift.score)
            metrics.drift_pvalue.labels(drift.feature).set(drift.p_value)
            metrics.drift_detected.labels(drift.feature).set(1.0 if drift.detected else 0.0)
            if drift.feature in categorical:
                metrics.missing_share.labels(drift.feature).set(drift.missing_or_unseen_share)
        metrics.dataset_drift_share.set(report.dataset_drift_share)
        metrics.drift_window_size.set(report.window_size)
        metrics.drift_last_evaluation.set(time.time())


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
