"""The two requests a scenario user makes, kept apart from the Locust classes for testing.

Request names are the routes (``/predict``, ``/feedback``), never the payload, so Locust's
statistics stay bounded; per model version counts go to the session's own statistics
(``"/predict [v1]"``). A response that is not the expected JSON is a counted failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from loadtests.sampling import Sample
    from loadtests.session import LoadSession

JSON_HEADERS = {"Content-Type": "application/json"}
MAX_REASON_CHARS = 48


@dataclass(frozen=True)
class FeedbackItem:
    """A true label to send back once ``due_s`` (UTC epoch seconds) has passed."""

    due_s: float
    request_id: str
    true_label: str
    model_version: str


def wall_time() -> float:
    """UTC epoch seconds: the clock phases are scheduled by, shared by every process."""
    return time.time()


def failure_reason(status_code: int, content: bytes | None, error: Any = None) -> str:
    """A short, bounded failure message: the status and the service's bounded reason."""
    if not status_code:
        return f"connection error: {type(error).__name__ if error else 'no response'}"
    reason = ""
    try:
        parsed = orjson.loads(content or b"")
        if isinstance(parsed, dict) and isinstance(parsed.get("reason"), str):
            reason = f" {parsed['reason'][:MAX_REASON_CHARS]}"
    except orjson.JSONDecodeError:
        reason = ""
    return f"HTTP {status_code}{reason}"


def read_prediction(content: bytes | None) -> tuple[str, str]:
    """``(model_version, request_id)`` of a /predict answer; ValueError if malformed."""
    try:
        parsed = orjson.loads(content or b"")
    except orjson.JSONDecodeError:
        raise ValueError("the /predict answer is not JSON") from None
    if not isinstance(parsed, dict):
        raise ValueError("the /predict answer is not a JSON object")
    version, request_id = parsed.get("model_version"), parsed.get("request_id")
    if not isinstance(version, str) or not isinstance(request_id, str):
        raise ValueError("the /predict answer lacks model_version or request_id")
    return version, request_id


def predict(user: Any, session: LoadSession, sample: Sample) -> FeedbackItem | None:
    """POST one record; a FeedbackItem if feedback is to follow, else None."""
    forced = session.version_header(user.rng)
    headers = JSON_HEADERS if forced is None else {**JSON_HEADERS, "X-Model-Version": forced}
    version = forced or "unknown"
    request_id = None
    with user.client.post(
        "/predict", data=sample.body, headers=headers, name="/predict", catch_response=True
    ) as response:
        error = None
        if response.status_code != 200:
            error = failure_reason(response.status_code, response.content, response.error)
        else:
            try:
                version, request_id = read_prediction(response.content)
            except ValueError as problem:
                error = f"client: {problem}"
        if error is not None:
            response.failure(error)
        session.log_version(
            "/predict",
            version,
            response.request_meta["response_time"],
            len(response.content or b""),
            error,
        )

    feedback = session.scenario.feedback
    if request_id is None or user.rng.random() >= feedback.share:
        return None
    return FeedbackItem(wall_time() + feedback.delay, request_id, sample.true_label, version)


def send_feedback(user: Any, session: LoadSession, item: FeedbackItem) -> None:
    """POST the true label of an earlier prediction."""
    body = orjson.dumps({"request_id": item.request_id, "true_label": item.true_label})
    with user.client.post(
        "/feedback", data=body, headers=JSON_HEADERS, name="/feedback", catch_response=True
    ) as response:
        error = None
        if response.status_code != 200:
            error = failure_reason(response.status_code, response.content, response.error)
            response.failure(error)
        session.log_version(
            "/feedback",
            item.model_version,
            response.request_meta["response_time"],
            len(response.content or b""),
            error,
        )
