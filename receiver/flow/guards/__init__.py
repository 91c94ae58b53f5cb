"""The guards between a decision and an action, one module each, run in the order
``receiver.flow.guards.pipeline`` declares.

dedup (``receiver.flow.intake``; the execute-once marker, ``once``) → maintenance window and
kill switch (``maintenance``, ``killswitch``) → cooldown, rate limit and blast radius
(``budget``) → circuit breaker (``circuit``) → approval (``approvals``) → dry-run (``dryrun``
for approved plans) → target lock (``lock``) → execute. What a stage is and what it looks
at is ``receiver.flow.guards.stages``. Each stop is a :class:`Blocked` naming its
:class:`receiver.decisions.Guard` and :class:`receiver.decisions.Reason`, counted, audited
and logged under the same words (``receiver.flow.report``); a transient one (an open
circuit, a half-open circuit's trial, a held lock: ``waits_for`` names what it waits for)
defers the decision instead of ending it (``receiver.flow.deferral``).
"""

from __future__ import annotations

from receiver.decisions import Guard, Reason
from receiver.flow.report import Ending, Stopped

__all__ = ["Blocked", "Guard"]


class Blocked(Stopped):
    """A guard stopped a decision (internal to the receiver)."""

    def __init__(self, guard: Guard, reason: Reason, detail: str, *,
                 retry_after: float | None = None, waits_for: str | None = None) -> None:
        ending = Ending.blocked(guard, reason, detail, retry_after=retry_after)
        super().__init__(ending if waits_for is None else ending.with_extra(waits_for=waits_for))
        self.guard = guard
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
