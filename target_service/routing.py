"""Which model version answers a request: a seeded weighted split, or the caller's choice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from target_service.schemas import RequestRejected


class VersionRouter:
    """Weighted random split between versions, overridable by the ``X-Model-Version`` header.

    ``rng`` is passed in, so a seeded router routes the same sequence of requests the same way.
    """

    def __init__(
        self, weights: Mapping[str, float], versions: Sequence[str], rng: np.random.Generator
    ) -> None:
        self.versions = tuple(versions)
        total = sum(weights.values())
        shares = np.array([weights.get(version, 0.0) / total for version in self.versions])
        self._cumulative = np.cumsum(shares)
        self._rng = rng

    def choose(self, requested: str | None) -> str:
        """The version named by ``requested`` if given, else one drawn by weight."""
        if requested is not None:
            if requested not in self.versions:
                raise RequestRejected(
                    400,
                    "unknown_model_version",
                    f"X-Model-Version: {requested[:40]!r} is not a model version; "
                    f"known: {', '.join(self.versions)}",
                )
            return requested
        draw = self._rng.random()
        index = int(np.searchsorted(self._cumulative, draw, side="right"))
        return self.versions[min(index, len(self.versions) - 1)]
