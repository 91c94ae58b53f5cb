"""What a stage of the guard pipeline is, and what it looks at.

``receiver.flow.guards.pipeline`` lists the stages in order; each guard module of this
package implements the kinds it takes part in, and stops a decision by raising
:class:`receiver.flow.guards.Blocked`:

- :class:`DecisionStage` looks at a live decision as a whole (:class:`DecisionRun`), before
  its plan or once it is planned;
- :class:`Peek` looks at one action step of a planned decision before an approval is asked
  (:class:`StepRun`), and spends nothing;
- :class:`StepStage` lets one action step through just before it executes: it may take
  something (a marker, a lock, budgets) and returns a :class:`Hold`, which gives it back
  when a later stage stops the step, checks again before each attempt, hears when a request
  is about to go out and when an attempt sent nothing, and hears the outcome; or raises
  :class:`Settled` when the step's outcome is known already;
- :class:`ApprovedStage` looks at an approved plan before its steps run (:class:`ApprovedRun`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

from receiver.decisions import Decision
from receiver.flow.codec import ApprovalRequest, Diagnostic
from receiver.flow.steps import PreparedStep, StepFailed
from receiver.store.values import Approval
from remediations.base import Result
from rules.model import Rule


@dataclass(frozen=True, slots=True)
class DecisionRun:
    """A live decision; once planned, with its action steps and what its diagnostics found."""

    d: Decision
    actions: tuple[PreparedStep, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class StepRun:
    """One action step of ``decision`` (its ``rule`` and ladder ``rung``); ``run`` names this
    run of it (the holder of its execute-once marker and of its target lock)."""

    decision: str
    rule: Rule
    rung: int
    step: PreparedStep
    run: str = field(default_factory=lambda: secrets.token_hex(6))

    def holder(self, owner: str) -> str:
        """Who holds the step's marker and its target lock for this run: the process ``owner``
        and the run."""
        return f"{owner}/{self.run}"


@dataclass(frozen=True, slots=True)
class ApprovedRun:
    """An approved plan about to run again: the approval, what it keeps, and its rule
    (None once a reload removed it)."""

    approval: Approval
    request: ApprovalRequest
    rule: Rule | None

    @property
    def loaded_rule(self) -> Rule:
        """The rule, for the stages after the pipeline checked it is still loaded."""
        assert self.rule is not None, "the pipeline checks the rule is loaded before this stage"
        return self.rule


class Hold:
    """What a step stage holds while the step runs; this one holds nothing."""

    async def give_back(self) -> None:
        """A later stage stopped the step before it executed: nothing of it ran."""

    async def before_attempt(self, attempt: int) -> None:
        """Before each attempt to execute (1, then each retry after its backoff)."""

    async def sending(self) -> None:
        """``action.started`` is durable and the request is about to go out."""

    async def nothing_sent(self) -> None:
        """An attempt failed before anything reached the backend (a retry may follow its backoff)."""

    async def finish(self, outcome: Result | StepFailed | None) -> None:
        """The step executed: its result, its failure, or None when something else stopped it."""


NOTHING = Hold()


class Settled(Exception):
    """A stage found the step's outcome already (it ran to its end before, or reading the
    target showed it took effect): the step is not executed, and ``result`` is its result."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.summary)
        self.result = result


class DecisionStage(Protocol):
    async def check_decision(self, run: DecisionRun) -> None: ...


class Peek(Protocol):
    async def peek(self, run: StepRun) -> None: ...


class StepStage(Protocol):
    async def enter(self, run: StepRun) -> Hold: ...


class ApprovedStage(Protocol):
    async def check_approved(self, run: ApprovedRun) -> None: ...
