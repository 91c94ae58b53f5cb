"""Priority levels and classification: the team's own level names, P1–P4 by default.

Pure; the policy is the service config's ``priorities:`` (``receiver.settings``), called
by ``receiver`` intake for every match (:func:`classify`) and by ``rules.loader`` when
rules load (:meth:`PriorityPolicy.translation`, :func:`unknown_levels`). A level is a
name (``P1``, ``SEV-2``, ``P0``); ``levels`` lists them most urgent first, and a level's
rank (its position) is what the built-in escalation policies go by: ``p1_unresolved``
watches the first level, ``p2_recurring`` the second. A rule's own ``priority`` wins;
otherwise the configured severity map decides, then the default. Each level carries a
response target; one not configured takes the default of its rank (15 min, 1 h, 4 h,
24 h, then 24 h for every further rank).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from rules.alert import Alert
from rules.durations import Duration

LEVEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
"""A level name: letters, digits and ``_ . : -`` (``P1``, ``SEV-1``, ``p0``)."""

Priority = str
"""A level name, one of the configured ``priorities.levels``."""

Level = Annotated[str, Field(pattern=LEVEL_PATTERN, max_length=64)]

DEFAULT_LEVELS: tuple[str, ...] = ("P1", "P2", "P3", "P4")
_RANK_TARGETS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
_RANK_SEVERITIES = {"critical": 0, "high": 1, "error": 1, "warning": 2, "info": 3}
_DEFAULT_RANK = 2  # unknown or missing severity: the third level (P3), or the last when fewer


def _at_rank(levels: Sequence[str], rank: int) -> str:
    return levels[min(rank, len(levels) - 1)]


class PriorityPolicy(BaseModel):
    """The level names, how severities map to them, the default, each level's response target.

    ``map``, ``default`` and ``response_targets`` not given follow ``levels`` by rank:
    ``critical`` → the first level, ``high``/``error`` → the second, ``warning`` → the
    third, ``info`` → the fourth (the last level when there are fewer), the default the
    third (or the last).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    levels: list[Level] = Field(default_factory=lambda: list(DEFAULT_LEVELS), min_length=1, max_length=10,
                                description="Level names, most urgent first")
    map: dict[str, Level] | None = Field(default=None, description="Severity label value -> level")
    default: Level | None = Field(default=None, description="Level of an alert the map does not place")
    label: str = "severity"
    response_targets: dict[Level, Duration] = Field(default_factory=dict)
    _severities: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _known_levels(self) -> PriorityPolicy:
        doubled = sorted({lv for lv in self.levels if self.levels.count(lv) > 1})
        if doubled:
            raise ValueError(f"levels: {', '.join(doubled)} given twice")
        given = [*((f"map.{severity}", level) for severity, level in (self.map or {}).items()),
                 *([("default", self.default)] if self.default else []),
                 *((f"response_targets.{level}", level) for level in self.response_targets)]
        wrong = [f"{key}: unknown priority level {level!r}"
                 for key, level in given if level not in self.levels]
        if wrong:
            raise ValueError(f"{'; '.join(wrong)} (levels: {', '.join(self.levels)})")
        self._severities = dict(self.map) if self.map is not None else {
            severity: _at_rank(self.levels, rank) for severity, rank in _RANK_SEVERITIES.items()}
        return self

    @property
    def severity_map(self) -> dict[str, str]:
        """``map``, or the default map by rank."""
        return dict(self._severities)

    @property
    def default_level(self) -> str:
        """``default``, or the third level (the last when there are fewer)."""
        return self.default or _at_rank(self.levels, _DEFAULT_RANK)

    def for_severity(self, severity: str) -> str:
        """The level of an alert whose severity label (lower-cased) is ``severity``."""
        return self._severities.get(severity, self.default_level)

    def rank(self, level: str) -> int | None:
        """0 for the most urgent level; None for a name that is not a level."""
        return self.levels.index(level) if level in self.levels else None

    def response_target(self, level: str) -> timedelta:
        """How soon a human must respond to an alert of this level."""
        if level in self.response_targets:
            return self.response_targets[level]
        return _RANK_TARGETS[min(self.rank(level) or 0, len(_RANK_TARGETS) - 1)]

    def translation(self, written_in: Sequence[str]) -> dict[str, str]:
        """How a rule file written on the levels ``written_in`` maps onto these levels: by
        rank, the ranks past the last of these taking the last (least urgent)."""
        return {name: _at_rank(self.levels, rank) for rank, name in enumerate(written_in)}


def unknown_levels(names: Sequence[str], levels: Sequence[str]) -> list[str]:
    """The names that are not among ``levels``, in order."""
    return [n for n in names if n not in levels]


def classify(alert: Alert, rule_priority: str | None, policy: PriorityPolicy) -> str:
    """The level of ``alert`` as matched by a rule whose own priority is ``rule_priority``."""
    if rule_priority is not None:
        return rule_priority
    severity = alert.labels.get(policy.label, "").lower()
    return policy.for_severity(severity)
