"""The bundled reference service, started as a child process for a run."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import yaml

from driftgate.errors import RunError
from driftgate.processes import ChildProcess, answers_ok, free_loopback_port, port_is_free
from target_service.config import ServiceSettings

logger = logging.getLogger(__name__)

# The first start on a machine trains and caches both models; later starts load the cache.
READY_TIMEOUT_S = 120.0


class ReferenceServiceProcess:
    """``python -m target_service`` on 127.0.0.1 with the scenario's settings."""

    def __init__(self, settings: ServiceSettings, run_dir: Path, port: int | None = None) -> None:
        self.port = port if port is not None else free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings_path = run_dir / "service.yaml"
        self._settings = settings.model_copy(update={"host": "127.0.0.1", "port": self.port})
        self._process = ChildProcess(
            "service",
            [sys.executable, "-m", "target_service", "--config", str(self.settings_path)],
            run_dir / "logs" / "service.log",
        )

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start the service and wait until ``/readyz`` answers 200."""
        if not port_is_free("127.0.0.1", self.port):
            raise RunError(f"port {self.port} on 127.0.0.1 is in use; pick another --service-port")

        settings_yaml = yaml.safe_dump(self._settings.model_dump(mode="json"), sort_keys=False)
        self.settings_path.write_text(settings_yaml)
        self._process.start()
        self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.raise_if_dead("while starting")
            if self._is_ready():
                logger.info("service ready url=%s", self.url)
                return
            time.sleep(0.2)
        raise RunError(
            f"the reference service did not become ready within {timeout_s:.0f}s at {self.url}; "
            f"last lines of {self._process.log_path}:\n{self._process.log_tail()}"
        )

    def _is_ready(self) -> bool:
        return answers_ok(f"{self.url}/readyz")

    def raise_if_dead(self, when: str) -> None:
        """Raise a RunError with the log's last lines if the service process has exited."""
        code = self._process.exit_code()
        if code is not None:
            raise RunError(
                f"the reference service exited with code {code} {when}; "
                f"last lines of {self._process.log_path}:\n{self._process.log_tail()}"
            )

    def stop(self) -> None:
        self._process.stop()
