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
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.audit import AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.flow.guards.approvals import Approvals
from receiver.flow.timers import TAKEN_BY_RESOLUTION
from receiver.flow.verify import Verifier, resolved_marker
from receiver.settings import Settings
from receiver.store.protocol import StateStore
from receiver.store.values import Closed, PartlyClosed, Resolved
from rules.alert import Alert

WHY = "the alert resolved"  # the comment of each approval a resolution cancels
ACTOR = "system"


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

    async def close(self, alerts: Sequence[Alert]) -> None:
        """Close what is open for ``alerts`` (resolved) and audit it; StateError when the store fails."""
        firings = [Resolved(marker=resolved_marker(a), fingerprint=a.fingerprint) for a in alerts]
        try:
            closed = await self._store.close_resolved(firings, ttl=self._ttl, kinds=TAKEN_BY_RESOLUTION,
                                                      actor=ACTOR, comment=WHY)
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

    def _record(self, done: Closed) -> int:
        """Audit one firing's approvals moved and timers taken; how many approvals were cancelled."""
        cancelled = self._approvals.closed(done.approvals)
        self._verifier.resolution(done.timers)
        return cancelled
