"""``celery.inspect`` and ``celery.purge`` against a real ``celery worker`` and the local Redis broker.

Each test has its own key prefix (kombu's ``global_keyprefix``), control exchange, queue
and worker name, so tests running at once never meet; the worker is started and stopped
by PID (tests.support.celeryworker) and the test's keys are deleted at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from remediations.base import ActionContext, InvalidParams, PermanentError, TargetNotAllowed, TemporaryError
from remediations.celery.inspect import CeleryInspect
from remediations.celery.purge import CeleryPurge
from remediations.targets import CeleryTarget
from rules.alert import Alert
from tests.support.celeryworker import Worker, client_app, start_worker, stop_worker
from tests.support.redisdb import REDIS_URL, drop_prefix
from tests.support.sdkpool import SDK_CALLS

ALERT = Alert(fingerprint="f", status="firing", labels={"alertname": "CeleryQueueBacklog"}, annotations={},
              starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z")


@dataclass
class Broker:
    prefix: str  # kombu's global_keyprefix; the test's keys all start with it
    exchange: str
    queue: str  # what the worker consumes
    idle: str  # a queue no worker consumes: where a backlog waits
    target: CeleryTarget

    def ctx(self, target: CeleryTarget | None = None) -> ActionContext:
        return ActionContext(calls=SDK_CALLS, decision_id="d", rule="r", alert=ALERT, target_name="celery",
                             target=target or self.target, dry_run=False)

    def send(self, queue: str, count: int, seconds: float = 0.0) -> None:
        app = client_app(REDIS_URL, self.prefix, self.exchange)
        try:
            for _ in range(count):
                app.send_task("tests.sleepy", args=[seconds], queue=queue)
        finally:
            app.close()

    def length(self, queue: str) -> int:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            length: int = client.llen(f"{self.prefix}{queue}")  # type: ignore[assignment]
            return length
        finally:
            client.close()


@pytest.fixture
async def broker(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Broker]:
    tag = uuid.uuid4().hex[:10]
    monkeypatch.setenv("RT_CELERY_BROKER_URL", REDIS_URL)
    target = CeleryTarget.model_validate({
        "kind": "celery", "broker": "env:RT_CELERY_BROKER_URL", "queues": [f"work-{tag}", f"reports-{tag}"],
        "control_exchange": f"rt{tag}", "global_keyprefix": f"rtcel{tag}:", "timeout": 1.0})
    yield Broker(f"rtcel{tag}:", f"rt{tag}", f"work-{tag}", f"reports-{tag}", target)
    await drop_prefix(f"rtcel{tag}")


@pytest.fixture
def worker(broker: Broker, tmp_path: Path) -> Iterator[Worker]:
    started = start_worker(broker=REDIS_URL, prefix=broker.prefix, exchange=broker.exchange,
                           queue=broker.queue, name=f"w1@{broker.exchange}", log=tmp_path / "worker.log")
    yield started
    stop_worker(started)


@pytest.fixture
def inspect() -> Iterator[CeleryInspect]:
    action = CeleryInspect()
    yield action
    action.close()


@pytest.fixture
def purge() -> Iterator[CeleryPurge]:
    action = CeleryPurge()
    yield action
    action.close()


async def run(action: Any, ctx: ActionContext, raw: dict[str, Any]) -> Any:
    params = action.parse_params(raw)
    action.check_allowed(ctx, params)
    plan = await action.plan(ctx, params)
    return plan, await action.execute(ctx, params, plan)


def wait_for(check: Any, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds}s")
        time.sleep(0.1)


async def test_inspect_reports_ping_active_reserved_and_queue_lengths(
        broker: Broker, worker: Worker, inspect: CeleryInspect) -> None:
    """One task running, three held, two waiting where no worker listens: as celery inspect shows them."""
    broker.send(broker.queue, 4, seconds=15)
    broker.send(broker.idle, 2)
    wait_for(lambda: broker.length(broker.queue) == 0, "the worker taking its tasks")
    plan, result = await run(inspect, broker.ctx(), {})
    assert plan.steps[0] == ("broadcast ping, active and reserved to every worker through the "
                             f"{broker.exchange} control exchange; wait 1.0s for replies")
    assert not plan.destructive
    found = result.details
    assert found["answered"] == [worker.name]
    assert found["silent"] == []
    mine = found["workers"][worker.name]
    assert (mine["active_count"], mine["reserved_count"]) == (1, 3)
    assert mine["active"][0]["name"] == "tests.sleepy"
    assert "args" not in mine["active"][0]
    assert found["queues"] == {broker.queue: 0, broker.idle: 2}
    assert result.summary == (f"1 worker(s) answered; {worker.name}: 1 active, 3 reserved; "
                              f"queues: {broker.queue} 0, {broker.idle} 2")


async def test_inspect_names_the_workers_that_did_not_answer(
        broker: Broker, worker: Worker, inspect: CeleryInspect) -> None:
    """A hung or dead worker is silent: named, so the rule that restarts it has its evidence."""
    raw = {"workers": [worker.name, f"gone@{broker.exchange}"], "queues": [broker.queue], "timeout": 0.5}
    _, result = await run(inspect, broker.ctx(), raw)
    assert result.details["answered"] == [worker.name]
    assert result.details["silent"] == [f"gone@{broker.exchange}"]
    assert result.summary.startswith(f"1 worker(s) answered, 1 did not (gone@{broker.exchange})")


async def test_purge_empties_one_named_queue_and_nothing_else(broker: Broker, purge: CeleryPurge) -> None:
    """queue.purge of the backlog queue: its messages gone, the other queue untouched; approval always."""
    broker.send(broker.idle, 5)
    broker.send(broker.queue, 2)
    assert (purge.destructive, purge.approval_always) == (True, True)
    plan, result = await run(purge, broker.ctx(), {"queue": broker.idle, "max_messages": 10})
    assert plan.steps[0].startswith(f"purge queue {broker.idle}: delete its 5 waiting message(s)")
    assert plan.details["messages"] == 5
    assert result.summary == f"purged 5 message(s) from queue {broker.idle} (planned 5)"
    assert (broker.length(broker.idle), broker.length(broker.queue)) == (0, 2)
    _, again = await run(purge, broker.ctx(), {"queue": broker.idle})
    assert again.summary == f"queue {broker.idle} was empty; nothing purged"


async def test_purge_is_bounded_and_kept_to_the_targets_queues(broker: Broker, purge: CeleryPurge) -> None:
    broker.send(broker.idle, 3)
    with pytest.raises(PermanentError, match="holds 3 messages, more than max_messages=2; nothing"):
        await run(purge, broker.ctx(), {"queue": broker.idle, "max_messages": 2})
    with pytest.raises(TargetNotAllowed, match="not in the queues of target 'celery'"):
        await run(purge, broker.ctx(), {"queue": "celery"})
    assert broker.length(broker.idle) == 3


async def test_an_unreachable_broker_is_temporary_and_its_url_stays_secret(
        broker: Broker, purge: CeleryPurge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RT_CELERY_DEAD", "redis://:s3cret@127.0.0.1:1/0")
    dead = broker.target.model_copy(update={"broker": CeleryTarget.model_validate(
        {"kind": "celery", "broker": "env:RT_CELERY_DEAD", "queues": ["q"]}).broker})
    with pytest.raises(TemporaryError) as caught:
        await run(purge, broker.ctx(dead), {"queue": broker.idle})
    assert caught.value.nothing_sent
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("action", "raw", "field"), [
    pytest.param(CeleryPurge, {"queue": "a b"}, "queue", id="queue-space"),
    pytest.param(CeleryPurge, {"queue": "*"}, "queue", id="queue-wildcard"),
    pytest.param(CeleryPurge, {"queue": "q", "max_messages": 0}, "max_messages", id="max-zero"),
    pytest.param(CeleryPurge, {}, "queue", id="queue-required"),
    pytest.param(CeleryInspect, {"timeout": 11}, "timeout", id="timeout-too-long"),
    pytest.param(CeleryInspect, {"workers": ["a b"]}, "workers", id="worker-name"),
    pytest.param(CeleryInspect, {"workers": []}, "workers", id="workers-empty"),
    pytest.param(CeleryInspect, {"verbose": True}, "verbose", id="unknown"),
])
def test_params_are_strict(action: type[Any], raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=rf"{action.name}: {field}"):
        action().parse_params(raw)
