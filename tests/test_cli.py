"""The ``driftgate`` command line: validate, check and serve as a user calls them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftgate.cli import app
from driftgate.processes import free_loopback_port
from sla.verdicts import EXIT_INCONCLUSIVE, EXIT_USAGE

REPO_ROOT = Path(__file__).resolve().parents[1]
DRIFTGATE = [sys.executable, "-c", "from driftgate.cli import app; app()"]
SHIPPED_FILES = sorted((REPO_ROOT / "scenarios").glob("*.yaml")) + sorted(
    (REPO_ROOT / "examples").glob("*sla*.yaml")
)


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: path.name)
def test_every_shipped_scenario_and_sla_file_is_valid(cli: CliRunner, path: Path) -> None:
    result = cli.invoke(app, ["validate", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")


def test_invalid_file_is_one_line_with_field_and_value(cli: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    text = (REPO_ROOT / "scenarios" / "smoke.yaml").read_text()
    scenario.write_text(text.replace("users: 5\n", "users: -3\n", 1))

    result = cli.invoke(app, ["validate", str(scenario)])

    assert result.exit_code == EXIT_USAGE
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "load.phases[0].users" in lines[0] and "-3" in lines[0]


def test_objective_with_unknown_kind_lists_the_kinds(cli: CliRunner, tmp_path: Path) -> None:
    sla_file = tmp_path / "sla.yaml"
    sla_file.write_text("objectives:\n  - {name: x, kind: latncy, quantile: p95, max: 1s}\n")

    result = cli.invoke(app, ["validate", str(sla_file)])

    assert result.exit_code == EXIT_USAGE
    assert "latncy" in result.output and "latency" in result.output


def test_check_against_unreachable_prometheus_is_inconclusive(
    cli: CliRunner, tmp_path: Path
) -> None:
    # Nothing listens on this loopback port: every objective must be inconclusive, never pass.
    url = f"http://127.0.0.1:{free_loopback_port()}"
    out_dir = tmp_path / "out"

    result = cli.invoke(
        app,
        [
            "check",
            "--prometheus-url",
            url,
            "--sla",
            str(REPO_ROOT / "examples" / "staging-sla.yaml"),
            "--out",
            str(out_dir),
            "--retries",
            "0",
            "--timeout",
            "2",
        ],
    )

    assert result.exit_code == EXIT_INCONCLUSIVE, result.output
    report = json.loads((out_dir / "report.json").read_text())
    assert {item["verdict"] for item in report["objectives"]} == {"inconclusive"}


def test_check_with_a_bad_url_is_a_usage_error(cli: CliRunner) -> None:
    result = cli.invoke(
        app,
        [
            "check",
            "--prometheus-url",
            "ftp://nowhere",
            "--sla",
            str(REPO_ROOT / "examples" / "staging-sla.yaml"),
        ],
    )

    assert result.exit_code == EXIT_USAGE
    assert "ftp://nowhere" in result.output


def test_unknown_flag_is_a_usage_error(cli: CliRunner) -> None:
    result = cli.invoke(app, ["run", "--wokers", "2"])

    assert result.exit_code == EXIT_USAGE


def test_serve_with_a_bad_setting_names_it_and_exits_2(tmp_path: Path) -> None:
    settings = tmp_path / "service.yaml"
    settings.write_text("workers: 0\n")

    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from driftgate.cli import app; app()",
            "serve",
            "--config",
            str(settings),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )

    assert completed.returncode == EXIT_USAGE
    assert "workers: Input should be greater than or equal to 1, got 0" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_serve_on_a_busy_port_names_it_and_exits_2() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as occupier:
        occupier.bind(("127.0.0.1", 0))
        occupier.listen()
        port = occupier.getsockname()[1]

        completed = subprocess.run(
            [*DRIFTGATE, "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
        )

    assert completed.returncode == EXIT_USAGE
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in completed.stderr
