"""``rules lint`` past loading: the checks that need the actions and the service config.

Called by ``receiver.cli.rules``. The loader (``rules.loader``) already reports every
problem that stops rules from loading, and ``rules.lint`` the pure checks over the set;
this adds what needs the real actions: which steps are destructive with the params given
(``http.request`` with GET is not), and, with ``--config``, params the target's allow-list
or the notifiers refuse before any alert arrives (only params without templates can be
judged; templated ones are checked per decision), and ``escalate_to`` notifiers the config
lacks.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receiver.settings import Settings
from remediations.base import ActionContext, PermanentError
from remediations.blocking import BlockingCalls
from remediations.registry import Registry
from rules.alert import Alert
from rules.errors import Problem
from rules.lint import lint_ruleset
from rules.model import ActionSpec, Rule, RuleSet
from rules.templating import is_templated
from rules.yamldoc import Loc, read_yaml

_NO_ALERT = Alert(fingerprint="0", status="firing", labels={}, annotations={},
                  starts_at=datetime(1970, 1, 1, tzinfo=UTC), starts_at_raw="1970-01-01T00:00:00Z")


class _Lines:
    """Lines of rules and steps, read back from the rule files."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.rule: dict[str, int | None] = {}
        self.step: dict[tuple[str, int], int | None] = {}
        files: dict[str, Any] = {}
        position: dict[str, int] = {}
        for rule, source in zip(ruleset.rules, ruleset.sources, strict=True):
            if source not in files:
                files[source] = read_yaml(Path(source).read_text(encoding="utf-8"), source).line
            line_of = files[source]
            i = position[source] = position.get(source, -1) + 1
            self.rule[rule.name] = line_of(("rules", i))
            for n, loc in enumerate(_step_locs(rule, i)):
                self.step[(rule.name, n)] = line_of(loc)


def _step_locs(rule: Rule, i: int) -> list[Loc]:
    """The data path of each of ``rule.all_actions``, in order."""
    if not rule.ladder:
        return [("rules", i, "actions", j) for j in range(len(rule.actions))]
    return [("rules", i, "ladder", k, "actions", j) for k, rung in enumerate(rule.ladder)
            for j in range(len(rung.actions))]


def _literal_params(spec: ActionSpec) -> dict[str, Any] | None:
    return None if is_templated(spec.compiled_params) else spec.params


def lint_actions(ruleset: RuleSet, *, registry: Registry, settings: Settings | None,
                 ignore: Collection[str] = ()) -> list[Problem]:
    """Every lint problem of a loaded set: ``rules.lint``'s, and the allow-list checks."""
    lines = _Lines(ruleset)

    def destructive(spec: ActionSpec) -> bool:
        action = registry.get(spec.action)
        if action is None:
            return False
        params = _literal_params(spec)
        if params is None:
            return action.destructive
        try:
            return action.is_destructive(action.parse_params(params))
        except PermanentError:
            return action.destructive

    problems = lint_ruleset(ruleset, lines=lines.rule, destructive=destructive, ignore=ignore)
    if settings is not None:
        for rule, source in zip(ruleset.rules, ruleset.sources, strict=True):
            for n, spec in enumerate(rule.all_actions):
                refused = _refused(spec, rule, registry, settings)
                if refused:
                    problems.append(Problem(source, lines.step.get((rule.name, n)), rule.name,
                                            f"{spec.action}: {refused}"))
            unknown = sorted(set(rule.escalate_to or ()) - set(settings.notifiers))
            if unknown:
                problems.append(Problem(source, lines.rule.get(rule.name), rule.name,
                                        f"escalate_to names notifiers the service config lacks: "
                                        f"{', '.join(unknown)} (its escalations would fail to send)"))
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def _refused(spec: ActionSpec, rule: Rule, registry: Registry, settings: Settings) -> str | None:
    """Why the service would refuse this step whatever the alert, or None."""
    action = registry.get(spec.action)
    params = _literal_params(spec)
    if action is None or params is None or (spec.target is not None and spec.target not in settings.targets):
        return None
    target = settings.targets.get(spec.target) if spec.target else None
    calls = BlockingCalls(1)  # check_allowed makes no call: no thread is ever started
    ctx = ActionContext(decision_id="lint", rule=rule.name, alert=_NO_ALERT, target_name=spec.target,
                        target=target, dry_run=False, calls=calls, notifiers=settings.notifiers)
    try:
        action.check_allowed(ctx, action.parse_params(params))
    except PermanentError as exc:
        return f"refused by the service config: {exc}"
    finally:
        calls.close()
    return None
