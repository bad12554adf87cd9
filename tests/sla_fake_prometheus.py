"""A tiny HTTP server on 127.0.0.1 that answers like a broken Prometheus-compatible store.

The real Prometheus never sends a string where a number belongs or a null result, but
servers that only speak its API may; this one answers whatever body a test sets, per path
and per ``query`` parameter, so the checker's handling of such answers can be tested.

    with FakePrometheus() as fake:
        fake.answer("/api/v1/query", {"status": "success", ...}, query="vector(1)")
        PrometheusClient(PrometheusSettings(url=fake.url)).instant("vector(1)", 0.0)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

ANY_QUERY = ""


def vector_body(value: str = "1") -> dict[str, Any]:
    """A well-formed one-sample vector answer."""
    sample = {"metric": {"job": "x"}, "value": [1700000000.0, value]}
    return {"status": "success", "data": {"resultType": "vector", "result": [sample]}}


class FakePrometheus:
    """Answers set with ``answer``; anything else is a 404 with a JSON error body."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], tuple[int, bytes]] = {}
        answers = self._answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query).get("query", [ANY_QUERY])[0]
                found = answers.get((parts.path, query)) or answers.get((parts.path, ANY_QUERY))
                status, body = found or (404, b'{"status":"error","error":"not found"}')
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                # Quiet: the tests assert on answers, not on the access log.
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, path: str, body: Any, query: str = ANY_QUERY, status: int = 200) -> None:
        """Answer GET ``path`` (with this ``query`` parameter, or any) with ``body``.

        A ``str`` or ``bytes`` body is sent as it is; anything else as JSON.
        """
        if isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        self._answers[(path, query)] = (status, raw)

    def __enter__(self) -> FakePrometheus:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
