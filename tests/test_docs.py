"""The examples in the README and docs are real: each YAML block that is a scenario or an SLA
file validates with the same command a user runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from driftgate.validate import validate_file

REPO_ROOT = Path(__file__).resolve().parents[1]
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
DOCUMENTS = ["README.md", "docs/scenarios.md", "docs/sla.md"]


def _runnable_blocks() -> list[tuple[str, str]]:
    """(label, text) of every YAML block that is a whole scenario or SLA file."""
    blocks = []
    for document in DOCUMENTS:
        text = (REPO_ROOT / document).read_text()
        for index, block in enumerate(YAML_BLOCK.findall(text)):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and ("load" in data or "objectives" in data):
                blocks.append((f"{document}#{index}", block))
    return blocks


BLOCKS = _runnable_blocks()


def test_the_docs_hold_examples_to_check() -> None:
    labels = [label for label, _ in BLOCKS]
    assert any(label.startswith("README.md") for label in labels)
    assert any(label.startswith("docs/sla.md") for label in labels)


@pytest.mark.parametrize(("label", "text"), BLOCKS, ids=[label for label, _ in BLOCKS])
def test_documented_example_validates(label: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(text)

    message, ok = validate_file(path)

    assert ok, f"{label}: {message}"
