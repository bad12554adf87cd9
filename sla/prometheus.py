"""The one place that talks to Prometheus: instant and range queries over the HTTP API.

It uses ``/api/v1/query`` and ``/api/v1/query_range`` (range queries through
prometheus-api-client's ``PrometheusConnect``; instant queries on the same session, so the
answer's ``resultType`` can be checked), so it works the same against Prometheus, Thanos,
Mimir or VictoriaMetrics, and ``/api/v1/rules`` to see which alerting rules are loaded (a
server without it answers 404: that cannot be verified). Errors of requests and of the client
library are turned into ``PrometheusUnavailableError`` (cannot ask) or
``PrometheusQueryError`` (the query was refused, or the answer is malformed: a string, a null
result, a value that is no number) here and nowhere else.

    client = PrometheusClient(PrometheusSettings(url="http://127.0.0.1:9090"))
    samples = client.instant("sum(up)", at_s=time.time())
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from urllib3.util.retry import Retry

from sla.errors import PrometheusQueryError, PrometheusUnavailableError

logger = logging.getLogger(__name__)
_Parsed = TypeVar("_Parsed")

# Statuses worth retrying: overload and gateways in front of Prometheus/Thanos/Mimir.
RETRY_ON_STATUS: tuple[int, ...] = (429, 502, 503, 504)
RETRY_BACKOFF_S = 0.5
# Prometheus refuses range queries asking for more points than this per series.
MAX_POINTS_PER_SERIES = 11_000
_STATUS_RE = re.compile(r"HTTP Status Code (\d+)")
QUERY_PATH = "/api/v1/query"
RULES_PATH = "/api/v1/rules"


class PrometheusSettings(BaseModel):
    """How to reach Prometheus (or anything speaking its HTTP query API)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="base URL, e.g. http://127.0.0.1:9090 or https://host/prometheus")
    bearer_token: SecretStr | None = None
    basic_auth_user: str | None = None
    basic_auth_password: SecretStr | None = None
    ca_file: Path | None = Field(None, description="PEM bundle that signs the server's certificate")
    timeout_s: float = Field(10.0, gt=0, le=600)
    retries: int = Field(2, ge=0, le=10, description="retries on connection errors and 429/5xx")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        """A full check here, so a bad URL is a usage error rather than a failed query."""
        expected = "expected http://HOST:PORT or https://HOST[:PORT][/PATH]"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise ValueError(f"{expected} ({error})") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{expected}; the scheme must be http or https")
        if not parts.hostname:
            raise ValueError(f"{expected}; the host is missing")
        if port == 0:
            raise ValueError(f"{expected}; the port must be 1-65535")
        if parts.query or parts.fragment or any(char.isspace() for char in url):
            raise ValueError(f"{expected}; a base URL has no spaces, ?query or #fragment")
        return url.rstrip("/")

    @field_validator("timeout_s", mode="before")
    @classmethod
    def _finite_timeout(cls, timeout_s: Any) -> Any:
        if isinstance(timeout_s, float) and not math.isfinite(timeout_s):
            raise ValueError("must be a finite number of seconds (0 < timeout <= 600)")
        return timeout_s

    @model_validator(mode="after")
    def _one_login(self) -> PrometheusSettings:
        if self.bearer_token is not None and self.basic_auth_user is not None:
            raise ValueError("give either a bearer token or basic auth, not both")
        if (self.basic_auth_user is None) != (self.basic_auth_password is None):
            raise ValueError("basic auth needs both a user and a password")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file: no such file {str(self.ca_file)!r}")
        return self


class Sample(BaseModel):
    """One value of an instant vector (or a scalar, with no labels)."""

    labels: dict[str, str]
    timestamp_s: float
    value: float


class Series(BaseModel):
    """One series of a range query or of a range-vector selector: (time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


def step_for_range_s(duration_s: float, resolution_s: float) -> float:
    """The finest step, not below ``resolution_s``, that keeps a range query under the limit.

    A step of ``duration_s / (MAX_POINTS_PER_SERIES - 1)`` gives exactly the limit; the step
    is rounded up to the millisecond so the point count stays at or below it.
    """
    minimum_step_s = duration_s / (MAX_POINTS_PER_SERIES - 1)
    step_s = max(resolution_s, minimum_step_s)
    return math.ceil(step_s * 1000) / 1000


class PrometheusClient:
    """Queries against one Prometheus; every failure surfaces as one of ``sla.errors``."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self.url = settings.url
        session = requests.Session()
        session.verify = str(settings.ca_file) if settings.ca_file else True
        headers = None
        if settings.bearer_token is not None:
            headers = {"Authorization": f"Bearer {settings.bearer_token.get_secret_value()}"}
        auth = None
        if settings.basic_auth_user is not None and settings.basic_auth_password is not None:
            auth = (settings.basic_auth_user, settings.basic_auth_password.get_secret_value())

        self._session = session
        self._headers = headers
        self._auth = auth
        retry = Retry(
            total=settings.retries,
            backoff_factor=RETRY_BACKOFF_S,
            status_forcelist=RETRY_ON_STATUS,
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self._connection = PrometheusConnect(
            url=settings.url,
            headers=headers,
            retry=retry,
            auth=auth,
            session=session,
            timeout=settings.timeout_s,
        )

    def close(self) -> None:
        self._connection.close()

    def instant(self, query: str, at_s: float) -> list[Sample]:
        """An instant query at ``at_s``; a scalar result comes back as one unlabelled sample."""
        body = self._call(query, lambda: self._get(QUERY_PATH, {"query": query, "time": at_s}))
        return self._parsed(query, lambda: _instant_samples(body))

    def instant_range_vector(self, query: str, at_s: float) -> list[Series]:
        """Raw samples of a range-vector selector (``up{job="x"}[5m]``) at ``at_s``."""
        body = self._call(query, lambda: self._get(QUERY_PATH, {"query": query, "time": at_s}))
        return self._parsed(query, lambda: _matrix(_result(body, ("matrix",))))

    def range(self, query: str, start_s: float, end_s: float, step_s: float) -> list[Series]:
        """A range query from ``start_s`` to ``end_s`` (both exact) every ``step_s``."""
        # custom_query_range rounds start/end to whole seconds; explicit params win over that.
        params = {"start": f"{start_s:.3f}", "end": f"{end_s:.3f}"}
        start = datetime.fromtimestamp(start_s, tz=UTC)
        end = datetime.fromtimestamp(end_s, tz=UTC)
        result = self._call(
            query,
            lambda: self._connection.custom_query_range(query, start, end, f"{step_s:g}", params),
        )
        return self._parsed(query, lambda: _matrix(result))

    def alert_rule_names(self) -> list[str] | None:
        """Names of the alerting rules loaded, sorted; None if the server has no rules API.

        Prometheus-compatible stores without ``/api/v1/rules`` answer 404: then whether a
        rule is loaded cannot be verified.
        """
        what = f"GET {RULES_PATH}"
        body = self._call(what, lambda: self._get(RULES_PATH, {"type": "alert"}, missing_ok=True))
        if body is None:
            return None
        return self._parsed(what, lambda: _alert_names(body))

    def _get(self, path: str, params: dict[str, Any], missing_ok: bool = False) -> Any:
        """The JSON body of a GET on the API; None for a 404 when ``missing_ok``."""
        response = self._session.request(
            method="GET",
            url=f"{self.url}{path}",
            params=params,
            headers=self._headers,
            auth=self._auth,
            # Explicitly: otherwise REQUESTS_CA_BUNDLE in the environment wins over --ca-file.
            verify=self._session.verify,
            timeout=self.settings.timeout_s,
        )
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200:
            # The client library's wording, so that one function turns both into our errors.
            raise PrometheusApiClientException(
                f"HTTP Status Code {response.status_code} ({response.content!r})"
            )
        return response.json()

    def _call(self, query: str, request: Any) -> Any:
        logger.debug("query url=%s promql=%s", self.url, query)
        try:
            return request()
        except PrometheusApiClientException as error:
            raise _refusal(self.url, query, str(error)) from error
        except requests.exceptions.SSLError as error:
            raise PrometheusUnavailableError(
                f"TLS handshake with {self.url} failed (check --ca-file): {_first_line(error)}"
            ) from error
        except requests.exceptions.JSONDecodeError as error:
            raise PrometheusQueryError(
                f"{self.url} did not answer {query!r} with JSON like a Prometheus API: "
                f"{_first_line(error)}"
            ) from error
        except requests.exceptions.RequestException as error:
            raise _unavailable(self.url, self.settings.timeout_s, error) from error
        except (KeyError, IndexError, TypeError, ValueError) as error:
            # The client library indexes the body itself: data.result missing or null.
            raise PrometheusQueryError(
                f"{self.url} did not answer {query!r} like a Prometheus API: "
                f"{type(error).__name__} {_first_line(error)}"
            ) from error

    def _parsed(self, query: str, parse: Callable[[], _Parsed]) -> _Parsed:
        """Run a parser over an answer; a malformed answer becomes a PrometheusQueryError."""
        try:
            return parse()
        except _MalformedAnswer as error:
            raise PrometheusQueryError(
                f"{self.url} answered {query!r} with a malformed result: {error}"
            ) from error


# --- answers ---


class _MalformedAnswer(ValueError):
    """An answer that does not have the shape of the Prometheus HTTP API (module-internal)."""


def _result(body: Any, kinds: tuple[str, ...]) -> Any:
    """``data.result`` of a successful answer whose ``resultType`` is one of ``kinds``."""
    if not isinstance(body, dict) or body.get("status") != "success":
        status = body.get("status") if isinstance(body, dict) else type(body).__name__
        raise _MalformedAnswer(f"status is {status!r}, not 'success'")
    data = body.get("data")
    if not isinstance(data, dict):
        raise _MalformedAnswer(f"data is {_shown(data)}, not an object")
    kind = data.get("resultType")
    if kind not in kinds:
        wanted = " or ".join(kinds)
        raise _MalformedAnswer(f"the query returned a {kind!s} result, not a {wanted}")
    return data.get("result")


def _instant_samples(body: Any) -> list[Sample]:
    result = _result(body, ("vector", "scalar"))
    if body["data"]["resultType"] == "scalar":
        timestamp_s, value = _point(result)
        return [Sample(labels={}, timestamp_s=timestamp_s, value=value)]
    samples = []
    for item in _items(result):
        timestamp_s, value = _point(item.get("value"))
        samples.append(Sample(labels=_labels(item), timestamp_s=timestamp_s, value=value))
    return samples


def _matrix(result: Any) -> list[Series]:
    return [
        Series(labels=_labels(item), points=[_point(pair) for pair in _list(item.get("values"))])
        for item in _items(result)
    ]


def _alert_names(body: Any) -> list[str]:
    """Every ``alerting`` rule's name in a /api/v1/rules answer."""
    if not isinstance(body, dict) or body.get("status") != "success":
        raise _MalformedAnswer("status is not 'success'")
    data = body.get("data")
    groups = _list(data.get("groups") if isinstance(data, dict) else None)
    names = set()
    for group in groups:
        rules = _list(group.get("rules") if isinstance(group, dict) else None)
        for rule in rules:
            if isinstance(rule, dict) and rule.get("type") == "alerting":
                name = rule.get("name")
                if not isinstance(name, str):
                    raise _MalformedAnswer(f"an alerting rule's name is {_shown(name)}")
                names.add(name)
    return sorted(names)


def _items(result: Any) -> list[dict[str, Any]]:
    items = _list(result)
    for item in items:
        if not isinstance(item, dict):
            raise _MalformedAnswer(f"a series is {_shown(item)}, not an object")
    return items


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _MalformedAnswer(f"expected a list, got {_shown(value)}")
    return value


def _labels(item: dict[str, Any]) -> dict[str, str]:
    labels = item.get("metric", {})
    if not isinstance(labels, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in labels.items()
    ):
        raise _MalformedAnswer(f"labels are {_shown(labels)}, not names and string values")
    return labels


def _point(pair: Any) -> tuple[float, float]:
    """``[time, "value"]``: Prometheus writes values as strings (NaN and +Inf included)."""
    if not isinstance(pair, list) or len(pair) != 2:
        raise _MalformedAnswer(f"expected [time, value], got {_shown(pair)}")
    return _number(pair[0], "time"), _number(pair[1], "value")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _MalformedAnswer(f"{what} {_shown(value)} is not a number")
    try:
        return float(value)
    except ValueError:
        raise _MalformedAnswer(f"{what} {_shown(value)} is not a number") from None


def _shown(value: Any) -> str:
    text = json.dumps(value) if value is None or isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unavailable(
    url: str, timeout_s: float, error: requests.exceptions.RequestException
) -> PrometheusUnavailableError:
    """A refusal or a timeout, named plainly; requests' wrapping is peeled off.

    With retries configured, even a read timeout arrives as a ConnectionError wrapping
    urllib3's MaxRetryError, whose ``reason`` is the last underlying error.
    """
    wrapped = error.args[0] if error.args else None
    reason = getattr(wrapped, "reason", None)
    # NewConnectionError derives from urllib3's TimeoutError, so it is tested first.
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        text = str(reason)
        marker = "Failed to establish a new connection: "
        detail = text.split(marker, 1)[1] if marker in text else _first_line(reason)
        return PrometheusUnavailableError(f"cannot reach Prometheus at {url}: {detail}")
    if isinstance(error, requests.exceptions.Timeout) or isinstance(
        reason, urllib3.exceptions.TimeoutError
    ):
        return PrometheusUnavailableError(
            f"Prometheus at {url} did not answer within {timeout_s:g}s"
        )
    return PrometheusUnavailableError(
        f"cannot reach Prometheus at {url}: {_first_line(reason or error)}"
    )


def _refusal(url: str, query: str, message: str) -> Exception:
    """Turn the client library's 'HTTP Status Code N (b'...')' into one of our errors."""
    match = _STATUS_RE.search(message)
    status = int(match.group(1)) if match else 0
    detail = _prometheus_error_text(message)
    if status in (400, 422):
        return PrometheusQueryError(f"Prometheus refused the query {query!r}: {detail}")
    if status in (401, 403):
        return PrometheusUnavailableError(
            f"Prometheus at {url} refused the credentials (HTTP {status}); "
            "check --token or --basic-auth"
        )
    return PrometheusUnavailableError(f"Prometheus at {url} answered HTTP {status}: {detail}")


def _prometheus_error_text(message: str) -> str:
    """The ``error`` field of Prometheus's JSON body, if the message carries one."""
    start = message.find("b'{")
    if start >= 0:
        body = message[start + 2 : message.rfind("}") + 1]
        try:
            return str(json.loads(body.encode().decode("unicode_escape")).get("error", body))
        except ValueError:
            return body
    return _first_line(message)


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
