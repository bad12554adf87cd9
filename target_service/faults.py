"""Faults injected into a model version from configuration (never from an endpoint).

Extra latency is awaited inside the timed model call, so ``inference_latency_seconds``
shows it without blocking the event loop; an error share answers HTTP 500; a degraded
share flips predictions to the other class (keeping the reported confidence, as a silently
broken model would), so only the accuracy fed back reveals it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import numpy as np

from target_service.config import VersionFaults


class InjectedFault(Exception):
    """An error deliberately injected into a request (answered with HTTP 500)."""


class FaultInjector:
    """Applies ``settings.faults`` to the requests of each model version."""

    def __init__(self, faults: Mapping[str, VersionFaults], rng: np.random.Generator) -> None:
        self._faults = {version: f for version, f in faults.items() if _is_active(f)}
        self._rng = rng

    def has_faults(self, version: str) -> bool:
        return version in self._faults

    def maybe_fail(self, version: str) -> None:
        """Raise InjectedFault for ``error_rate`` of the calls of ``version``."""
        faults = self._faults.get(version)
        if faults is not None and faults.error_rate > 0 and self._rng.random() < faults.error_rate:
            raise InjectedFault(f"injected error for model version {version}")

    async def delay(self, version: str) -> None:
        """Await the extra latency (fixed part plus uniform jitter) of ``version``."""
        faults = self._faults.get(version)
        if faults is None:
            return
        delay_s = faults.extra_latency_s
        if faults.jitter_s > 0:
            delay_s += faults.jitter_s * self._rng.random()
        if delay_s > 0:
            await asyncio.sleep(delay_s)

    def degrade(self, version: str, predicted: np.ndarray) -> np.ndarray:
        """Predicted class indices (0/1) with ``degraded_share`` of them flipped."""
        faults = self._faults.get(version)
        if faults is None or faults.degraded_share == 0:
            return predicted
        flip = self._rng.random(predicted.shape[0]) < faults.degraded_share
        return np.where(flip, 1 - predicted, predicted)


def _is_active(faults: VersionFaults) -> bool:
    return any((faults.extra_latency_s, faults.jitter_s, faults.error_rate, faults.degraded_share))
