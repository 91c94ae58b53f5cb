"""Approvals end to end: requested, announced, listed, approved or rejected over the API.

A real local HTTP target counts executions; tokens are real credentials with roles.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestClient
from pydantic import BaseModel

from receiver.errors import StateError
from receiver.store.values import ApprovalStatus, PartlyClosed
from remediations.base import Action, ActionContext, Plan, Result
from remediations.http import HttpRequest
from remediations.registry import Registry
from tests.conftest import ClientFactory, read_audit, runtime_of
from tests.support.approvals import (
    ADMIN,
    AM,
    ONCALL,
    TOKENS,
    approval_settings,
    decide,
    fire,
    pending,
    settle,
)
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, Target, serve_target
from tests.support.webhooks import alert, body


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def setup(make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
                monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient[Any, Any], Target, Target, Any]:
    target, base = await serve_target(aiohttp_server)
    hook, hook_base = await serve_target(aiohttp_server)
    monkeypatch.setenv("TEST_HOOK_URL", hook_base + "/hook")
    settings = approval_settings(make_settings, base, hook_base)
    client = await make_client(settings)
    return client, target, hook, settings


async def test_destructive_action_waits_for_approval_and_runs_once(
        setup: tuple[TestClient[Any, Any], Target, Target, Any]) -> None:
    """A POST without approval: auto is planned, announced and held; approving runs it once."""
    client, target, hook, settings = setup
    await fire(client, alert())
    assert target.calls == []
    [approval] = await pending(client)
    assert approval["payload"]["steps"][0]["plan"]["steps"][0].startswith("POST ")
    [notice] = hook.calls
    assert f"remediator approvals approve {approval['id']}" in notice[2]["text"]
    status, answer = await decide(client, approval["id"], "approve", comment="go ahead")
    assert (status, answer["status"], answer["decided_by"]) == (200, "approved", "oncall-alice")
    assert [c[1] for c in target.calls] == ["/svc/purge/prod"]
    status, answer = await decide(client, approval["id"], "approve")
    assert status == 409
    assert "approved by oncall-alice" in answer["detail"]
    assert len(target.calls) == 1
    records = read_audit(settings.audit)
    approved = [r for r in records if r["event"] == "approval.approved"]
    assert [(r["actor"], r["comment"]) for r in approved] == [("oncall-alice", "go ahead")]
    assert [r["event"] for r in records].count("action.succeeded") == 1


async def test_two_approvals_at_once_run_once(
        setup: tuple[TestClient[Any, Any], Target, Target, Any]) -> None:
    """Two approvers pressing at the same moment: one 200, one 409, one execution."""
    client, target, _, _ = setup
    await fire(client, alert())
    [approval] = await pending(client)
    answers = await asyncio.gather(decide(client, approval["id"], "approve"),
                                   decide(client, approval["id"], "approve"))
    assert sorted(a[0] for a in answers) == [200, 409]
    await settle(client)
    assert len(target.calls) == 1


async def test_an_approval_whose_queueing_was_cut_short_is_queued_by_housekeeping(
        setup: tuple[TestClient[Any, Any], Target, Target, Any], clock: FakeClock) -> None:
    """Approved in the store but never queued (the store failed, or the process died, in
    between): housekeeping queues it, once, and it runs once."""
    client, target, _, _ = setup
    await fire(client, alert())
    [approval] = await pending(client)
    runtime = runtime_of(client)
    moved = await runtime.state.decide_approval(approval["id"], ApprovalStatus.APPROVED, actor="oncall-alice",
                                                comment=None)
    assert moved.changed
    assert await runtime.approvals.requeue_approved() == 0  # within the grace the approver queues it
    clock.advance(31)
    assert await runtime.approvals.requeue_approved() == 1
    assert await runtime.approvals.requeue_approved() == 0
    await settle(client)
    assert len(target.calls) == 1


async def test_rejected_never_runs(setup: tuple[TestClient[Any, Any], Target, Target, Any]) -> None:
    """A rejection is audited with its comment; approving afterwards is a 409 and nothing runs."""
    client, target, _, settings = setup
    await fire(client, alert())
    [approval] = await pending(client)
    status, answer = await decide(client, approval["id"], "reject", comment="not during the release")
    assert (status, answer["status"]) == (200, "rejected")
    status, _ = await decide(client, approval["id"], "approve")
    assert status == 409
    assert target.calls == []
    rejected = [r for r in read_audit(settings.audit) if r["event"] == "approval.rejected"]
    assert rejected[0]["comment"] == "not during the release"


async def test_expired_approval_is_a_409_and_never_runs(
        setup: tuple[TestClient[Any, Any], Target, Target, Any], clock: FakeClock) -> None:
    """Past approval_ttl (30m by default) an approval cannot be approved; the sweeper expires others."""
    client, target, _, settings = setup
    await fire(client, alert(namespace="a"))
    await fire(client, alert(namespace="b"))
    first, second = await pending(client)
    clock.advance(1801)
    status, answer = await decide(client, first["id"], "approve")
    assert status == 409
    assert "expired" in answer["detail"]
    assert await runtime_of(client).approvals.expire_due() == 1
    assert await pending(client) == []
    assert target.calls == []
    expired = [r for r in read_audit(settings.audit) if r["event"] == "approval.expired"]
    assert sorted(r["approval"] for r in expired) == sorted([first["id"], second["id"]])


async def test_resolved_alert_cancels_its_pending_approval(
        setup: tuple[TestClient[Any, Any], Target, Target, Any], clock: FakeClock) -> None:
    """The alert's resolved notification cancels what waits for it and records the time to resolve."""
    client, target, _, settings = setup
    await fire(client, alert(namespace="a"), alert(namespace="b"))
    assert len(await pending(client)) == 2
    await fire(client, alert(namespace="a", status="resolved", ends="2026-11-23T07:12:28.909Z"))
    [left] = await pending(client)
    assert left["payload"]["labels"]["namespace"] == "b"
    records = read_audit(settings.audit)
    cancelled = [r for r in records if r["event"] == "approval.cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0]["comment"] == "the alert resolved"
    [resolved] = [r for r in records if r["event"] == "alert.resolved"]
    assert resolved["time_to_resolve_seconds"] == 1800.0
    assert resolved["approvals_cancelled"] == 1
    status, _ = await decide(client, cancelled[0]["approval"], "approve")
    assert status == 409
    assert target.calls == []


async def test_a_resolution_the_store_cannot_close_is_a_503_and_the_resend_closes_it(
        setup: tuple[TestClient[Any, Any], Target, Target, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """All resolved alerts of a request close in one store call; when it fails, 503 (Alertmanager
    re-sends), nothing is recorded closed, and the re-send closes each alert once."""
    client, _, _, settings = setup
    await fire(client, alert(namespace="a"), alert(namespace="b"))
    state = runtime_of(client).state
    calls: list[int] = []

    async def down(firings: Any, **_: Any) -> Any:
        calls.append(len(firings))
        raise StateError("connection refused")

    resolved = [alert(namespace=ns, status="resolved", ends="2026-11-23T07:12:28.909Z") for ns in "ab"]
    with monkeypatch.context() as patch:
        patch.setattr(state, "close_resolved", down)
        resp = await client.post("/webhook", data=body(*resolved), headers=AM)
    assert resp.status == 503
    assert calls == [2]
    assert len(await pending(client)) == 2
    records = read_audit(settings.audit)
    [failed] = [r for r in records if r["event"] == "intake.failed"]
    assert failed["fingerprints"] == [a["fingerprint"] for a in resolved]
    assert [r for r in records if r["event"] in ("approval.cancelled", "alert.resolved")] == []
    await fire(client, *resolved)
    await fire(client, *resolved)  # closing again changes nothing
    assert await pending(client) == []
    records = read_audit(settings.audit)
    assert len([r for r in records if r["event"] == "approval.cancelled"]) == 2
    assert [r["approvals_cancelled"] for r in records if r["event"] == "alert.resolved"] == [1, 1, 0, 0]


async def test_what_a_failing_store_did_close_is_audited_once(
        setup: tuple[TestClient[Any, Any], Target, Target, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The store closed the approval and then failed (``PartlyClosed``): the cancellation is audited,
    the answer is 503, and the re-send records the resolution without cancelling anything twice."""
    client, _, _, settings = setup
    await fire(client, alert(namespace="a"))
    state = runtime_of(client).state
    real = state.close_resolved

    async def partly(firings: Any, **kwargs: Any) -> Any:
        raise PartlyClosed("the replicas did not confirm it", await real(firings, **kwargs))

    resolved = alert(namespace="a", status="resolved", ends="2026-11-23T07:12:28.909Z")
    with monkeypatch.context() as patch:
        patch.setattr(state, "close_resolved", partly)
        resp = await client.post("/webhook", data=body(resolved), headers=AM)
    assert resp.status == 503
    records = read_audit(settings.audit)
    assert [r["event"] for r in records if r["event"] in ("approval.cancelled", "alert.resolved",
                                                            "intake.failed")] == [
        "approval.cancelled", "intake.failed"]
    await fire(client, resolved)
    records = read_audit(settings.audit)
    assert len([r for r in records if r["event"] == "approval.cancelled"]) == 1
    assert [r["approvals_cancelled"] for r in records if r["event"] == "alert.resolved"] == [0]


async def test_approved_plan_meets_the_cheap_guards_again(
        setup: tuple[TestClient[Any, Any], Target, Target, Any]) -> None:
    """Approving while automation is paused records the block instead of running."""
    client, target, _, settings = setup
    await fire(client, alert())
    [approval] = await pending(client)
    await client.post("/api/v1/pause", json={"reason": "freeze"}, headers=ADMIN)
    status, _ = await decide(client, approval["id"], "approve")
    assert status == 200
    assert target.calls == []
    blocked = [r for r in read_audit(settings.audit) if r["event"] == "guard.blocked"]
    assert blocked[-1]["reason"] == "paused"


@pytest.mark.parametrize(("change", "reason"), [
    pytest.param({"dry_run": True}, "dry_run", id="service-back-in-dry-run"),
    pytest.param({"guards": {"maintenance": [
        {"name": "freeze", "start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}]}},
        "maintenance", id="inside-a-maintenance-window"),
])
async def test_an_approved_plan_obeys_the_settings_in_force_when_it_runs(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory, tmp_path: Any,
        change: dict[str, Any], reason: str) -> None:
    """Requested before a restart into dry-run (or a maintenance window), approved after: not run."""
    target, base = await serve_target(aiohttp_server)
    first = await make_client(approval_settings(make_settings, base))
    await fire(first, alert())
    [approval] = await pending(first)
    await first.close()
    settings = approval_settings(make_settings, base, **change)
    client = await make_client(settings)
    status, _ = await decide(client, approval["id"], "approve")
    assert status == 200
    assert target.calls == []
    blocked = [r for r in read_audit(settings.audit) if r["event"] == "guard.blocked"]
    assert blocked[-1]["reason"] == reason


async def test_an_overdue_approval_cancelled_by_the_resolution_is_audited_as_expired(
        setup: tuple[TestClient[Any, Any], Target, Target, Any], clock: FakeClock) -> None:
    """Past its expiry when the alert resolves (before housekeeping ran): recorded as expired."""
    client, _, _, settings = setup
    await fire(client, alert())
    [approval] = await pending(client)
    clock.advance(1801)
    await fire(client, alert(status="resolved", ends="2026-11-23T07:12:28.909Z"))
    expired = [r for r in read_audit(settings.audit) if r["event"] == "approval.expired"]
    assert [r["approval"] for r in expired] == [approval["id"]]


@pytest.mark.parametrize(("approval", "method", "severity", "needs"), [
    pytest.param("auto", "POST", "critical", False, id="auto"),
    pytest.param("required", "POST", "info", True, id="required"),
    pytest.param({"required_for": ["P1"]}, "GET", "critical", True, id="by-priority-P1"),
    pytest.param({"required_for": ["P1"]}, "GET", "warning", False, id="by-priority-P3"),
    pytest.param({"required_for": ["P1", "P2", "P3", "P4"]}, "POST", "info", True, id="by-every-priority"),
    pytest.param(None, "POST", "warning", True, id="destructive-default"),
    pytest.param(None, "GET", "warning", False, id="read-default"),
])
async def test_when_approval_is_needed(make_client: ClientFactory, make_settings: Any,
                                       aiohttp_server: ServerFactory, approval: Any, method: str,
                                       severity: str, needs: bool) -> None:
    """The rule's approval setting and the action's destructiveness decide, by priority (a
    destructive step's approval never hangs on the alert's severity: the loader refuses it,
    tests/hostile/test_rules.py)."""
    target, base = await serve_target(aiohttp_server)
    client = await make_client(approval_settings(make_settings, base, approval=approval, method=method))
    await fire(client, alert(severity=severity))
    assert (len(await pending(client)), len(target.calls)) == ((1, 0) if needs else (0, 1))


class _AlwaysParams(BaseModel):
    method: str = "POST"
    path: str = "/"


class AlwaysAsk(Action[_AlwaysParams]):
    """A harmless action that, like redis.flushdb, needs approval whatever the rule says."""

    name: ClassVar[str] = "test.always_ask"
    description: ClassVar[str] = "test"
    params_model = _AlwaysParams
    approval_always = True
    target_kinds = frozenset({"http"})

    async def plan(self, ctx: ActionContext, params: _AlwaysParams) -> Plan:
        return Plan(action=self.name, target=ctx.target_name, steps=("ask",), destructive=False)

    async def execute(self, ctx: ActionContext, params: _AlwaysParams, plan: Plan) -> Result:
        return Result(summary="ran")


async def test_approval_always_overrides_the_rules_auto(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory) -> None:
    """An action marked approval_always waits for a human even under approval: auto."""
    _, base = await serve_target(aiohttp_server)
    settings = approval_settings(make_settings, base, approval="auto", action="test.always_ask")
    client = await make_client(settings, registry=Registry([AlwaysAsk(), HttpRequest()]))
    await fire(client, alert())
    assert len(await pending(client)) == 1


ONCALL_JSON = {**ONCALL, "Content-Type": "application/json"}


@pytest.mark.parametrize(("method", "path", "headers", "payload", "status"), [
    pytest.param("post", "/api/v1/approvals/nope/approve", ONCALL, None, 404, id="unknown-id"),
    pytest.param("get", "/api/v1/approvals/nope", ONCALL, None, 404, id="unknown-get"),
    pytest.param("get", "/api/v1/approvals?status=maybe", ONCALL, None, 400, id="bad-status"),
    pytest.param("post", "/api/v1/approvals/x/approve", ONCALL_JSON, b"[1]", 400, id="body-not-object"),
    pytest.param("post", "/api/v1/approvals/x/approve", ONCALL_JSON, b"{", 400, id="body-not-json"),
    pytest.param("post", "/api/v1/approvals/x/approve", ONCALL_JSON, b'{"comment": 5}', 400,
                 id="comment-type"),
    pytest.param("post", "/api/v1/approvals/x/approve", ONCALL_JSON, b'{"who": "me"}', 400, id="unknown-key"),
    pytest.param("post", "/api/v1/approvals/x/approve", ONCALL, b'{"comment": "ok"}', 415,
                 id="body-without-content-type"),
    pytest.param("get", "/api/v1/approvals", {"Authorization": "Bearer am-secret"}, None, 403,
                 id="webhook-role-may-not-list"),
    pytest.param("post", "/api/v1/approvals/x/approve", {}, None, 401, id="no-credentials"),
    pytest.param("post", "/api/v1/pause", ONCALL, None, 403, id="approver-may-not-pause"),
    pytest.param("post", "/api/v1/circuits/nope/reset", ADMIN, None, 404, id="unknown-circuit"),
])
async def test_bad_api_requests(make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
                                method: str, path: str, headers: dict[str, str], payload: bytes | None,
                                status: int) -> None:
    """Bad requests get a clear 4xx with a reason and change nothing."""
    _, base = await serve_target(aiohttp_server)
    settings = approval_settings(make_settings, base)
    client = await make_client(settings)
    resp = await client.request(method, path, data=payload, headers=headers)
    assert resp.status == status
    answer = await resp.json()
    assert answer["error"]
    assert answer["detail"]
    assert not [r for r in read_audit(settings.audit) if r["event"].startswith("approval.")]


async def test_circuit_reset_by_admin(make_client: ClientFactory, make_settings: Any,
                                      aiohttp_server: ServerFactory) -> None:
    """An admin closes an open circuit; the reset is audited with the admin's name, and the
    firing that waited behind the circuit runs at once (not an hour later)."""
    target, base = await serve_target(aiohttp_server, [500, 200])
    settings = approval_settings(make_settings, base, approval="auto",
                                 guards={"circuit_breaker": {"failures": 1, "cooloff": "1h"}})
    client = await make_client(settings)
    await fire(client, alert(namespace="a"))
    await fire(client, alert(namespace="b"))
    assert len(target.calls) == 1
    resp = await client.post("/api/v1/circuits/api/reset", headers=ADMIN)
    assert (await resp.json()) == {"target": "api", "failures_before": 1}

    async def woken() -> None:
        while True:
            if len(target.calls) == 2:
                return
            await asyncio.sleep(0.02)
    await asyncio.wait_for(woken(), 10)
    await fire(client, alert(namespace="c"))
    assert [call[1] for call in target.calls] == ["/svc/purge/a", "/svc/purge/b", "/svc/purge/c"]
    records = read_audit(settings.audit)
    assert [r["actor"] for r in records if r["event"] == "admin.circuit_reset"] == ["sre-admin"]
    assert [r["target"] for r in records if r["event"] == "circuit.opened"] == ["api"]
