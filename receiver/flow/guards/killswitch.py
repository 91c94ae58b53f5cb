"""The kill switch: an admin's pause (``POST /api/v1/pause``, ``remediator pause``) or the
blast radius tripping stops every live action until an admin resumes.

A stage of ``receiver.flow.guards.pipeline`` (a live decision before its plan; each action
step before it executes and again before every retry); ``receiver.flow.workers`` trips it
when the blast radius is reached; ``receiver.http.api`` pauses and resumes. The pause
lives in the state store, so every replica honours it and it survives restarts. A pause
by the blast radius is escalated (``receiver.flow.escalation``, reason ``blast_radius``)
unless ``escalation.blast_radius`` is off; any other pause is announced.
"""

from __future__ import annotations

from datetime import UTC, datetime

from receiver.audit import AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.decisions import Escalation, Reason
from receiver.flow.announce import Announcer
from receiver.flow.escalation import Case, Escalations
from receiver.flow.guards import Blocked, Guard
from receiver.flow.guards.stages import DecisionRun, Hold, StepRun
from receiver.store.protocol import StateStore
from receiver.store.values import Pause
from remediations.notify.delivery import Notice


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class KillSwitch:
    """Pause and resume automation across replicas."""

    def __init__(self, *, store: StateStore, audit: AuditLog, announcer: Announcer, clock: Clock,
                 escalations: Escalations | None = None) -> None:
        self._escalations = escalations
        self._store = store
        self._audit = audit
        self._announcer = announcer
        self._clock = clock

    async def check(self) -> None:
        """Raise :class:`Blocked` while automation is paused."""
        pause = await self._store.get_pause()
        if pause is not None:
            raise Blocked(Guard.KILL_SWITCH, Reason.PAUSED,
                          f"automation is paused ({pause.source}) by {pause.actor} since "
                          f"{_when(pause.since)}: {pause.detail}; an admin resumes it")

    async def check_decision(self, run: DecisionRun) -> None:
        await self.check()

    async def enter(self, run: StepRun) -> Hold:
        await self.check()
        return _Unpaused(self)

    async def pause(self, *, actor: str, detail: str, source: str = "admin") -> bool:
        """Pause (True) unless already paused (False); audited and announced when it pauses."""
        paused = await self._store.set_pause(Pause(source=source, actor=actor, detail=detail,
                                                   since=self._clock.now()))
        if paused:
            self._audit.record(AuditEvent.ADMIN_PAUSE, actor=actor, source=source, detail=detail)
            await self._audit.sync()
            if source == "blast_radius" and self._escalations is not None:
                await self._escalations.send(Case(
                    reason=Escalation.BLAST_RADIUS, key=f"blast_radius\x1f{self._clock.now()}",
                    detail=f"{detail}\nNo action runs until an admin resumes: remediator resume",
                    about={},
                    headline=f"remediator paused ({source})"))
                return paused
            await self._announcer.announce(Notice(
                title=f"remediator paused ({source})", severity="critical",
                text=f"{detail}\nNo action runs until an admin resumes: remediator resume",
                fields={"paused by": actor, "source": source},
            ))
        return paused

    async def resume(self, *, actor: str) -> Pause | None:
        """Resume; returns the pause lifted, or None when automation was not paused."""
        lifted = await self._store.clear_pause()
        if lifted is not None:
            self._audit.record(AuditEvent.ADMIN_RESUME, actor=actor, paused_by=lifted.actor,
                               source=lifted.source, paused_seconds=self._clock.now() - lifted.since)
            await self._audit.sync()
            await self._announcer.announce(Notice(title="remediator resumed", severity="info",
                                                  text=f"Automation resumed by {actor}.",
                                                  fields={"resumed by": actor}))
        return lifted

    async def state(self) -> Pause | None:
        return await self._store.get_pause()


class _Unpaused(Hold):
    """A step let through: a pause during its backoff stops its retries too."""

    def __init__(self, switch: KillSwitch) -> None:
        self._switch = switch

    async def before_attempt(self, attempt: int) -> None:
        if attempt > 1:
            await self._switch.check()
