"""The drift monitor's statistics: a plain library, no web framework.

Public API (details in :mod:`target_service.drift.detector`)::

    from target_service.drift import DriftDetector, DriftReport, FeatureDrift

    detector = DriftDetector(reference_frame, features, drift_settings, rng)  # calibrates
    detector.observe(detector.encode(records))   # per request or batch
    report = detector.evaluate()                 # per second

Modules: ``stats`` (two-sample statistics, Holm, CUSUM steps), ``calibration`` (CUSUM
thresholds by bootstrap from the reference), ``detector`` (window, CUSUMs, verdicts).
"""

from target_service.drift.detector import DriftDetector, DriftReport, FeatureDrift

__all__ = ["DriftDetector", "DriftReport", "FeatureDrift"]
