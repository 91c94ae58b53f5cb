"""The completer: finished work is removed from the store, retried until the store confirms, never
run again; a process takes up its own items nothing in it holds.

Through the real app (SQLite store, a live HTTP target) where the flow matters, and the
``Completer`` alone for its backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from receiver.audit import AuditLog
from receiver.decisions import CompletionFailure
from receiver.errors import StateError
from receiver.flow import completer as completer_module
from receiver.flow.completer import Completer
from receiver.flow.workqueue import WorkQueue
from receiver.store.sqlite.store import SqliteStateStore
from receiver.store.values import WorkItem
from tests.conftest import ClientFactory, fixture_body, read_audit, runtime_of
from tests.receiver.flow.test_workers import live_settings, target  # noqa: F401 - the fixture
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import Target


def sample(runtime: Any, name: str, **labels: str) -> float | None:
    value: float | None = runtime.metrics.registry.get_sample_value(name, labels)
    return value


@pytest.mark.parametrize(("fails", "hang", "reason"), [
    pytest.param(1, False, "state_unavailable", id="once"),
    pytest.param(3, False, "state_unavailable", id="three-times"),
    pytest.param(2, True, "timeout", id="no-answer"),
])
async def test_a_failing_completion_is_retried_and_the_item_runs_once(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str],  # noqa: F811
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch, fails: int, hang: bool, reason: str) -> None:
    """``state.complete`` fails N times, then succeeds: the item is completed, its action sent once,
    the backlog back to 0; while it fails the item is held here (the gauge shows it) and not taken
    up again as an orphan, however long it waits."""
    monkeypatch.setattr(completer_module, "FIRST_RETRY", 0.02)
    monkeypatch.setattr(completer_module, "ATTEMPT_TIMEOUT", 0.1)
    t, base = target
    settings = live_settings(make_settings, base)
    client = await make_client(settings)
    runtime = runtime_of(client)
    real_complete = runtime.state.complete
    attempts: list[int] = []
    seen_while_failing: list[tuple[float | None, list[WorkItem]]] = []

    async def flaky(refs: Sequence[str]) -> None:
        attempts.append(len(refs))
        if len(attempts) > fails:
            await real_complete(refs)
            return
        clock.advance(600)  # far past every idle time: still not an orphan, it is held
        seen_while_failing.append((sample(runtime, "remediator_completions_pending"),
                                   await runtime.feeder.resume_own()))
        if hang:
            await asyncio.sleep(10)
        raise StateError("state database: disk I/O error")

    monkeypatch.setattr(runtime.state, "complete", flaky)
    resp = await client.post("/webhook", data=fixture_body("04_firing_single_HighErrorRate"),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 202
    await asyncio.wait_for(runtime.queue.wait_idle(), 10)
    assert attempts == [1] * (fails + 1)
    assert seen_while_failing == [(1.0, [])] * fails
    assert len(t.calls) == 1
    assert await runtime.state.backlog() == 0
    assert sample(runtime, "remediator_completions_pending") == 0
    assert sample(runtime, "remediator_completion_failures_total", reason=reason) == fails
    assert runtime.completer.failures == 0
    await runtime.audit.sync()
    events = [r["event"] for r in read_audit(settings.audit)]
    assert events.count("action.started") == 1
    assert "decision.resumed" not in events


async def test_own_work_nothing_holds_is_taken_up_and_not_repeated(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str],  # noqa: F811
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """An item this process acted on whose removal was lost (the store answered, the delete did not
    last) stays in this consumer's pending list with nothing here holding it: once untouched for 3
    heartbeats it is taken up again, ends at once (its execute-once marker: done, already_done), and
    is completed; the action is not sent again."""
    t, base = target
    settings = live_settings(make_settings, base)
    client = await make_client(settings)
    runtime = runtime_of(client)
    real_complete = runtime.state.complete
    lost: list[Sequence[str]] = []

    async def lost_once(refs: Sequence[str]) -> None:
        if not lost:
            lost.append(refs)
            return
        await real_complete(refs)

    monkeypatch.setattr(runtime.state, "complete", lost_once)
    resp = await client.post("/webhook", data=fixture_body("04_firing_single_HighErrorRate"),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 202
    await asyncio.wait_for(runtime.queue.wait_idle(), 10)
    assert (len(t.calls), await runtime.state.backlog(), runtime.queue.unfinished) == (1, 1, 0)
    assert await runtime.feeder.resume_own() == []  # not before 3 heartbeats untouched
    clock.advance(3 * settings.queue.heartbeat.total_seconds())
    (again,) = await runtime.feeder.resume_own()
    assert again.deliveries == 2
    await asyncio.wait_for(runtime.queue.wait_idle(), 10)
    assert (len(t.calls), await runtime.state.backlog()) == (1, 0)
    assert sample(runtime, "remediator_work_reclaimed_total", whose="own") == 1
    await runtime.audit.sync()
    records = read_audit(settings.audit)
    assert [r["event"] for r in records].count("action.started") == 1
    assert [(r["reason"], r["outcome"]) for r in records if r["event"] == "action.skipped"] == [
        ("already_done", "succeeded")]
    assert [r["deliveries"] for r in records if r["event"] == "decision.resumed"] == [2]


async def test_backoff_doubles_up_to_the_cap(tmp_path: Path, clock: FakeClock) -> None:
    """Tries are spaced 0.5, 1, 2 … 30 s; each failure is counted with its reason; one success ends it."""
    store = SqliteStateStore(tmp_path / "state.db", clock=clock)
    await store.open()
    audit = AuditLog(tmp_path / "audit.jsonl", clock=clock.now)
    queue = WorkQueue(4)
    await store.enqueue([WorkItem(id="d1", payload={})], ttl=60, max_backlog=10)
    (item,) = await store.take("me", 1, block=0)
    await queue.put([item])
    await queue.get()
    failures: list[CompletionFailure] = []
    waits: list[float] = []
    real_complete = store.complete

    async def flaky(refs: Sequence[str]) -> None:
        if len(failures) < 9:
            raise StateError("no")
        await real_complete(refs)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    store.complete = flaky  # type: ignore[method-assign]
    completer = Completer(store=store, audit=audit, queue=queue, on_failure=failures.append, sleep=sleep)
    completer.start()
    completer.finished(item)
    await asyncio.wait_for(queue.wait_idle(), 5)
    await completer.stop()
    assert waits == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert failures == [CompletionFailure.STATE_UNAVAILABLE] * 9
    assert (completer.pending, await store.backlog()) == (0, 0)
    await audit.close()
    await store.close()
