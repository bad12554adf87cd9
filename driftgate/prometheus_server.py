"""A real Prometheus server started by driftgate: for a run, and for the tests.

It runs the ``prometheus`` binary (Debian's ``prometheus`` package, or one named by the
caller) on a loopback port, with a generated configuration and a data directory of the
caller's choosing, and is stopped with its process group.

    with PrometheusServer(data_dir, scrape_targets=["127.0.0.1:8000"]) as prometheus:
        prometheus.url  # "http://127.0.0.1:<port>"
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
import yaml

from driftgate.errors import PrometheusError
from driftgate.processes import ChildProcess, answers_ok, free_loopback_port, port_is_free
from sla.objectives import DEFAULT_SCRAPE_JOB

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install Debian's prometheus package (apt-get install -y prometheus) "
    "or name the binary with --prometheus-binary"
)
READY_TIMEOUT_S = 30.0
FIRST_SCRAPE_TIMEOUT_S = 30.0


def find_prometheus_binary(binary: str | Path | None = None) -> Path:
    """The Prometheus binary to run: ``binary`` if given, else ``prometheus`` on PATH."""
    name = str(binary) if binary else "prometheus"
    found = shutil.which(name)
    if found is None:
        raise PrometheusError(f"Prometheus binary {name!r} not found; {INSTALL_HINT}")
    return Path(found)


def scrape_configuration(
    scrape_targets: Sequence[str],
    scrape_interval_s: float,
    rule_files: Sequence[Path],
    job_name: str = DEFAULT_SCRAPE_JOB,
    scheme: str = "http",
    metrics_path: str = "/metrics",
) -> dict[str, object]:
    """A Prometheus configuration that scrapes ``scrape_targets`` and loads ``rule_files``."""
    interval = f"{int(scrape_interval_s * 1000)}ms"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path.resolve()) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": job_name,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "scheme": scheme,
                "metrics_path": metrics_path,
                "static_configs": [{"targets": list(scrape_targets)}],
            }
        ],
    }


class PrometheusServer:
    """A Prometheus process on 127.0.0.1, its data and log inside ``data_dir``'s parent."""

    def __init__(
        self,
        data_dir: Path,
        scrape_targets: Sequence[str] = (),
        scrape_interval_s: float = 1.0,
        rule_files: Sequence[Path] = (),
        scheme: str = "http",
        metrics_path: str = "/metrics",
        port: int | None = None,
        binary: str | Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.binary = find_prometheus_binary(binary)
        self.data_dir = data_dir
        self.port = port if port is not None else free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = data_dir.parent / "prometheus.yml"
        self._configuration = scrape_configuration(
            scrape_targets,
            scrape_interval_s,
            rule_files,
            scheme=scheme,
            metrics_path=metrics_path,
        )
        self._log_path = log_path or data_dir.parent / "prometheus.log"
        self._process: ChildProcess | None = None

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start Prometheus and wait until it answers ``/-/ready``."""
        if not port_is_free("127.0.0.1", self.port):
            raise PrometheusError(
                f"port {self.port} on 127.0.0.1 is in use; choose another Prometheus port"
            )

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self._configuration, sort_keys=False))
        self._process = ChildProcess("prometheus", self._command(), self._log_path)
        self._process.start()
        self._wait_ready(ready_timeout_s)

    def _command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Lets a run reload rules, and the tests shut it down cleanly.
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=30d",
            "--log.level=warn",
        ]

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._process is not None, "start() creates the process first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._process.is_running():
                raise PrometheusError(
                    f"Prometheus exited with code {self._process.exit_code()} while starting; "
                    f"last lines of {self._log_path}:\n{self._process.log_tail()}"
                )
            if self._is_ready():
                logger.info("prometheus ready url=%s", self.url)
                return
            time.sleep(0.1)
        self.stop()
        raise PrometheusError(
            f"Prometheus did not become ready within {timeout_s:.0f}s at {self.url}; "
            f"see {self._log_path}"
        )

    def _is_ready(self) -> bool:
        return answers_ok(f"{self.url}/-/ready")

    def wait_for_first_scrape(self, timeout_s: float = FIRST_SCRAPE_TIMEOUT_S) -> None:
        """Wait until every scrape target has been scraped successfully once.

        Prometheus hands new targets to its scrapers on a 5 s tick, so the first scrape comes
        up to ~5 s after start; load sent before it would fall in a scrape gap.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                raise PrometheusError(
                    f"Prometheus exited while waiting for its first scrape; last lines of "
                    f"{self._log_path}:\n{self.log_tail()}"
                )
            if self._all_targets_up():
                return
            time.sleep(0.2)
        raise PrometheusError(
            f"Prometheus did not scrape its targets successfully within {timeout_s:.0f}s; "
            f"see {self.url}/targets and {self._log_path}"
        )

    def _all_targets_up(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/api/v1/targets", timeout=1.0)
            targets = response.json()["data"]["activeTargets"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return bool(targets) and all(target.get("health") == "up" for target in targets)

    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running()

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process else "(not started)"

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
