"""``argocd.rollback`` against the in-test Argo CD API server (tests.support.argocdapi), driven by the
action's real HTTP client; every request is asserted."""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from remediations.argocd.diagnose import ArgoCdDiagnose
from remediations.argocd.rollback import ArgoCdRollback
from remediations.base import (
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.targets import ArgoCdTarget
from rules.alert import Alert
from tests.support.argocdapi import FakeArgoCd
from tests.support.sdkpool import SDK_CALLS

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "argocd-t0ken-value"
ALERT = Alert(fingerprint="f", status="firing", labels={"alertname": "High5xx"}, annotations={},
              starts_at=datetime(2026, 3, 1, tzinfo=UTC), starts_at_raw="2026-03-01T00:00:00Z")
APP = "/api/v1/applications/seekapa-bi-agent"


@dataclass
class Argo:
    fake: FakeArgoCd
    target: ArgoCdTarget

    def ctx(self, target: ArgoCdTarget | None = None) -> ActionContext:
        return ActionContext(calls=SDK_CALLS, decision_id="d", rule="r", alert=ALERT, target_name="argocd",
                             target=target or self.target, dry_run=False)


@pytest.fixture
async def argo(aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> Argo:
    fake = FakeArgoCd(token=TOKEN)
    server = await aiohttp_server(fake.app())
    monkeypatch.setenv("RT_ARGOCD_TOKEN", TOKEN)
    target = ArgoCdTarget.model_validate({"kind": "argocd", "base_url": str(server.make_url("/")),
                                          "token": "env:RT_ARGOCD_TOKEN",
                                          "applications": ["seekapa-bi-agent", "other"]})
    return Argo(fake, target)


def roundtrip(plan: Plan) -> Plan:
    return Plan.from_dict(json.loads(json.dumps(plan.as_dict())))


async def plan_only(argo: Argo, raw: dict[str, Any]) -> tuple[ArgoCdRollback, Plan]:
    action = ArgoCdRollback()
    params = action.parse_params(raw)
    action.check_allowed(argo.ctx(), params)
    plan = await action.plan(argo.ctx(), params)
    assert argo.fake.writes() == []
    argo.fake.requests.clear()
    return action, plan


async def test_rollback_to_the_previous_deployment(argo: Argo) -> None:
    """`argocd app rollback APP`: GET the app, POST rollback with the previous history id; retry: nothing."""
    argo.fake.add_app("seekapa-bi-agent", ["a1b2c3", "d4e5f6"])
    action, plan = await plan_only(argo, {"application": "seekapa-bi-agent"})
    assert plan.steps == (
        f'POST {APP}/rollback {{"id": 0, "prune": false}}: roll back from revision d4e5f6 (history id 1, '
        "deployed 2026-03-02T10:00:00Z) to a1b2c3 (history id 0, deployed 2026-03-01T10:00:00Z), as "
        "`argocd app rollback seekapa-bi-agent 0` does",
        "Argo CD then syncs seekapa-bi-agent to that revision; it shows OutOfSync until Git is reverted, and "
        "automated sync stays off",
    )
    params = action.parse_params({"application": "seekapa-bi-agent"})
    result = await action.execute(argo.ctx(), params, roundtrip(plan))
    assert [(r.method, r.path, r.authorization, r.body) for r in argo.fake.requests] == [
        ("GET", APP, f"Bearer {TOKEN}", None),
        ("POST", APP + "/rollback", f"Bearer {TOKEN}",
         {"name": "seekapa-bi-agent", "id": 0, "prune": False, "dryRun": False})]
    assert result.summary == "rolled back application seekapa-bi-agent from d4e5f6 to a1b2c3 (history id 0)"
    assert result.details["operation"] == {"revision": "a1b2c3", "prune": False}
    argo.fake.requests.clear()
    again = await action.execute(argo.ctx(), params, roundtrip(plan))
    assert (again.details["rolled_back"], argo.fake.writes()) == (False, [])


async def test_auto_sync_is_refused_unless_the_rule_turns_it_off(argo: Argo) -> None:
    """Self-heal would undo a rollback: refused, or with disable_auto_sync a merge patch first."""
    argo.fake.add_app("seekapa-bi-agent", ["v1", "v2", "v3"], automated={"prune": True, "selfHeal": True})
    with pytest.raises(PermanentError, match="has automated sync with self-heal on: Argo CD refuses"):
        await plan_only(argo, {"application": "seekapa-bi-agent"})
    raw = {"application": "seekapa-bi-agent", "id": 0, "disable_auto_sync": True}
    action, plan = await plan_only(argo, raw)
    assert plan.steps[0] == ('PATCH application seekapa-bi-agent (merge patch {"spec":{"syncPolicy":'
                             '{"automated":null}}}): turn automated sync with self-heal off, as '
                             "`argocd app set seekapa-bi-agent --sync-policy none` does")
    assert (plan.details["self_heal"], plan.details["to"]["revision"]) == (True, "v1")
    result = await action.execute(argo.ctx(), action.parse_params(raw), roundtrip(plan))
    assert [(r.method, r.path, r.body) for r in argo.fake.writes()] == [
        ("PATCH", APP, {"name": "seekapa-bi-agent", "patch": '{"spec":{"syncPolicy":{"automated":null}}}',
                        "patchType": "merge"}),
        ("POST", APP + "/rollback", {"name": "seekapa-bi-agent", "id": 0, "prune": False, "dryRun": False})]
    assert result.summary.endswith("; automated sync turned off")
    assert argo.fake.apps["seekapa-bi-agent"]["spec"]["syncPolicy"] == {}


@pytest.mark.parametrize(("setup", "raw", "error", "words"), [
    pytest.param({"revisions": ["only"]}, {}, PermanentError, "at least two successful deployments",
                 id="no-previous"),
    pytest.param({"revisions": ["a", "b"]}, {"id": 7}, PermanentError, "does not have deployment id 7",
                 id="unknown-id"),
    pytest.param({"revisions": ["a", "b"], "running": True}, {}, PermanentError, "operation in progress",
                 id="operation-running"),
])
async def test_what_argo_cd_would_refuse_is_refused_before_asking(
        argo: Argo, setup: dict[str, Any], raw: dict[str, Any], error: type[Exception], words: str) -> None:
    argo.fake.add_app("seekapa-bi-agent", setup["revisions"], running=setup.get("running", False))
    with pytest.raises(error, match=words):
        await plan_only(argo, {"application": "seekapa-bi-agent", **raw})


async def test_a_deployment_since_the_plan_is_not_rolled_back(argo: Argo) -> None:
    app = argo.fake.add_app("seekapa-bi-agent", ["a", "b"])
    action, plan = await plan_only(argo, {"application": "seekapa-bi-agent"})
    app["status"]["history"].append({"id": 2, "revision": "c", "deployedAt": "2026-03-05T10:00:00Z"})
    with pytest.raises(PermanentError, match="deployed again since the plan"):
        await action.execute(argo.ctx(), action.parse_params({"application": "seekapa-bi-agent"}), plan)
    assert argo.fake.writes() == []


async def test_the_allow_list_token_and_errors(argo: Argo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Applications outside the target's list are refused; 401/404 permanent, 503 and no server temporary;
    the token never shows."""
    action = ArgoCdRollback()
    with pytest.raises(TargetNotAllowed):
        action.check_allowed(argo.ctx(), action.parse_params({"application": "payments"}))
    params = action.parse_params({"application": "other"})
    with pytest.raises(PermanentError, match=r'404: applications\.argoproj\.io "other" not found'):
        await action.plan(argo.ctx(), params)
    argo.fake.fail_next.append(503)
    with pytest.raises(TemporaryError, match="answered 503"):
        await action.plan(argo.ctx(), params)
    monkeypatch.setenv("RT_ARGOCD_WRONG", "wrong")
    wrong = argo.target.model_copy(update={"token": ArgoCdTarget.model_validate(
        {"kind": "argocd", "base_url": "http://x", "token": "env:RT_ARGOCD_WRONG",
         "applications": ["a"]}).token})
    with pytest.raises(PermanentError, match="answered 401: no session information") as caught:
        await action.plan(argo.ctx(wrong), params)
    assert "wrong" not in str(caught.value).replace("RT_ARGOCD_WRONG", "")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = argo.target.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(TemporaryError) as down:
        await action.plan(argo.ctx(dead), params)
    assert down.value.nothing_sent


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param({"application": "Seekapa"}, "application", id="upper"),
    pytest.param({"application": "a/../b"}, "application", id="path"),
    pytest.param({"application": "a", "id": -1}, "id", id="negative-id"),
    pytest.param({"application": "a", "force": True}, "force", id="unknown"),
])
def test_params_are_strict(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=rf"argocd\.rollback: {field}"):
        ArgoCdRollback().parse_params(raw)


def test_flags() -> None:
    action = ArgoCdRollback()
    assert (action.destructive, action.approval_always, action.read_only) == (True, True, False)
    assert action.target_kinds == frozenset({"argocd"})


async def test_diagnose_reports_status_policy_and_latest_deployments(argo: Argo) -> None:
    """argocd app get + history: one GET, nothing written; self-heal reported (an undo would be reverted)."""
    argo.fake.add_app("seekapa-bi-agent", ["r1", "r2", "r3"], automated={"selfHeal": True})
    action = ArgoCdDiagnose()
    params = action.parse_params({"application": "seekapa-bi-agent", "history": 2})
    action.check_allowed(argo.ctx(), params)
    plan = await action.plan(argo.ctx(), params)
    assert argo.fake.requests == []  # the plan reads nothing
    result = await action.execute(argo.ctx(), params, plan)
    assert [(r.method, r.path) for r in argo.fake.requests] == [("GET", APP)]
    assert result.details["history"] == [
        {"id": 2, "revision": "r3", "deployed_at": "2026-03-03T10:00:00Z"},
        {"id": 1, "revision": "r2", "deployed_at": "2026-03-02T10:00:00Z"}]
    assert (result.details["auto_sync"], result.details["self_heal"]) == (True, True)
    assert result.summary == ("seekapa-bi-agent: Synced at r3, health Degraded, automated sync with "
                              "self-heal, last operation Succeeded; 3 deployment(s)")
    with pytest.raises(TargetNotAllowed):
        action.check_allowed(argo.ctx(), action.parse_params({"application": "payments"}))
