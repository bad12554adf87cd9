"""Reading answers and naming failures, with bounded messages."""

from __future__ import annotations

import orjson
import pytest

from loadtests.user_steps import MAX_REASON_CHARS, failure_reason, read_prediction


def test_read_prediction():
    body = orjson.dumps(
        {
            "predicted_class": "visit",
            "confidence": 0.7,
            "model_version": "v2",
            "request_id": "v2.1.abc",
        }
    )
    assert read_prediction(body) == ("v2", "v2.1.abc")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"model_version": "v1"}', "lacks model_version or request_id"),
        (None, "not JSON"),
    ],
)
def test_malformed_predictions_are_value_errors(content, message):
    with pytest.raises(ValueError, match=message):
        read_prediction(content)


def test_failure_reasons_are_bounded_and_never_carry_the_detail():
    body = orjson.dumps({"detail": "chronic_diseases: 1e9 is above 200", "reason": "out_of_range"})
    assert failure_reason(422, body) == "HTTP 422 out_of_range"
    assert failure_reason(500, b"<html>") == "HTTP 500"
    long = orjson.dumps({"reason": "x" * 500})
    assert failure_reason(400, long) == f"HTTP 400 {'x' * MAX_REASON_CHARS}"
    assert failure_reason(0, None, ConnectionRefusedError()) == (
        "connection error: ConnectionRefusedError"
    )
