"""Durations as written in scenario files."""

from __future__ import annotations

import pytest

from driftgate.durations import format_duration, parse_duration_s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("2m", 120.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("12", 12.0),
        (7, 7.0),
        (" 45s ", 45.0),
    ],
)
def test_parse(text, seconds):
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["3O s", "30 s", "s", "1m1m", "-5s", "", "10x", True])
def test_refuse(text):
    with pytest.raises(ValueError, match="expected"):
        parse_duration_s(text)


def test_error_shows_the_text_in_double_quotes():
    with pytest.raises(ValueError) as caught:
        parse_duration_s("3O s")
    assert str(caught.value) == 'expected a duration like 30s, got "3O s"'


@pytest.mark.parametrize("seconds", [90.0, 30.0, 120.0, 0.5, 0.0, 3600.0])
def test_format_round_trips(seconds):
    assert parse_duration_s(format_duration(seconds)) == seconds
