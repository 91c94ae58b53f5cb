"""The fault cases: which store, how many replicas, which fault, how much load, which seed.

One row per case of ``tests.faults.test_faults``. ``Store.REDIS`` is the shared local Redis
(127.0.0.1:6379) under a key prefix of the case's own; ``Store.OWN_REDIS`` a redis-server
the case starts on a free port (append-only file, ``appendfsync always``) because the
case kills or freezes it. SQLite keeps to one replica, as the store itself does. Every
figure is bounded so that a case runs in well under 45 s on a busy 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Store(StrEnum):
    SQLITE = "sqlite"
    REDIS = "redis"
    OWN_REDIS = "own-redis"


class Fault(StrEnum):
    """What strikes at the case's seeded random moments while the firings flow."""

    SIGKILL = "sigkill"
    """A replica is SIGKILLed, then restarted after up to 0.8 s."""
    SIGTERM = "sigterm"
    """A replica is SIGTERMed while actions are in flight, waited for, then restarted."""
    REDIS_KILL = "redis-kill"
    """Redis is SIGKILLed, then restarted on its append-only file 0.5–2 s later."""
    REDIS_FREEZE = "redis-freeze"
    """Redis is SIGSTOPped for 2–4 s, then SIGCONTed."""
    TARGET_FAIL = "target-500"
    """The target answers 500 for 2–3 s."""
    TARGET_HANG = "target-hang"
    """The target holds every request for 2–3 s (the step's timeout is shorter)."""
    TARGET_DOWN_SIGKILL = "target-503-sigkill"
    """The target refuses every request with 503 for 3 s (retried: nothing was done); 1–1.5 s
    into it, with steps waiting in their retry backoff, a replica is SIGKILLed and restarted."""

    @property
    def opens_breaker(self) -> bool:
        """The target's failures open its circuit breaker: one escalation per outage is expected."""
        return self in (Fault.TARGET_FAIL, Fault.TARGET_HANG)


@dataclass(frozen=True)
class Case:
    name: str
    store: Store
    replicas: int
    fault: Fault
    strikes: int
    seed: int
    firings: int = 200
    rate: float = 25.0
    """Firings are sent in notifications of one to three; this many notifications per second."""
    step_timeout: str = "10s"
    target_delay: float = 0.0
    workers: int = 8
    drain_timeout: str = "2s"
    retries: int = 2
    retry_backoff: str = "300ms"


CASES = (
    Case("sqlite-1-sigkill", Store.SQLITE, 1, Fault.SIGKILL, strikes=3, seed=1701),
    Case("redis-1-sigkill", Store.REDIS, 1, Fault.SIGKILL, strikes=3, seed=1702),
    Case("redis-2-sigkill", Store.REDIS, 2, Fault.SIGKILL, strikes=4, seed=1703),
    Case("sqlite-1-sigterm", Store.SQLITE, 1, Fault.SIGTERM, strikes=2, seed=1704, target_delay=0.4),
    Case("redis-2-sigterm", Store.REDIS, 2, Fault.SIGTERM, strikes=2, seed=1705, target_delay=0.4),
    Case("redis-1-redis-kill", Store.OWN_REDIS, 1, Fault.REDIS_KILL, strikes=2, seed=1706),
    Case("redis-2-redis-kill", Store.OWN_REDIS, 2, Fault.REDIS_KILL, strikes=1, seed=1707),
    Case("redis-2-redis-freeze", Store.OWN_REDIS, 2, Fault.REDIS_FREEZE, strikes=1, seed=1708),
    Case("sqlite-1-target-500", Store.SQLITE, 1, Fault.TARGET_FAIL, strikes=1, seed=1709),
    Case("redis-2-target-hang", Store.REDIS, 2, Fault.TARGET_HANG, strikes=1, seed=1710, step_timeout="1s"),
    Case("sqlite-1-target-503-sigkill", Store.SQLITE, 1, Fault.TARGET_DOWN_SIGKILL, strikes=1, seed=1711,
         retries=4, retry_backoff="1s"),
)
