"""Escalation policies and verify watches across restarts and replicas: in-process runtimes
on one real store.

A P1 still firing 30 minutes after it first arrived, the same P2 (rule and subject) three
times in 24 hours, and a watch that was not resolved in time are each escalated exactly
once: by one process, by the process that replaced it, and by two replicas sharing one
Redis key prefix whose housekeeping fires at the same moment. Notifiers are a real local
HTTP receiver; time is injected.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from receiver.flow.payload import parse_webhook
from receiver.flow.timers import LEASE
from receiver.runtime import Runtime
from receiver.settings import Settings
from remediations.registry import default_registry
from rules.errors import RuleLoadError
from tests.conftest import read_audit, rules_yaml
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, Target, serve_target
from tests.support.redisdb import REDIS_URL, drop_prefix
from tests.support.webhooks import alert, body


class Cluster:
    """Replicas of one service on one store; each running one has its own audit file, as
    processes do, and a restarted one continues the file its predecessor closed."""

    def __init__(self, settings: Settings, tmp: Path, clock: FakeClock) -> None:
        self.settings, self.tmp, self.clock = settings, tmp, clock
        self.running: list[Runtime] = []
        self.audits: list[Path] = []

    async def start(self) -> Runtime:
        held = {r.settings.audit for r in self.running}
        audit = next((p for p in self.audits if p not in held), self.tmp / f"audit-{len(self.audits)}.jsonl")
        if audit not in self.audits:
            self.audits.append(audit)
        settings = self.settings.model_copy(
            update={"audit_log": self.settings.audit_log.model_copy(update={"path": audit})})
        runtime = Runtime(settings, registry=default_registry(), clock=self.clock,
                          metrics_registry=CollectorRegistry())
        await runtime.start()
        self.running.append(runtime)
        return runtime

    async def stop(self, runtime: Runtime) -> None:
        self.running.remove(runtime)
        await runtime.stop()

    async def fire(self, runtime: Runtime, *alerts: dict[str, Any]) -> None:
        message, parsed = parse_webhook(body(*alerts))
        await runtime.intake.accept(message, parsed, actor="alertmanager")
        await self.settle()

    async def settle(self) -> None:
        async def idle() -> None:
            while self.running and (await self.running[0].state.backlog()
                                    or any(r.queue.unfinished for r in self.running)):
                for r in self.running:
                    await r.queue.wait_idle()
                await asyncio.sleep(0.01)

        await asyncio.wait_for(idle(), 10)
        for r in self.running:
            await r.audit.sync()

    async def tick(self) -> None:
        """Every replica's housekeeping fires its due timers at the same moment."""
        await asyncio.gather(*(r.timers.fire_due() for r in self.running))
        await self.settle()

    def records(self, event: str) -> list[dict[str, Any]]:
        return [r for path in self.audits if path.exists() for r in read_audit(path) if r["event"] == event]


@pytest.fixture(params=["sqlite", "redis"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock,
                  aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    prefix = f"test-policies-{uuid.uuid4().hex[:12]}"
    made: list[Cluster] = []

    async def build(priority: str, *, hook_statuses: tuple[int, ...] = (200,),
                    priorities: dict[str, Any] | None = None, **rule: Any) -> tuple[Cluster, Target, Target]:
        target, base = await serve_target(aiohttp_server)
        hook, hook_base = await serve_target(aiohttp_server, list(hook_statuses))
        monkeypatch.setenv("TEST_HOOK_URL", hook_base + "/hook")
        rules = tmp_path / "rules.yaml"
        rules.write_text(rules_yaml([{
            "name": "purge", "priority": priority, "approval": "auto", "cooldown": "1m",
            "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
            "actions": [{"action": "http.request", "target": "api",
                         "params": {"method": "POST", "path": "/purge/{{ labels.namespace }}"}}],
            **rule,
        }]))
        state = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else REDIS_URL
        settings = Settings.model_validate({
            "dry_run": False, "state": state, "state_prefix": prefix, "audit": str(tmp_path / "unused.jsonl"),
            "rules": [str(rules)], "targets": {"api": {"kind": "http", "base_url": base, "timeout": 2}},
            "notifiers": {"oncall": {"kind": "webhook", "url": "env:TEST_HOOK_URL"}},
            "guards": {"retries": 0, "blast_radius": None}, "priorities": priorities or {},
        })
        made.append(Cluster(settings, tmp_path, clock))
        return made[-1], target, hook

    build.kind = request.param  # type: ignore[attr-defined]
    yield build
    for c in made:
        for runtime in list(c.running):
            await c.stop(runtime)
    if request.param == "redis":
        await drop_prefix(prefix)


def titles(hook: Target) -> list[str]:
    return [c[2]["title"] for c in hook.calls]


async def test_a_p1_still_firing_after_30_minutes_escalates_once_across_a_restart(
        cluster: Any, clock: FakeClock) -> None:
    """The timer armed by the first process fires in the one that replaced it, once."""
    c, target, hook = await cluster("P1")
    first = await c.start()
    await c.fire(first, alert())
    assert len(target.calls) == 1
    clock.advance(29 * 60)
    await c.tick()
    assert hook.calls == []
    await c.stop(first)
    second = await c.start()
    clock.advance(60)
    await c.tick()
    await c.tick()
    await c.fire(second, alert())  # Alertmanager re-sends the firing: a duplicate
    clock.advance(3600)
    await c.tick()
    assert titles(hook) == ["Escalation: P1 still firing: HighErrorRate (P1)"]
    [sent] = c.records("escalation.sent")
    assert (sent["reason"], sent["priority"]) == ("p1_unresolved", "P1")
    assert sent["response_target_seconds"] == 900.0
    assert "30m after it first arrived" in sent["detail"]
    assert [t.rsplit("/svc", 1)[-1] for t in sent["tried"]] == ["/purge/prod: succeeded"]
    assert hook.calls[0][2]["dedup_key"] == sent["dedup_key"]


async def test_a_p1_resolved_in_time_is_not_escalated(cluster: Any, clock: FakeClock) -> None:
    c, _, hook = await cluster("P1")
    replica = await c.start()
    await c.fire(replica, alert())
    clock.advance(20 * 60)
    await c.fire(replica, alert(status="resolved", ends="2026-11-23T07:05:00Z"))
    clock.advance(3600)
    await c.tick()
    assert hook.calls == []
    assert c.records("escalation.sent") == []


async def test_a_p2_three_times_in_24_hours_escalates_once_across_restarts(cluster: Any,
                                                                          clock: FakeClock) -> None:
    """Three firings of one rule on one subject in 24 h (each by a new process) call for one
    root-cause review; a fourth in the window adds none; another subject counts apart."""
    c, target, hook = await cluster("P2")
    for n in range(4):
        replica = await c.start()
        await c.fire(replica, alert(starts=f"2026-11-23T0{n}:00:00.000Z"))
        await c.stop(replica)
        clock.advance(3 * 3600)
    replica = await c.start()
    await c.fire(replica, alert(namespace="staging", starts="2026-11-23T05:00:00.000Z"))
    assert len(target.calls) == 5
    assert titles(hook) == ["Escalation: recurring P2: root-cause review: HighErrorRate (P2)"]
    [sent] = c.records("escalation.sent")
    assert sent["reason"] == "p2_recurring"
    assert "3 times within 1d" in sent["detail"]
    assert hook.calls[0][2]["fields"]["subject"].endswith("/purge/prod")


async def test_a_p1_escalation_the_notifier_refused_for_now_is_sent_after_the_lease(
        cluster: Any, clock: FakeClock) -> None:
    """The notifier answers 503 to the P1 escalation: the timer is tried again after its lease."""
    c, _, hook = await cluster("P1", hook_statuses=(503, 200))
    replica = await c.start()
    await c.fire(replica, alert())
    clock.advance(1800)
    await c.tick()
    assert len(hook.calls) == 1
    assert c.records("escalation.sent") == []
    clock.advance(LEASE)
    await c.tick()
    await c.tick()
    assert titles(hook) == ["Escalation: P1 still firing: HighErrorRate (P1)"] * 2
    [sent] = c.records("escalation.sent")
    assert sent["reason"] == "p1_unresolved"


async def test_a_p2_escalation_whose_first_send_failed_is_sent_by_the_next_occurrence(
        cluster: Any, clock: FakeClock) -> None:
    """The root-cause escalation at the third occurrence meets a 503: its claim is given back,
    so the fourth occurrence in the window sends it; a fifth adds nothing."""
    c, _, hook = await cluster("P2", hook_statuses=(503, 200))
    replica = await c.start()
    for n in range(3):
        await c.fire(replica, alert(starts=f"2026-11-23T0{n}:00:00.000Z"))
        clock.advance(3600)
    assert len(hook.calls) == 1
    assert c.records("escalation.sent") == []
    assert [r["notifier"] for r in c.records("notify.failed")] == ["oncall"]
    for n in range(3, 5):
        await c.fire(replica, alert(starts=f"2026-11-23T0{n}:00:00.000Z"))
        clock.advance(3600)
    assert titles(hook) == ["Escalation: recurring P2: root-cause review: HighErrorRate (P2)"] * 2
    [sent] = c.records("escalation.sent")
    assert "4 times within 1d" in sent["detail"]


async def test_p2_occurrences_slide_out_of_the_window(cluster: Any, clock: FakeClock) -> None:
    c, _, hook = await cluster("P2")
    replica = await c.start()
    for n, gap in enumerate([0, 12, 13, 1]):  # hours: the first is forgotten before the third
        clock.advance(gap * 3600)
        await c.fire(replica, alert(starts=f"2026-11-2{3 + n // 2}T0{n}:00:00.000Z"))
    assert titles(hook) == ["Escalation: recurring P2: root-cause review: HighErrorRate (P2)"]
    assert "3 times" in c.records("escalation.sent")[0]["detail"]


@pytest.mark.parametrize("cluster", ["redis"], indirect=True)
async def test_two_replicas_escalate_a_p1_once(cluster: Any, clock: FakeClock) -> None:
    """Two live replicas share one Redis prefix; their housekeeping fires the P1 timer at the
    same moment: one escalation."""
    c, target, hook = await cluster("P1")
    a, b = await c.start(), await c.start()
    await c.fire(a, alert())
    await c.fire(b, alert())  # the same firing at the other replica: a duplicate
    clock.advance(1800)
    await c.tick()
    await c.tick()
    assert len(target.calls) == 1
    assert titles(hook) == ["Escalation: P1 still firing: HighErrorRate (P1)"]
    assert len(c.records("escalation.sent")) == 1


@pytest.mark.parametrize("cluster", ["redis"], indirect=True)
async def test_two_replicas_count_p2_together_and_escalate_once(cluster: Any, clock: FakeClock) -> None:
    """P2 firings received by either replica count together; the third and fourth arrive at
    both replicas at once: one root-cause escalation."""
    c, _, hook = await cluster("P2")
    a, b = await c.start(), await c.start()
    await c.fire(a, alert(starts="2026-11-23T00:00:00.000Z"))
    clock.advance(3600)
    await c.fire(b, alert(starts="2026-11-23T01:00:00.000Z"))
    clock.advance(3600)
    await asyncio.gather(c.fire(a, alert(starts="2026-11-23T02:00:00.000Z")),
                         c.fire(b, alert(starts="2026-11-23T02:30:00.000Z")))
    assert titles(hook) == ["Escalation: recurring P2: root-cause review: HighErrorRate (P2)"]
    assert len(c.records("escalation.sent")) == 1


async def test_a_watch_survives_a_restart_and_fails_once(cluster: Any, clock: FakeClock) -> None:
    """The verify watch armed before a restart comes due in the process that replaced it (on
    Redis: in whichever replica fires first): one verify.failed, one escalation."""
    c, target, hook = await cluster("P3", verify={"resolved_within": "10m"})
    first = await c.start()
    await c.fire(first, alert())
    await c.stop(first)
    replicas = [await c.start()] + ([await c.start()] if cluster.kind == "redis" else [])
    clock.advance(600)
    await c.tick()
    await c.tick()
    assert len(target.calls) == 1
    assert len(c.records("verify.failed")) == 1
    assert titles(hook) == ["Escalation: not resolved after remediation: HighErrorRate (P3)"]
    await c.fire(replicas[-1], alert(status="resolved", ends="2026-11-23T07:30:00Z"))
    assert [r["rung"] for r in c.records("verify.resolved_late")] == [0]


SEV = {"levels": ["SEV-1", "SEV-2", "SEV-3", "SEV-4"], "response_targets": {"SEV-1": "5m"}}


@pytest.mark.parametrize("cluster", ["sqlite"], indirect=True)
async def test_the_policies_follow_the_configured_levels_by_rank(cluster: Any, clock: FakeClock) -> None:
    """With levels SEV-1…SEV-4, ``p1_unresolved`` watches SEV-1 (the first level) and
    ``p2_recurring`` counts SEV-2 (the second); notices and records carry the names."""
    c, _, hook = await cluster("SEV-1", priorities=SEV)
    replica = await c.start()
    await c.fire(replica, alert())
    clock.advance(1800)
    await c.tick()
    assert titles(hook) == ["Escalation: SEV-1 still firing: HighErrorRate (SEV-1)"]
    assert hook.calls[0][2]["severity"] == "critical"
    [sent] = c.records("escalation.sent")
    assert (sent["reason"], sent["priority"]) == ("p1_unresolved", "SEV-1")
    assert sent["response_target_seconds"] == 300.0
    assert sent["detail"].startswith("SEV-1 alert HighErrorRate is still firing 30m after")


@pytest.mark.parametrize("cluster", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("priority", "escalated"), [("SEV-2", True), ("SEV-3", False), ("P2", False)])
async def test_p2_recurring_counts_the_second_level(cluster: Any, clock: FakeClock, priority: str,
                                                   escalated: bool) -> None:
    """The root-cause review is for the second level: SEV-2 here; SEV-3 is never escalated,
    and a rule naming P2 is not even loaded (P2 is not one of the levels)."""
    if priority == "P2":
        c, _, _ = await cluster(priority, priorities=SEV)
        with pytest.raises(RuleLoadError, match="unknown priority level 'P2'"):
            await c.start()
        return
    c, _, hook = await cluster(priority, priorities=SEV)
    replica = await c.start()
    for n in range(3):
        await c.fire(replica, alert(starts=f"2026-11-23T0{n}:00:00.000Z"))
        clock.advance(3600)
    assert titles(hook) == (["Escalation: recurring SEV-2: root-cause review: HighErrorRate (SEV-2)"]
                            if escalated else [])
    assert [r["priority"] for r in c.records("rule.matched")] == [priority] * 3
