"""One fault case from start to verdict: store, replicas, load, strikes, settling, judging.

``run`` starts what the case names, sends its firings (``tests.faults.sender``) while
``tests.faults.inject.strike`` strikes, heals everything, then waits (bounded) until every
accepted firing is settled (a hit or a meaningful ending) and the store's backlog is empty,
waits a further grace for late duplicates, and judges (``tests.faults.ledger``). It always
stops what it started, by PID, and drops its Redis keys. Called by ``tests.faults.test_faults``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.cases import Case, Store
from tests.faults.fleet import Fleet, service_config
from tests.faults.inject import Stage, heal, strike
from tests.faults.ledger import Trail, escalations, read_records, trails
from tests.faults.sender import Sender, notifications
from tests.faults.target import HitTarget
from tests.support.redisdb import REDIS_URL, drop_prefix
from tests.support.redisnodes import Nodes, free_port

RESEND = 20.0
"""How long after the last first send the sender keeps re-sending what was not accepted."""
SETTLE = 20.0
"""How long, after every fault is healed, accepted firings get to be settled."""
GRACE = 1.0
"""A late duplicate (work taken up again) would land within this after the backlog empties."""


@dataclass
class Figures:
    """What a case did and what it found."""

    case: str
    sent: int = 0
    accepted: int = 0
    unaccepted: list[str] = field(default_factory=list)
    refused: int = 0
    kills: int = 0
    terms: int = 0
    hits: int = 0
    lost: list[Trail] = field(default_factory=list)
    duplicated: list[Trail] = field(default_factory=list)
    escalations: dict[str, int] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    strikes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.case}: firings {self.sent}, accepted {self.accepted}, kills {self.kills}, "
                f"sigterms {self.terms}, hits {self.hits}, lost {len(self.lost)}, "
                f"duplicated {len(self.duplicated)}, unaccepted {len(self.unaccepted)}, "
                f"escalations {self.escalations or 0}, answers {dict(sorted(self.answers.items()))}, "
                f"{self.seconds:.1f}s")

    def report(self, limit: int = 8) -> str:
        parts = [self.line(), "strikes:", *(f"  {s}" for s in self.strikes)]
        for title, found in (("LOST", self.lost), ("DUPLICATED", self.duplicated)):
            if found:
                parts.append(f"{title} ({len(found)}): {' '.join(t.firing.id for t in found)}")
                parts.extend(t.show() for t in found[:limit])
        if self.unaccepted:
            parts.append(f"never answered 2xx: {' '.join(self.unaccepted)}")
        if self.errors:
            parts.append("error log lines:")
            parts.extend(f"  {e[:300]}" for e in self.errors[:limit])
        return "\n".join(parts)


def _state(case: Case, root: Path, redis: Nodes | None, port: int) -> str:
    if case.store is Store.SQLITE:
        return f"sqlite:///{root / 'state.db'}"
    if case.store is Store.REDIS:
        return REDIS_URL
    return f"redis://127.0.0.1:{port}/0"


def _own_redis(root: Path) -> tuple[Nodes, int]:
    folder = root / "redis"
    folder.mkdir()
    nodes, port = Nodes(folder), free_port()
    nodes.start(port, "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--dir", str(folder))
    return nodes, port


def run(case: Case, root: Path) -> Figures:
    """Run ``case`` in ``root`` and judge it."""
    began = time.monotonic()
    figures = Figures(case.name)
    rng = random.Random(case.seed)
    prefix = f"faults-{case.name}-{uuid.uuid4().hex[:8]}"
    target = HitTarget(delay=case.target_delay)
    redis, port = _own_redis(root) if case.store is Store.OWN_REDIS else (None, 0)
    fleet = Fleet(root, case.replicas, service_config(
        target_url=target.url, state=_state(case, root, redis, port), prefix=prefix, workers=case.workers,
        drain_timeout=case.drain_timeout, retries=case.retries, retry_backoff=case.retry_backoff),
        case.step_timeout)
    try:
        fleet.start()
        batch = notifications(case.name, case.firings, rng)
        span = len(batch) / case.rate
        sender = Sender(fleet.urls, seed=case.seed)
        stage = Stage(fleet, target, redis, port, rng, time.monotonic())
        with ThreadPoolExecutor(2, thread_name_prefix=case.name) as pool:
            sending = pool.submit(sender.run, batch, rate=case.rate, give_up=stage.began + span + RESEND)
            striking = pool.submit(strike, case, stage, span)
            try:
                striking.result()
            finally:
                heal(stage)
                stage.note("healed")
            sending.result()
        accepted = [f for note in batch if note.accepted for f in note.firings]
        figures.sent = sum(len(note.firings) for note in batch)
        figures.accepted = len(accepted)
        figures.unaccepted = [f.id for note in batch if not note.accepted for f in note.firings]
        figures.refused = sum(1 for note in batch if note.refused is not None)
        figures.answers = sender.answers
        logs = [(r.name, r.audit) for r in fleet.replicas]
        end = time.monotonic() + SETTLE
        while time.monotonic() < end:
            if all(t.settled for t in trails(accepted, target.count, read_records(logs))) \
                    and fleet.backlog() == 0:
                break
            time.sleep(0.25)
        time.sleep(GRACE)
        stage.note("judged")
        records = read_records(logs)
        judged = trails(accepted, target.count, records)
        figures.lost = [t for t in judged if t.lost]
        figures.duplicated = [t for t in judged if t.duplicated]
        figures.hits = target.total()
        figures.escalations = escalations(records)
        figures.kills, figures.terms = fleet.kills, fleet.terms
        figures.strikes = stage.done
        figures.errors = [line for r in fleet.replicas for line in r.errors()]
    finally:
        fleet.stop()
        target.close()
        if redis is not None:
            redis.stop()
        if case.store is Store.REDIS:
            asyncio.run(drop_prefix(prefix))
        figures.seconds = time.monotonic() - began
    return figures
