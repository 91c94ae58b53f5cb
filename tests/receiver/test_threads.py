"""Whose threads: the audit log's fsync on a thread of its own, actions' SDK calls on a bounded pool.

``remediations.blocking.BlockingCalls`` is what ``receiver.runtime`` builds once per process
(``queue.sdk_threads``) and hands to every action through ``ActionContext.calls``; the
audit log (``receiver.audit.log``) commits on its own one thread. Neither uses asyncio's
default executor, so a slow backend holding every SDK thread (or anything holding the
default executor) never delays a 202. These tests hold threads for real (an ``Event`` a
blocked callable waits on, a fake API server that does not answer) and look at what
happens meanwhile; no timing is mocked. The bounds (5 s) are generous against the 30 s
hang, so they fail only when the arrangement is wrong.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from receiver.audit import AuditEvent, AuditLog
from remediations.base import ActionContext, TemporaryError
from remediations.blocking import BlockingCalls
from remediations.kubernetes.rollout import KubernetesRolloutRestart
from remediations.targets import KubernetesTarget
from tests.conftest import HIGH_CPU_BODY, HIGH_CPU_RULES, JSON_HEADERS, ClientFactory, read_audit, runtime_of
from tests.remediations.test_kubernetes import alert, free_port, kubeconfig_text
from tests.support.kubeapi import FakeKube
from tests.support.paths import REPO

HANG = 30.0  # how long a blocked callable would wait if nothing released it
PROMPT = 5.0  # what "promptly" means here: far below the hang, far above a loaded machine's fsync


def blocker(gate: threading.Event) -> None:
    gate.wait(HANG)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What every blocked thread waits on; set at teardown so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
async def block_default(gate: threading.Event) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Call it to give the loop a default executor (what ``asyncio.to_thread`` uses) of one thread,
    and hold that thread until the test ends."""
    loop = asyncio.get_running_loop()
    default = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-default")
    held: list[asyncio.Future[None]] = []

    async def block() -> None:
        started = asyncio.Event()

        def holding() -> None:
            loop.call_soon_threadsafe(started.set)
            blocker(gate)

        loop.set_default_executor(default)
        held.append(loop.run_in_executor(None, holding))
        await asyncio.wait_for(started.wait(), 5)

    yield block
    gate.set()
    await asyncio.gather(*held)
    default.shutdown(wait=True)


@pytest.fixture
async def default_blocked(block_default: Callable[[], Awaitable[None]]) -> None:
    """The loop's default executor with its one thread held from the start of the test."""
    await block_default()


async def test_the_default_executor_is_really_blocked(default_blocked: None) -> None:
    """The condition the other tests rely on: what ``asyncio.to_thread`` runs does not start."""
    ran = threading.Event()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await asyncio.to_thread(ran.set)
    assert not ran.is_set()


async def test_kubernetes_calls_take_the_contexts_pool_and_no_more(
        default_blocked: None, aiohttp_server: Any, tmp_path: Path) -> None:
    """Three plans against an API server that hangs: exactly the pool's two threads reach it (the
    third waits in the pool), while the default executor is blocked all along."""
    fake = FakeKube()
    fake.add_deployment("prod", "web")
    for _ in range(3):
        fake.hang_next(method="GET")
    server = await aiohttp_server(fake.app())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text(server.port, free_port()))
    target = KubernetesTarget(kind="kubernetes", kubeconfig=str(kubeconfig), namespaces=["prod"])
    calls = BlockingCalls(2, name="test-sdk")
    action = KubernetesRolloutRestart(request_timeout=HANG)
    ctx = ActionContext(decision_id="d", rule="r", alert=alert(), target_name="c", target=target,
                        dry_run=True, calls=calls)
    params = action.parse_params({"namespace": "prod", "deployment": "web"})
    plans = [asyncio.create_task(action.plan(ctx, params)) for _ in range(3)]
    try:
        for _ in range(200):  # up to 10 s
            if len(fake.requests) >= 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # room for a third request, were there a third thread
        assert [r.method for r in fake.requests] == ["GET", "GET"]
        assert not any(p.done() for p in plans)
    finally:
        fake.release()  # the two hanging requests are answered 504: temporary errors
        results = await asyncio.wait_for(asyncio.gather(*plans, return_exceptions=True), 20)
        calls.close()
        action.close()
    assert sum(isinstance(r, TemporaryError) for r in results) >= 2


async def test_a_call_waiting_for_a_full_pool_gives_up_at_its_timeout(gate: threading.Event) -> None:
    """Queued behind a blocked thread, a call is bounded by its caller's timeout and then never runs."""
    calls = BlockingCalls(1, name="test-sdk")
    started = threading.Event()

    def holding() -> None:
        started.set()
        blocker(gate)

    held = asyncio.ensure_future(calls.run(holding))
    assert await asyncio.to_thread(started.wait, 5)  # the pool's one thread is taken
    ran = threading.Event()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await calls.run(ran.set)
    gate.set()
    await held
    assert await calls.run(lambda: 42) == 42  # the thread is free again
    calls.close()
    assert not ran.is_set()


def test_remediations_never_use_the_default_executor() -> None:
    """Every blocking call of an action goes through ``ctx.calls``: nothing under remediations/
    reaches asyncio's default executor (``asyncio.to_thread``, ``run_in_executor(None, …)``)."""
    found = {str(path.relative_to(REPO)): hits for path in sorted((REPO / "remediations").rglob("*.py"))
             if (hits := re.findall(r"to_thread\(|run_in_executor\(\s*None", path.read_text()))}
    assert found == {}


async def test_audit_sync_does_not_wait_for_the_default_executor(default_blocked: None,
                                                                 tmp_path: Path) -> None:
    """The fsync runs on the log's own thread: with the default executor blocked, sync returns."""
    log = AuditLog(tmp_path / "audit.jsonl")
    try:
        log.record(AuditEvent.ADMIN_STARTED, rules=0)
        async with asyncio.timeout(PROMPT):
            await log.sync()
        assert log.pending == 0
    finally:
        async with asyncio.timeout(PROMPT):
            await log.close()
    assert [r["event"] for r in read_audit(tmp_path / "audit.jsonl")] == ["admin.started"]


async def test_a_webhook_is_answered_while_every_sdk_thread_is_held(
        block_default: Callable[[], Awaitable[None]], gate: threading.Event, make_client: ClientFactory,
        make_settings: Any) -> None:
    """Every thread of the service's SDK pool held (through the pool the actions are given) and the
    default executor held too, as a hung cluster held it when actions used ``asyncio.to_thread``:
    POST /webhook is still answered 202, its records durable, within 5 s."""
    client = await make_client(make_settings(rules=HIGH_CPU_RULES, queue={"sdk_threads": 2}))
    runtime = runtime_of(client)
    await block_default()
    loop = asyncio.get_running_loop()
    started: asyncio.Queue[None] = asyncio.Queue()

    def holding() -> None:
        loop.call_soon_threadsafe(started.put_nowait, None)
        blocker(gate)

    held = [asyncio.ensure_future(runtime.calls.run(holding)) for _ in range(runtime.calls.threads)]
    try:
        for _ in held:
            await asyncio.wait_for(started.get(), 5)
        async with asyncio.timeout(PROMPT):
            response = await client.post("/webhook", data=HIGH_CPU_BODY, headers=JSON_HEADERS)
        assert response.status == 202
        events = [r["event"] for r in read_audit(runtime.settings.audit_log.path)]
        assert events.count("alert.received") == 2
    finally:
        gate.set()
        await asyncio.gather(*held)
