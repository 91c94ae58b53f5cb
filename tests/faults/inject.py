"""Striking a running case: the faults of ``tests.faults.cases.Fault`` at seeded random moments.

``strike`` runs in its own thread beside the sender: it draws the case's moments within the
load's span, waits for each and does the fault, then heals it, and says what it did (and
when, relative to the first firing sent) in ``Stage.done``. ``heal`` puts everything back
(target answering, Redis running and not stopped, every replica up) however a strike ended.
Called by ``tests.faults.runner``; Redis is a ``tests.support.redisnodes.Nodes`` process,
signalled by its PID.
"""

from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass, field

from tests.faults.cases import Case, Fault
from tests.faults.fleet import Fleet
from tests.faults.target import HitTarget
from tests.support.redisnodes import Nodes


@dataclass
class Stage:
    """What a strike can reach."""

    fleet: Fleet
    target: HitTarget
    redis: Nodes | None
    redis_port: int
    rng: random.Random
    began: float
    done: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.done.append(f"{time.monotonic() - self.began:5.2f}s {what}")

    def wait_until(self, moment: float) -> None:
        pause = self.began + moment - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def moments(rng: random.Random, count: int, span: float) -> list[float]:
    """``count`` sorted moments within the load's span (not in its first or last half second)."""
    return sorted(rng.uniform(0.5, max(0.6, span - 0.5)) for _ in range(count))


def strike(case: Case, stage: Stage, span: float) -> None:
    """Every strike of ``case``, each healed before the next."""
    for moment in moments(stage.rng, case.strikes, span):
        stage.wait_until(moment)
        _FAULTS[case.fault](stage)


def _sigkill(stage: Stage) -> None:
    replica = stage.rng.choice(stage.fleet.replicas)
    replica.kill()
    stage.fleet.kills += 1
    down = stage.rng.uniform(0.0, 0.8)
    stage.note(f"SIGKILL {replica.name}, restart in {down:.2f}s")
    time.sleep(down)
    replica.start()
    stage.note(f"{replica.name} listening again")


def _sigterm(stage: Stage) -> None:
    replica = stage.rng.choice(stage.fleet.replicas)
    stage.note(f"SIGTERM {replica.name}")
    took = replica.term()
    stage.fleet.terms += 1
    stage.note(f"{replica.name} exited after {took:.2f}s; restart")
    replica.start()
    stage.note(f"{replica.name} listening again")


def _redis_kill(stage: Stage) -> None:
    assert stage.redis is not None
    stage.redis.kill(stage.redis_port)
    down = stage.rng.uniform(0.5, 2.0)
    stage.note(f"SIGKILL redis, restart on its AOF in {down:.2f}s")
    time.sleep(down)
    stage.redis.start(stage.redis_port)
    stage.note("redis up")


def _redis_freeze(stage: Stage) -> None:
    assert stage.redis is not None
    frozen = stage.rng.uniform(2.0, 4.0)
    stage.redis.procs[stage.redis_port].send_signal(signal.SIGSTOP)
    stage.note(f"SIGSTOP redis for {frozen:.2f}s")
    time.sleep(frozen)
    stage.redis.procs[stage.redis_port].send_signal(signal.SIGCONT)
    stage.note("SIGCONT redis")


def _target_fail(stage: Stage) -> None:
    lasts = stage.rng.uniform(2.0, 3.0)
    stage.target.fail()
    stage.note(f"target answers 500 for {lasts:.2f}s")
    time.sleep(lasts)
    stage.target.heal()
    stage.note("target answers 200")


def _target_hang(stage: Stage) -> None:
    lasts = stage.rng.uniform(2.0, 3.0)
    stage.target.hang()
    stage.note(f"target hangs for {lasts:.2f}s")
    time.sleep(lasts)
    stage.target.heal()
    stage.note("target answers again")


def _target_down_sigkill(stage: Stage) -> None:
    down = time.monotonic()
    stage.target.refuse()
    stage.note("target refuses with 503 for 3s")
    time.sleep(stage.rng.uniform(1.0, 1.5))
    _sigkill(stage)
    time.sleep(max(0.0, down + 3.0 - time.monotonic()))
    stage.target.heal()
    stage.note("target answers 200")


_FAULTS = {
    Fault.SIGKILL: _sigkill,
    Fault.SIGTERM: _sigterm,
    Fault.REDIS_KILL: _redis_kill,
    Fault.REDIS_FREEZE: _redis_freeze,
    Fault.TARGET_FAIL: _target_fail,
    Fault.TARGET_HANG: _target_hang,
    Fault.TARGET_DOWN_SIGKILL: _target_down_sigkill,
}


def heal(stage: Stage) -> None:
    """Everything back up, whatever a strike left behind."""
    stage.target.heal()
    if stage.redis is not None:
        proc = stage.redis.procs.get(stage.redis_port)
        if proc is None or proc.poll() is not None:
            stage.redis.procs.pop(stage.redis_port, None)
            stage.redis.start(stage.redis_port)
        else:
            proc.send_signal(signal.SIGCONT)
    stage.fleet.ensure_running()
