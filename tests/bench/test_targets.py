"""Targets met or missed, and the figures they are checked against."""

from __future__ import annotations

from typing import Any

import pytest

from bench.run import summary_figures
from bench.targets import TARGETS, Target, Verdict, evaluate


@pytest.mark.parametrize(("target", "value", "verdict"), [
    (Target("k", "x", ">=", 0.5), 0.5, Verdict.MET),
    (Target("k", "x", ">=", 0.5), 0.49, Verdict.MISSED),
    (Target("k", "x", "<=", 20), 20.0, Verdict.MET),
    (Target("k", "x", "<=", 20), 20.1, Verdict.MISSED),
    (Target("k", "x", "<=", 20), None, Verdict.NOT_MEASURED),
])
def test_check(target: Target, value: float | None, verdict: Verdict) -> None:
    assert target.check(value) is verdict


def test_every_issue_target_is_there_once() -> None:
    keys = [t.key for t in TARGETS]
    assert len(keys) == len(set(keys)) == 8
    assert {t.key: t.bound for t in TARGETS} == {
        "intake_ratio_sqlite": 0.5, "intake_ratio_redis": 0.4, "decisions_per_s": 14_000,
        "p99_ack_ms_sqlite": 20, "p99_ack_ms_redis": 20, "match_ratio": 2, "peak_rss_mb_10k": 150,
        "ready_s": 1.5}


def _s(median: float) -> dict[str, float]:
    return {"median": median, "min": median, "max": median, "runs": 3}


def _results() -> dict[str, Any]:
    shape = {"alerts_per_s": _s(20_000), "p99_ms": _s(15.0), "decisions_per_s": _s(9_000)}
    return {
        "floor": {"10x16": {"alerts_per_s": _s(50_000)}},
        "remediator": [
            {"store": "sqlite", "rules": 10, "shapes": {"10x16": shape}},
            {"store": "redis", "rules": 10, "shapes": {"10x16": {**shape, "p99_ms": _s(25.0)}}},
            {"store": "sqlite", "rules": 10_000, "shapes": {"10x16": shape}, "peak_rss_mb": 120.0},
        ],
        "match": [{"rules": 10, "us_per_alert": _s(4.0)}, {"rules": 10_000, "us_per_alert": _s(6.0)}],
        "ready_shipped": _s(1.2),
    }


def test_summary_figures_from_a_run() -> None:
    figures = summary_figures(_results())
    assert figures == {"intake_ratio_sqlite": 0.4, "intake_ratio_redis": 0.4, "p99_ack_ms_sqlite": 15.0,
                       "p99_ack_ms_redis": 25.0, "decisions_per_s": 9_000, "match_ratio": 1.5,
                       "peak_rss_mb_10k": 120.0, "ready_s": 1.2}
    verdicts = {e.target.key: e.verdict for e in evaluate(figures)}
    assert verdicts["intake_ratio_sqlite"] is Verdict.MISSED
    assert verdicts["intake_ratio_redis"] is Verdict.MET
    assert verdicts["p99_ack_ms_redis"] is Verdict.MISSED
    assert verdicts["peak_rss_mb_10k"] is Verdict.MET


def test_a_run_without_10000_rules_leaves_those_targets_unmeasured() -> None:
    results = _results()
    results["remediator"] = results["remediator"][:2]
    results["match"] = results["match"][:1]
    verdicts = {e.target.key: e.verdict for e in evaluate(summary_figures(results))}
    assert verdicts["match_ratio"] is Verdict.NOT_MEASURED
    assert verdicts["peak_rss_mb_10k"] is Verdict.NOT_MEASURED
