"""Announcements to people: approval requests, pauses, open circuits, through the notifiers.

Built by ``receiver.runtime``; used by the guards. Sends to ``guards.announce`` (every
configured notifier when unset). A notifier that fails is logged and audited as
``notify.failed`` and never stops a decision: the audit log and metrics carry the fact.
"""

from __future__ import annotations

import asyncio

import structlog

from receiver.audit import AuditEvent, AuditLog
from receiver.settings import Settings
from remediations.base import RemediationError
from remediations.notify_delivery import Notice, deliver

_log = structlog.get_logger("remediator.announce")


class Announcer:
    """Sends one notice to every announcing notifier at once."""

    def __init__(self, settings: Settings, *, audit: AuditLog) -> None:
        names = settings.guards.announce if settings.guards.announce is not None else list(settings.notifiers)
        self._notifiers = {n: settings.notifiers[n] for n in names}
        self._audit = audit

    async def announce(self, notice: Notice) -> list[str]:
        """Deliver ``notice``; returns what was sent (failures are logged and audited)."""
        names = list(self._notifiers)
        results = await asyncio.gather(*(deliver(self._notifiers[n], notice) for n in names),
                                       return_exceptions=True)
        sent = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, RemediationError | TimeoutError | OSError):
                _log.warning("notify.failed", notifier=name, title=notice.title, error=str(result))
                self._audit.record(AuditEvent.NOTIFY_FAILED, notifier=name, title=notice.title,
                                   error=str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                sent.append(f"{name}: {result}")
        return sent
