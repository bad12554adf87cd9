"""The run manifest: round trip, lookups by phase, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.errors import ManifestError
from driftgate.manifest import PhaseRecord, RunManifest


def _manifest() -> RunManifest:
    phases = [
        PhaseRecord(
            name="warmup",
            start_s=100.0,
            end_s=130.0,
            users=5,
            spawn_rate=5,
            traffic={"kind": "normal"},
        ),
        PhaseRecord(
            name="drift",
            start_s=130.0,
            end_s=160.5,
            users=5,
            spawn_rate=5,
            traffic={"kind": "mean_shift", "size": 1.5},
        ),
    ]
    return RunManifest(
        scenario="demo",
        target_url="http://127.0.0.1:1",
        started_s=100.0,
        ended_s=160.5,
        phases=phases,
    )


def test_round_trip_keeps_exact_phase_times(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    _manifest().save(path)

    loaded = RunManifest.load(path)

    assert loaded == _manifest()
    assert loaded.phase("drift").duration_s == pytest.approx(30.5)


def test_unknown_phase_lists_the_known_ones() -> None:
    with pytest.raises(ManifestError, match=r"no phase 'drfit'; phases: warmup, drift"):
        _manifest().phase("drfit")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{}", "scenario: Field required (and 4 more)"),
        (
            '{"scenario": "x", "target_url": "u", "started_s": "soon", "ended_s": 1, "phases": []}',
            "started_s: Input should be a valid number",
        ),
        ("not json", "Invalid JSON"),
    ],
)
def test_bad_file_is_one_line_naming_the_field(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)

    with pytest.raises(ManifestError) as caught:
        RunManifest.load(path)

    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_binary_and_missing_files_are_named(tmp_path: Path) -> None:
    binary = tmp_path / "manifest.json"
    binary.write_bytes(bytes(range(128, 256)))

    with pytest.raises(ManifestError, match="not a text file"):
        RunManifest.load(binary)
    with pytest.raises(ManifestError, match="cannot read the run manifest"):
        RunManifest.load(tmp_path / "absent.json")
