"""The execute-once marker (``receiver.flow.guards.once``) on the real pipeline, a real SQLite store
and a test action whose read-back says what the test wants.

Table-driven: what a run finds in the marker (left by a run that died sending, one that ran
to its end, nothing) and what the action reads back; what it then records, whether it
executes, how the marker ends and whether a human is asked. Then the same process taking
its own work up again: after its completion failed, with the outcome it could not write,
and while a worker of its own is still running the step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from receiver.decisions import Decision, Guard, decision_identity
from receiver.errors import StateError
from receiver.flow.guards import Blocked
from receiver.flow.guards.stages import StepRun
from receiver.flow.payload import parse_webhook
from receiver.flow.steps import PreparedStep
from receiver.runtime import Runtime
from receiver.store.values import StepMark, StepState
from remediations.base import Action, ActionContext, Plan, ReadBack, RemediationError, Result
from remediations.registry import Registry
from tests.conftest import read_audit, rules_yaml
from tests.support.fakeclock import FakeClock
from tests.support.webhooks import alert, body


class _Params(BaseModel):
    replicas: int = 3


class Reading(Action[_Params]):
    """Scales something to ``replicas``; reads back what the test sets in ``found``."""

    name: ClassVar[str] = "test.reading"
    description: ClassVar[str] = "test"
    params_model = _Params
    target_kinds = frozenset({"http"})

    def __init__(self) -> None:
        self.found: ReadBack | RemediationError | None = None
        self.executed = 0
        self.asked_since: list[float] = []

    async def plan(self, ctx: ActionContext, params: _Params) -> Plan:
        return Plan(action=self.name, target=ctx.target_name, steps=(f"scale to {params.replicas}",),
                    destructive=True)

    async def execute(self, ctx: ActionContext, params: _Params, plan: Plan) -> Result:
        self.executed += 1
        return Result(summary=f"scaled to {params.replicas}")

    async def read_back(self, ctx: ActionContext, params: _Params, plan: Plan, *,
                        since: float) -> ReadBack | None:
        self.asked_since.append(since)
        if isinstance(self.found, RemediationError):
            raise self.found
        return self.found


@dataclass
class Env:
    runtime: Runtime
    action: Reading
    d: Decision
    step: PreparedStep

    @property
    def marker(self) -> str:
        return f"{self.d.id}\x1f{self.step.number}"

    def run(self) -> StepRun:
        return StepRun(decision=self.d.id, rule=self.d.rule, rung=self.d.rung, step=self.step)

    async def marked(self) -> tuple[str, str] | None:
        mark = await self.runtime.state.step_mark(self.marker)
        return None if mark is None else (mark.state.value, mark.outcome)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in read_audit(self.runtime.settings.audit) if r["event"] == name]


Factory = Callable[[], Awaitable[Env]]


@pytest.fixture
async def env(make_settings: Any, clock: FakeClock) -> AsyncIterator[Factory]:
    opened: list[Runtime] = []

    async def build() -> Env:
        rule = {"name": "scale", "approval": "auto", "match": ['alertname = "HighErrorRate"'],
                "actions": [{"action": "test.reading", "target": "api", "params": {"replicas": 3}}]}
        settings = make_settings(rules=rules_yaml([rule]), dry_run=False,
                                 targets={"api": {"kind": "http", "base_url": "http://127.0.0.1:9"}},
                                 guards={"retries": 0})
        action = Reading()
        runtime = Runtime(settings, registry=Registry([action]), clock=clock,
                          metrics_registry=CollectorRegistry())
        runtime.rules.load_now()
        await runtime.state.open()
        opened.append(runtime)
        [firing] = parse_webhook(body(alert()))[1]
        loaded = runtime.rules.index.rule("scale")
        assert loaded is not None
        key, decision_id = decision_identity("scale", firing, dry_run=False)
        d = Decision(decision_id, key, loaded, firing, "P3", timedelta(hours=1), False)
        step = await runtime.steps.plan(d, 1, "action", loaded.steps[0].actions[0])
        return Env(runtime, action, d, step)

    yield build
    for runtime in opened:
        await runtime.state.close()
        await runtime.audit.close()


DEAD = "dead-host-1-abc/0123456789ab"

# (marker a dead run left, what the action reads back, idempotent, outcome: "ran" | "settled" |
#  "escalated" | "stopped", the marker after, the audit events the run adds about the step)
CASES = [
    pytest.param(None, None, False, "ran", ("done", "succeeded"), ["action.started", "action.succeeded"],
                 id="free-runs"),
    pytest.param(StepState.CLAIMED, None, False, "ran", ("done", "succeeded"),
                 ["action.started", "action.succeeded"], id="claimed-nothing-sent-runs"),
    pytest.param(StepState.DONE, None, False, "settled", ("done", "succeeded"), ["action.skipped"],
                 id="done-is-skipped-and-the-decision-goes-on"),
    pytest.param(StepState.SENDING, ReadBack(True, {"replicas": 3}), False, "settled", ("done", "succeeded"),
                 ["action.succeeded"], id="sending-read-back-done-recorded-as-succeeded"),
    pytest.param(StepState.SENDING, ReadBack(False, {"replicas": 1}), True, "ran", ("done", "succeeded"),
                 ["action.read_back", "action.started", "action.succeeded"],
                 id="sending-read-back-not-done-idempotent-runs"),
    pytest.param(StepState.SENDING, ReadBack(False, {"replicas": 1}), False, "escalated", ("done", "unknown"),
                 ["action.outcome_unknown"], id="sending-read-back-not-done-not-idempotent-asks-a-human"),
    pytest.param(StepState.SENDING, ReadBack(None, {"replicas": 2}), True, "escalated", ("done", "unknown"),
                 ["action.outcome_unknown"], id="sending-read-back-cannot-tell-asks-a-human"),
    pytest.param(StepState.SENDING, RemediationError("api down"), True, "escalated", ("done", "unknown"),
                 ["action.outcome_unknown"], id="sending-read-back-fails-asks-a-human"),
    pytest.param(StepState.SENDING, None, True, "escalated", ("done", "unknown"), ["action.outcome_unknown"],
                 id="sending-no-read-back-asks-a-human"),
]


@pytest.mark.parametrize(("left", "found", "idempotent", "outcome", "marker", "recorded"), CASES)
async def test_what_a_run_does_with_the_marker_it_finds(
        env: Factory, left: StepState | None, found: ReadBack | RemediationError | None, idempotent: bool,
        outcome: str, marker: tuple[str, str], recorded: list[str]) -> None:
    e = await env()
    e.action.found = found
    Reading.execute_is_idempotent = idempotent
    since = e.runtime.clock.now() - 30
    if left is not None:
        mark = StepMark(left, DEAD, since, "succeeded" if left is StepState.DONE else "")
        assert (await e.runtime.state.mark_step(e.marker, mark, ttl=3600, if_absent=True))[0]
        if left is not StepState.DONE:  # it held the target's lock, too
            assert await e.runtime.state.acquire_lock(e.step.subject, DEAD, ttl=3600) is not None
    try:
        if outcome == "escalated":
            with pytest.raises(Blocked) as caught:
                await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
            assert (caught.value.guard, caught.value.reason.value) == (Guard.EXECUTE_ONCE, "outcome_unknown")
        else:
            result = await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
            assert result.summary
    finally:
        Reading.execute_is_idempotent = False
    await e.runtime.audit.sync()
    assert e.action.executed == (1 if outcome == "ran" else 0)
    assert await e.marked() == marker
    about_step = [r["event"] for r in read_audit(e.runtime.settings.audit)
                  if r.get("step") == 1 and r["event"] != "action.planned"]
    assert about_step == recorded
    escalations = e.events("escalation.sent")
    assert [x["reason"] for x in escalations] == (["outcome_unknown"] if outcome == "escalated" else [])
    if left is StepState.SENDING:
        assert e.action.asked_since == [since]  # read back against when the request went out
    if outcome == "escalated":
        [unknown] = e.events("action.outcome_unknown")
        assert unknown["evidence"]["holder"] == DEAD
        assert unknown["evidence"]["sending_since"] == since
        assert escalations[0]["about"] == {"decision": e.d.id}
    if found is not None and outcome == "settled":
        [succeeded] = e.events("action.succeeded")
        assert succeeded["read_back"]["read_back"] == {"replicas": 3}
    if outcome == "ran" and left is not None:  # the dead run's lock went with its marker
        assert await e.runtime.state.acquire_lock(e.step.subject, "probe", ttl=60) is not None


async def test_the_same_process_taking_its_finished_work_up_again_skips_it_truthfully(env: Factory) -> None:
    """A completion that failed leaves the item to run again here: the step it ran is not run
    again, and the record says it is done (not "started")."""
    e = await env()
    await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
    result = await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
    assert result.details == {"already_done": True}
    assert e.action.executed == 1
    await e.runtime.audit.sync()
    [skipped] = e.events("action.skipped")
    assert (skipped["reason"], skipped["outcome"]) == ("already_done", "succeeded")
    assert not e.events("escalation.sent")


async def test_an_outcome_the_store_did_not_take_is_known_to_the_process(
        env: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker's ``done`` could not be written (the store failed then): it stays ``sending``;
    the same process taking the work up again knows the outcome, writes it, and asks no one."""
    e = await env()
    store = e.runtime.state
    real = store.mark_step

    async def failing_done(key: str, mark: StepMark | None, **kw: Any) -> tuple[bool, StepMark | None]:
        if mark is not None and mark.state is StepState.DONE:
            raise StateError("store down for the test")
        return await real(key, mark, **kw)

    monkeypatch.setattr(store, "mark_step", failing_done)
    await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
    assert await e.marked() == ("sending", "")
    monkeypatch.setattr(store, "mark_step", real)
    await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
    assert e.action.executed == 1
    assert await e.marked() == ("done", "succeeded")
    await e.runtime.audit.sync()
    assert [r["reason"] for r in e.events("action.skipped")] == ["already_done"]
    assert not e.events("action.outcome_unknown")


async def test_a_step_running_in_this_process_is_not_run_by_another_worker(env: Factory) -> None:
    """While one worker of this process holds the step, another taking the same work stops."""
    e = await env()
    first = await e.runtime.pipeline.step[2].enter(e.run())  # the marker stage: held, not finished
    with pytest.raises(Blocked) as caught:
        await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
    assert caught.value.reason.value == "step_running"
    assert e.action.executed == 0
    await first.give_back()
    assert await e.marked() is None
