"""The real reference service scraped every second by a real Prometheus with the CI rules,
for tests that need the whole monitoring chain (rules, dashboards)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from driftgate.prometheus_server import PrometheusServer
from driftgate.service_process import ReferenceServiceProcess
from prometheus import generate_rules
from target_service.config import ServiceSettings


@contextmanager
def scraped_service(run_dir: Path) -> Iterator[tuple[ReferenceServiceProcess, PrometheusServer]]:
    """Start both on loopback, wait for the first scrape, and stop both whatever happens."""
    service = ReferenceServiceProcess(ServiceSettings.model_validate({}), run_dir)
    prometheus = PrometheusServer(
        run_dir / "prometheus" / "data",
        scrape_targets=[f"127.0.0.1:{service.port}"],
        scrape_interval_s=1.0,
        rule_files=[generate_rules.rule_file_path("ci")],
    )
    try:
        service.start()
        prometheus.start()
        prometheus.wait_for_first_scrape()
        yield service, prometheus
    finally:
        prometheus.stop()
        service.stop()
