"""The project's own rules, checked in CI like any behaviour: lint, format and types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TYPED_PACKAGES = ["driftgate", "sla", "loadtests", "target_service", "prometheus", "grafana"]

CHECKS = {
    "ruff check": ["ruff", "check", "."],
    "ruff format": ["ruff", "format", "--check", "."],
    "mypy": ["mypy", *TYPED_PACKAGES],
}


@pytest.mark.parametrize("name", CHECKS)
def test_code_passes(name: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", *CHECKS[name]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, f"{name} failed:\n{completed.stdout}\n{completed.stderr}"
