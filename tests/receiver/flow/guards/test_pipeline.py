"""The guard pipeline's order (``receiver.flow.guards.pipeline``), on the real guards, a real
SQLite store and a real local HTTP target.

Each row sets up guards that would each stop the decision or step, and names the one that
must speak first; then checks what the ones it passed hold afterwards: the execute-once
marker and the lock given back when anything stops a step before it executes, budgets
spent only once the lock is held and never while a human is asked, the P1 timer armed
after the maintenance window and before the kill switch, a P2 counted before the peek.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from receiver.decisions import Decision, Guard, decision_identity
from receiver.flow.codec import ApprovalRequest
from receiver.flow.guards import Blocked
from receiver.flow.guards.approvals import AwaitingApproval
from receiver.flow.guards.budget import budget_for
from receiver.flow.guards.stages import ApprovedRun, DecisionRun, StepRun
from receiver.flow.payload import parse_webhook
from receiver.flow.steps import PreparedStep, StepFailed
from receiver.runtime import Runtime
from receiver.store.values import Approval, ApprovalStatus, StepMark, StepState, Verdict
from remediations.registry import default_registry
from rules.priority import Priority
from tests.conftest import rules_yaml
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, Target, serve_target
from tests.support.webhooks import alert, body


@dataclass
class Env:
    """One runtime (not started: the test runs the pipeline by hand) and one planned step."""

    runtime: Runtime
    target: Target
    d: Decision
    step: PreparedStep

    @property
    def marker(self) -> str:
        return f"{self.d.id}\x1f{self.step.number}"

    async def marked(self) -> tuple[str, str] | None:
        """The step's marker now: (state, outcome), None when there is none."""
        mark = await self.runtime.state.step_mark(self.marker)
        return None if mark is None else (mark.state.value, mark.outcome)

    def run(self) -> StepRun:
        return StepRun(decision=self.d.id, rule=self.d.rule, rung=self.d.rung, step=self.step)

    async def cooling(self) -> bool:
        """Whether the subject is in its cooldown (spending nothing to find out)."""
        budget = budget_for(self.runtime.settings, self.d.rule, self.step.subject, "probe")
        return (await self.runtime.state.admit(budget, spend=False)).verdict is Verdict.COOLDOWN


Factory = Callable[..., Awaitable[Env]]


@pytest.fixture
async def env(make_settings: Any, aiohttp_server: ServerFactory, clock: FakeClock) -> AsyncIterator[Factory]:
    opened: list[Runtime] = []
    target, base = await serve_target(aiohttp_server)

    async def build(*, approval: str | None = "auto", maintenance: bool = False,
                    priority: Priority = "P3", retries: int = 0, base_url: str = base) -> Env:
        rule: dict[str, Any] = {
            "name": "purge", "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
            "actions": [{"action": "http.request", "target": "api",
                         "params": {"method": "POST", "path": "/purge/{{ labels.namespace }}"}}]}
        if approval is not None:
            rule["approval"] = approval
        now = datetime.fromtimestamp(clock.now(), tz=UTC)
        windows = [{"name": "freeze", "start": (now - timedelta(hours=1)).isoformat(),
                    "end": (now + timedelta(hours=1)).isoformat()}] if maintenance else []
        settings = make_settings(rules=rules_yaml([rule]), dry_run=False,
                                 targets={"api": {"kind": "http", "base_url": base_url, "timeout": 2}},
                                 guards={"retries": retries, "maintenance": windows})
        runtime = Runtime(settings, registry=default_registry(), clock=clock,
                          metrics_registry=CollectorRegistry())
        runtime.rules.load_now()
        await runtime.state.open()
        opened.append(runtime)
        [firing] = parse_webhook(body(alert()))[1]
        loaded = runtime.rules.index.rule("purge")
        assert loaded is not None
        key, decision_id = decision_identity("purge", firing, dry_run=False)
        d = Decision(decision_id, key, loaded, firing, priority, timedelta(hours=1), False)
        step = await runtime.steps.plan(d, 1, "action", loaded.steps[0].actions[0])
        return Env(runtime, target, d, step)

    yield build
    for runtime in opened:
        await runtime.state.close()
        await runtime.audit.close()


async def paused(e: Env) -> None:
    await e.runtime.killswitch.pause(actor="test", detail="paused by the test")


async def circuit_open(e: Env) -> None:
    for _ in range(e.runtime.settings.guards.circuit_breaker.failures):
        await e.runtime.breakers.record("api", ok=False, decision="earlier", detail="down")


async def sending_before(e: Env) -> None:
    """A run of another process was sending the step when it died."""
    mark = StepMark(StepState.SENDING, "dead-replica/1", e.runtime.clock.now() - 5)
    assert (await e.runtime.state.mark_step(e.marker, mark, ttl=3600, if_absent=True))[0]


async def done_before(e: Env) -> None:
    """A run ran the step to its end (and its work item was not completed)."""
    mark = StepMark(StepState.DONE, "dead-replica/1", e.runtime.clock.now() - 5, "succeeded")
    assert (await e.runtime.state.mark_step(e.marker, mark, ttl=3600, if_absent=True))[0]


async def claimed_before(e: Env) -> None:
    """A run of another process held the step, and sent nothing, when it died."""
    mark = StepMark(StepState.CLAIMED, "dead-replica/1", e.runtime.clock.now() - 5)
    assert (await e.runtime.state.mark_step(e.marker, mark, ttl=3600, if_absent=True))[0]


async def locked(e: Env) -> None:
    assert await e.runtime.state.acquire_lock(e.step.subject, "other-replica", ttl=600) is not None


async def cooling_down(e: Env) -> None:
    budget = budget_for(e.runtime.settings, e.d.rule, e.step.subject, "an-earlier-decision")
    assert (await e.runtime.state.admit(budget, spend=True)).verdict is Verdict.OK


Condition = Callable[[Env], Awaitable[None]]


SENDING, DONE = "sending", "done"


@pytest.mark.parametrize(("conditions", "stopped_by", "calls", "marker", "spent"), [
    pytest.param((paused, circuit_open), Guard.KILL_SWITCH, 0, None, False, id="kill-switch-before-circuit"),
    pytest.param((circuit_open, sending_before), Guard.CIRCUIT_BREAKER, 0, (SENDING, ""), False,
                 id="circuit-before-execute-once"),
    pytest.param((sending_before, locked), Guard.EXECUTE_ONCE, 0, (DONE, "unknown"), False,
                 id="execute-once-before-lock-unknown-outcome-escalated"),
    pytest.param((done_before, locked), None, 0, (DONE, "succeeded"), False,
                 id="done-before-is-settled-not-run"),
    pytest.param((claimed_before,), None, 1, (DONE, "succeeded"), True,
                 id="claimed-by-a-dead-run-is-taken-over-and-run"),
    pytest.param((locked,), Guard.TARGET_LOCK, 0, None, False, id="lock-before-budgets-marker-given-back"),
    pytest.param((cooling_down,), Guard.COOLDOWN, 0, None, True,
                 id="budgets-last-marker-and-lock-given-back"),
    pytest.param((), None, 1, (DONE, "succeeded"), True, id="all-pass-executes-once"),
])
async def test_a_step_meets_its_guards_in_order(env: Factory, conditions: tuple[Condition, ...],
                                                stopped_by: Guard | None, calls: int,
                                                marker: tuple[str, str] | None, spent: bool) -> None:
    e = await env()
    for condition in conditions:
        await condition(e)
    if stopped_by is None:
        await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
    else:
        with pytest.raises(Blocked) as caught:
            await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
        assert caught.value.guard is stopped_by
    state = e.runtime.state
    assert len(e.target.calls) == calls
    assert await e.marked() == marker
    lock_free = await state.acquire_lock(e.step.subject, "probe", ttl=60) is not None
    assert lock_free is (locked not in conditions)
    assert await e.cooling() is spent


async def test_a_lock_lost_during_the_backoff_stops_the_retry_and_gives_the_marker_back(
        env: Factory, aiohttp_server: ServerFactory, clock: FakeClock) -> None:
    """The fence is checked before every attempt: the first attempt's answer says "again later"
    (503), meanwhile the lock expires and another replica takes it; the retry does not go
    out. The 503 said nothing was done, so the marker was given back for the backoff and stays
    so; the other replica's lock is not touched."""
    calls: list[str] = []
    holder: list[Env] = []

    async def first_503_while_the_lock_expires(request: web.Request) -> web.Response:
        calls.append(request.path)
        e = holder[0]
        clock.advance(e.runtime.settings.guards.lock_ttl.total_seconds() + 3600)
        assert await e.runtime.state.acquire_lock(e.step.subject, "other-replica", ttl=600) is not None
        return web.json_response({}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", first_503_while_the_lock_expires)
    server = await aiohttp_server(app)
    e = await env(retries=1, base_url=str(server.make_url("/svc")).rstrip("/"))
    holder.append(e)
    with pytest.raises(Blocked) as caught:
        await e.runtime.pipeline.run_step(e.run(), e.runtime.steps.execute)
    assert (caught.value.guard, caught.value.reason.value) == (Guard.TARGET_LOCK, "lock_lost")
    assert calls == ["/svc/purge/prod"]
    assert await e.marked() is None
    assert await e.runtime.state.acquire_lock(e.step.subject, "probe", ttl=60) is None


async def p1_armed(e: Env) -> bool:
    return any(t.kind == "p1_unresolved" for t in await e.runtime.timers.take(e.d.alert.fingerprint))


@pytest.mark.parametrize(("maintenance", "pause", "stopped_by", "armed"), [
    pytest.param(True, True, Guard.MAINTENANCE, False, id="maintenance-first-no-P1-timer"),
    pytest.param(False, True, Guard.KILL_SWITCH, True, id="P1-timer-armed-before-kill-switch"),
    pytest.param(False, False, None, True, id="open"),
])
async def test_a_live_decision_opens_maintenance_then_P1_timer_then_kill_switch(
        env: Factory, maintenance: bool, pause: bool, stopped_by: Guard | None, armed: bool) -> None:
    e = await env(maintenance=maintenance, priority="P1")
    if pause:
        await paused(e)
    if stopped_by is None:
        await e.runtime.pipeline.open(DecisionRun(e.d))
    else:
        with pytest.raises(Blocked) as caught:
            await e.runtime.pipeline.open(DecisionRun(e.d))
        assert caught.value.guard is stopped_by
    assert await p1_armed(e) is armed


@pytest.mark.parametrize(("approval", "conditions", "stopped_by"), [
    pytest.param(None, (cooling_down, circuit_open), Guard.COOLDOWN, id="budgets-before-circuit"),
    pytest.param(None, (circuit_open,), Guard.CIRCUIT_BREAKER, id="circuit-before-approval"),
    pytest.param(None, (), Guard.APPROVAL, id="approval-last-spends-nothing"),
    pytest.param("auto", (), None, id="auto-passes-spends-nothing"),
])
async def test_a_planned_decision_is_peeked_at_before_a_human_is_asked(
        env: Factory, approval: str | None, conditions: tuple[Condition, ...],
        stopped_by: Guard | None) -> None:
    e = await env(approval=approval)
    for condition in conditions:
        await condition(e)
    run = DecisionRun(e.d, (e.step,), ())
    if stopped_by is None:
        await e.runtime.pipeline.admit(run)
    else:
        with pytest.raises((Blocked, AwaitingApproval)) as caught:
            await e.runtime.pipeline.admit(run)
        assert caught.value.ending.guard is stopped_by
    asked = await e.runtime.approvals.list([ApprovalStatus.PENDING])
    assert len(asked) == (1 if stopped_by is Guard.APPROVAL else 0)
    assert await e.cooling() is (cooling_down in conditions)
    assert (await e.runtime.state.claim([e.marker], ttl=60))[0]  # peeking claims no marker


async def test_a_P2_is_counted_before_its_budgets_are_peeked(env: Factory) -> None:
    e = await env(priority="P2")
    await cooling_down(e)
    with pytest.raises(Blocked) as caught:
        await e.runtime.pipeline.admit(DecisionRun(e.d, (e.step,), ()))
    assert caught.value.guard is Guard.COOLDOWN
    key = f"p2\x1f{e.d.rule.name}\x1f{e.step.subject}"
    assert await e.runtime.state.count_occurrence(key, "probe", window=3600) == 2


@pytest.mark.parametrize(("status", "rule", "maintenance", "stopped_by"), [
    pytest.param(ApprovalStatus.REJECTED, "gone", True, Guard.APPROVAL, id="still-approved-first"),
    pytest.param(ApprovalStatus.APPROVED, "gone", True, "rule_gone", id="rule-before-dry-run"),
    pytest.param(ApprovalStatus.APPROVED, "dry-run", True, Guard.DRY_RUN, id="dry-run-before-maintenance"),
    pytest.param(ApprovalStatus.APPROVED, "loaded", True, Guard.MAINTENANCE, id="maintenance"),
    pytest.param(ApprovalStatus.APPROVED, "loaded", False, None, id="runs"),
])
async def test_an_approved_plan_meets_the_cheap_guards_again_in_order(
        env: Factory, status: ApprovalStatus, rule: str, maintenance: bool,
        stopped_by: Guard | str | None) -> None:
    e = await env(maintenance=maintenance)
    request = ApprovalRequest.of(e.d, (e.step.saved(),), ())
    approval = Approval(id="a1", status=status, created_at=0.0, expires_at=1.0, decision=e.d.id, rule="purge",
                        fingerprint=e.d.alert.fingerprint, payload=request.as_data())
    loaded = {"gone": None, "loaded": e.d.rule,
              "dry-run": e.d.rule.model_copy(update={"dry_run": True})}[rule]
    run = ApprovedRun(approval, request, loaded)
    if stopped_by is None:
        await e.runtime.pipeline.reopen(run)
    elif stopped_by == "rule_gone":
        with pytest.raises(StepFailed, match="rule 'purge' is no longer loaded; approval a1 was not run"):
            await e.runtime.pipeline.reopen(run)
    else:
        with pytest.raises(Blocked) as caught:
            await e.runtime.pipeline.reopen(run)
        assert caught.value.guard is stopped_by
