"""Matching alerts to rules, indexed so the cost follows the candidates, not the rule count.

Built once per rule set (at load and at every reload) by ``receiver``; ``match`` is pure
and called for every alert of every webhook. Each rule is filed under one of its
equality matchers (``alertname`` preferred, else the first one); rules with none are
checked for every alert.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from rules.alert import Alert
from rules.matchers import MatchType
from rules.model import Rule, RuleSet

_PREFERRED_INDEX_LABEL = "alertname"


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched an alert; ``waiting`` is true while ``for`` has not elapsed."""

    rule: Rule
    position: int
    waiting: bool


class RuleIndex:
    """The rules of one rule set, indexed by an equality matcher each."""

    __slots__ = ("_by_label", "_by_name", "_ruleset", "_unindexed")

    def __init__(self, ruleset: RuleSet) -> None:
        self._ruleset = ruleset
        self._by_name = {rule.name: rule for rule in ruleset.rules}
        by_label: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        unindexed: list[int] = []
        for pos, rule in enumerate(ruleset.rules):
            equals = [m for m in rule.match if m.type is MatchType.EQUAL and m.value != ""]
            if not equals:
                unindexed.append(pos)
                continue
            key = next((m for m in equals if m.name == _PREFERRED_INDEX_LABEL), equals[0])
            by_label[key.name][key.value].append(pos)
        self._by_label = {name: dict(values) for name, values in by_label.items()}
        self._unindexed = tuple(unindexed)

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def rule(self, name: str) -> Rule | None:
        """The rule called ``name`` (names are unique in a rule set)."""
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self._ruleset.rules)

    def candidates(self, alert: Alert) -> list[int]:
        """Positions of the rules that could match ``alert``, in rule order."""
        labels = alert.labels
        found: list[int] = list(self._unindexed)
        for name, values in self._by_label.items():
            hit = values.get(labels.get(name, ""))
            if hit:
                found.extend(hit)
        if len(self._by_label) > 1 or self._unindexed:
            found.sort()
        return found

    def match(self, alert: Alert, now: datetime) -> list[Match]:
        """Every rule matching ``alert`` at ``now``, in rule order."""
        rules = self._ruleset.rules
        out: list[Match] = []
        for pos in self.candidates(alert):
            rule = rules[pos]
            if rule.matches(alert):
                # for: 0 never waits, even when Alertmanager's clock runs ahead of ours
                waiting = bool(rule.for_) and alert.status == "firing" and (
                    now - alert.starts_at) < rule.for_
                out.append(Match(rule, pos, waiting))
        return out
