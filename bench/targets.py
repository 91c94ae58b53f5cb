"""The issue's targets, and whether a figure meets one.

Pure; ``bench.run`` evaluates every target on the figures of one run, and
``bench.report`` prints each next to its figure with met or missed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    MET = "met"
    MISSED = "missed"
    NOT_MEASURED = "not measured"


@dataclass(frozen=True, slots=True)
class Target:
    """``figure`` (a key of the run's figures) must be ``op`` ``bound``."""

    key: str
    label: str
    op: str  # ">=" or "<="
    bound: float
    unit: str = ""

    def check(self, value: float | None) -> Verdict:
        if value is None:
            return Verdict.NOT_MEASURED
        compare: Callable[[float, float], bool] = operator.ge if self.op == ">=" else operator.le
        return Verdict.MET if compare(value, self.bound) else Verdict.MISSED

    def describe(self) -> str:
        return f"{self.op} {self.bound:g}{self.unit}"


TARGETS: tuple[Target, ...] = (
    Target("intake_ratio_sqlite", "alerts/s accepted, SQLite, ÷ floor (10 alerts/req, conc 16)",
           ">=", 0.5, "×"),
    Target("intake_ratio_redis", "alerts/s accepted, Redis, ÷ floor (10 alerts/req, conc 16)",
           ">=", 0.4, "×"),
    Target("decisions_per_s", "dry-run decisions completed and audited (SQLite, 10 alerts/req, conc 16)",
           ">=", 14_000, " alerts/s"),
    Target("p99_ack_ms_sqlite", "p99 ack latency at conc 16, SQLite (10 alerts/req)", "<=", 20, " ms"),
    Target("p99_ack_ms_redis", "p99 ack latency at conc 16, Redis (10 alerts/req)", "<=", 20, " ms"),
    Target("match_ratio", "per-alert match time, 10,000 rules ÷ 10 rules", "<=", 2, "×"),
    Target("peak_rss_mb_10k", "peak RSS with 10,000 rules (SQLite)", "<=", 150, " MB"),
    Target("ready_s", "start → /ready with the shipped pack", "<=", 1.5, " s"),
)


@dataclass(frozen=True, slots=True)
class Evaluation:
    target: Target
    value: float | None
    verdict: Verdict

    def as_dict(self) -> dict[str, object]:
        return {"key": self.target.key, "label": self.target.label, "target": self.target.describe(),
                "value": self.value, "verdict": self.verdict.value}


def evaluate(figures: dict[str, float | None], targets: tuple[Target, ...] = TARGETS) -> list[Evaluation]:
    """Each target against ``figures[target.key]`` (absent: not measured)."""
    return [Evaluation(t, figures.get(t.key), t.check(figures.get(t.key))) for t in targets]
