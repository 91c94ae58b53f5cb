"""The execute-once marker: a step that started once, here or on another replica, never runs again.

:class:`ExecuteOnce` is a stage of ``receiver.flow.guards.pipeline``, right before the target
lock: it claims a marker per (decision, step) in the state store (a dedup claim, kept
``guards.dedup_ttl``). Work taken up again after a crash, or an approved plan queued twice,
finds its step marked and records ``action.skipped`` (``already_started``) instead; its
outcome is in the audit log. The marker comes before the lock so that a step whose holder
crashed mid-action is recognised as started, not merely locked; it is given back when a
later stage (the lock, the budgets) stops the step before it executes.
"""

from __future__ import annotations

import contextlib

from receiver.audit import AuditEvent, AuditLog
from receiver.decisions import Reason
from receiver.errors import StateError
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import Hold, StepRun
from receiver.settings import Settings
from receiver.store.protocol import StateStore


class ExecuteOnce:
    """The stage: claim the step's marker, or stop it as already started."""

    def __init__(self, settings: Settings, *, store: StateStore, audit: AuditLog) -> None:
        self._ttl = settings.guards.dedup_ttl.total_seconds()
        self._store = store
        self._audit = audit

    async def enter(self, run: StepRun) -> Hold:
        step = run.step
        marker = f"exec\x1f{run.decision}\x1f{step.number}"
        (first,) = await self._store.claim([marker], ttl=self._ttl)
        if not first:
            self._audit.record(AuditEvent.ACTION_SKIPPED, reason=Reason.ALREADY_STARTED, **step.fields())
            raise Blocked(Guard.EXECUTE_ONCE, Reason.ALREADY_STARTED,
                          f"step {step.number} ({step.action.name}) was started before, here or on "
                          "another replica; its outcome is in the audit log, so it is not run again")
        return _Marked(self._store, marker)


class _Marked(Hold):
    """A step marked as started: unmarked if it stops before it executes."""

    def __init__(self, store: StateStore, marker: str) -> None:
        self._store = store
        self._marker = marker

    async def give_back(self) -> None:
        with contextlib.suppress(StateError):
            await self._store.release([self._marker])
