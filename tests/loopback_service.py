"""A stand-in for the reference service in load tests: the same routes, recording arrivals.

Run as ``python tests/loopback_service.py --port P --record FILE [--mode ok|garbage|unready]``.
Every /predict and /feedback is appended to FILE as one JSON line with its arrival time
(UTC epoch seconds), route and body, so tests can check what the service saw and when.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse


def build_app(record_path: Path, mode: str) -> FastAPI:
    app = FastAPI()
    record = record_path.open("a", buffering=1)

    def log(route: str, body: object) -> None:
        record.write(json.dumps({"t": time.time(), "route": route, "body": body}) + "\n")

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        body = await request.json()
        log("/predict", body)
        if mode == "garbage":
            return Response("not json", media_type="text/plain")
        version = request.headers.get("x-model-version", "v1")
        return JSONResponse(
            {
                "predicted_class": "visit",
                "confidence": 0.7,
                "model_version": version,
                "request_id": f"{version}.1.{uuid.uuid4().hex}",
            }
        )

    @app.post("/feedback")
    async def feedback(request: Request) -> Response:
        body = await request.json()
        log("/feedback", body)
        return JSONResponse({"correct": True, "model_version": body["request_id"].split(".")[0]})

    @app.get("/readyz")
    async def readyz() -> Response:
        if mode == "unready":
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--mode", choices=["ok", "garbage", "unready"], default="ok")
    options = parser.parse_args()
    app = build_app(options.record, options.mode)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
