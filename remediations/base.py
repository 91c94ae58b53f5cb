"""The action interface: what every remediation implements, and what it returns.

Actions are registered in ``remediations.registry.Registry`` and run only by
``receiver.flow.workers``: ``plan()`` (read-only, the exact calls in words a human approves,
also the whole of a dry run) and then, if every guard agrees, ``execute()`` under a
timeout. ``TemporaryError`` is retried with backoff; ``PermanentError`` is not.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from remediations.blocking import BlockingCalls
from remediations.notifiers import NotifierConfig
from remediations.targets import TargetConfig
from rules.alert import Alert
from rules.errors import RemediatorError
from rules.templating import render_value


class RemediationError(RemediatorError):
    """An action could not plan or execute."""


class TemporaryError(RemediationError):
    """A failure worth retrying (5xx, timeout, connection refused).

    ``nothing_sent``: the failure happened before any request reached the backend (a
    refused connection, a DNS failure, a conflict the server answered without acting).
    The executor repeats a destructive action only then, or when the action re-reads
    state before it writes (``Action.execute_is_idempotent``): after a timeout or a
    5xx the change may already have happened.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, nothing_sent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.nothing_sent = nothing_sent
        self.status: int | None = None  # the backend's status code, when it answered one


class PermanentError(RemediationError):
    """A failure that retrying will not fix (404, 403, bad params, refused target)."""


class InvalidParams(PermanentError):
    """The rendered params do not satisfy the action's schema."""


class TargetNotAllowed(PermanentError):
    """The rendered params point outside the target's allow-list."""


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action knows about the decision it serves, and the pool its blocking calls run on.

    ``calls``: the process's one :class:`remediations.blocking.BlockingCalls`; an action that
    calls a synchronous SDK runs it there (``await ctx.calls.run(fn, ...)``), never on
    asyncio's default executor.
    """

    decision_id: str
    rule: str
    alert: Alert
    target_name: str | None
    target: TargetConfig | None
    dry_run: bool
    calls: BlockingCalls
    notifiers: Mapping[str, NotifierConfig] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    """The exact calls an action would make, in words (``steps``) and as data."""

    action: str
    target: str | None
    steps: tuple[str, ...]
    destructive: bool
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "steps": list(self.steps),
            "destructive": self.destructive,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The plan ``as_dict`` wrote (an approval carries plans this way)."""
        return cls(action=data["action"], target=data["target"], steps=tuple(data["steps"]),
                   destructive=bool(data["destructive"]), details=dict(data["details"]))


@dataclass(frozen=True, slots=True)
class Result:
    """What an executed action did."""

    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "details": dict(self.details)}


@dataclass(frozen=True, slots=True)
class ReadBack:
    """What an action read on its target about an execution whose outcome was lost (a crash
    while its request was out): ``done`` True (the change is there), False (it is not), None
    (it cannot tell); ``evidence``: what it read, for the audit log and a human."""

    done: bool | None
    evidence: Mapping[str, Any] = field(default_factory=dict)


P = TypeVar("P", bound=BaseModel)


class Action(ABC, Generic[P]):
    """One remediation. Subclasses set the class attributes and the two coroutines."""

    name: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[BaseModel]]
    destructive: ClassVar[bool] = False
    approval_always: ClassVar[bool] = False  # approval even when the rule says auto (redis.flushdb)
    execute_is_idempotent: ClassVar[bool] = False  # execute re-reads state and does nothing twice
    read_only: ClassVar[bool] = False
    destructive_by: ClassVar[frozenset[str]] = frozenset()
    """The params ``is_destructive`` reads (``method``, ``replicas``); the others never change it."""
    target_kinds: ClassVar[frozenset[str]] = frozenset()
    timeout: ClassVar[float] = 30.0
    permissions: ClassVar[tuple[str, ...]] = ()

    def render_params(self, compiled: Mapping[str, Any], alert: Alert) -> dict[str, Any]:
        """A step's params (``ActionSpec.compiled_params``) rendered for one alert.

        ``TemplateError`` for a missing reference; an action whose params hold a language a
        label could speak (a URL's path and query) overrides this to check where each
        label's value lands, and raises :class:`InvalidParams` saying why it refused one.
        """
        rendered: dict[str, Any] = render_value(dict(compiled), alert)
        return rendered

    def parse_params(self, raw: Mapping[str, Any]) -> P:
        """Validate rendered params; :class:`InvalidParams` names the first bad field."""
        try:
            return self.params_model.model_validate(raw)  # type: ignore[return-value]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "params"
            raise InvalidParams(f"{self.name}: {where}: {first['msg']}") from None

    def is_destructive(self, params: P) -> bool:
        """Whether these params change or remove something; defaults to the class flag."""
        return self.destructive

    def check_allowed(self, ctx: ActionContext, params: P) -> None:
        """Raise :class:`TargetNotAllowed` when params leave the target's allow-list."""

    def subject(self, ctx: ActionContext, params: P) -> str:
        """The one thing these params act on, as a stable string.

        Cooldowns and target locks are keyed by it, so two actions on one object (a
        restart and a scale of the same Deployment) share a lock. Backends override it
        with the object's identity (``prod-cluster/prod/deployment/web``, the target's
        name first); the default is the target and every param.
        """
        rendered = json.dumps(params.model_dump(mode="json", by_alias=True), sort_keys=True)
        return f"{ctx.target_name or '-'}/{self.name}:{rendered}"

    async def read_back(self, ctx: ActionContext, params: P, plan: Plan, *, since: float) -> ReadBack | None:
        """Read the target: did an execution of ``plan`` whose request went out at ``since``
        (epoch seconds) and whose outcome was lost take effect? Read-only. None (the default):
        this action cannot tell, and a human is asked. Called by ``receiver.flow.guards.once``."""
        return None

    def close(self) -> None:
        """Release what the action keeps between calls (cached clients); it may be used again."""

    @abstractmethod
    async def plan(self, ctx: ActionContext, params: P) -> Plan:
        """Describe exactly what ``execute`` would do; reads at most, never writes."""

    @abstractmethod
    async def execute(self, ctx: ActionContext, params: P, plan: Plan) -> Result:
        """Do what ``plan`` described."""
