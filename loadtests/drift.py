"""The drift kinds: small pure functions from rows to drifted rows (and true labels).

Every kind has the same signature::

    kind(rows, spec, reference, rng, progress) -> Rows

``rows`` are held-out records with their true labels, ``reference`` holds the training
data's statistics (the drift monitor's reference), ``rng`` is the caller's generator and
``progress`` says where in the phase the rows are sent. Nothing else is read or changed.

Numeric values are clipped to the range the API accepts (``valid_min``/``valid_max``), so a
large shift of a feature near its bound moves the mean less than asked; the shipped
scenarios stay well inside the bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from driftgate.scenario import (
    CategoryShift,
    ConceptDrift,
    DriftBase,
    GradualDrift,
    MeanShift,
    NormalTraffic,
    PriorShift,
    RecurringDrift,
    ScaleChange,
)
from target_service.dataset import CLASSES, FEATURES_BY_NAME, NUMERIC_FEATURES, TARGET


@dataclass(frozen=True)
class Rows:
    """A block of records: one numpy array per feature, and the true labels."""

    columns: dict[str, np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> Rows:
        """The rows at ``indices`` (repeats allowed)."""
        return Rows(
            {name: values[indices] for name, values in self.columns.items()}, self.labels[indices]
        )

    def with_column(self, name: str, values: np.ndarray) -> Rows:
        return replace(self, columns={**self.columns, name: values})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Rows:
        """Rows from a frame of the dataset (features plus the ``visited_doctor`` label)."""
        columns = {
            name: frame[name].to_numpy(dtype=float if spec.kind == "numeric" else object)
            for name, spec in FEATURES_BY_NAME.items()
        }
        return cls(columns, frame[TARGET].to_numpy(dtype=object))


@dataclass(frozen=True)
class ReferenceStats:
    """Per numeric feature: the training mean, standard deviation and sorted values."""

    mean: dict[str, float]
    std: dict[str, float]
    sorted_values: dict[str, np.ndarray] = field(repr=False)

    @classmethod
    def from_frame(cls, train: pd.DataFrame) -> ReferenceStats:
        values = {name: np.sort(train[name].to_numpy(dtype=float)) for name in NUMERIC_FEATURES}
        return cls(
            mean={name: float(v.mean()) for name, v in values.items()},
            std={name: float(v.std()) for name, v in values.items()},
            sorted_values=values,
        )

    def quantile(self, name: str, q: float) -> float:
        return float(np.quantile(self.sorted_values[name], q))


@dataclass(frozen=True)
class PhaseProgress:
    """Where in its phase a block of rows is sent."""

    elapsed_s: float
    duration_s: float

    @property
    def fraction(self) -> float:
        """0 at the phase start, 1 at its end."""
        if self.duration_s <= 0:
            return 1.0
        return min(max(self.elapsed_s / self.duration_s, 0.0), 1.0)


def _clip(name: str, values: np.ndarray) -> np.ndarray:
    spec = FEATURES_BY_NAME[name]
    return np.clip(values, spec.valid_min, spec.valid_max)


def _shift(
    rows: Rows, spec: DriftBase, reference: ReferenceStats, size_sd: float, direction: str
) -> Rows:
    sign = 1.0 if direction == "up" else -1.0
    for name in spec.feature_names():
        moved = rows.columns[name] + sign * size_sd * reference.std[name]
        rows = rows.with_column(name, _clip(name, moved))
    return rows


def normal(
    rows: Rows,
    spec: NormalTraffic,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """Rows as they are."""
    return rows


def mean_shift(
    rows: Rows,
    spec: MeanShift,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """Each feature moves by ``size`` training standard deviations."""
    return _shift(rows, spec, reference, spec.size, spec.direction)


def scale_change(
    rows: Rows,
    spec: ScaleChange,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """Each feature's distance from the training mean is multiplied by ``size``."""
    for name in spec.feature_names():
        centre = reference.mean[name]
        rows = rows.with_column(
            name, _clip(name, centre + (rows.columns[name] - centre) * spec.size)
        )
    return rows


def gradual_drift(
    rows: Rows,
    spec: GradualDrift,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """A mean shift of ``size * fraction of the phase elapsed`` standard deviations."""
    return _shift(rows, spec, reference, spec.size * progress.fraction, spec.direction)


def recurring_is_on(spec: RecurringDrift, elapsed_s: float) -> bool:
    """Whether the recurring drift is on ``elapsed_s`` into its phase (it starts on)."""
    return (elapsed_s % (spec.on + spec.off)) < spec.on


def recurring_drift(
    rows: Rows,
    spec: RecurringDrift,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """A mean shift of ``size`` SDs while on, nothing while off."""
    if not recurring_is_on(spec, progress.elapsed_s):
        return rows
    return _shift(rows, spec, reference, spec.size, spec.direction)


def category_shift(
    rows: Rows,
    spec: CategoryShift,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """Each row independently, with chance ``size``, gets ``category`` in each feature."""
    for name in spec.feature_names():
        moved = rng.random(len(rows)) < spec.size
        values = rows.columns[name].copy()
        values[moved] = spec.category
        rows = rows.with_column(name, values)
    return rows


def prior_shift(
    rows: Rows,
    spec: PriorShift,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """As many rows, resampled by label so that a share ``size`` carries ``label``.

    Rows of each label are drawn with replacement from the given rows of that label; if
    the block holds no row of a label, that label cannot be produced and the block is
    returned as it is (callers draw blocks of hundreds of rows, where this does not happen).
    """
    is_label = rows.labels == spec.label
    with_label = np.flatnonzero(is_label)
    without_label = np.flatnonzero(~is_label)
    if len(with_label) == 0 or len(without_label) == 0:
        return rows

    wants_label = rng.random(len(rows)) < spec.size
    chosen = np.where(
        wants_label,
        with_label[rng.integers(0, len(with_label), len(rows))],
        without_label[rng.integers(0, len(without_label), len(rows))],
    )
    return rows.take(chosen)


def concept_region(rows: Rows, spec: ConceptDrift, reference: ReferenceStats) -> np.ndarray:
    """Rows where any of the features is above its reference ``above_quantile``."""
    region = np.zeros(len(rows), dtype=bool)
    for name in spec.feature_names():
        region |= rows.columns[name] > reference.quantile(name, spec.above_quantile)
    return region


def concept_drift(
    rows: Rows,
    spec: ConceptDrift,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """Inputs unchanged; inside the region, a share ``size`` of labels become the other class."""
    flipped = concept_region(rows, spec, reference) & (rng.random(len(rows)) < spec.size)
    other = np.where(rows.labels == CLASSES[0], CLASSES[1], CLASSES[0]).astype(object)
    return replace(rows, labels=np.where(flipped, other, rows.labels))


DRIFT_FUNCTIONS: dict[str, Callable[..., Rows]] = {
    "normal": normal,
    "mean_shift": mean_shift,
    "scale": scale_change,
    "gradual": gradual_drift,
    "recurring": recurring_drift,
    "category_shift": category_shift,
    "prior_shift": prior_shift,
    "concept": concept_drift,
}


def apply_traffic(
    rows: Rows,
    spec: DriftBase,
    reference: ReferenceStats,
    rng: np.random.Generator,
    progress: PhaseProgress,
) -> Rows:
    """Apply the drift ``spec`` names by its kind."""
    kind: str = getattr(spec, "kind", "normal")
    return DRIFT_FUNCTIONS[kind](rows, spec, reference, rng, progress)


def is_time_varying(spec: DriftBase) -> bool:
    """Whether the drift changes within a phase (so blocks of rows must stay short-lived)."""
    return getattr(spec, "kind", "normal") in ("gradual", "recurring")
