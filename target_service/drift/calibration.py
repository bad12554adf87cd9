"""Thresholds of the CUSUM detectors, calibrated by bootstrap from the reference rows.

The question answered: which threshold ``h`` makes a one-sided CUSUM on reference-like traffic
cross ``h`` at least once in ``horizon_steps`` requests with probability at most ``target``?

Targets are tiny (about 6e-4 per CUSUM for a 1 % budget shared by 8 CUSUMs), far too small to
read off a quick simulation. Two facts about a CUSUM whose steps ``a`` have a negative mean
make it cheap and still exact in the limit of large ``h``:

1. The chance that one excursion climbs above ``h`` falls as exp(-theta * h), where theta > 0
   solves mean(exp(theta * a)) = 1 over the step distribution (the Cramér-Lundberg adjustment
   coefficient). Computed here exactly on the reference's own steps, so skew, ties and heavy
   tails of real features are accounted for.
2. Crossings are rare, separate events, so P(crossing within T steps) = 1 - exp(-T * rate(h)).

A bootstrap simulation (rows drawn with replacement from the reference, ``CALIBRATION_PATHS``
paths of ``CALIBRATION_STEPS`` steps, vectorised with numpy) measures the crossing rate at an
anchor level ``h0`` that a fifth of the paths cross; the threshold is then
h = h0 + ln(rate(h0) / target_rate) / theta. Start-up cost: about 0.03 s per numeric feature.

How far off it can be: the anchor share has a binomial standard error of about 1.3 %
(relative 6 %), which moves ``h`` by about 0.06 / theta (0.05 to 0.15 sd for the features here);
the exponential tail law is asymptotic and is checked end to end by bench/drift_detection.py.
Live traffic is never exactly the reference: its mean differs by sampling error even without
drift (the reference is a sample; so is the replayed traffic). A CUSUM is sensitive to that: a
mean off by 0.025 sd multiplies the false alarms of one side by about 3 at the thresholds used
here. The threshold is therefore calibrated for steps whose mean is ``mean_tolerance_sd`` less
negative than the nominal -k, i.e. for live traffic that far off the reference in the worse
direction; traffic closer to the reference alarms less often than the target.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from target_service.drift.stats import FloatArray

logger = logging.getLogger(__name__)

CALIBRATION_PATHS = 1000
CALIBRATION_STEPS = 1000
CALIBRATION_CHUNK_PATHS = 100
ANCHOR_EXCEEDANCE = 0.2
NO_NULL_CROSSING_THRESHOLD = 1.0
"""Threshold used when no reference step is positive: the CUSUM then stays at 0 without drift,
so any positive threshold has no false alarm, and a small one reacts fastest."""


@dataclass(frozen=True)
class CusumCalibration:
    """The calibrated threshold of one one-sided CUSUM and the figures it came from."""

    threshold: float
    tail_rate: float
    anchor_threshold: float
    anchor_exceedance: float


def adjustment_coefficient(steps: FloatArray) -> float:
    """The theta > 0 with mean(exp(theta * steps)) = 1; inf when no step is positive.

    Requires mean(steps) < 0 (a CUSUM that drifts down without drift in the data).
    """
    if steps.max() <= 0.0:
        return math.inf

    def log_mgf(theta: float) -> float:
        return float(special.logsumexp(theta * steps) - math.log(steps.size))

    upper = 1.0
    while log_mgf(upper) <= 0.0:
        upper *= 2.0
    return float(optimize.brentq(log_mgf, 1e-9, upper, xtol=1e-10))


def calibrate_cusum_pair(
    z_reference: FloatArray,
    k_sd: float,
    target_probability: float,
    horizon_steps: int,
    rng: np.random.Generator,
    mean_tolerance_sd: float = 0.0,
) -> tuple[CusumCalibration, CusumCalibration]:
    """Thresholds of the upward and downward CUSUM on standardised reference values.

    ``z_reference`` are the reference values standardised by their own mean and standard
    deviation; the CUSUM steps are z - k (upward) and -z - k (downward). Both sides are
    simulated on the same bootstrap draws, as if the live mean were ``mean_tolerance_sd`` off.
    """
    # The tolerance never takes more than half the allowance, so steps keep a negative mean
    # and the tail law holds.
    k_calibration = max(k_sd - mean_tolerance_sd, k_sd / 2.0)
    upward_max, downward_max = _simulated_path_maxima(z_reference, k_calibration, rng)

    upward = _anchor(z_reference - k_calibration, upward_max)
    downward = _anchor(-z_reference - k_calibration, downward_max)
    return (
        _extrapolate(upward, target_probability, horizon_steps),
        _extrapolate(downward, target_probability, horizon_steps),
    )


@dataclass(frozen=True)
class _Anchor:
    tail_rate: float
    anchor_threshold: float
    anchor_exceedance: float


def _simulated_path_maxima(
    z_reference: FloatArray, k_sd: float, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    # Paths are simulated in chunks whose arrays stay in the CPU cache: 3x faster than at once.
    upward, downward = [], []
    for _ in range(CALIBRATION_PATHS // CALIBRATION_CHUNK_PATHS):
        draws = rng.integers(0, z_reference.size, size=(CALIBRATION_STEPS, CALIBRATION_CHUNK_PATHS))
        sampled = z_reference[draws]
        upward.append(_lindley_maxima(sampled - k_sd))
        downward.append(_lindley_maxima(-sampled - k_sd))
    return np.concatenate(upward), np.concatenate(downward)


def _lindley_maxima(steps: FloatArray) -> FloatArray:
    walk = np.cumsum(steps, axis=0)
    floor = np.minimum.accumulate(walk, axis=0)
    np.minimum(floor, 0.0, out=floor)
    walk -= floor
    return walk.max(axis=0)


def _anchor(reference_steps: FloatArray, path_max: FloatArray) -> _Anchor:
    tail_rate = adjustment_coefficient(reference_steps)
    if not math.isfinite(tail_rate):
        return _Anchor(tail_rate, 0.0, 0.0)

    anchor_threshold = float(np.quantile(path_max, 1.0 - ANCHOR_EXCEEDANCE))
    anchor_exceedance = float(np.mean(path_max > anchor_threshold))
    return _Anchor(tail_rate, anchor_threshold, anchor_exceedance)


def _extrapolate(
    anchor: _Anchor, target_probability: float, horizon_steps: int
) -> CusumCalibration:
    if not math.isfinite(anchor.tail_rate):
        return CusumCalibration(NO_NULL_CROSSING_THRESHOLD, anchor.tail_rate, 0.0, 0.0)

    # No simulated path left 0: one path in CALIBRATION_PATHS is a conservative stand-in.
    exceedance = max(anchor.anchor_exceedance, 1.0 / CALIBRATION_PATHS)
    anchor_rate = -math.log1p(-exceedance) / CALIBRATION_STEPS
    target_rate = -math.log1p(-target_probability) / horizon_steps
    threshold = anchor.anchor_threshold + math.log(anchor_rate / target_rate) / anchor.tail_rate
    return CusumCalibration(
        max(threshold, NO_NULL_CROSSING_THRESHOLD),
        anchor.tail_rate,
        anchor.anchor_threshold,
        exceedance,
    )
