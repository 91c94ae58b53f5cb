"""The core flow through the real app: webhook → match → classify → dedup → audit → plan."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import platform
import sqlite3
from typing import Any

import pytest

from receiver.store.connect import sqlite_path
from tests.conftest import ClientFactory, fixture_body, read_audit, rules_yaml, runtime_of
from tests.support.fakeclock import FakeClock

RULES = rules_yaml([
    {
        "name": "high-cpu",
        "match": ['alertname = "HighCPU"', 'namespace =~ ".+"', 'deployment =~ ".+"'],
        "actions": [{"action": "notify.log",
                     "params": {"text": "scale {{ labels.namespace }}/{{ labels.deployment }} up"}}],
    },
    {
        "name": "error-rate",
        "match": ['alertname = "HighErrorRate"'],
        "status": "any",
        "priority": "P2",
        "actions": [{"action": "notify.log", "params": {"text": "{{ alert.status }}"}}],
    },
    {
        "name": "oom-later",
        "match": ['alertname = "ContainerOOMKilled"'],
        "for": "1h",
        "actions": [{"action": "notify.log", "params": {"text": "restart"}}],
    },
])


def events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == name]


async def post(client: Any, name: str) -> Any:
    return await client.post("/webhook", data=fixture_body(name),
                             headers={"Content-Type": "application/json"})


async def settle(client: Any) -> None:
    """Wait until the workers have finished everything queued (no wall-clock sleeping)."""
    runtime = runtime_of(client)
    await asyncio.wait_for(runtime.queue.wait_idle(), 5)
    await runtime.audit.sync()


@pytest.fixture
def fresh_clock(clock: FakeClock) -> FakeClock:
    """The fixtures fired at 2026-11-23T06:42:28Z; put now five minutes later."""
    clock.t = 1_795_416_148.909 + 300
    return clock


async def test_fixture_01_is_planned_in_dry_run(make_client: ClientFactory, make_settings: Any,
                                                fresh_clock: FakeClock) -> None:
    """A firing group of two HighCPU alerts yields two dry-run plans, each audited with rule and priority."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    resp = await post(client, "01_firing_group_HighCPU_2_alerts")
    assert resp.status == 202
    assert await resp.json() == {"received": 2, "matched": 2, "queued": 2}
    await settle(client)
    records = read_audit(settings.audit)
    matched = events(records, "rule.matched")
    assert [(m["rule"], m["priority"], m["dry_run"]) for m in matched] == [("high-cpu", "P1", True)] * 2
    assert matched[0]["response_target_seconds"] == 900
    plans = events(records, "action.planned")
    assert sorted(p["plan"]["steps"][0] for p in plans) == ["log at info: scale prod/web up"] * 2
    assert {p["fingerprint"] for p in plans} == {"07f1241324941787", "d77b1631ce5ce527"}
    assert not events(records, "action.started")


async def test_repeat_notification_is_deduplicated(make_client: ClientFactory, make_settings: Any,
                                                   fresh_clock: FakeClock) -> None:
    """Alertmanager's byte-identical repeat (06 after 01) plans nothing new and says why."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    assert (await post(client, "01_firing_group_HighCPU_2_alerts")).status == 202
    resp = await post(client, "06_repeat_HighCPU")
    assert await resp.json() == {"received": 2, "matched": 2, "queued": 0}
    await settle(client)
    records = read_audit(settings.audit)
    assert len(events(records, "action.planned")) == 2
    blocked = events(records, "guard.blocked")
    assert [(b["guard"], b["reason"]) for b in blocked] == [("dedup", "duplicate")] * 2


async def test_concurrent_identical_webhooks_queue_once(make_client: ClientFactory, make_settings: Any,
                                                        fresh_clock: FakeClock) -> None:
    """Fifty identical deliveries at once queue each alert's decision exactly once."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    answers = await asyncio.gather(*(post(client, "01_firing_group_HighCPU_2_alerts") for _ in range(50)))
    bodies = [await a.json() for a in answers]
    assert sum(b["queued"] for b in bodies) == 2
    await settle(client)
    assert len(events(read_audit(settings.audit), "action.planned")) == 2


async def test_resolved_notification_reaches_rules_that_want_it(
        make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """A resolved alert matches a ``status: any`` rule as its own decision, not a duplicate."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    first = await (await post(client, "04_firing_single_HighErrorRate")).json()
    second = await (await post(client, "05_resolved_HighErrorRate")).json()
    assert (first["queued"], second["queued"]) == (1, 1)
    await settle(client)
    steps = [p["plan"]["steps"][0] for p in events(read_audit(settings.audit), "action.planned")]
    assert steps == ["log at info: firing", "log at info: resolved"]


async def test_group_with_a_resolved_alert_is_read_per_alert(
        make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """A firing group holding one resolved alert records each alert with its own status."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    resp = await post(client, "08_firing_group_with_one_resolved_alert")
    assert resp.status == 202
    await settle(client)
    received = events(read_audit(settings.audit), "alert.received")
    assert sorted(r["status"] for r in received) == ["firing"] * 5 + ["resolved"]


async def test_truncated_group_is_accepted_and_noted(make_client: ClientFactory, make_settings: Any,
                                                     fresh_clock: FakeClock) -> None:
    """A notification cut by max_alerts is processed as sent, and the cut is on the record."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    resp = await post(client, "09_truncated_max_alerts_2")
    assert (resp.status, (await resp.json())["received"]) == (202, 2)
    await settle(client)
    received = events(read_audit(settings.audit), "alert.received")
    assert {r["truncatedAlerts"] for r in received} == {4}


async def test_for_not_elapsed_waits_and_a_later_resend_acts(
        make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """A rule with ``for: 1h`` skips a 5-minute-old alert, then acts on the re-send an hour later."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    early = await (await post(client, "02_firing_single_ContainerOOMKilled")).json()
    fresh_clock.advance(3600)
    late = await (await post(client, "02_firing_single_ContainerOOMKilled")).json()
    assert (early["queued"], late["queued"]) == (0, 1)
    await settle(client)
    records = read_audit(settings.audit)
    assert [b["reason"] for b in events(records, "guard.blocked")] == ["for_not_elapsed"]
    assert len(events(records, "action.planned")) == 1


async def test_unmatched_alerts_are_received_and_recorded(
        make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """An alert no rule answers is acknowledged and recorded, and nothing is queued."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    resp = await post(client, "03_firing_single_PostgresSlowQueries")
    assert await resp.json() == {"received": 1, "matched": 0, "queued": 0}
    records = read_audit(settings.audit)
    assert [r["event"] for r in records][-1] == "alert.received"


async def test_full_queue_answers_503_and_queues_nothing(
        make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """With no room for all of a request's work, it gets 503, queues none and keeps no dedup key."""
    settings = make_settings(rules=RULES, queue={"size": 1, "workers": 1})
    client = await make_client(settings)
    resp = await post(client, "01_firing_group_HighCPU_2_alerts")
    assert resp.status == 503
    assert (await resp.json())["error"] == "unavailable"
    assert resp.headers["Retry-After"] == "5"
    runtime = runtime_of(client)
    assert runtime.queue.depth() == 0
    with sqlite3.connect(sqlite_path(settings.state)) as db:
        assert db.execute("SELECT count(*) FROM dedup").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM work").fetchone() == (0,)
    failed = events(read_audit(settings.audit), "intake.failed")
    assert [f["reason"] for f in failed] == ["work queue full (1); send again later"]


async def test_while_the_backlog_is_full_work_is_refused_before_it_is_recorded(
        make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """Once an enqueue found no room, a request with work is refused with one record until room is back."""
    settings = make_settings(rules=RULES, queue={"size": 2, "workers": 1})
    client = await make_client(settings)
    runtime = runtime_of(client)
    await runtime.feeder.stop()  # accepted work stays in the store's backlog
    assert (await post(client, "01_firing_group_HighCPU_2_alerts")).status == 202
    assert (await post(client, "04_firing_single_HighErrorRate")).status == 503  # found full
    before = len(read_audit(settings.audit))
    waiting = await post(client, "02_firing_single_ContainerOOMKilled")  # nothing to queue: accepted
    assert await waiting.json() == {"received": 1, "matched": 1, "queued": 0}
    after_waiting = len(read_audit(settings.audit))
    assert after_waiting > before
    refused = await post(client, "05_resolved_HighErrorRate")
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    records = read_audit(settings.audit)[after_waiting:]
    assert [r["event"] for r in records] == ["intake.failed"]
    assert records[0]["reason"] == "work queue full (2); send again later"
    assert records[0]["fingerprints"] == [json.loads(fixture_body("05_resolved_HighErrorRate"))
                                          ["alerts"][0]["fingerprint"]]
    runtime.feeder.start()

    async def drained() -> None:
        while await runtime.state.backlog() or runtime.queue.unfinished:
            await runtime.queue.wait_idle()
            await asyncio.sleep(0)

    await asyncio.wait_for(drained(), 10)
    again = await post(client, "05_resolved_HighErrorRate")
    assert await again.json() == {"received": 1, "matched": 1, "queued": 1}


async def test_metrics_count_the_flow(make_client: ClientFactory, make_settings: Any,
                                      fresh_clock: FakeClock) -> None:
    """/metrics exposes received alerts, matches by rule, decisions and the reload gauge."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    await post(client, "01_firing_group_HighCPU_2_alerts")
    await post(client, "06_repeat_HighCPU")
    await settle(client)
    registry = runtime_of(client).metrics.registry
    assert registry.get_sample_value("remediator_alerts_received_total", {"status": "firing"}) == 4
    assert registry.get_sample_value("remediator_rule_matches_total", {"rule": "high-cpu"}) == 4
    assert registry.get_sample_value("remediator_decisions_total",
                                     {"outcome": "planned", "reason": "dry_run"}) == 2
    assert registry.get_sample_value("remediator_guard_blocks_total", {"guard": "dedup"}) == 2
    assert registry.get_sample_value("remediator_rules_last_reload_successful") == 1
    assert registry.get_sample_value("remediator_webhook_duration_seconds_count") == 2
    text = await (await client.get("/metrics")).text()
    assert "remediator_queue_depth 0.0" in text


async def test_health_and_ready(make_client: ClientFactory, make_settings: Any) -> None:
    """/health answers while the process lives; /ready once rules and state are up; the
    Prometheus spellings /-/healthy and /-/ready answer the same, with no credentials."""
    client = await make_client(make_settings(rules=RULES))
    for path in ("/health", "/-/healthy"):
        resp = await client.get(path)
        assert (resp.status, await resp.json()) == (200, {"status": "ok"}), path
    for path in ("/ready", "/-/ready"):
        resp = await client.get(path)
        assert (resp.status, await resp.json()) == (200, {"ready": True}), path


async def test_metrics_carry_build_info_and_the_standard_collectors(make_client: ClientFactory,
                                                                    make_settings: Any) -> None:
    """/metrics: remediator_build_info with the installed version, and the process_* and
    python_* series of the standard collectors, on the app's own registry."""
    client = await make_client(make_settings(rules=RULES))
    text = await (await client.get("/metrics")).text()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
            "process_start_time_seconds", "python_info", "python_gc_collections_total"} <= names
    version = importlib.metadata.version("remediator")
    python = platform.python_version()
    assert f'remediator_build_info{{python_version="{python}",version="{version}"}} 1.0' in text


async def test_reload_keeps_last_good_rules(make_client: ClientFactory, make_settings: Any,
                                            fresh_clock: FakeClock, tmp_path: Any) -> None:
    """A reload of broken rules answers 422 with the problems and the old rules stay in force."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    (tmp_path / "rules.yaml").write_text("rules:\n  - name: broken\n    match: [nonsense]\n")
    resp = await client.post("/-/reload")
    body = await resp.json()
    assert resp.status == 422
    assert body["error"] == "rules_invalid"
    assert any("rules.yaml:3" in p for p in body["problems"])
    assert (await (await post(client, "01_firing_group_HighCPU_2_alerts")).json())["matched"] == 2
    registry = runtime_of(client).metrics.registry
    assert registry.get_sample_value("remediator_rules_last_reload_successful") == 0
    (tmp_path / "rules.yaml").write_text(rules_yaml([json.loads(json.dumps({
        "name": "only-errors", "match": ['alertname = "HighErrorRate"'],
        "actions": [{"action": "notify.log", "params": {"text": "x"}}]}))]))
    resp = await client.post("/-/reload")
    assert (resp.status, (await resp.json())["rules"]) == (200, 1)
    reloads = events(read_audit(settings.audit), "admin.reload")
    assert [r["ok"] for r in reloads] == [False, True]
