"""Real ``remediator serve`` processes: two replicas on one Redis, SIGKILL, restarts.

Each test starts its own serve processes (``python -m receiver serve``) with a config in
a temp directory, a unique Redis key prefix (or its own SQLite file), and a real HTTP
target in this process that counts the requests the actions send. Waits are bounded
polls on real processes.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.redisdb import REDIS_URL, drop_prefix
from tests.support.replicas import CountingTarget, Replica, config, events, until
from tests.support.serveproc import DEADLINE
from tests.support.webhooks import alert, body


@pytest.fixture
def target() -> Iterator[CountingTarget]:
    t = CountingTarget()
    yield t
    t.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    import asyncio  # noqa: PLC0415 - only the cleanup is async

    asyncio.run(drop_prefix(name))


RULES = [
    {"name": "purge", "approval": "auto", "match": ['alertname = "HighErrorRate"', 'namespace =~ "p.*"'],
     "actions": [{"action": "http.request", "target": "api",
                  "params": {"method": "POST", "path": "/act/{{ labels.namespace }}"}}]},
    {"name": "slow-purge", "approval": "auto",
     "match": ['alertname = "HighErrorRate"', 'namespace =~ "slow.*"'],
     "actions": [{"action": "http.request", "target": "api", "timeout": "60s",
                  "params": {"method": "POST", "path": "/slow/{{ labels.namespace }}"}}]},
    {"name": "ask-first", "approval": "required",
     "match": ['alertname = "HighErrorRate"', 'namespace =~ "ask.*"'],
     "actions": [{"action": "http.request", "target": "api",
                  "params": {"method": "POST", "path": "/act/{{ labels.namespace }}"}}]},
]


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[[str, dict[str, Any]], Replica]]:
    made: list[Replica] = []

    def make(name: str, conf: dict[str, Any]) -> Replica:
        r = Replica(tmp_path, name, conf)
        (r.cwd / "rules.yaml").write_text(yaml.safe_dump({"rules": RULES}))
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def test_two_replicas_posted_the_same_payload_run_it_once(
        replicas: Callable[..., Replica], target: CountingTarget, prefix: str) -> None:
    """Both replicas answer 202 to the same notification at once; the action runs once."""
    a = replicas("a", config(target, REDIS_URL, prefix=prefix)).start()
    b = replicas("b", config(target, REDIS_URL, prefix=prefix)).start()
    payload = body(alert(namespace="prod"))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: r.request("POST", "/webhook", payload), [a, b] * 4))
    assert {status for status, _ in answers} == {202}
    assert sum(answer["queued"] for _, answer in answers) == 1
    until(lambda: target.count("/svc/act/prod") >= 1, "the action")
    until(lambda: len(events(a, b, name="action.succeeded")) == 1, "the audit of the action")
    time.sleep(0.5)  # a second execution, if there were one, would land by now
    assert target.count("/svc/act/prod") == 1
    assert len(events(a, b, name="guard.blocked")) == 7  # the seven other deliveries: duplicates


def test_two_approvals_through_two_replicas_run_once(
        replicas: Callable[..., Replica], target: CountingTarget, prefix: str) -> None:
    """The approval requested on one replica is seen on the other; approving on both runs once."""
    a = replicas("a", config(target, REDIS_URL, prefix=prefix)).start()
    b = replicas("b", config(target, REDIS_URL, prefix=prefix)).start()
    assert a.request("POST", "/webhook", body(alert(namespace="ask-1")))[0] == 202
    until(lambda: b.request("GET", "/api/v1/approvals?status=pending")[1]["approvals"], "the approval")
    [approval] = b.request("GET", "/api/v1/approvals?status=pending")[1]["approvals"]
    listed = a.cli("approvals", "list")
    assert approval["id"] in listed.stdout
    assert "POST " + target.url + "/act/ask-1" in listed.stdout
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda r: r.cli("approvals", "approve", approval["id"], "--comment", "ok"),
                             [a, b]))
    assert sorted(p.returncode for p in done) == [0, 1]
    refused = next(p for p in done if p.returncode == 1)
    assert "409" in refused.stderr
    until(lambda: target.count("/svc/act/ask-1") == 1, "the approved action")
    time.sleep(0.5)
    assert target.count("/svc/act/ask-1") == 1


def test_work_of_a_killed_replica_is_run_once_by_the_other(
        replicas: Callable[..., Replica], target: CountingTarget, prefix: str) -> None:
    """SIGKILL of a replica with one action in flight and one accepted but not started: the
    other replica runs the unstarted one once and does not repeat the one that was sending
    (its outcome unknown: escalated)."""
    a = replicas("a", config(target, REDIS_URL, prefix=prefix, queue={"workers": 1,
                                                                      "visibility_timeout": "2s"})).start()
    assert a.request("POST", "/webhook", body(alert(namespace="slow-1")))[0] == 202
    until(lambda: target.count("/svc/slow/slow-1") == 1, "replica a to start the slow action")
    assert a.request("POST", "/webhook", body(alert(namespace="prod-2")))[0] == 202
    time.sleep(0.2)  # a's feeder takes the second item into its buffer; its one worker is busy
    a.kill()
    b = replicas("b", config(target, REDIS_URL, prefix=prefix)).start()
    until(lambda: target.count("/svc/act/prod-2") == 1, "replica b to take over and act")
    until(lambda: bool(events(b, name="action.outcome_unknown")), "b to refuse repeating the started action")
    time.sleep(0.5)
    assert target.count("/svc/act/prod-2") == 1
    assert target.count("/svc/slow/slow-1") == 1
    [unknown] = events(b, name="action.outcome_unknown")  # it was sending: a human is asked, not told
    assert unknown["evidence"]["marker"] == "sending"     # "its outcome is in the audit log"
    assert [r["reason"] for r in events(b, name="escalation.sent")] == ["outcome_unknown"]


def test_pending_approval_and_cooldown_survive_sigkill(
        replicas: Callable[..., Replica], target: CountingTarget, tmp_path: Path) -> None:
    """With SQLite, a pending approval and an active cooldown outlive a SIGKILL and are honoured."""
    conf = config(target, f"sqlite:///{tmp_path / 'state.db'}", guards={
        "retries": 0, "blast_radius": None, "default_cooldown": "1h"})
    first = replicas("one", conf).start()
    both = body(alert(namespace="ask-1"), alert(namespace="prod"))
    assert first.request("POST", "/webhook", both)[0] == 202
    until(lambda: target.count("/svc/act/prod") == 1 and bool(events(first, name="approval.requested")),
          "the auto action and the approval request")
    first.kill()
    second = replicas("one", conf).start()
    listed = second.cli("approvals", "list", "--json")
    [pending] = json.loads(listed.stdout)
    approved = second.cli("approvals", "approve", pending["id"])
    assert approved.returncode == 0, approved.stderr
    until(lambda: target.count("/svc/act/ask-1") == 1, "the approved action after restart")
    refire = alert(namespace="prod", starts="2026-11-23T07:00:00Z")
    assert second.request("POST", "/webhook", body(refire))[0] == 202
    until(lambda: any(r.get("reason") == "cooldown" for r in events(second, name="guard.blocked")),
          "the cooldown to hold the re-firing")
    assert target.count("/svc/act/prod") == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_unreachable_means_not_ready_503_and_no_action(
        replicas: Callable[..., Replica], target: CountingTarget, tmp_path: Path) -> None:
    """When Redis goes away: /ready fails, webhooks get 503 (resend), nothing runs; it recovers after."""
    port = _free_port()
    redis_cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(tmp_path)]
    redis_proc = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(lambda: _connects(port), "the private redis")
        r = replicas("a", config(target, f"redis://127.0.0.1:{port}/0")).start()
        assert r.request("GET", "/ready")[0] == 200
        redis_proc.send_signal(signal.SIGKILL)
        redis_proc.wait(DEADLINE)
        until(lambda: r.request("GET", "/ready")[0] == 503, "/ready to fail")
        status, answer = r.request("POST", "/webhook", body(alert(namespace="prod")))
        assert status == 503
        assert "state store unavailable" in answer["detail"]
        redis_proc = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until(lambda: r.request("GET", "/ready")[0] == 200, "/ready to recover")
        assert target.calls == []
        until(lambda: r.request("POST", "/webhook", body(alert(namespace="prod")))[0] == 202, "the resend")
        until(lambda: target.count("/svc/act/prod") == 1, "the action after recovery")
    finally:
        redis_proc.kill()
        redis_proc.wait(DEADLINE)


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
