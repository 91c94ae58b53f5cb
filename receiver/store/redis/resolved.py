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
are claimed first, then approvals and timers in one pipeline (two round trips).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from receiver.store.redis.approvals import approval_of
from receiver.store.redis.core import Call, NotReplicated, RedisCore, gc_ms, num
from receiver.store.values import KEEP_DECIDED, Approval, Closed, PartlyClosed, Resolved, decode_timers


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
        replicated = True
        with core.errors():
            try:
                if core.cluster:  # markers first, on their own node, before any timer is taken
                    [claimed] = await core.run_all([claim])
                    if isinstance(claimed, Exception):
                        raise claimed  # nothing else ran
                    answers = [claimed, *await core.run_all([cancel, take])]
                else:
                    answers = await core.run_all([claim, cancel, take])
            except NotReplicated as exc:  # the master ran it all: record it, answer 503 (it comes again)
                answers, replicated = exc.result, False
        return self._closed(len(firings), answers, replicated=replicated)

    def _closed(self, count: int, answers: list[Any], *, replicated: bool) -> list[Closed]:
        """What each firing closed; :class:`PartlyClosed` (with it) when a script failed or the
        replicas did not confirm."""
        _, cancelled, taken = answers
        approvals = [()] * count if isinstance(cancelled, Exception) else [_approvals(c) for c in cancelled]
        timers = [()] * count if isinstance(taken, Exception) else [
            tuple(decode_timers(zip(t[::2], t[1::2], strict=True))) for t in taken]
        closed = [Closed(approvals=a, timers=t) for a, t in zip(approvals, timers, strict=True)]
        failed = [str(a) for a in answers if isinstance(a, Exception)]
        if failed or not replicated:
            why = "; ".join(failed) or "the replicas did not confirm it"
            raise PartlyClosed(f"redis state store {self._core.safe_url}: closing resolved alerts: {why}",
                               closed)
        return closed
