"""Transient guards defer accepted work (``receiver.flow.deferral``), through the real app, a real
SQLite store and a real local HTTP target, on an injected clock.

An open circuit or a held lock sends a decision back to wait in the store; it comes back when the
circuit half-opens (one trial) or after a doubling delay, meets every guard again, and runs once
if its alert still fires; past ``guards.defer``'s bound it is escalated, never dropped silently.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from receiver.runtime import Runtime
from tests.conftest import ClientFactory, read_audit, runtime_of
from tests.receiver.flow.guards.test_guards import fire, guard_settings, starts
from tests.support.approvals import TOKENS, approval_settings, decide, pending
from tests.support.approvals import fire as approvals_fire
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, serve_target
from tests.support.webhooks import alert, body

JSON = {"Content-Type": "application/json"}


async def settle(runtime: Runtime, clock: FakeClock) -> None:
    """Until nothing is queued, in flight or deferred, moving the clock to each deferral's time
    (bounded in real time: the feeder queues due work again within about a second)."""
    async def loop() -> None:
        while True:
            waiting = await runtime.state.deferred()
            busy = await runtime.state.backlog() or runtime.queue.unfinished
            if not waiting and not busy:
                return
            if waiting and not busy and waiting[0][1] > clock.now():
                clock.advance(waiting[0][1] - clock.now())
            await asyncio.sleep(0.05)
    await asyncio.wait_for(loop(), 20)


def events(settings: Any, name: str) -> list[dict[str, Any]]:
    return [r for r in read_audit(settings.audit) if r["event"] == name]


def paths(target: Any) -> list[str]:
    return [call[1].rsplit("/", 1)[-1] for call in target.calls]


async def test_work_held_by_an_open_circuit_runs_once_after_it_closes(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """Two failures open the circuit; the three firings after it wait; at the half-open one trial
    fails (re-opened, not escalated again), the next trial succeeds and the last one follows:
    every firing reached the target exactly once, one escalation for the one outage."""
    target, base = await serve_target(aiohttp_server, [500, 500, 500, 200])
    settings = guard_settings(make_settings, base,
                              guards={"circuit_breaker": {"failures": 2, "cooloff": "30m"}})
    client = await make_client(settings)
    runtime = runtime_of(client)
    for ns in "ab":
        await fire(client, alert(namespace=ns))
    for ns in "cde":
        await fire(client, alert(namespace=ns))
    assert paths(target) == ["a", "b"]
    assert [at - clock.now() for _, at in await runtime.state.deferred()] == [1800.0] * 3
    await settle(runtime, clock)
    assert sorted(paths(target)) == ["a", "b", "c", "d", "e"]
    assert [r["reason"] for r in events(settings, "escalation.sent")] == ["circuit_open"]
    assert [(r["failures"], r["streak_start"]) for r in events(settings, "circuit.opened")] == [
        (2, True), (3, False)]
    assert events(settings, "guard.blocked") == []
    assert {r["reason"] for r in events(settings, "guard.deferred")} <= {"circuit_open", "circuit_trial"}
    assert len(events(settings, "action.succeeded")) == 2


async def test_deferred_work_whose_alert_resolved_does_not_run(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """The resolution arrives while the firing waits behind the open circuit: when it comes back
    it ends guard.blocked alert_resolved, audited, and nothing reaches the target."""
    target, base = await serve_target(aiohttp_server, [500])
    settings = guard_settings(make_settings, base,
                              guards={"circuit_breaker": {"failures": 1, "cooloff": "5m"}})
    client = await make_client(settings)
    runtime = runtime_of(client)
    await fire(client, alert(namespace="a"))
    await fire(client, alert(namespace="b", starts=starts(1)))
    resolved = alert(namespace="b", starts=starts(1), status="resolved", ends=starts(2))
    assert (await client.post("/webhook", data=body(resolved), headers=JSON)).status == 202
    await settle(runtime, clock)
    assert paths(target) == ["a"]
    [blocked] = events(settings, "guard.blocked")
    assert (blocked["guard"], blocked["reason"]) == ("circuit_breaker", "alert_resolved")
    assert blocked["fingerprint"] == resolved["fingerprint"]


async def test_work_that_waits_past_its_bound_is_escalated_not_dropped(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """``guards.defer.max_wait`` shorter than the cool-off: the firing comes back at the bound,
    still blocked, and ends ``defer_exhausted`` with an escalation naming it."""
    target, base = await serve_target(aiohttp_server, [500])
    settings = guard_settings(make_settings, base, guards={
        "circuit_breaker": {"failures": 1, "cooloff": "30m"}, "defer": {"max_wait": "10m"}})
    client = await make_client(settings)
    runtime = runtime_of(client)
    await fire(client, alert(namespace="a"))
    await fire(client, alert(namespace="b"))
    assert [at - clock.now() for _, at in await runtime.state.deferred()] == [600.0]
    await settle(runtime, clock)
    assert paths(target) == ["a"]
    [blocked] = events(settings, "guard.blocked")
    assert (blocked["reason"], blocked["waited_for"]) == ("defer_exhausted", "circuit_open")
    assert blocked["deferrals"] == 1
    assert [r["reason"] for r in events(settings, "escalation.sent")] == ["circuit_open", "defer_exhausted"]


async def test_a_burst_on_one_subject_runs_in_turn(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """Twenty firings for one subject at once (no cooldown): the lock lets one act at a time and
    the others wait their turn; all twenty run, none is dropped target_locked."""
    target, base = await serve_target(aiohttp_server, delay=0.02)
    settings = guard_settings(make_settings, base, rule={"cooldown": "0s"})
    client = await make_client(settings)
    runtime = runtime_of(client)
    firings = [alert(starts=f"2026-11-23T06:{n:02d}:00Z") for n in range(20)]
    resp = await client.post("/webhook", data=body(*firings), headers=JSON)
    assert (await resp.json())["queued"] == 20
    await settle(runtime, clock)
    assert len(target.calls) == 20
    assert events(settings, "guard.blocked") == []
    assert len(events(settings, "action.succeeded")) == 20
    deferred = events(settings, "guard.deferred")
    assert {(r["reason"], r["waits_for"]) for r in deferred} == {
        ("target_locked", "lock:api/POST /cache/prod")}
    counted = runtime.metrics.registry.get_sample_value(
        "remediator_deferrals_total", {"guard": "target_lock", "reason": "target_locked"})
    assert counted == len(deferred)


async def test_an_approved_plan_held_by_a_lock_waits_and_runs_once(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock, aiohttp_server: ServerFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A human approved it: a held lock does not throw the approval away. The plan waits
    (deferred with the approval's decision and alert) and runs once the lock is free; Slack and
    the console hear how it ended then, not before."""
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    target, base = await serve_target(aiohttp_server)
    settings = approval_settings(make_settings, base)
    client = await make_client(settings)
    runtime = runtime_of(client)
    await approvals_fire(client, alert())
    [approval] = await pending(client)
    token = await runtime.state.acquire_lock("api/POST /purge/prod", "another-replica", ttl=600)
    assert token is not None
    status, _ = await decide(client, approval["id"], "approve")
    assert status == 200
    assert target.calls == []
    [deferred] = events(settings, "guard.deferred")
    assert (deferred["decision"], deferred["reason"]) == (approval["decision"], "target_locked")
    await runtime.state.release_lock("api/POST /purge/prod", token)
    await settle(runtime, clock)
    assert [c[1] for c in target.calls] == ["/svc/purge/prod"]
    assert [r["reason"] for r in events(settings, "guard.blocked")] == ["approval_required"]
    assert [r["event"] for r in read_audit(settings.audit)].count("action.succeeded") == 1


async def test_a_rule_answering_the_resolution_still_runs_after_waiting(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """A ``status: resolved`` rule acts on the resolution itself: its firing's resolved marker does
    not end its deferred decision (only a firing's decision is ended by its alert resolving)."""
    target, base = await serve_target(aiohttp_server)
    settings = guard_settings(make_settings, base, rule={"status": "resolved"})
    client = await make_client(settings)
    runtime = runtime_of(client)
    token = await runtime.state.acquire_lock("api/POST /cache/prod", "another-replica", ttl=600)
    assert token is not None
    await fire(client, alert(status="resolved", ends=starts(30)))
    assert [r["reason"] for r in events(settings, "guard.deferred")] == ["target_locked"]
    await runtime.state.release_lock("api/POST /cache/prod", token)
    await settle(runtime, clock)
    assert paths(target) == ["prod"]
    assert events(settings, "guard.blocked") == []
