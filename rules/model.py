"""The rule model: what an SRE writes in a rule file, validated and frozen.

Built by ``rules.loader`` from YAML (which adds file/line reporting and the checks that
need the action catalogue); read by ``rules.engine`` and ``receiver``. Unknown keys are
errors, durations and matchers are parsed here, parameter templates are compiled here.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from rules import durations
from rules.alert import Alert
from rules.errors import RuleError
from rules.matchers import MATCHER_PATTERN, Matcher, parse_matcher
from rules.priority import Level, Priority
from rules.templating import compile_value, render_value


def _matcher(value: object) -> Matcher:
    try:
        return parse_matcher(value)
    except RuleError as exc:
        raise ValueError(str(exc)) from None


Duration = durations.Duration
"""A Prometheus duration in YAML (``5m``), a timedelta in Python (``rules.durations.Duration``)."""

MatcherField = Annotated[
    Matcher,
    PlainValidator(_matcher),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({
        "type": "string",
        "pattern": MATCHER_PATTERN,
        "examples": ['alertname = "HighCPU"', 'env =~ "prod|staging"'],
    }),
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ActionSpec(_Strict):
    """One action a rule runs (or, under ``diagnose``, a read-only evidence step)."""

    action: str = Field(description="Action name from the catalogue, e.g. notify.log")
    target: str | None = Field(
        default=None, description="A target named in the service config; no credentials here"
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The action's parameters; strings may use {{ labels.X }}"
    )
    timeout: Duration | None = Field(default=None, description="Overrides the action's timeout")
    _compiled: dict[str, Any] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        try:
            self._compiled = compile_value(self.params)
        except RuleError as exc:
            raise ValueError(f"params: {exc}") from None

    @property
    def compiled_params(self) -> dict[str, Any]:
        """``params`` with every template compiled (see ``rules.templating``)."""
        # read where pydantic keeps private attributes: its __getattr__ costs microseconds a call
        compiled: dict[str, Any] = self.__pydantic_private__["_compiled"]  # type: ignore[index]
        return compiled

    def render_params(self, alert: Alert) -> dict[str, Any]:
        """The params for one alert; raises ``TemplateError`` on a missing reference."""
        rendered: dict[str, Any] = render_value(self._compiled, alert)
        return rendered


class ApprovalByPriority(_Strict):
    """``approval: {required_for: [P1, P2]}``: approval only at these priorities."""

    required_for: list[Level] = Field(min_length=1)


Approval = Literal["auto", "required"] | ApprovalByPriority


class Limit(_Strict):
    """``limit: {max: 3, per: 1h}``: at most ``max`` executions of the rule per window."""

    max: int = Field(ge=1)
    per: Duration


class Verify(_Strict):
    """``verify: {resolved_within: 10m, else: escalate}``: expect the resolution in time.

    ``else`` unset means ``next`` on a ladder rung that has a next rung, else ``escalate``.
    """

    resolved_within: Duration = Field(
        description="How long after the actions succeed the alert may take to resolve"
    )
    else_: Literal["escalate", "next"] | None = Field(
        default=None, alias="else",
        description="escalate (notify people) or next (climb to the next ladder rung); "
                    "unset: next when there is a next rung, else escalate",
    )


class Rung(_Strict):
    """One rung of a ``ladder:``: its actions, and how long to wait for the resolution."""

    actions: list[ActionSpec] = Field(min_length=1, description="Run in order, as a rule's actions")
    verify: Verify | None = Field(
        default=None, description="Required on every rung but the last: when to climb to the next"
    )
    approval: Approval | None = Field(
        default=None, description="Overrides the rule's approval for this rung's actions"
    )


class LadderStep(_Strict):
    """What one rung of a rule does: a plain rule is a ladder of one (built, not written)."""

    index: int
    actions: tuple[ActionSpec, ...]
    verify: Verify | None
    last: bool

    @property
    def otherwise(self) -> Literal["escalate", "next"] | None:
        """What a failed verification leads to; None when nothing is verified."""
        if self.verify is None:
            return None
        return self.verify.else_ or ("escalate" if self.last else "next")


class Rule(_Strict):
    """One rule: which alerts it answers, and what it does about them."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique across all loaded rule files")
    description: str = ""
    match: list[MatcherField] = Field(
        min_length=1, description="Alertmanager matchers, all of which must hold (AND)"
    )
    status: Literal["firing", "resolved", "any"] = "firing"
    for_: Duration = Field(
        default=timedelta(0), alias="for", description="Act only once now - startsAt reaches this"
    )
    priority: Level | None = Field(default=None, description="Overrides the classifier: a level name")
    diagnose: list[ActionSpec] = Field(default_factory=list)
    actions: list[ActionSpec] = Field(
        default_factory=list, description="The remediation, run in order; or give ladder instead"
    )
    ladder: list[Rung] = Field(
        default_factory=list,
        description="Instead of actions: rungs tried in turn, each when the last did not resolve the alert",
    )
    approval: Approval | None = Field(
        default=None,
        description="auto | required | {required_for: [P1]}; unset: required for destructive actions",
    )
    dry_run: bool = False
    cooldown: Duration | None = None
    limit: Limit | None = None
    verify: Verify | None = None
    escalate_to: list[str] | None = Field(
        default=None, description="Notifiers that hear this rule's escalations; unset: escalation.notifiers"
    )

    @model_validator(mode="after")
    def _actions_or_ladder(self) -> Rule:
        if not self.actions and not self.ladder:
            raise ValueError("missing required key 'actions' (or give ladder:, a list of rungs)")
        if self.actions and self.ladder:
            raise ValueError("give either actions: or ladder:, not both")
        if self.ladder and self.verify is not None:
            raise ValueError("with ladder:, give verify: on each rung, not on the rule")
        if not self.ladder and self.verify is not None and self.verify.else_ == "next":
            raise ValueError("verify.else: next needs a ladder: there is no next rung")
        for n, rung in enumerate(self.ladder):
            last = n == len(self.ladder) - 1
            if not last and rung.verify is None:
                raise ValueError(f"ladder[{n}]: every rung but the last needs verify: "
                                 "{resolved_within: DURATION} to know when to climb")
            if not last and rung.verify is not None and rung.verify.else_ == "escalate":
                raise ValueError(f"ladder[{n}]: else: escalate would end the ladder before its "
                                 "next rung; leave else unset (or next)")
            if last and rung.verify is not None and rung.verify.else_ == "next":
                raise ValueError(f"ladder[{n}]: else: next on the last rung: there is no next rung")
        return self

    @cached_property
    def steps(self) -> tuple[LadderStep, ...]:
        """The rungs to climb: one for a plain rule (its actions and verify); built once."""
        if not self.ladder:
            return (LadderStep(index=0, actions=tuple(self.actions), verify=self.verify, last=True),)
        last = len(self.ladder) - 1
        return tuple(LadderStep(index=n, actions=tuple(r.actions), verify=r.verify, last=n == last)
                     for n, r in enumerate(self.ladder))

    @property
    def all_actions(self) -> tuple[ActionSpec, ...]:
        """Every action step of every rung."""
        return tuple(a for step in self.steps for a in step.actions)

    @field_validator("match")
    @classmethod
    def _no_duplicate_matchers(cls, value: list[Matcher]) -> list[Matcher]:
        seen = set()
        for m in value:
            key = (m.name, m.type, m.value)
            if key in seen:
                raise ValueError(f"matcher {m} is given twice")
            seen.add(key)
        return value

    def matches(self, alert: Alert) -> bool:
        """Whether every matcher holds and the status fits (``for`` is checked apart)."""
        if self.status not in ("any", alert.status):
            return False
        labels = alert.labels
        return all(m.matches(labels.get(m.name, "")) for m in self.match)

    def approval_required(self, priority: Priority, *, destructive: bool, rung: int = 0) -> bool:
        """Whether a decision at ``priority`` (running ``rung`` of a ladder) needs a human's
        approval before it runs; a rung's own ``approval`` wins over the rule's."""
        approval = self.ladder[rung].approval if rung < len(self.ladder) else None
        approval = approval if approval is not None else self.approval
        if approval is None:
            return destructive
        if isinstance(approval, ApprovalByPriority):
            return priority in approval.required_for
        return approval == "required"


class RuleFile(_Strict):
    """The top level of a rule file: ``rules: [...]``, and the levels its priorities are
    written on (``rules.levels``)."""

    rules: list[Rule] = Field(default_factory=list)
    priority_levels: list[Level] | None = Field(
        default=None, min_length=1, max_length=10,
        description="The priority levels this file's rules name, most urgent first; mapped by rank "
                    "onto the service's priorities.levels. Unset: the service's own levels")


class RuleSet(_Strict):
    """Every loaded rule, in load order (file order, then position in file)."""

    rules: tuple[Rule, ...] = ()
    sources: tuple[str, ...] = ()
    """The file each rule came from, parallel to ``rules``."""
