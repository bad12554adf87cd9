"""Overall verdict precedence and exit codes."""

from __future__ import annotations

import pytest

from sla.verdicts import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_USAGE,
    ObjectiveResult,
    Verdict,
    breach_verdict,
    exit_code_for,
    overall_verdict,
)


def result(verdict: Verdict) -> ObjectiveResult:
    return ObjectiveResult(
        name=verdict.value,
        kind="latency",
        severity="fail",
        verdict=verdict,
        value=None,
        unit="s",
        threshold="<= 1",
        reason="r",
        queries=[],
    )


@pytest.mark.parametrize(
    ("verdicts", "overall", "code"),
    [
        ([Verdict.PASS], Verdict.PASS, EXIT_OK),
        ([Verdict.PASS, Verdict.WARN], Verdict.WARN, EXIT_OK),
        ([Verdict.PASS, Verdict.FAIL], Verdict.FAIL, EXIT_FAIL),
        ([Verdict.WARN, Verdict.INCONCLUSIVE], Verdict.INCONCLUSIVE, EXIT_INCONCLUSIVE),
        ([Verdict.INCONCLUSIVE, Verdict.FAIL], Verdict.FAIL, EXIT_FAIL),
        ([], Verdict.INCONCLUSIVE, EXIT_INCONCLUSIVE),
    ],
)
def test_precedence_and_exit_codes(verdicts: list[Verdict], overall: Verdict, code: int) -> None:
    assert overall_verdict([result(v) for v in verdicts]) == overall
    assert exit_code_for(overall) == code


def test_exit_codes_are_distinct() -> None:
    assert len({EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE}) == 4


def test_severity_decides_what_a_breach_means() -> None:
    assert breach_verdict("fail") == Verdict.FAIL
    assert breach_verdict("warn") == Verdict.WARN
