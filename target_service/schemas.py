"""Request bodies: strict, fast validation into raw rows, and the schemas OpenAPI shows.

Bodies are parsed by hand rather than through pydantic so that every refusal carries one
reason from the bounded set in ``target_service.metrics.REJECTION_REASONS`` and a one-line
detail naming the field, and so that a valid single record costs a few microseconds.
The pydantic models below only describe the bodies in the OpenAPI document.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from target_service.dataset import CLASSES, FeatureSpec
from target_service.models import MISSING_CODE, UNSEEN_CODE

MAX_CATEGORY_CHARS = 64
REQUEST_ID_PATTERN = re.compile(r"^(v[0-9]{1,3})\.([0-9])\.([0-9a-f]{32})$")


class RequestRejected(Exception):
    """A request refused with a 4xx status; ``reason`` is one of REJECTION_REASONS."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def _refuse_constant(name: str) -> float:
    raise RequestRejected(422, "non_finite", f"body: {name} is not a finite number")


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; NaN and Infinity literals are refused."""
    if not body.strip():
        raise RequestRejected(400, "empty_body", "body: empty; expected a JSON object")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestRejected(400, "malformed_json", "body: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        message = str(error).splitlines()[0]
        raise RequestRejected(400, "malformed_json", f"body: not valid JSON ({message})") from None


class RecordParser:
    """Turns request records into raw rows (numbers, category codes, -1 unseen, NaN null)."""

    def __init__(self, features: Sequence[FeatureSpec], max_batch_size: int) -> None:
        self.features = tuple(features)
        self.max_batch_size = max_batch_size
        self._codes = {
            spec.name: {category: float(code) for code, category in enumerate(spec.categories)}
            for spec in self.features
            if spec.kind == "categorical"
        }
        self._names = frozenset(spec.name for spec in self.features)

    def parse_body(self, document: Any) -> tuple[np.ndarray, bool]:
        """Raw rows of a single record or a batch, and whether the body was a batch."""
        if not isinstance(document, dict):
            kind = type(document).__name__
            raise RequestRejected(422, "wrong_type", f"body: expected a JSON object, got {kind}")
        if "instances" not in document:
            return np.array([self.parse_record(document, "")]), False

        if len(document) != 1:
            extra = sorted(set(document) - {"instances"})[0]
            raise RequestRejected(422, "unknown_feature", f"{extra}: not allowed next to instances")
        instances = document["instances"]
        if not isinstance(instances, list):
            kind = type(instances).__name__
            raise RequestRejected(422, "wrong_type", f"instances: expected a list, got {kind}")
        if not instances:
            raise RequestRejected(422, "empty_batch", "instances: empty; send 1 or more records")
        if len(instances) > self.max_batch_size:
            raise RequestRejected(
                422,
                "batch_too_large",
                f"instances: {len(instances)} records, at most {self.max_batch_size} allowed",
            )
        rows = [self.parse_record(record, f"instances[{i}].") for i, record in enumerate(instances)]
        return np.array(rows), True

    def parse_record(self, record: Any, prefix: str) -> list[float]:
        """One raw row; ``prefix`` locates the record in the body for error messages."""
        if not isinstance(record, dict):
            kind = type(record).__name__
            raise RequestRejected(
                422, "wrong_type", f"{prefix or 'body'}: expected a JSON object, got {kind}"
            )
        if len(record) != len(self.features) or record.keys() != self._names:
            self._refuse_keys(record, prefix)
        return [self._parse_value(spec, record[spec.name], prefix) for spec in self.features]

    def _refuse_keys(self, record: dict[str, Any], prefix: str) -> None:
        missing = [spec.name for spec in self.features if spec.name not in record]
        if missing:
            raise RequestRejected(
                422,
                "missing_feature",
                f"{prefix}{missing[0]}: missing; all {len(self.features)} features are required",
            )
        extra = sorted(str(key) for key in record if key not in self._names)
        raise RequestRejected(
            422,
            "unknown_feature",
            f"{prefix}{extra[0][:80]}: not a feature; known: {', '.join(sorted(self._names))}",
        )

    def _parse_value(self, spec: FeatureSpec, value: Any, prefix: str) -> float:
        field = f"{prefix}{spec.name}"
        if spec.kind == "categorical":
            return self._parse_category(spec, value, field)

        if isinstance(value, bool) or not isinstance(value, int | float):
            shown = repr(value)[:80]
            raise RequestRejected(422, "wrong_type", f"{field}: expected a number, got {shown}")
        try:
            number = float(value)
        except OverflowError:
            # An integer literal with hundreds of digits: beyond any float.
            raise RequestRejected(
                422, "non_finite", f"{field}: an integer too large for a number"
            ) from None
        if not math.isfinite(number):
            raise RequestRejected(422, "non_finite", f"{field}: {number} is not a finite number")
        low = -math.inf if spec.valid_min is None else spec.valid_min
        high = math.inf if spec.valid_max is None else spec.valid_max
        if not low <= number <= high:
            raise RequestRejected(
                422,
                "out_of_range",
                f"{field}: {number} is outside [{spec.valid_min}, {spec.valid_max}]",
            )
        return number

    def _parse_category(self, spec: FeatureSpec, value: Any, field: str) -> float:
        if value is None:
            return MISSING_CODE
        if not isinstance(value, str):
            shown = repr(value)[:80]
            raise RequestRejected(
                422, "wrong_type", f"{field}: expected a string or null, got {shown}"
            )
        if len(value) > MAX_CATEGORY_CHARS:
            raise RequestRejected(
                422, "too_long", f"{field}: {len(value)} characters, at most {MAX_CATEGORY_CHARS}"
            )
        return self._codes[spec.name].get(value, UNSEEN_CODE)


@dataclass(frozen=True)
class Feedback:
    """A validated feedback: the version and class the request id names, and the truth."""

    model_version: str
    predicted_class: str
    true_label: str


def parse_feedback(document: Any, versions: Sequence[str]) -> Feedback:
    """Validate ``{"request_id": ..., "true_label": ...}`` against known versions and classes."""
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise RequestRejected(422, "wrong_type", f"body: expected a JSON object, got {kind}")
    for field in ("request_id", "true_label"):
        if field not in document:
            raise RequestRejected(422, "missing_field", f"{field}: missing")
    extra = sorted(str(key) for key in document if key not in ("request_id", "true_label"))
    if extra:
        raise RequestRejected(
            422, "unknown_field", f"{extra[0][:80]}: not allowed; send request_id and true_label"
        )

    request_id, true_label = document["request_id"], document["true_label"]
    match = REQUEST_ID_PATTERN.match(request_id) if isinstance(request_id, str) else None
    if match is None or match[1] not in versions or int(match[2]) >= len(CLASSES):
        raise RequestRejected(
            422,
            "unknown_request_id",
            f"request_id: {str(request_id)[:80]!r} is not an id this service issued",
        )
    if true_label not in CLASSES:
        raise RequestRejected(
            422,
            "bad_label",
            f"true_label: {str(true_label)[:80]!r} is not a class; known: {', '.join(CLASSES)}",
        )
    return Feedback(match[1], CLASSES[int(match[2])], true_label)


def record_model(features: Sequence[FeatureSpec], example: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model of one record, for the OpenAPI document only."""
    fields: dict[str, Any] = {}
    for spec in features:
        if spec.kind == "numeric":
            description = (
                f"{spec.description}. Accepted: [{spec.valid_min}, {spec.valid_max}]; "
                f"seen in training: [{spec.observed_min}, {spec.observed_max}]."
            )
            fields[spec.name] = (
                float,
                Field(..., ge=spec.valid_min, le=spec.valid_max, description=description),
            )
            continue
        description = (
            f"{spec.description}. Known categories: {', '.join(spec.categories)}; null or "
            "another string is accepted and treated as unknown."
        )
        fields[spec.name] = (
            str | None,
            Field(
                ...,
                max_length=MAX_CATEGORY_CHARS,
                description=description,
                json_schema_extra={"x-known-categories": list(spec.categories)},
            ),
        )
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
    return create_model("PredictionRecord", __config__=config, **fields)


class PredictionResponse(BaseModel):
    """One prediction."""

    predicted_class: Literal["no_visit", "visit"]
    confidence: float = Field(..., ge=0.5, le=1.0, description="probability of predicted_class")
    model_version: str
    request_id: str = Field(..., description="'<version>.<class index>.<32 hex>'; for /feedback")


class BatchResponse(BaseModel):
    """Predictions of a batch, in the order of the records."""

    predictions: list[PredictionResponse]


class FeedbackRequest(BaseModel):
    """The true label of an earlier prediction."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    true_label: Literal["no_visit", "visit"]


class FeedbackResponse(BaseModel):
    """Whether the earlier prediction was right."""

    correct: bool
    model_version: str


class ErrorResponse(BaseModel):
    """A refused request."""

    detail: str = Field(..., description="one line naming the field and the value at fault")
    reason: str = Field(..., description="bounded reason, the label of rejected_requests_total")
