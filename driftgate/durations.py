"""Durations written the way people write them in scenario files: ``30s``, ``2m``, ``1m30s``.

Accepted units: ``ms``, ``s``, ``m``, ``h``; parts may be combined largest first
(``1h30m``, ``2m15s``). A bare number means seconds. The result is always in seconds.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?(ms|h|m|s))+\s*$|^\s*\d+(\.\d+)?\s*$"


def parse_duration_s(text: str | float | int) -> float:
    """Seconds in ``text``; a ValueError says what a duration looks like otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like 30s, got {_show(text)}")
    if isinstance(text, int | float):
        return float(text)

    compact = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", compact):
        return float(compact)
    if not _WHOLE.fullmatch(compact):
        raise ValueError(f"expected a duration like 30s, got {_show(text)}")

    units = [unit for _, unit in _PART.findall(compact)]
    if len(set(units)) != len(units):
        raise ValueError(f"expected each unit once in a duration like 1m30s, got {_show(text)}")
    return sum(float(number) * _UNIT_S[unit] for number, unit in _PART.findall(compact))


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def format_duration(seconds: float) -> str:
    """The shortest way to write ``seconds`` back as a duration (``90`` -> ``1m30s``)."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    minutes, rest_s = divmod(seconds, 60.0)
    if minutes and rest_s:
        return f"{minutes:g}m{rest_s:g}s"
    if minutes:
        return f"{minutes:g}m"
    return f"{rest_s:g}s"


def _to_seconds(value: Any) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration like 30s, got {_show(value)}")
    return parse_duration_s(value)


DurationS = Annotated[
    float,
    BeforeValidator(_to_seconds),
    Field(ge=0.0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration: 30s, 2m, 1m30s, 500ms; a bare number is seconds",
        }
    ),
]
"""A duration field: accepts ``"30s"``/``"2m"``/``"500ms"`` or a number of seconds."""
