"""A pure ASGI middleware that times every HTTP request into one histogram.

Pure ASGI (no ``BaseHTTPMiddleware``) so the cost per request stays a few microseconds.
The route label is the matched route's template (``/predict``), never the raw path, so a
scanner probing random URLs adds no series: unmatched paths share ``<unmatched>``, and
methods outside the usual set share ``OTHER``.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from target_service.metrics import HTTP_METHODS, OTHER_METHOD, UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Observe ``http_request_duration_seconds{method, route, status}`` for every request."""

    def __init__(
        self, app: ASGIApp, histogram: Histogram, excluded_paths: Collection[str] = ("/metrics",)
    ) -> None:
        self.app = app
        self.histogram = histogram
        self.excluded_paths = frozenset(excluded_paths)
        self._methods = frozenset(HTTP_METHODS)
        # Children by label values; every label is bounded, so this cache is too.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded_paths:
            await self.app(scope, receive, send)
            return

        start_s = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self._child(scope, status).observe(time.perf_counter() - start_s)

    def _child(self, scope: Scope, status: int) -> Any:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED_ROUTE
        method = scope["method"] if scope["method"] in self._methods else OTHER_METHOD
        key = (method, template, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.histogram.labels(method, template, str(status))
        return child
