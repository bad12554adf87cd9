"""docker-compose.yml, the Dockerfile and the Alertmanager configuration, checked without Docker.

There is no Docker engine here: the compose file is validated and normalised by Debian's
``docker-compose`` (``docker-compose config`` parses and checks it against the compose schema
without an engine), Alertmanager's configuration by ``amtool check-config``. Nothing is
built or started; docs/dashboards.md says what that leaves unchecked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
TOOL_TIMEOUT_S = 60
SERVICES = {
    "target-service",
    "prometheus",
    "grafana",
    "alertmanager",
    "locust-master",
    "locust-worker",
}
SERVICE_PORT = 8000


def run_tool(
    name: str, *arguments: str | Path, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(name)
    if binary is None:
        raise RuntimeError(
            f"{name} not found; install Debian's {name} package (see scripts/setup.sh)"
        )
    return subprocess.run(
        [binary, *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )


def compose_config(compose_file: Path) -> subprocess.CompletedProcess[str]:
    return run_tool("docker-compose", "--file", compose_file, "config", cwd=compose_file.parent)


@pytest.fixture(scope="module")
def normalised() -> dict[str, Any]:
    """The compose file as docker-compose reads it: defaults filled in, paths absolute."""
    result = compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_docker_compose_accepts_the_file_with_every_service(normalised: dict[str, Any]) -> None:
    assert set(normalised["services"]) == SERVICES


def test_docker_compose_rejects_an_unknown_service_option(tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    compose["services"]["prometheus"]["imagee"] = compose["services"]["prometheus"]["image"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose))

    result = compose_config(broken)

    assert result.returncode != 0
    assert "imagee" in result.stderr


def test_every_published_port_is_on_loopback(normalised: dict[str, Any]) -> None:
    published = [
        (name, port)
        for name, service in normalised["services"].items()
        for port in service.get("ports", [])
    ]

    assert published
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_bind_mount_source_exists_in_the_repository(normalised: dict[str, Any]) -> None:
    sources = [
        Path(volume.split(":")[0])
        for service in normalised["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("/")
    ]

    assert sources
    for source in sources:
        assert source.exists(), source
        assert source.is_relative_to(REPO), source


def test_grafana_mounts_provisioning_and_the_folder_its_provider_reads(
    normalised: dict[str, Any],
) -> None:
    provider_file = REPO / "grafana" / "provisioning" / "dashboards" / "driftgate.yml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    mounts = normalised["services"]["grafana"]["volumes"]

    assert f"{REPO}/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert f"{REPO}/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_grafana_datasource_points_at_the_compose_prometheus(normalised: dict[str, Any]) -> None:
    datasource_file = REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    (datasource,) = yaml.safe_load(datasource_file.read_text())["datasources"]

    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in normalised["services"]


def test_prometheus_scrapes_the_service_and_alerts_the_compose_alertmanager(
    normalised: dict[str, Any],
) -> None:
    configuration = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in configuration["scrape_configs"]}
    (alertmanagers,) = configuration["alerting"]["alertmanagers"]

    assert jobs["target_service"]["static_configs"][0]["targets"] == [
        f"target-service:{SERVICE_PORT}"
    ]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert (
        f"{REPO}/prometheus:/etc/prometheus:ro" in normalised["services"]["prometheus"]["volumes"]
    )


def test_locust_master_and_workers_run_the_scenario_against_the_service(
    normalised: dict[str, Any],
) -> None:
    master = normalised["services"]["locust-master"]
    worker = normalised["services"]["locust-worker"]

    assert f"http://target-service:{SERVICE_PORT}" in master["command"]
    assert "--master" in master["command"]
    assert worker["command"][-2:] == ["--master-host", "locust-master"]
    for service in (master, worker):
        assert "loadtests/locustfile.py" in service["command"]
        assert service["environment"]["DRIFTGATE_SCENARIO"].startswith("scenarios/")


def test_dockerfile_copies_existing_paths_and_serves_the_compose_port() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    copied = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]

    for sources in copied:
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
    assert f"EXPOSE {SERVICE_PORT}" in lines
    assert any(
        line.startswith("CMD") and '"target_service"' in line and f'"{SERVICE_PORT}"' in line
        for line in lines
    )


def test_amtool_accepts_the_alertmanager_configuration() -> None:
    result = run_tool("amtool", "check-config", REPO / "alertmanager" / "alertmanager.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_rejects_a_route_to_an_undefined_receiver(tmp_path: Path) -> None:
    configuration = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    configuration["route"]["receiver"] = "nobody"
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(configuration))

    result = run_tool("amtool", "check-config", broken)

    assert result.returncode != 0
