"""The ``rules test`` file format and its results: cases, steps, expectations, mismatches.

Parsed and run by ``receiver.tools.ruletest``; the results are printed by
``receiver.cli.rules``. The format is documented in docs/rules.md, "Testing rules".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from receiver.decisions import Reason
from receiver.flow.payload_schema import LabelSet
from receiver.tools.sandbox import Seen
from rules.model import Duration
from rules.priority import Priority

OUTCOMES = frozenset({"executed", "dry_run", "awaiting_approval"} | {r.value for r in Reason})
"""What ``outcome:`` may expect: how the decision ended in this step."""

_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertInput(_Strict):
    """One alert a step delivers."""

    labels: LabelSet = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"
    active_for: Duration = Field(default=timedelta(0), description="started this long before the step")
    fingerprint: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{1,64}$")


class StepExpect(_Strict):
    """One rendered step of a decision's plan; keys left out are not compared."""

    action: str
    target: str | None = None
    params: dict[str, Any] | None = None
    subject: str | None = None


class DecisionExpect(_Strict):
    """One decision (an alert matched by a rule); keys left out are not compared."""

    rule: str
    alert: int | None = Field(default=None, ge=1, description="which alert of the step, from 1")
    priority: Priority | None = None
    response_target: Duration | None = None
    outcome: str | None = None
    actions: list[StepExpect] | None = None
    diagnose: list[StepExpect] | None = None
    rung: int | None = Field(default=None, ge=0, description="the ladder rung it ran, from 0")

    @field_validator("outcome")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in OUTCOMES:
            raise ValueError(f"unknown outcome {value!r}; one of: {', '.join(sorted(OUTCOMES))}")
        return value


class Step(_Strict):
    """A later step of a case: the clock moves, then alerts are delivered or approvals decided."""

    after: Duration = Field(default=timedelta(0), description="advance the clock first")
    alerts: list[AlertInput] | None = None
    resolve: bool = False
    approve: str | None = Field(default=None, min_length=1)
    reject: str | None = Field(default=None, min_length=1)
    expect: list[DecisionExpect] | None = None

    @model_validator(mode="after")
    def _one_thing(self) -> Step:
        doing = [k for k in ("alerts", "resolve", "approve", "reject") if k in self.model_fields_set
                 and getattr(self, k) not in (None, False)]
        if len(doing) > 1:
            raise ValueError(f"a step does one thing; this one has {' and '.join(doing)}")
        return self


class Case(_Strict):
    name: str = Field(min_length=1)
    alerts: list[AlertInput] = Field(min_length=1)
    expect: list[DecisionExpect] | None = None
    then: list[Step] = Field(default_factory=list)


class TestFile(_Strict):
    rule_files: list[str] = Field(min_length=1)
    config: str | dict[str, Any] | None = Field(
        default=None, description="a service config file (relative to this file), or one inline"
    )
    dry_run: bool = False
    start: datetime = _DEFAULT_START
    tests: list[Case] = Field(min_length=1)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs a time zone, e.g. 2026-01-01T09:00:00Z")
        return value


@dataclass
class Mismatch:
    """One difference between expected and got."""

    step: int
    line: int | None
    field: str
    expected: Any
    got: Any
    decision: int | None = None
    rule: str | None = None
    detail: str = ""


@dataclass
class CaseResult:
    name: str
    line: int | None
    failures: list[Mismatch] = field(default_factory=list)
    steps: list[list[Seen]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and self.error is None


@dataclass
class FileResult:
    file: str
    cases: list[CaseResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Why the file could not run: file:line problems."""
    unusable: bool = False
    """The test file itself is broken (exit 2), as opposed to the rules under test (exit 1)."""

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.ok for c in self.cases)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "ok": self.ok, "errors": self.errors,
                "cases": [{"name": c.name, "line": c.line, "ok": c.ok, "error": c.error,
                           "failures": [asdict(f) for f in c.failures],
                           "steps": [[asdict(s) for s in step] for step in c.steps]}
                          for c in self.cases]}
