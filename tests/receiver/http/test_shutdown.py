"""Graceful shutdown: intake stops (503), running work finishes, unfinished work is resumed at restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from receiver.http.app import create_app
from receiver.http.keys import RUNTIME
from remediations.notify.actions import NotifyLog
from remediations.registry import Registry
from tests.conftest import HIGH_CPU_RULES, fixture_body, read_audit, rules_yaml
from tests.support.fakeclock import FakeClock

ServerFactory = Callable[..., Awaitable[TestServer]]


class Gate:
    """A real HTTP target whose answers wait until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.arrived = asyncio.Event()
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.arrived.set()
        await self.open.wait()
        return web.json_response({})


async def gated_app(
    aiohttp_server: ServerFactory, make_settings: Any, **settings: Any
) -> tuple[Gate, web.Application]:
    gate = Gate()
    target = web.Application()
    target.router.add_post("/hook", gate.handle)
    server = await aiohttp_server(target)
    rules = rules_yaml([{
        "name": "per-alert", "match": ['alertname = "HighCPU"', 'instance =~ ".+"'], "approval": "auto",
        "actions": [{"action": "http.request", "target": "t",
                     "params": {"path": "/hook?instance={{ labels.instance }}"}}],
    }])
    conf = make_settings(rules=rules, dry_run=False,
                         targets={"t": {"kind": "http", "base_url": str(server.make_url("/")).rstrip("/")}},
                         **settings)
    app = create_app(conf, clock=FakeClock(), metrics_registry=CollectorRegistry())
    return gate, app


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def post(url: str) -> int:
    async with ClientSession() as session, session.post(
        url + "/webhook", data=fixture_body("01_firing_group_HighCPU_2_alerts"),
        headers={"Content-Type": "application/json"},
    ) as resp:
        return resp.status


async def test_running_work_finishes_and_new_webhooks_get_503(
        aiohttp_server: ServerFactory, make_settings: Any) -> None:
    """During shutdown intake answers 503, and the action in flight completes and is audited."""
    gate, app = await gated_app(aiohttp_server, make_settings, queue={"size": 10, "workers": 4})
    runner, url = await start(app)
    assert await post(url) == 202
    await asyncio.wait_for(gate.arrived.wait(), 5)
    runtime = app[RUNTIME]
    runtime.begin_drain()
    assert await post(url) == 503
    stopping = asyncio.create_task(runner.cleanup())
    await asyncio.sleep(0)
    gate.open.set()
    await asyncio.wait_for(stopping, 10)
    events = [r["event"] for r in read_audit(runtime.settings.audit)]
    assert events.count("action.succeeded") == 2
    assert events[-1] == "admin.stopped"


async def test_unfinished_work_is_resumed_once_after_restart(
        aiohttp_server: ServerFactory, make_settings: Any) -> None:
    """Work not finished by the drain deadline stays queued; the next process runs what had not
    started, never repeats the step that was sending (it asks a human: its outcome is unknown),
    and treats Alertmanager's re-send as a duplicate."""
    gate, app = await gated_app(aiohttp_server, make_settings, queue={"size": 10, "workers": 1},
                                drain_timeout="0")
    runner, url = await start(app)
    assert await post(url) == 202
    await asyncio.wait_for(gate.arrived.wait(), 5)
    runtime = app[RUNTIME]
    await runner.cleanup()
    records = read_audit(runtime.settings.audit)
    assert [r["reason"] for r in records if r["event"] == "decision.failed"] == ["shutdown"]
    assert gate.calls == 1
    gate.open.set()
    gate2, again = await gated_app(aiohttp_server, make_settings, queue={"size": 10, "workers": 1})
    gate2.open.set()
    runner2, url2 = await start(again)
    try:
        await asyncio.wait_for(again[RUNTIME].queue.wait_idle(), 5)  # start-up queued both
        assert len(_events(runtime, "decision.resumed")) == 2
        assert await post(url2) == 202
        await asyncio.wait_for(again[RUNTIME].queue.wait_idle(), 5)
    finally:
        await runner2.cleanup()
    assert gate2.calls == 1  # only the decision that had not started runs
    # the one that was sending when shutdown cut it: its outcome is unknown, and a human is asked
    [unknown] = _events(runtime, "action.outcome_unknown")
    assert unknown["evidence"]["marker"] == "sending"
    assert unknown["evidence"]["read_back"] is None  # http.request cannot read its target back
    escalated = _events(runtime, "escalation.sent")
    assert [(e["reason"], e["decision"]) for e in escalated] == [("outcome_unknown", unknown["decision"])]
    duplicates = [r for r in read_audit(runtime.settings.audit)
                  if r["event"] == "guard.blocked" and r.get("reason") == "duplicate"]
    assert len(duplicates) == 2  # both firings were accepted before; the re-send adds nothing


def _events(runtime: Any, name: str) -> list[dict[str, Any]]:
    return [r for r in read_audit(runtime.settings.audit) if r["event"] == name]



async def test_stopping_closes_the_actions_clients(make_settings: Any) -> None:
    """The runtime's stop closes every action's cached clients (connection pools, sockets)."""
    closed: list[str] = []

    class Closing(NotifyLog):
        def close(self) -> None:
            closed.append(self.name)

    app = create_app(make_settings(rules=HIGH_CPU_RULES), registry=Registry([Closing()]), clock=FakeClock(),
                     metrics_registry=CollectorRegistry())
    runner, _ = await start(app)
    await runner.cleanup()
    assert closed == ["notify.log"]
