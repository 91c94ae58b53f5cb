"""remediator watching itself (``receiver.http.selfwatch``): the gauges ``/metrics`` carries,
read from the real state store at scrape time, with the clock moved by hand.

Table-driven over both stores: a pause and its reason, pending approvals with the
oldest one's age and those past their TTL, a target's open circuit, the deferred work, the
backlog and its oldest item's age. Then through HTTP: a healthy service reports ready, store and audit
up; one whose Redis does not answer reports them down; a notifier that refuses a notice
is counted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from receiver.http.selfwatch import refresh
from receiver.runtime import Runtime
from receiver.settings import Settings, settings_from_mapping
from receiver.store.values import Approval, ApprovalStatus, Pause, WorkItem
from remediations.notify.delivery import Notice
from remediations.registry import default_registry
from tests.conftest import HIGH_CPU_RULES, ClientFactory
from tests.e2e.stack import free_port
from tests.support.fakeclock import FakeClock
from tests.support.redisdb import REDIS_URL, drop_prefix

TARGETS = {"api": {"kind": "http", "base_url": "http://127.0.0.1:9/"},
           "prod-cluster": {"kind": "kubernetes", "namespaces": ["prod"]}}


def settings_for(tmp_path: Path, state: str, prefix: str, **extra: Any) -> Settings:
    (tmp_path / "rules.yaml").write_text(HIGH_CPU_RULES)
    return settings_from_mapping({"state": state, "state_prefix": prefix, "targets": TARGETS,
                                  "audit": str(tmp_path / "audit.jsonl"),
                                  "rules": [str(tmp_path / "rules.yaml")], **extra})


@pytest.fixture(params=["sqlite", "redis"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    """A runtime whose store is open and whose workers are not started (nothing takes work)."""
    prefix = f"t-selfwatch-{uuid.uuid4().hex[:8]}"
    state = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else REDIS_URL
    built = Runtime(settings_for(tmp_path, state, prefix), registry=default_registry(), clock=clock,
                    metrics_registry=CollectorRegistry())
    await built.state.open()
    try:
        yield built
    finally:
        await built.state.close()
        if request.param == "redis":
            await drop_prefix(prefix)


def value(runtime: Runtime, name: str, labels: dict[str, str] | None = None) -> float | None:
    return runtime.metrics.registry.get_sample_value(name, labels or {})


async def test_an_idle_service_reports_nothing_pending(runtime: Runtime) -> None:
    await refresh(runtime)
    assert {n: value(runtime, n) for n in (
        "remediator_paused", "remediator_pause_duration_seconds", "remediator_approvals_pending",
        "remediator_approvals_oldest_pending_age_seconds", "remediator_approvals_overdue",
        "remediator_backlog", "remediator_backlog_oldest_age_seconds", "remediator_state_store_up",
        "remediator_audit_up", "remediator_deferred")} == {
        "remediator_paused": 0, "remediator_pause_duration_seconds": 0, "remediator_approvals_pending": 0,
        "remediator_approvals_oldest_pending_age_seconds": 0, "remediator_approvals_overdue": 0,
        "remediator_backlog": 0, "remediator_backlog_oldest_age_seconds": 0, "remediator_state_store_up": 1,
        "remediator_audit_up": 1, "remediator_deferred": 0}
    for target in TARGETS:
        assert value(runtime, "remediator_circuit_open", {"target": target}) == 0
    samples = {s.name for m in runtime.metrics.registry.collect() for s in m.samples}
    assert "remediator_pause_info" not in samples


async def test_pause_approvals_circuits_and_backlog_as_the_store_has_them(runtime: Runtime,
                                                                        clock: FakeClock) -> None:
    store, start = runtime.state, clock.now()
    await store.set_pause(Pause(source="admin", actor="sre", detail="db migration", since=start))
    for n, ttl in enumerate((60.0, 3600.0)):
        created = start + n * 30
        await store.put_approval(Approval(id=f"a{n}", status=ApprovalStatus.PENDING, created_at=created,
                                          expires_at=created + ttl, decision=f"d{n}", rule="r",
                                          fingerprint=f"f{n}", payload={}))
    await store.record_result("prod-cluster", ok=False, threshold=1, cooloff=600)
    await store.enqueue([WorkItem(id="w1", payload={})], ttl=3600, max_backlog=10)
    clock.advance(40)
    await store.enqueue([WorkItem(id="w2", payload={})], ttl=3600, max_backlog=10)
    await store.enqueue([WorkItem(id="w3", payload={})], ttl=3600, max_backlog=10)
    [*_, third] = await store.take("c1", 10, block=0)
    assert await store.defer(third.ref, third, not_before=start + 3600)  # waits behind a guard
    clock.advance(80)  # 120 s after the start
    await refresh(runtime)
    assert value(runtime, "remediator_paused") == 1
    assert value(runtime, "remediator_pause_duration_seconds") == pytest.approx(120)
    assert value(runtime, "remediator_pause_info", {"source": "admin", "reason": "db migration"}) == 1
    assert value(runtime, "remediator_approvals_pending") == 2
    assert value(runtime, "remediator_approvals_oldest_pending_age_seconds") == pytest.approx(120)
    assert value(runtime, "remediator_approvals_overdue") == 1  # a0: 60 s TTL, pending 120 s
    assert value(runtime, "remediator_circuit_open", {"target": "prod-cluster"}) == 1
    assert value(runtime, "remediator_circuit_open", {"target": "api"}) == 0
    assert value(runtime, "remediator_backlog") == 2
    assert value(runtime, "remediator_backlog_oldest_age_seconds") == pytest.approx(120)
    assert value(runtime, "remediator_deferred") == 1
    # lifted and cooled off: the next scrape says so, and the pause's reason is gone
    await store.clear_pause()
    clock.advance(600)
    await refresh(runtime)
    assert value(runtime, "remediator_paused") == 0
    assert value(runtime, "remediator_pause_info", {"source": "admin", "reason": "db migration"}) is None
    assert value(runtime, "remediator_circuit_open", {"target": "prod-cluster"}) == 0


async def test_metrics_of_a_healthy_service(make_client: ClientFactory, make_settings: Any) -> None:
    client = await make_client(make_settings(rules=HIGH_CPU_RULES))
    text = await (await client.get("/metrics")).text()
    for line in ("remediator_ready 1.0", "remediator_state_store_up 1.0", "remediator_audit_up 1.0",
                 "remediator_paused 0.0", "remediator_backlog 0.0"):
        assert line in text.splitlines(), line


async def test_metrics_while_the_state_store_does_not_answer(make_client: ClientFactory,
                                                             tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"redis://127.0.0.1:{free_port()}/0", "t-selfwatch-down")
    client = await make_client(settings)
    lines = (await (await client.get("/metrics")).text()).splitlines()
    assert "remediator_ready 0.0" in lines
    assert "remediator_state_store_up 0.0" in lines


async def test_a_refused_notice_is_counted_per_notifier(tmp_path: Path, clock: FakeClock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_HOOK", f"http://127.0.0.1:{free_port()}/hook")  # nothing listens there
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'state.db'}", "x", notifiers={
        "oncall": {"kind": "webhook", "url": "env:T_HOOK"},
        "other": {"kind": "webhook", "url": "env:T_HOOK"}})
    built = Runtime(settings, registry=default_registry(), clock=clock, metrics_registry=CollectorRegistry())
    try:
        assert value(built, "remediator_notifier_failures_total", {"notifier": "oncall"}) == 0
        await built.announcer.announce(Notice(title="t", text="x"), to=["oncall"])
        assert value(built, "remediator_notifier_failures_total", {"notifier": "oncall"}) == 1
        assert value(built, "remediator_notifier_failures_total", {"notifier": "other"}) == 0
    finally:
        await built.audit.close()
