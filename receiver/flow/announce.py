"""Announcements to people: approval requests and pauses, through the notifiers.

Built by ``receiver.runtime``; used by the guards, and by ``receiver.flow.escalation`` for
escalations (open circuits among them). Sends to ``guards.announce`` (every configured
notifier when unset), or to the notifiers the caller names. A notifier that fails is logged and audited as
``notify.failed`` and never stops a decision: the audit log and metrics carry the fact.
:meth:`Announcer.deliver` also says which failed for now (escalations are tried again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from receiver.audit import AuditEvent, AuditLog
from receiver.settings import Settings
from remediations.base import RemediationError, TemporaryError
from remediations.notify.delivery import Notice, deliver

_log = structlog.get_logger("remediator.announce")


class Announcer:
    """Sends one notice to every announcing notifier at once."""

    def __init__(self, settings: Settings, *, audit: AuditLog,
                 on_failure: Callable[[str], None] | None = None) -> None:
        names = settings.guards.announce if settings.guards.announce is not None else list(settings.notifiers)
        self._all = settings.notifiers
        self._notifiers = {n: settings.notifiers[n] for n in names}
        self._audit = audit
        self._on_failure = on_failure or (lambda _name: None)  # counts it (remediator_notifier_failures)
        self._silent = False

    def silence(self) -> None:
        """Send nothing from now on (a sandbox: ``rules test``, ``simulate``); callers still audit."""
        self._silent = True

    @property
    def default(self) -> list[str]:
        """The notifiers announcements go to."""
        return list(self._notifiers)

    async def announce(self, notice: Notice, *, to: list[str] | None = None) -> list[str]:
        """Deliver ``notice`` (to ``to``, else the announcing notifiers); returns what was sent.

        Failures, and names no notifier has, are logged and audited as ``notify.failed``.
        """
        sent, _ = await self.deliver(notice, to=to)
        return sent

    async def deliver(self, notice: Notice, *, to: list[str] | None = None) -> tuple[list[str], list[str]]:
        """As :meth:`announce`; also returns the notifiers that failed for now (a 5xx, 429,
        timeout or no connection) and may take it if tried again."""
        if self._silent:
            return [], []
        names = list(self._notifiers) if to is None else [n for n in to if n in self._all]
        for missing in [] if to is None else [n for n in to if n not in self._all]:
            _log.warning("notify.failed", notifier=missing, title=notice.title, error="not configured")
            self._audit.record(AuditEvent.NOTIFY_FAILED, notifier=missing, title=notice.title,
                               error="no notifier of this name is configured")
            self._on_failure(missing)
        results = await asyncio.gather(*(deliver(self._all[n], notice) for n in names),
                                       return_exceptions=True)
        sent, temporary = [], []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, RemediationError | TimeoutError | OSError):
                _log.warning("notify.failed", notifier=name, title=notice.title, error=str(result))
                self._audit.record(AuditEvent.NOTIFY_FAILED, notifier=name, title=notice.title,
                                   error=str(result))
                self._on_failure(name)
                if isinstance(result, TemporaryError | TimeoutError | OSError):
                    temporary.append(name)
            elif isinstance(result, BaseException):
                raise result
            else:
                sent.append(f"{name}: {result}")
        return sent, temporary
