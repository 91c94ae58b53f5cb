"""Resolution: what a webhook's resolved alerts close, in one call to the state store.

Built by ``receiver.runtime``, which hands :meth:`Resolutions.close` to
``receiver.flow.intake`` (called once per webhook with its resolved alerts, after its
decisions are queued). One ``receiver.store.protocol.StateStore.close_resolved`` (one SQLite
transaction, one Redis MULTI) claims each firing's marker
(``receiver.flow.verify.resolved_marker``) first, then cancels its alert's pending approvals
and takes its timers. Then each alert's closing is audited as it always was, alert by
alert: the approvals moved (``receiver.flow.guards.approvals.Approvals.closed``), the
watches taken (``receiver.flow.verify.Verifier.resolution``: verified, or resolved late),
then ``alert.resolved`` with how many approvals were cancelled. When the store fails, what
it did close is audited all the same (``receiver.store.values.PartlyClosed``, without
``alert.resolved``) and the ``StateError`` reaches intake, which answers 503: the resolution
comes again, and closing again changes nothing.

Group commit (``receiver.flow.group.GroupCommit``, as ``receiver.flow.enqueue``): the closes of
concurrent webhooks that come in the same turn of the event loop, or while a call is under
way, share one ``close_resolved`` of at most :data:`GROUP_MAX` firings, in the order they came.
Each webhook gets just its own firings' :class:`receiver.store.values.Closed`, so it audits
what it would have alone. Sharing changes no outcome: each webhook's markers are still
claimed before its timers are taken (all markers of the call come first); an alert two
webhooks resolve is closed for the first and finds nothing for the later, as one after the
other; when the shared call fails having closed some (``PartlyClosed``), each webhook gets a
``PartlyClosed`` with just its own part, and answers 503 as it would have alone; when it
fails otherwise (nothing known done: SQLite rolled it back), the webhooks are taken again one
at a time in the same order until one fails other than ``PartlyClosed`` (its own), and the
rest get that error without a try.
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.audit import AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.flow.group import GroupCommit
from receiver.flow.guards.approvals import Approvals
from receiver.flow.timers import TAKEN_BY_RESOLUTION
from receiver.flow.verify import Verifier, resolved_marker
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import Closed, PartlyClosed, Resolved
from rules.alert import Alert

WHY = "the alert resolved"  # the comment of each approval a resolution cancels
ACTOR = "system"
GROUP_MAX = 400  # firings per shared store call (one webhook's larger call goes alone)



class Resolutions:
    """Closes what is open for resolved alerts: markers, pending approvals, timers; audits it."""

    def __init__(self, settings: Settings, *, store: StateStore, approvals: Approvals, verifier: Verifier,
                 audit: AuditLog, clock: Clock) -> None:
        self._ttl = settings.guards.dedup_ttl.total_seconds()
        self._store = store
        self._approvals = approvals
        self._verifier = verifier
        self._audit = audit
        self._clock = clock
        self._group: GroupCommit[list[Resolved], list[Closed]] = GroupCommit(
            self._close, size=len, limit=GROUP_MAX, goes_on=lambda exc: isinstance(exc, PartlyClosed))

    async def close(self, alerts: Sequence[Alert]) -> None:
        """Close what is open for ``alerts`` (resolved) and audit it; StateError when the store fails."""
        if not alerts:
            return
        firings = [Resolved(marker=resolved_marker(a), fingerprint=a.fingerprint) for a in alerts]
        try:
            closed = await self._group(firings)
        except PartlyClosed as exc:
            for done in exc.closed:
                self._record(done)
            raise
        for alert, done in zip(alerts, closed, strict=True):
            cancelled = self._record(done)
            ends = alert.ends_at.timestamp() if alert.ends_at is not None else self._clock.now()
            self._audit.record(AuditEvent.ALERT_RESOLVED, fingerprint=alert.fingerprint, alertname=alert.name,
                               startsAt=alert.starts_at_raw,
                               time_to_resolve_seconds=round(ends - alert.starts_at.timestamp(), 3),
                               approvals_cancelled=cancelled)

    async def _close(self, parts: Sequence[list[Resolved]]) -> list[list[Closed] | Exception]:
        """One ``close_resolved`` for the parts of a group; each part's own (or its own ``PartlyClosed``)."""
        firings = parts[0] if len(parts) == 1 else [f for part in parts for f in part]
        failed: PartlyClosed | None = None
        try:
            closed = await self._store.close_resolved(firings, ttl=self._ttl, kinds=TAKEN_BY_RESOLUTION,
                                                      actor=ACTOR, comment=WHY)
        except PartlyClosed as exc:
            if len(parts) == 1:
                raise
            closed, failed = exc.closed, exc
        out: list[list[Closed] | Exception] = []
        start = 0
        for part in parts:
            mine = closed[start:start + len(part)]
            out.append(mine if failed is None else PartlyClosed(str(failed), mine))
            start += len(part)
        return out

    def _record(self, done: Closed) -> int:
        """Audit one firing's approvals moved and timers taken; how many approvals were cancelled."""
        cancelled = self._approvals.closed(done.approvals)
        self._verifier.resolution(done.timers)
        return cancelled
