"""Errors driftgate's command line and runner raise on purpose.

    DriftgateError
    ├── ScenarioError      a scenario file is invalid (file, field path, expected, got)
    ├── ManifestError      a run manifest is missing or invalid
    └── RunError           a run could not start or stopped on a fault (names the cause)
        ├── PrometheusError     Prometheus missing, not ready, or died

Each message is one line that says what went wrong and what to do; the command line prints
it without a traceback and exits with 4 for a RunError (the run itself failed) and 2 for
the others (usage or configuration).
"""


class DriftgateError(Exception):
    """Base of every error driftgate raises on purpose."""


class ScenarioError(DriftgateError):
    """A scenario file is invalid; the message names the file and the field path."""


class ManifestError(DriftgateError):
    """A run manifest is missing or invalid."""


class RunError(DriftgateError):
    """A run could not start, or stopped on a fault; the message names the cause."""


class PrometheusError(RunError):
    """Prometheus is missing, never became ready, or died during a run."""
