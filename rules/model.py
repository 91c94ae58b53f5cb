"""The rule model: what an SRE writes in a rule file, validated and frozen.

Built by ``rules.loader`` from YAML (which adds file/line reporting and the checks that
need the action catalogue); read by ``rules.engine`` and ``receiver``. Unknown keys are
errors, durations and matchers are parsed here, parameter templates are compiled here.
"""

from __future__ import annotations

from datetime import timedelta
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
)

from rules.alert import Alert
from rules.durations import DURATION_PATTERN, format_duration, parse_duration
from rules.errors import RuleError
from rules.matchers import MATCHER_PATTERN, Matcher, parse_matcher
from rules.priority import Priority
from rules.templating import compile_value, render_value


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a duration is a string like '5m', not {value!r}")
    try:
        return parse_duration(value)
    except RuleError as exc:
        raise ValueError(str(exc)) from None


def _matcher(value: object) -> Matcher:
    try:
        return parse_matcher(value)
    except RuleError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[
    timedelta,
    PlainValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "5m", "1h30m"]}),
]
"""A Prometheus duration in YAML (``5m``), a timedelta in Python."""

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
        return self._compiled

    def render_params(self, alert: Alert) -> dict[str, Any]:
        """The params for one alert; raises ``TemplateError`` on a missing reference."""
        rendered: dict[str, Any] = render_value(self._compiled, alert)
        return rendered


class ApprovalByPriority(_Strict):
    """``approval: {required_for: [P1, P2]}``: approval only at these priorities."""

    required_for: list[Priority] = Field(min_length=1)


Approval = Literal["auto", "required"] | ApprovalByPriority


class Limit(_Strict):
    """``limit: {max: 3, per: 1h}``: at most ``max`` executions of the rule per window."""

    max: int = Field(ge=1)
    per: Duration


class Verify(_Strict):
    """``verify: {resolved_within: 10m, else: escalate}``."""

    resolved_within: Duration
    else_: Literal["escalate", "next"] = Field(default="escalate", alias="else")


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
    priority: Priority | None = Field(default=None, description="Overrides the classifier")
    diagnose: list[ActionSpec] = Field(default_factory=list)
    actions: list[ActionSpec] = Field(min_length=1)
    approval: Approval | None = Field(
        default=None,
        description="auto | required | {required_for: [P1]}; unset: required for destructive actions",
    )
    dry_run: bool = False
    cooldown: Duration | None = None
    limit: Limit | None = None
    verify: Verify | None = None

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

    def approval_required(self, priority: Priority, *, destructive: bool) -> bool:
        """Whether a decision at ``priority`` needs a human's approval before it runs."""
        if self.approval is None:
            return destructive
        if isinstance(self.approval, ApprovalByPriority):
            return priority in self.approval.required_for
        return self.approval == "required"


class RuleFile(_Strict):
    """The top level of a rule file: ``rules: [...]``."""

    rules: list[Rule] = Field(default_factory=list)


class RuleSet(_Strict):
    """Every loaded rule, in load order (file order, then position in file)."""

    rules: tuple[Rule, ...] = ()
    sources: tuple[str, ...] = ()
    """The file each rule came from, parallel to ``rules``."""
