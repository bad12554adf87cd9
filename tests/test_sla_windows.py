"""Window resolution: phases from the manifest, durations, explicit times, and length limits."""

from __future__ import annotations

import pytest

from driftgate.manifest import PhaseRecord, RunManifest
from sla.errors import WindowError
from sla.objectives import WindowSpec
from sla.windows import (
    TimeWindow,
    check_window_length,
    expected_scrapes,
    promql_duration,
    resolve_window,
)

NOW_S = 1_800_000_000.0


def manifest() -> RunManifest:
    phases = [
        PhaseRecord(
            name=name,
            start_s=start_s,
            end_s=end_s,
            users=2,
            spawn_rate=1.0,
            traffic={"kind": "normal"},
        )
        for name, start_s, end_s in (("warmup", 100.0, 130.5), ("drift", 130.5, 250.25))
    ]
    return RunManifest(
        scenario="s",
        target_url="http://127.0.0.1:8000",
        started_s=100.0,
        ended_s=250.25,
        phases=phases,
    )


def test_a_phase_window_is_the_exact_phase() -> None:
    window = resolve_window(WindowSpec(phase="drift"), manifest(), NOW_S, "x")
    assert (window.start_s, window.end_s, window.label) == (130.5, 250.25, "phase drift")
    assert window.range_selector == "119750ms"


def test_a_duration_ends_now_or_at_the_given_end() -> None:
    now = resolve_window(WindowSpec.model_validate("5m"), None, NOW_S, "x")
    assert (now.start_s, now.end_s) == (NOW_S - 300, NOW_S)
    fixed = resolve_window(
        WindowSpec.model_validate({"duration": "1m", "end": 1000}), None, NOW_S, "x"
    )
    assert (fixed.start_s, fixed.end_s) == (940.0, 1000.0)


def test_no_window_means_the_whole_run_or_an_error() -> None:
    whole = resolve_window(None, manifest(), NOW_S, "x")
    assert (whole.start_s, whole.end_s) == (100.0, 250.25)
    with pytest.raises(WindowError, match=r"objectives\.x\.window: no window given"):
        resolve_window(None, None, NOW_S, "x")


def test_phase_errors_name_the_objective_and_list_phases() -> None:
    with pytest.raises(WindowError, match=r"objectives\.x: phase 'drift' needs a run manifest"):
        resolve_window(WindowSpec(phase="drift"), None, NOW_S, "x")
    with pytest.raises(WindowError, match="no phase 'drfit'; phases: warmup, drift"):
        resolve_window(WindowSpec(phase="drfit"), manifest(), NOW_S, "x")


def test_windows_under_four_scrape_intervals_are_refused_with_the_reason() -> None:
    window = TimeWindow(0.0, 59.0, "last 59s")
    check_window_length(window, 14.75, "x")
    with pytest.raises(WindowError, match=r"lasts 59s, shorter than 4 scrape intervals of 15s"):
        check_window_length(window, 15.0, "x")
    with pytest.raises(WindowError, match="60s sub-window plus 4 scrape intervals"):
        check_window_length(TimeWindow(0.0, 63.0, "w"), 1.0, "x", extra_s=60.0)


def test_promql_durations_and_expected_scrapes() -> None:
    assert promql_duration(300.0) == "300s"
    assert promql_duration(1.5) == "1500ms"
    assert expected_scrapes(TimeWindow(0.0, 300.0, "w"), 15.0) == 20
