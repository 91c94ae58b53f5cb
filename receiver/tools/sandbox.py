"""A sandbox: the real pipeline on a throw-away state store, with every action recorded, not run.

Used by ``receiver.tools.ruletest`` (``remediator rules test``) and ``receiver.tools.simulate``
(``remediator simulate``). It builds the same :class:`~receiver.runtime.Runtime` that
``serve`` runs — intake (matching, classification, dedup), the workers with every guard
of ``receiver.flow.guards.pipeline``, approvals, a SQLite state store — in a temporary
directory, on a clock the caller moves. Only two things differ: each action's ``plan()`` and ``execute()`` are
replaced by a recorder (:func:`recording_registry`), so nothing contacts Kubernetes,
Docker, PostgreSQL or a notifier, and nothing announces or escalates (the announcer is
silenced; escalations are still audited).
The plan is then the rendered step: action, target, params after templating, subject.

Work is run in the caller's task, one item at a time, as soon as it is queued, instead of
by background workers; what each delivery caused is read back from the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from receiver.audit import AuditEvent
from receiver.auditconfig import AuditSettings
from receiver.clock import ManualClock
from receiver.decisions import Reason
from receiver.flow.payload_schema import WebhookMessage
from receiver.runtime import Runtime
from receiver.settings import Settings
from receiver.store.values import ApprovalStatus
from remediations.base import Action, ActionContext, Plan, Result
from remediations.registry import Registry, default_registry
from rules.alert import Alert

_CONSUMER = "sandbox"
_CLOSED: dict[str, str] = {AuditEvent.APPROVAL_REJECTED: Reason.REJECTED.value,
                           AuditEvent.APPROVAL_EXPIRED: Reason.EXPIRED.value,
                           AuditEvent.APPROVAL_CANCELLED: Reason.CANCELLED.value}


async def _rendered_plan(self: Action[Any], ctx: ActionContext, params: Any) -> Plan:
    rendered = params.model_dump(mode="json", by_alias=True)
    subject = self.subject(ctx, params)
    where = f" on target {ctx.target_name!r}" if ctx.target_name else ""
    return Plan(action=self.name, target=ctx.target_name, destructive=self.is_destructive(params),
                steps=(f"{self.name}{where} with params {json.dumps(rendered, sort_keys=True)}",),
                details={"params": rendered, "subject": subject, "recorded": True})


async def _recorded_execute(self: Action[Any], ctx: ActionContext, params: Any, plan: Plan) -> Result:
    return Result(summary=f"recorded, not run: {plan.steps[0] if plan.steps else self.name}",
                  details={"recorded": True, "subject": plan.details.get("subject")})


def recording_registry(base: Registry | None = None, *, real_plans: bool = False) -> Registry:
    """The catalogue with each action's ``plan``/``execute`` replaced by the recorder.

    Each action keeps its params model, ``check_allowed``, ``subject`` and
    ``is_destructive``, so validation, allow-lists, locks, cooldowns and approval
    decisions are the real ones. ``real_plans`` keeps the actions' own ``plan()`` (read-only
    by contract: it reads the configured targets to say what it would do; ``simulate --plan``).
    """
    base = base or default_registry()
    recorded: list[Action[Any]] = []
    for name in base.names():
        action = base.get(name)
        assert action is not None
        cls = type(action)
        methods: dict[str, Any] = {"__module__": __name__, "execute": _recorded_execute}
        if not real_plans:
            methods["plan"] = _rendered_plan
        sub = type(f"Recorded{cls.__name__}", (cls,), methods)
        recorded.append(cast(Action[Any], sub()))
    return Registry(recorded)


def sandbox_settings(base: Settings, *, rules: Sequence[Path] | None, workdir: Path,
                     dry_run: bool | None, state_file: Path | None = None) -> Settings:
    """``base`` with state and audit in ``workdir``, no announcements, ``rules`` if given."""
    update: dict[str, Any] = {
        "state": f"sqlite:///{state_file or workdir / 'state.db'}",
        "audit_log": AuditSettings(path=workdir / "audit.jsonl"),  # a fresh log: no key, no rotation
        "guards": base.guards.model_copy(update={"announce": []}),
    }
    if rules is not None:
        update["rules"] = list(rules)
    if dry_run is not None:
        update["dry_run"] = dry_run
    return base.model_copy(update=update)


@dataclass
class Seen:
    """One decision as the pipeline ran it in one step."""

    rule: str
    decision: str
    alert: int | None
    fingerprint: str
    priority: str | None
    response_target_seconds: float | None
    dry_run: bool
    outcome: str = ""
    detail: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)
    diagnose: list[dict[str, Any]] = field(default_factory=list)
    approval: str | None = None
    executed: int = 0
    """Action steps that ran (were recorded) in this step."""
    rung: int = 0
    """The ladder rung the decision ran (0: the first, or a rule without a ladder)."""


_FOLLOW_UPS = frozenset({
    AuditEvent.VERIFY_WATCHING, AuditEvent.VERIFY_SUCCEEDED, AuditEvent.VERIFY_FAILED,
    AuditEvent.VERIFY_RESOLVED_LATE, AuditEvent.VERIFY_SKIPPED, AuditEvent.ESCALATION_SENT,
})


class Observer:
    """Turns the audit records of one delivery (or step) into the decisions it moved.

    ``known`` remembers decisions across steps, so an approval decided later is reported
    against the rule that asked for it.
    """

    def __init__(self) -> None:
        self.known: dict[str, Seen] = {}

    def step(self, records: list[dict[str, Any]], fingerprints: list[str]) -> list[Seen]:
        seen: dict[str, Seen] = {}
        for rec in records:
            decision = rec.get("decision")
            if not isinstance(decision, str):
                continue
            event = rec["event"]
            if event in _FOLLOW_UPS:  # what followed a decision is not the decision moving
                continue
            if event in (AuditEvent.RULE_MATCHED, AuditEvent.RUNG_STARTED):
                index = fingerprints.index(rec["fingerprint"]) + 1 if rec["fingerprint"] in fingerprints \
                    else None
                seen[decision] = self.known[decision] = Seen(
                    rule=rec["rule"], decision=decision, alert=index, fingerprint=rec["fingerprint"],
                    priority=rec.get("priority"), response_target_seconds=rec.get("response_target_seconds"),
                    dry_run=bool(rec.get("dry_run")), rung=int(rec.get("rung", 0)))
                continue
            current = seen.get(decision)
            if current is None:
                earlier = self.known.get(decision)
                if earlier is None:
                    continue
                current = seen[decision] = Seen(
                    rule=earlier.rule, decision=decision, alert=None, fingerprint=earlier.fingerprint,
                    priority=earlier.priority, response_target_seconds=earlier.response_target_seconds,
                    dry_run=earlier.dry_run, actions=list(earlier.actions), diagnose=list(earlier.diagnose),
                    approval=earlier.approval, rung=earlier.rung)
            self._apply(current, event, rec)
        for s in seen.values():
            if not s.outcome:
                s.outcome = "dry_run" if s.dry_run else "executed" if s.executed else "queued"
        return list(seen.values())

    @staticmethod
    def _apply(s: Seen, event: str, rec: dict[str, Any]) -> None:
        if event == AuditEvent.ACTION_PLANNED:
            plan = rec.get("plan") or {}
            details = plan.get("details") or {}
            step = {"action": rec.get("action"), "target": rec.get("target"),
                    "params": details.get("params"), "subject": details.get("subject"),
                    "steps": list(plan.get("steps") or []),
                    "read_from_target": not (details.get("recorded") or details.get("target_missing"))}
            (s.actions if rec.get("kind") == "action" else s.diagnose).append(step)
        elif event == AuditEvent.GUARD_BLOCKED:
            waiting = rec.get("outcome") == "awaiting_approval"
            s.outcome = "awaiting_approval" if waiting else str(rec["reason"])
            s.detail = str(rec.get("detail", ""))
            s.approval = rec.get("approval") or s.approval
        elif event == AuditEvent.GUARD_DEFERRED:  # waiting in the store: the guard holds it for now
            s.outcome = str(rec["reason"])
            s.detail = str(rec.get("detail", ""))
        elif event in _CLOSED:
            s.outcome = _CLOSED[event]
            s.detail = str(rec.get("comment") or "")
        elif event == AuditEvent.DECISION_FAILED:
            s.outcome = str(rec.get("reason"))
            s.detail = str(rec.get("detail", ""))
        elif event == AuditEvent.ACTION_SUCCEEDED and rec.get("kind") == "action":
            s.executed += 1


@dataclass
class Delivery:
    """What one delivery (or one approval) caused: the audit records, in order."""

    records: list[dict[str, Any]] = field(default_factory=list)


class Sandbox:
    """One sandboxed pipeline; use as ``async with Sandbox(settings, clock) as sb``.

    ``settings`` should come from :func:`sandbox_settings` (the state and audit files are
    created in their directories and never elsewhere).
    """

    def __init__(self, settings: Settings, *, clock: ManualClock, registry: Registry | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.runtime = Runtime(settings, registry=registry or recording_registry(), clock=clock)
        self.runtime.announcer.silence()  # escalations too: they are audited, never sent
        self._read = 0
        self._opened = False

    async def __aenter__(self) -> Self:
        try:
            self.runtime.rules.load_now()
            await self.runtime.state.open()
        except BaseException:
            await self._close()
            raise
        self._opened = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._close()

    async def _close(self) -> None:
        await self.runtime.state.close()
        await self.runtime.audit.close()

    async def deliver(self, message: WebhookMessage, alerts: list[Alert], *, actor: str) -> Delivery:
        """Accept one webhook as intake does, then run all the work it queued to its end."""
        await self.runtime.intake.accept(message, alerts, actor=actor)
        return await self._drain()

    async def approve_pending(self, *, actor: str, approve: bool = True) -> Delivery:
        """Approve (or reject) every pending approval as ``actor``, then run what that queued."""
        for approval in await self.runtime.approvals.list([ApprovalStatus.PENDING]):
            await self.runtime.approvals.decide(approval.id, approve=approve, actor=actor, comment=None)
        return await self._drain()

    async def housekeep(self) -> Delivery:
        """What the service's housekeeping does now: expire overdue approvals, fire due timers
        (verify watches: a ladder's next rung is queued and run here; escalations)."""
        await self.runtime.approvals.expire_due()
        await self.runtime.timers.fire_due()
        return await self._drain()

    async def _drain(self) -> Delivery:
        state = self.runtime.state
        await state.release_deferred(limit=1024)  # deferred work whose time came, as the feeder does
        while items := await state.take(_CONSUMER, 64, block=0):
            for item in items:
                await self.runtime.executor.run_item(item)
                await state.complete([item.ref])
        await self.runtime.audit.sync()
        return Delivery(self._new_records())

    def _new_records(self) -> list[dict[str, Any]]:
        with self.settings.audit.open("rb") as fh:
            lines = fh.read().splitlines()
        fresh = lines[self._read:]
        self._read = len(lines)
        return [json.loads(line) for line in fresh if line.strip()]

