"""Errors the SLA checker raises on purpose.

    SlaError
    ├── ObjectiveError          an SLA file or an objective is invalid (file, field, value, choices)
    ├── WindowError             a window cannot be resolved (unknown phase) or is too short
    ├── BaselineError           a baseline report is missing, unreadable or of another schema
    └── PrometheusAccessError   Prometheus could not answer a query
        ├── PrometheusUnavailableError   unreachable, timed out, 5xx after retries, auth refused
        └── PrometheusQueryError         the query was refused (bad PromQL, 4xx), or the
                                         answer is malformed (string or null result, no number)

``ObjectiveError``, ``WindowError`` and ``BaselineError`` are usage errors: the command line
prints the one-line message and exits with ``EXIT_USAGE``. A ``PrometheusAccessError`` never
escapes a check: the objective it hit is reported as inconclusive, with the message as reason.
"""


class SlaError(Exception):
    """Base of every error the SLA checker raises on purpose."""


class ObjectiveError(SlaError):
    """An SLA file or objective is invalid; one line naming the field, value and valid choices."""


class WindowError(SlaError):
    """A window cannot be resolved, or is too short to measure anything reliable."""


class BaselineError(SlaError):
    """A baseline report.json is missing, unreadable, or not a report of this checker."""


class PrometheusAccessError(SlaError):
    """Prometheus could not answer a query; the message names the URL or the query."""


class PrometheusUnavailableError(PrometheusAccessError):
    """Prometheus is unreachable, timed out, answered 5xx after retries, or refused the login."""


class PrometheusQueryError(PrometheusAccessError):
    """The query was refused (bad PromQL, too many points) or answered with a malformed result.

    The message quotes the query and says what was wrong.
    """
