"""The baseline of bench/locust_user_overhead.py: a bare FastHttpUser posting one fixed body.

No sampling, no drift, no feedback, no parsing: the most requests per second one Locust
process can send to the service. ``BENCH_BODY`` holds the JSON body to post.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

HEADERS = {"Content-Type": "application/json"}


class BareUser(FastHttpUser):
    """Posts the same record to /predict as fast as the service answers."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.body = os.environ["BENCH_BODY"]

    @task
    def predict(self) -> None:
        self.client.post("/predict", data=self.body, headers=HEADERS, name="/predict")
