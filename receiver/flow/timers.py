"""Timers: verify watches and escalation timers, kept in the state store, fired once.

Built by ``receiver.runtime``; ``receiver.flow.verify`` and ``receiver.flow.policies`` arm timers
and register what to do when a kind of timer is due. ``fire_due`` is called by every
replica's housekeeping loop (as approvals expire) and reads the injected clock, so tests
move time and call it by hand. A due timer is claimed atomically by one replica for a
lease; a handler that returns finishes it; one that raises (the store or the audit log
failing, an escalation a notifier did not take for now) or a replica that dies leaves it to
be claimed again once the lease runs out. Timers are claimed one at a time, each just before
its handler runs, so a lease covers one handler (at most a notifier's longest timeout,
120 s, and the store's and audit log's writes), never a queue of slow ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

import structlog

from receiver.audit import AuditError
from receiver.errors import StateError, Undelivered
from receiver.flow.group import GroupCommit
from receiver.store.protocol import StateStore
from receiver.store.values import Timer

_log = structlog.get_logger("remediator.timers")
GROUP_MAX = 200  # timers armed per shared store call
LEASE = 180.0  # seconds a claimed timer is held before another replica may take it: one handler


class TimerKind(StrEnum):
    """What a timer is for: the ``kind`` stored with it."""

    VERIFY = "verify"
    """A watch: the remediation's alert should resolve by then."""
    VERIFY_LATE = "verify_late"
    """A failed watch, kept so that a late resolution is recorded as such."""
    P1_UNRESOLVED = "p1_unresolved"
    """A P1 alert should have resolved by then."""
    SLACK_REPLY = "slack_reply"
    """A Slack message owed the result of a plan approved there (``receiver.http.slackreply``);
    keyed by decision, not by alert, so a resolution never takes it."""


TAKEN_BY_RESOLUTION = tuple(k.value for k in TimerKind)
"""The kinds of timer an alert's resolution takes (one keyed by decision never matches its fingerprint)."""

Handler = Callable[[Timer], Awaitable[None]]


class Timers:
    """Arms timers and fires the due ones through the handler of their kind."""

    def __init__(self, *, store: StateStore) -> None:
        self._store = store
        self._handlers: dict[str, Handler] = {}
        self._group: GroupCommit[Timer, bool] = GroupCommit(self._put, size=lambda _: 1, limit=GROUP_MAX)

    def on(self, kind: TimerKind, handler: Handler) -> None:
        self._handlers[kind.value] = handler

    async def arm(self, timer: Timer) -> bool:
        """Store ``timer`` unless its id was armed before; True when this call armed it.

        Timers armed in the same turn of the event loop, or while a store call is under way,
        share one ``put_timers`` (``receiver.flow.group``): under a storm every live P1
        decision arms one, and a store transaction each cost more than the rest of a blocked
        decision. Each caller gets its own answer, or the store's error."""
        return await self._group(timer)

    async def _put(self, timers: Sequence[Timer]) -> list[bool | Exception]:
        return list(await self._store.put_timers(timers))

    async def take(self, fingerprint: str) -> list[Timer]:
        """Disarm every timer of an alert that resolved (those being fired are left to finish)."""
        return await self._store.take_timers(fingerprint, TAKEN_BY_RESOLUTION)

    async def fire_due(self) -> int:
        """Fire every timer due now that no replica holds; how many were handled."""
        handled = 0
        while due := await self._store.claim_due_timers(lease=LEASE, limit=1):
            [timer] = due
            handler = self._handlers.get(timer.kind)
            if handler is not None:
                try:
                    await handler(timer)
                except (StateError, AuditError, Undelivered) as exc:  # claimed again after the lease
                    _log.error("timer.failed", timer=timer.id, kind=timer.kind, error=str(exc))
                    continue
                except Exception:  # a bug must not stop housekeeping; it is logged, retried later
                    _log.exception("timer.crashed", timer=timer.id, kind=timer.kind)
                    continue
            else:
                _log.warning("timer.unknown_kind", timer=timer.id, kind=timer.kind)
            await self._store.finish_timer(timer.id)
            handled += 1
        return handled
