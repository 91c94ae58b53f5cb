"""Judging every accepted firing of a fault case: its side effects (target hits) and its audit ending.

A firing's trail is every record of the replicas' audit logs that carries its fingerprint,
or the id of a decision made for it. A *meaningful ending* is ``action.succeeded``, a
``guard.blocked`` whose reason is a guard that means it (cooldown, rate limit, blast
radius, maintenance, pause, dry-run, approval asked, rejected or expired), or an
``escalation.sent`` about it: a human was handed it. An accepted firing is **lost** when the
target never saw it and it has no meaningful ending, **duplicated** when the target saw it
more than once. Records are read as written (a torn last line after a SIGKILL is skipped;
the chain itself is ``remediator audit verify``'s business). Used by ``tests.faults.runner``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.audit import AuditEvent
from receiver.decisions import Reason
from tests.faults.sender import Firing

MEANT = frozenset(r.value for r in (
    Reason.COOLDOWN, Reason.RATE_LIMITED, Reason.BLAST_RADIUS, Reason.MAINTENANCE, Reason.PAUSED,
    Reason.DRY_RUN, Reason.APPROVAL_REQUIRED, Reason.REJECTED, Reason.EXPIRED))
"""The ``guard.blocked`` reasons that end a firing on purpose (the guarantee's "a guard that means it")."""


def read_records(logs: Iterable[tuple[str, Path]]) -> list[dict[str, Any]]:
    """Every record of the named audit logs, each tagged ``_replica`` with its log's name."""
    records: list[dict[str, Any]] = []
    for name, path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a SIGKILL, or one still being written
            if isinstance(record, dict):
                records.append({**record, "_replica": name})
    return records


def ending(record: dict[str, Any]) -> str | None:
    """What a record says about how its firing ended, when it is a meaningful ending."""
    event = record.get("event")
    if event == AuditEvent.ACTION_SUCCEEDED:
        return "succeeded"
    if event == AuditEvent.GUARD_BLOCKED and record.get("reason") in MEANT:
        return f"guard {record['reason']}"
    if event == AuditEvent.ESCALATION_SENT:
        return f"escalated {record.get('reason')}"
    return None


@dataclass(frozen=True)
class Trail:
    """One accepted firing: how often the target saw it, and its audit records in time order."""

    firing: Firing
    hits: int
    records: list[dict[str, Any]]

    @property
    def endings(self) -> list[str]:
        return [e for e in map(ending, self.records) if e is not None]

    @property
    def settled(self) -> bool:
        return self.hits >= 1 or bool(self.endings)

    @property
    def lost(self) -> bool:
        return self.hits == 0 and not self.endings

    @property
    def duplicated(self) -> bool:
        return self.hits > 1

    def show(self) -> str:
        lines = [f"  firing {self.firing.id} (fingerprint {self.firing.fingerprint}): {self.hits} hit(s)"]
        for r in self.records:
            extra = " ".join(f"{k}={r[k]}" for k in ("reason", "guard", "attempt") if r.get(k) is not None)
            detail = str(r.get("detail") or "")[:100]
            where = f"{r['_replica']} #{r.get('seq')}"
            lines.append(f"    {r.get('ts')} {where} {r.get('event')} {extra} {detail}")
        return "\n".join(lines)


def trails(firings: Sequence[Firing], hits: Callable[[str], int],
           records: Sequence[dict[str, Any]]) -> list[Trail]:
    """The trail of each of ``firings``."""
    by_fingerprint = {f.fingerprint: f for f in firings}
    decisions: dict[str, str] = {}
    for r in records:
        if r.get("fingerprint") in by_fingerprint and r.get("decision"):
            decisions[r["decision"]] = r["fingerprint"]
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        fingerprint = r.get("fingerprint")
        if fingerprint not in by_fingerprint:
            fingerprint = decisions.get(r.get("decision") or "")
        if fingerprint is not None:
            grouped[fingerprint].append(r)
    return [Trail(f, hits(f.id), sorted(grouped[f.fingerprint], key=lambda r: str(r.get("ts"))))
            for f in firings]


def escalations(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``escalation.sent`` records by reason."""
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        if r.get("event") == AuditEvent.ESCALATION_SENT:
            counts[str(r.get("reason"))] += 1
    return dict(counts)
