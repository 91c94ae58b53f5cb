"""Helpers of the approval tests: the tokens and roles, a rule that needs approval, and
firing, listing and deciding over the HTTP API (``tests/receiver/flow/guards/test_approvals.py``
and the CLI tests that drive the same flow)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from receiver.flow.codec import ApprovalRequest, Diagnostic, SavedStep
from remediations.base import Plan, Result
from rules.alert import Alert
from tests.conftest import rules_yaml, runtime_of
from tests.support.webhooks import body

TOKENS = {"TEST_AM_TOKEN": "am-secret", "TEST_ONCALL_TOKEN": "oncall-secret", "TEST_ADMIN_TOKEN": "adm"}
AM = {"Authorization": "Bearer am-secret", "Content-Type": "application/json"}
ONCALL = {"Authorization": "Bearer oncall-secret"}
ADMIN = {"Authorization": "Bearer adm"}


def approval_settings(make_settings: Any, base_url: str, hook_base: str | None = None, *,
                      approval: Any = None, action: str = "http.request", method: str = "POST",
                      guards: dict[str, Any] | None = None, **extra: Any) -> Any:
    rule: dict[str, Any] = {
        "name": "purge-cache", "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
        "actions": [{"action": action, "target": "api",
                     "params": {"method": method, "path": "/purge/{{ labels.namespace }}"}}],
    }
    if approval is not None:
        rule["approval"] = approval
    notifiers = {} if hook_base is None else {"oncall": {"kind": "webhook", "url": "env:TEST_HOOK_URL"}}
    extra.setdefault("dry_run", False)
    return make_settings(
        rules=rules_yaml([rule]), notifiers=notifiers,
        targets={"api": {"kind": "http", "base_url": base_url, "timeout": 2}},
        auth={"tokens": [
            {"name": "alertmanager", "role": "webhook", "token": "env:TEST_AM_TOKEN"},
            {"name": "oncall-alice", "role": "approver", "token": "env:TEST_ONCALL_TOKEN"},
            {"name": "sre-admin", "role": "admin", "token": "env:TEST_ADMIN_TOKEN"},
        ]},
        guards={"retries": 0, "blast_radius": None, **(guards or {})}, **extra,
    )


async def settle(client: TestClient[Any, Any]) -> None:
    runtime = runtime_of(client)

    async def wait() -> None:
        while await runtime.state.backlog() or runtime.queue.unfinished:
            await runtime.queue.wait_idle()
            await asyncio.sleep(0)

    await asyncio.wait_for(wait(), 10)


async def fire(client: TestClient[Any, Any], *alerts: dict[str, Any]) -> None:
    resp = await client.post("/webhook", data=body(*alerts), headers=AM)
    assert resp.status == 202, await resp.text()
    await settle(client)


async def pending(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/approvals", params={"status": "pending"}, headers=ONCALL)
    assert resp.status == 200
    approvals: list[dict[str, Any]] = (await resp.json())["approvals"]
    return approvals


async def decide(client: TestClient[Any, Any], approval_id: str, verb: str, **body_: Any) -> tuple[int, Any]:
    resp = await client.post(f"/api/v1/approvals/{approval_id}/{verb}", json=body_ or None, headers=ONCALL)
    await settle(client)
    return resp.status, await resp.json()


def stored_request(*, priority: str = "P2", labels: dict[str, str] | None = None,
                   annotations: dict[str, str] | None = None, generator_url: str = "",
                   plan: tuple[str, ...] = ("POST /purge/prod",), diagnosis: str | None = None,
                   urgent: bool = False) -> dict[str, Any]:
    """An approval's stored request (``Approval.payload``) as the codec writes it, for tests of
    what reads it (notices, the console) without running a rule."""
    return ApprovalRequest(
        steps=(SavedStep(number=1, action="http.request", target="api", params={},
                         plan=Plan("http.request", "api", plan, True), subject="api/purge", timeout=30.0),),
        diagnostics=() if diagnosis is None else (Diagnostic(1, "docker.diagnose", Result(diagnosis)),),
        alert=Alert(fingerprint="f00d", status="firing", labels=labels or {"alertname": "HighErrorRate"},
                    annotations=annotations or {}, starts_at=datetime(2026, 1, 1, tzinfo=UTC),
                    starts_at_raw="2026-01-01T00:00:00Z", generator_url=generator_url),
        priority=priority, dry_run=False, rung=0, response_target=timedelta(hours=1), urgent=urgent,
    ).as_data()
