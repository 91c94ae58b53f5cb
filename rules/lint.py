"""Lint checks over a loaded rule set: what loads but is probably not what was meant.

Called by ``receiver.cli.rules`` (``remediator rules lint``) after ``rules.loader`` loaded
the set (the loader reports everything that does not load). Pure: the caller says where
each rule is (``lines``) and which action steps are destructive (it knows the actions).
Every rule that matches an alert acts, so an identical match is not "unreachable" as an
Alertmanager route would be: both rules act on every such alert, which is what is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from itertools import combinations

from rules.errors import Problem
from rules.matchers import Matcher, MatchType
from rules.model import ActionSpec, Rule, RuleSet

_WARNING = "warning"
CHECKS = ("identical-match", "same-target", "auto-destructive")
"""The checks' names: ``rules lint --ignore NAME`` turns one off; each warning ends with it."""


def _match_key(rule: Rule) -> tuple[frozenset[tuple[str, str, str]], str]:
    return frozenset((m.name, m.type.value, m.value) for m in rule.match), rule.status


def _finite(m: Matcher) -> set[str] | None:
    """The values a matcher admits when they are a finite list (``= "a"``, ``=~ "a|b"``)."""
    if m.type is MatchType.EQUAL:
        return {m.value}
    if m.type is MatchType.REGEX:
        parts = m.value.split("|")
        if all(re.escape(p) == p for p in parts):
            return set(parts)
    return None


def _label_disjoint(xs: list[Matcher], ys: list[Matcher]) -> bool:
    """No value of one label satisfies both sides (judged when one side lists its values)."""
    for side, other in ((xs, ys), (ys, xs)):
        for m in side:
            values = _finite(m)
            if values is not None and not any(all(n.matches(v) for n in side + other) for v in values):
                return True
    return False


def may_overlap(a: Rule, b: Rule) -> bool:
    """False only when no alert can match both: their statuses differ, or on some label the
    values one rule lists (``=``, or ``=~`` of plain alternatives) are all refused by the other."""
    if a.status != b.status and "any" not in (a.status, b.status):
        return False
    for label in {m.name for m in a.match} & {m.name for m in b.match}:
        if _label_disjoint([m for m in a.match if m.name == label], [m for m in b.match if m.name == label]):
            return False
    return True


def _targets(rule: Rule) -> set[str]:
    return {spec.target for spec in rule.all_actions if spec.target is not None}


def lint_ruleset(ruleset: RuleSet, *, lines: Mapping[str, int | None],
                 destructive: Callable[[ActionSpec], bool], ignore: Collection[str] = ()) -> list[Problem]:
    """Warnings about the loaded ``ruleset``; ``lines`` maps a rule name to its line;
    ``ignore`` names checks (:data:`CHECKS`) not to run."""
    rules, sources = ruleset.rules, ruleset.sources
    where = {r.name: f"{s}:{lines.get(r.name)}" if lines.get(r.name) else s
             for r, s in zip(rules, sources, strict=True)}
    out: list[Problem] = []

    def warn(rule: Rule, source: str, check: str, message: str) -> None:
        if check not in ignore:
            out.append(Problem(source, lines.get(rule.name), rule.name, f"{message} [{check}]", _WARNING))

    first: dict[tuple[frozenset[tuple[str, str, str]], str], Rule] = {}
    for rule, source in zip(rules, sources, strict=True):
        twin = first.setdefault(_match_key(rule), rule)
        if twin is not rule:
            warn(rule, source, "identical-match",
                 f"matches exactly the alerts rule {twin.name!r} ({where[twin.name]}) matches: every "
                 "matching rule acts, so both act on each of them; merge them or make the matches differ")
        # a rung's own approval wins over the rule's: the steps whose approval ends up auto
        own = [rule.ladder[step.index].approval if rule.ladder else None for step in rule.steps]
        auto = [step for step, mine in zip(rule.steps, own, strict=True)
                if (mine if mine is not None else rule.approval) == "auto"]
        steps = sorted({spec.action for step in auto for spec in step.actions if destructive(spec)})
        if steps:
            warn(rule, source, "auto-destructive",
                 f"approval: auto runs destructive {', '.join(steps)} with no human asked; leave approval "
                 "unset (required for destructive actions) unless the runbook says it is safe to automate")
    for (a, _), (b, sb) in combinations(zip(rules, sources, strict=True), 2):
        shared = ", ".join(repr(t) for t in sorted(_targets(a) & _targets(b)))
        if not shared:
            continue
        if _match_key(a) == _match_key(b):
            warn(b, sb, "same-target", f"acts on target {shared} for every alert rule {a.name!r} "
                 f"({where[a.name]}) acts on there too")
        elif may_overlap(a, b):
            warn(b, sb, "same-target", f"can act on target {shared} for the same alert as rule {a.name!r} "
                 f"({where[a.name]}): both run, one after the other under the target lock; make the "
                 "matches exclusive if one remediation is meant")
    return sorted(out, key=lambda p: (p.file, p.line or 0))
