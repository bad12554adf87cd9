"""Service settings: sources in the documented order, and one-line errors naming field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from target_service.config import load_settings
from target_service.errors import ConfigError


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "service.yaml"
    path.write_text("workers: 1\nport: 8000\ndrift: {window_size: 300, min_samples: 50}\n")
    return path


def test_environment_overrides_file_and_arguments_override_both(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTGATE_WORKERS", "3")
    monkeypatch.setenv("DRIFTGATE_DRIFT__WINDOW_SIZE", "700")

    settings = load_settings(settings_file, port=9001)

    assert settings.workers == 3  # environment over file
    assert settings.port == 9001  # argument over file
    assert settings.drift.window_size == 700  # nested environment key over the file's
    assert settings.drift.min_samples == 50  # the file's other nested key survives


def test_bad_environment_value_names_field_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTGATE_WORKERS", "many")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert "workers" in message and "'many'" in message
    assert "\n" not in message


def test_unknown_model_version_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("model_weights: {v1: 0.5, v3: 0.5}\n")

    with pytest.raises(ConfigError, match=r"unknown model version 'v3'; known: v1, v2"):
        load_settings(path)


def test_misspelt_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("wokers: 2\n")

    with pytest.raises(ConfigError, match="wokers"):
        load_settings(path)


def test_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("- just\n- a list\n")

    with pytest.raises(ConfigError, match="expected a mapping of settings, got list"):
        load_settings(path)
