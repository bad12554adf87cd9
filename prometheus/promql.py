"""Read the metric names a PromQL expression refers to, for the cross-file meta-tests.

This is a lexical reading, not a parser: it drops strings, label matchers, ranges and
grouping clauses, then keeps the identifiers that are neither functions nor keywords. It is
exact for the expressions driftgate writes (no ``__name__`` matchers, no metric named like
a keyword); the real Prometheus checks that every expression parses.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# Not preceded by a digit or a dot, so that "5m" and "3e-2" are not read as names.
_IDENTIFIER = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*(\()?)")


def metric_names(expr: str) -> set[str]:
    """Names of the series ``expr`` selects (``rate(x_total[1m])`` gives ``{"x_total"}``)."""
    text = _STRING.sub(" ", expr)
    text = _BRACES.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)

    names = set()
    for match in _IDENTIFIER.finditer(text):
        is_function_call = match.group(1) is not None
        word = match.group(0)
        if not is_function_call and word.lower() not in KEYWORDS:
            names.add(word)
    return names


def exposed_series_names(registry: CollectorRegistry) -> set[str]:
    """Names of every series ``registry`` can expose, declared children or not.

    A labelled gauge with no child yet exposes nothing, so the names come from each family's
    type rather than from its current samples.
    """
    suffixes_by_type = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count", ""),
    }
    names = set()
    for family in registry.collect():
        for suffix in suffixes_by_type.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names
