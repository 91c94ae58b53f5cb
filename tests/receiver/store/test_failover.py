"""Two ``serve`` replicas on a Sentinel-watched Redis keep acting exactly once through failovers under load.

A private master, replica and sentinel (``tests.support.redisnodes``), state URL
``redis+sentinel://…/svc/0?replicas=1`` (every write waits until the replica holds it).
A bounded load of distinct firings is posted to the two replicas the way Alertmanager
would (resent after a 503 or a dropped connection until answered 202) while the
sentinel fails over on command and then after the master is SIGKILLed. The HTTP target
counts executions per firing: every firing answered 202 runs exactly once, none twice.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.support.redisnodes import SentinelSet, start_sentinel
from tests.support.replicas import CountingTarget, Replica, config, until
from tests.support.webhooks import alert, body

FIRINGS = 90
SENDERS = 3
PACE = 0.05  # seconds between one sender's firings: the load spans both failovers
DEADLINE = 90.0
RULES = [{"name": "purge", "approval": "auto", "match": ['alertname = "HighErrorRate"', 'namespace =~ "p.*"'],
          "actions": [{"action": "http.request", "target": "api",
                       "params": {"method": "POST", "path": "/act/{{ labels.namespace }}"}}]}]


@pytest.fixture
def sentinel() -> Iterator[SentinelSet]:
    made = start_sentinel()
    yield made
    made.nodes.stop()


@pytest.fixture
def target() -> Iterator[CountingTarget]:
    made = CountingTarget()
    yield made
    made.close()


class Sender:
    """Posts firing ``i`` until a replica answers 202 (as Alertmanager resends), counting refusals."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.answered: set[int] = set()
        self.refused = 0
        self.lock = threading.Lock()

    def send(self, i: int) -> None:
        payload = body(alert(namespace=f"prod-{i}"))
        end = time.monotonic() + DEADLINE
        attempt = i
        while time.monotonic() < end:
            try:
                status, _ = self.replicas[attempt % 2].request("POST", "/webhook", payload)
            except (OSError, urllib.error.URLError):
                status = 0
            if status == 202:
                with self.lock:
                    self.answered.add(i)
                return
            with self.lock:
                self.refused += 1
            attempt += 1
            time.sleep(0.1)

    def run(self, first: int, step: int) -> None:
        for i in range(first, FIRINGS, step):
            self.send(i)
            time.sleep(PACE)


def runs(target: CountingTarget) -> dict[int, int]:
    """How many times each firing's action reached the target."""
    calls = list(target.calls)
    return {i: calls.count(f"/svc/act/prod-{i}") for i in range(FIRINGS)}


def trail(replicas: list[Replica], namespaces: set[str]) -> list[str]:
    """What the replicas' audit logs say of these firings (for a failure's message)."""
    records = [(r.cwd.name, rec) for r in replicas for rec in r.audit()]
    fingerprints = {rec["fingerprint"] for _, rec in records
                    if rec.get("labels", {}).get("namespace") in namespaces}
    decisions = {rec["decision"] for _, rec in records
                 if rec.get("fingerprint") in fingerprints and "decision" in rec}
    return [f"{name} {rec['ts']} {rec['event']} {rec.get('reason', '')} {str(rec.get('detail', ''))[:160]}"
            for name, rec in records
            if rec.get("fingerprint") in fingerprints or rec.get("decision") in decisions
            or decisions & set(rec.get("decisions") or ())]


def test_two_replicas_act_exactly_once_through_sentinel_failovers(
        sentinel: SentinelSet, target: CountingTarget, tmp_path: Path) -> None:
    """Firings under load through SENTINEL FAILOVER and a SIGKILL of the master: every firing is
    answered 202 in the end and acted on exactly once; no action runs twice."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    conf = config(target, sentinel.nodes.url, prefix=prefix, queue={"visibility_timeout": "2s"})
    replicas = []
    for name in ("a", "b"):
        replica = Replica(tmp_path, name, conf)
        (replica.cwd / "rules.yaml").write_text(yaml.safe_dump({"rules": RULES}))
        replicas.append(replica)
    started = time.monotonic()
    try:
        for replica in replicas:
            replica.start()
        sender = Sender(replicas)
        with ThreadPoolExecutor(SENDERS) as pool:
            running = [pool.submit(sender.run, first, SENDERS) for first in range(SENDERS)]
            until(lambda: len(sender.answered) >= FIRINGS // 3, "a third of the firings", DEADLINE)
            sentinel.failover()
            until(lambda: len(sender.answered) >= 2 * FIRINGS // 3, "two thirds of the firings", DEADLINE)
            sentinel.kill_master()
            for done in running:
                done.result(timeout=DEADLINE)
        assert sender.answered == set(range(FIRINGS))
        end = time.monotonic() + DEADLINE
        while not all(runs(target).values()) and time.monotonic() < end:  # every answered firing acted on
            time.sleep(0.1)
        time.sleep(3.0)  # a second execution (a redelivery after the 2 s visibility timeout) lands by now
        counted = runs(target)
        print(f"sentinel failover: {FIRINGS} firings, {sender.refused} refusals resent, "
              f"twice: {[i for i, n in counted.items() if n > 1]}, "
              f"never: {[i for i, n in counted.items() if not n]}, "
              f"{time.monotonic() - started:.1f} s")
        wrong = {i: n for i, n in counted.items() if n != 1}
        assert wrong == {}, "\n".join(trail(replicas, {f"prod-{i}" for i in wrong}))
    finally:  # the private Redis (and every key) goes with the sentinel fixture
        for replica in replicas:
            replica.stop()

