"""A step that crashes still ends in the audit, naming its decision, rule and alert.

An action that raises what no action should (a library's ``ValueError`` at send time, a
bug) used to leave ``action.started`` without an ending and a ``decision.failed`` that
named neither rule nor alert (``executor.crashed``). Each row crashes one place of a
step, in a live decision through the real app, or in a plan a human approved; the audit
must show who it was.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from remediations.base import Action, ActionContext, Plan, Result
from remediations.registry import Registry
from tests.conftest import ClientFactory, read_audit, rules_yaml, runtime_of
from tests.support.webhooks import alert, body

Where = Literal["nowhere", "plan", "subject", "allowed", "execute"]


class CrashParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    where: Where = "nowhere"


class Crashing(Action[CrashParams]):
    """Raises where its params say, as a library failing unexpectedly would."""

    name = "test.crash"
    description = "crashes on purpose"
    params_model = CrashParams
    destructive = True

    def subject(self, ctx: ActionContext, params: CrashParams) -> str:
        if params.where == "subject":
            raise KeyError("subject")
        return "crash/subject"

    def check_allowed(self, ctx: ActionContext, params: CrashParams) -> None:
        if params.where == "allowed":
            raise AttributeError("allowed")

    async def plan(self, ctx: ActionContext, params: CrashParams) -> Plan:
        if params.where == "plan":
            raise RuntimeError("plan went wrong")
        return Plan(action=self.name, target=None, steps=("crash",), destructive=True)

    async def execute(self, ctx: ActionContext, params: CrashParams, plan: Plan) -> Result:
        raise ValueError("Newline or carriage return character detected in HTTP header")


async def run(make_client: ClientFactory, make_settings: Any, where: Where,
              approval: str) -> list[dict[str, Any]]:
    rule = {"name": "crashy", "match": ['alertname = "HighErrorRate"'], "approval": approval,
            "actions": [{"action": "test.crash", "params": {"where": where}}]}
    settings = make_settings(rules=rules_yaml([rule]), dry_run=False, guards={"retries": 2})
    client = await make_client(settings, registry=Registry([Crashing()]))
    resp = await client.post("/webhook", data=body(alert()), headers={"Content-Type": "application/json"})
    assert resp.status == 202
    runtime = runtime_of(client)
    await asyncio.wait_for(runtime.queue.wait_idle(), 10)
    if approval == "required":
        (pending,) = await runtime.approvals.list()
        await runtime.approvals.decide(pending.id, approve=True, actor="test", comment=None)
        await asyncio.sleep(0)
        for _ in range(100):
            await asyncio.wait_for(runtime.queue.wait_idle(), 10)
            if not await runtime.state.backlog() and not runtime.queue.unfinished:
                break
            await asyncio.sleep(0.02)
    await runtime.audit.sync()
    return read_audit(settings.audit)


@pytest.mark.parametrize(("where", "approval", "started"), [
    pytest.param("execute", "auto", True, id="execute-live"),
    pytest.param("execute", "required", True, id="execute-approved"),
    pytest.param("plan", "auto", False, id="plan"),
    pytest.param("subject", "auto", False, id="subject"),
    pytest.param("allowed", "auto", False, id="allow-list-check"),
])
async def test_a_crash_ends_audited_with_its_decision_rule_and_alert(
        make_client: ClientFactory, make_settings: Any, where: Where, approval: str, started: bool) -> None:
    records = await run(make_client, make_settings, where, approval)
    fingerprint = alert()["fingerprint"]
    starts = [r for r in records if r["event"] == "action.started"]
    assert len(starts) == (1 if started else 0)  # a crash is never repeated
    if started:
        (failed_step,) = [r for r in records if r["event"] == "action.failed"]
        assert failed_step["reason"] == "crashed"
        assert (failed_step["decision"], failed_step["rule"], failed_step["fingerprint"]) == (
            starts[0]["decision"], "crashy", fingerprint)
        assert "ValueError" in failed_step["detail"]
    (failed,) = [r for r in records if r["event"] == "decision.failed"]
    assert failed["reason"] == "crashed"
    assert (failed["rule"], failed["fingerprint"]) == ("crashy", fingerprint)
    if started:
        assert failed["decision"] == starts[0]["decision"]
