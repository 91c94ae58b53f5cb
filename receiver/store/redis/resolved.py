"""A webhook's resolved alerts closed at once in the Redis store: markers, approvals, timers.

A part of ``receiver.store.redis.store.RedisStateStore``, which calls it for
``close_resolved``. It names keys of three parts, each in its own slot: the markers are
dedup claims (``{PREFIX:queue}``, the ``CLAIM`` script of ``receiver.store.redis.lua_queue``),
the approvals ``{PREFIX:approvals}`` (``CANCEL_PENDING``, keys as
``receiver.store.redis.approvals``) and the timers ``{PREFIX:timers}`` (``TAKE_RESOLVED``,
keys as ``receiver.store.redis.timers``), so it runs one script per part, never one across
parts. On one server or a Sentinel master the three go as one MULTI in one round trip
(``receiver.store.redis.core.RedisCore.run_all``): the markers first, nothing in between. On a
Cluster their nodes may differ, and a pipeline keeps no order between nodes: the markers
are claimed first, then approvals and timers in one pipeline (two round trips). Scripts go
by their SHA (``EVALSHA``); one the server lost (a restart) fails alone inside the MULTI, so
the scripts are loaded and run again from the first lost (``RedisResolved._run``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from receiver.errors import StateError
from receiver.store.redis.approvals import approval_of
from receiver.store.redis.core import Call, NotReplicated, RedisCore, gc_ms, num
from receiver.store.values import KEEP_DECIDED, Approval, Closed, PartlyClosed, Resolved, decode_timers


@dataclass
class _Tally:
    """What the three scripts (markers, approvals, timers) answered, each run of each (a script
    run again after a NOSCRIPT: both), and what failed."""

    answers: list[list[Any]]
    failed: list[str] = field(default_factory=list)
    replicated: bool = True


def _approvals(flat: Sequence[str]) -> tuple[Approval, ...]:
    moved = (approval_of(*flat[i:i + 3]) for i in range(0, len(flat), 3))
    return tuple(sorted(moved, key=lambda a: (a.created_at, a.id)))


class RedisResolved:
    """Closes resolved firings on ``core``'s Redis."""

    def __init__(self, core: RedisCore) -> None:
        self._core = core

    async def close_resolved(self, firings: Sequence[Resolved], *, ttl: float, kinds: Sequence[str],
                             actor: str, comment: str) -> list[Closed]:
        if not firings:
            return []
        core, key = self._core, self._core.key
        now = core.clock.now()
        fingerprints = [f.fingerprint for f in firings]
        claim: Call = ("CLAIM", [key("queue", "dedup", f.marker) for f in firings],
                 [num(now), num(now + ttl), gc_ms(ttl)])
        moved = json.dumps({"decided_by": actor, "decided_at": now, "comment": comment})
        expired = json.dumps({"decided_by": "system", "decided_at": now, "comment": None})
        cancel: Call = ("CANCEL_PENDING", [key("approvals", "approvals")],
                  [num(now), moved, expired, gc_ms(KEEP_DECIDED),
                   key("approvals", "approvals", "pending", ""), key("approvals", "approval", ""),
                   *fingerprints])
        take: Call = ("TAKE_RESOLVED", [key("timers", "timers")],
                [num(now), key("timers", "timer", ""), key("timers", "timers", "fp", ""), len(kinds), *kinds,
                 *fingerprints])
        tally = _Tally([[], [], []])
        with core.errors():
            if core.cluster:  # markers first, on their own node, before any timer is taken
                await self._run([claim], 0, tally)
                if tally.failed:  # nothing else ran
                    raise StateError(f"redis state store {core.safe_url}: {'; '.join(tally.failed)}")
                await self._run([cancel, take], 1, tally)
            else:
                await self._run([claim, cancel, take], 0, tally)
        return self._closed(len(firings), tally)

    async def _run(self, calls: list[Call], at: int, tally: _Tally) -> None:
        """Run ``calls`` (``run_all``; the first is call ``at`` of three) into ``tally``. When the
        server lost scripts (NOSCRIPT), load them and run again from the first it lost, so the
        markers still come before the take; what ran in both runs is kept from both."""
        for attempt in range(2):
            try:
                answers = await self._core.run_all(calls)
            except NotReplicated as exc:  # the master ran it: recorded, and 503 (it comes again)
                answers, tally.replicated = exc.result, False
            lost = next((i for i, a in enumerate(answers) if isinstance(a, NoScriptError)), None)
            for i, answer in enumerate(answers):
                if not isinstance(answer, Exception):
                    tally.answers[at + i].append(answer)
                elif attempt or not isinstance(answer, NoScriptError):
                    tally.failed.append(str(answer))
            if lost is None or attempt:
                return
            await self._core.load([name for name, _, _ in calls])
            calls, at = calls[lost:], at + lost

    def _closed(self, count: int, tally: _Tally) -> list[Closed]:
        """What each firing closed; :class:`PartlyClosed` (with it) when a script failed or the
        replicas did not confirm."""
        _, cancelled, taken = tally.answers
        closed = []
        for n in range(count):  # firing n's answers of each run, one flat list
            moved = [x for run in cancelled for x in run[n]]
            took = [x for run in taken for x in run[n]]
            closed.append(Closed(approvals=_approvals(moved),
                                 timers=tuple(decode_timers(zip(took[::2], took[1::2], strict=True)))))
        if tally.failed or not tally.replicated:
            why = "; ".join(tally.failed) or "the replicas did not confirm it"
            raise PartlyClosed(f"redis state store {self._core.safe_url}: closing resolved alerts: {why}",
                               closed)
        return closed
