"""When the state store or the audit log fails, intake answers 503 and loses nothing.

Alertmanager re-sends on 5xx (see the fixtures' NOTES.md), so every claim made for a
refused request must be given back: the re-send after recovery is queued, not deduplicated.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from receiver.audit import AuditLog
from receiver.runtime import Runtime
from remediations.registry import default_registry
from rules.errors import RuleLoadError
from tests.conftest import (
    HIGH_CPU_BODY,
    HIGH_CPU_RULES,
    JSON_HEADERS,
    ClientFactory,
    read_audit,
    runtime_of,
)
from tests.support.fakeclock import FakeClock

RULES = HIGH_CPU_RULES
BODY = HIGH_CPU_BODY
JSON = JSON_HEADERS


async def test_state_store_down_means_503_and_not_ready(
        make_client: ClientFactory, make_settings: Any) -> None:
    """With the state store unusable, webhooks get 503 (Alertmanager re-sends) and /ready fails."""
    client = await make_client(make_settings(rules=RULES))
    runtime = runtime_of(client)
    await runtime.state.close()
    resp = await client.post("/webhook", data=BODY, headers=JSON)
    assert resp.status == 503
    assert "state store unavailable" in (await resp.json())["detail"]
    ready = await client.get("/ready")
    assert ready.status == 503
    assert any("state store" in p for p in (await ready.json())["problems"])
    assert runtime.queue.depth() == 0
    await runtime.state.open()  # recovered: the re-send is accepted in full
    resp = await client.post("/webhook", data=BODY, headers=JSON)
    assert (resp.status, (await resp.json())["queued"]) == (202, 2)


async def test_audit_write_failure_means_503_and_claims_are_released(
        make_client: ClientFactory, make_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the request's records cannot be made durable: 503, /ready fails, and the re-send is queued."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    runtime = runtime_of(client)

    def full_disk(self: AuditLog, fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(AuditLog, "_write", full_disk)
    resp = await client.post("/webhook", data=BODY, headers=JSON)
    assert resp.status == 503
    assert "audit log unavailable" in (await resp.json())["detail"]
    ready = await client.get("/ready")
    assert any("audit log" in p for p in (await ready.json())["problems"])
    assert runtime.queue.depth() == 0
    monkeypatch.undo()  # the disk has room again
    resp = await client.post("/webhook", data=BODY, headers=JSON)
    assert (resp.status, (await resp.json())["queued"]) == (202, 2)
    await asyncio.wait_for(runtime.queue.wait_idle(), 5)
    await runtime.audit.sync()
    assert (await client.get("/ready")).status == 200
    records = read_audit(settings.audit)
    assert sum(r["event"] == "action.planned" for r in records) == 2
    assert [r["event"] for r in records].count("alert.received") == 4  # both deliveries are on record
    failed = [r for r in records if r["event"] == "intake.failed"]
    assert [(f["answered"], len(f["decisions"])) for f in failed] == [(503, 2)]
    assert failed[0]["reason"].startswith("audit log unavailable")


async def test_failed_start_releases_the_audit_log(make_settings: Any, tmp_path: Any) -> None:
    """A start that fails (rules do not load) closes the audit log, so a corrected start can open it."""
    settings = make_settings(rules="rules:\n  - name: broken\n")
    runtime = Runtime(settings, registry=default_registry(), clock=FakeClock(),
                      metrics_registry=CollectorRegistry())
    with pytest.raises(RuleLoadError):
        await runtime.start()
    (tmp_path / "rules.yaml").write_text(RULES)
    again = Runtime(settings, registry=default_registry(), clock=FakeClock(),
                    metrics_registry=CollectorRegistry())
    await again.start()
    await again.stop()
